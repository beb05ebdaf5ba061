import { z } from "zod";
import { msFromTimeNano, parseInstant } from "../common/nanosecond-time.js";
import { type ContainerAction, LIFECYCLE_ACTIONS } from "../contracts/index.js";

/** The fields of a raw Docker event (API 1.41+) that the agent uses. */
const RawDockerEvent = z.object({
  Type: z.string(),
  Action: z.string(),
  Actor: z.object({
    ID: z.string(),
    Attributes: z.record(z.string(), z.string()).optional(),
  }),
  time: z.number(),
  timeNano: z.number(),
});

/** A Docker container event the agent forwards. */
export interface DockerContainerEvent {
  containerId: string;
  action: ContainerAction;
  /** Exact nanoseconds as a string (a JS number cannot hold them exactly). */
  timeNano: string;
  attributes: Record<string, string>;
}

/** Why a line from Docker's event stream was not forwarded. */
export type DockerEventRejection = "bad-json" | "bad-shape" | "not-forwarded";

const FORWARDED: ReadonlySet<string> = new Set(LIFECYCLE_ACTIONS);

const HEALTH_PREFIX = "health_status: ";

/** Attributes Docker adds to container events next to the container's labels. */
const NON_LABEL_ATTRIBUTES = new Set(["name", "image", "exitCode", "signal", "execDuration"]);

/**
 * Parses one line of Docker's event stream. Returns the event, or why it is not forwarded
 * (exec_* noise from healthchecks, other object types, or a malformed line).
 */
export function parseDockerEventLine(
  line: string,
): { ok: true; event: DockerContainerEvent } | { ok: false; reason: DockerEventRejection } {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    return { ok: false, reason: "bad-json" };
  }
  const raw = RawDockerEvent.safeParse(json);
  if (!raw.success) return { ok: false, reason: "bad-shape" };
  const { Type, Action, Actor } = raw.data;
  if (Type !== "container") return { ok: false, reason: "not-forwarded" };
  const action = toAction(Action);
  if (!action) return { ok: false, reason: "not-forwarded" };
  return {
    ok: true,
    event: {
      containerId: Actor.ID,
      action,
      timeNano: exactTimeNano(line, raw.data.timeNano),
      attributes: Actor.Attributes ?? {},
    },
  };
}

function toAction(dockerAction: string): ContainerAction | undefined {
  if (dockerAction.startsWith(HEALTH_PREFIX)) {
    const status = dockerAction.slice(HEALTH_PREFIX.length).trim();
    return status === "healthy" || status === "unhealthy" || status === "starting"
      ? status
      : undefined;
  }
  return FORWARDED.has(dockerAction) ? (dockerAction as ContainerAction) : undefined;
}

/**
 * Docker's timeNano exceeds 2^53, so JSON.parse rounds it. The exact digits are read from the
 * line itself; they are the event's identity for replay and dedup.
 */
function exactTimeNano(line: string, rounded: number): string {
  const match = /"timeNano"\s*:\s*(\d+)/.exec(line);
  return match?.[1] ?? BigInt(Math.round(rounded)).toString();
}

/** The container's labels from an event's attributes (Docker mixes in name, image and so on). */
export function labelsFromAttributes(attributes: Record<string, string>): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const [key, value] of Object.entries(attributes)) {
    if (!NON_LABEL_ATTRIBUTES.has(key)) labels[key] = value;
  }
  return labels;
}

/** Docker's `since` parameter (inclusive) for a nanosecond timestamp. */
export function sinceFromTimeNano(timeNano: string): string {
  const ns = BigInt(timeNano);
  const seconds = ns / 1_000_000_000n;
  const rest = (ns % 1_000_000_000n).toString().padStart(9, "0");
  return `${seconds}.${rest}`;
}

/** Nanoseconds since the epoch to an ISO-8601 string (millisecond precision). */
export function isoFromTimeNano(timeNano: string): string {
  return new Date(msFromTimeNano(timeNano)).toISOString();
}

/**
 * Docker's `since` format from an RFC 3339 time with up to nanosecond precision, such as
 * Docker's SystemTime `2026-11-27T19:53:18.613456789Z`. Undefined if it cannot be read.
 */
export function sinceFromIso(iso: string): string | undefined {
  const instant = parseInstant(iso);
  return instant && sinceFromTimeNano(instant.epochNanos.toString());
}

/** Nanoseconds since the epoch for a `since` string. */
export function timeNanoFromSince(since: string): string {
  const [seconds = "0", nanos = "0"] = since.split(".");
  return (BigInt(seconds) * 1_000_000_000n + BigInt(nanos.padEnd(9, "0").slice(0, 9))).toString();
}
