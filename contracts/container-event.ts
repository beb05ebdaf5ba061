import { z } from "zod";
import { Labels, LabelsCut } from "./labels.js";
import { ContainerId, HostId } from "./tokens.js";

/** Lifecycle actions that agents forward, as they appear in the last token of an event subject. */
export const LIFECYCLE_ACTIONS = [
  "create",
  "start",
  "die",
  "stop",
  "kill",
  "restart",
  "oom",
  "destroy",
  "pause",
  "unpause",
] as const;

/** Health transitions, from Docker's `health_status: <status>` events. */
export const HEALTH_ACTIONS = ["healthy", "unhealthy", "starting"] as const;

/** Every action that can appear in `fleetheal.v1.evt.<host>.<cid>.<action>`. */
export const ContainerAction = z.enum([...LIFECYCLE_ACTIONS, ...HEALTH_ACTIONS]);
export type ContainerAction = z.infer<typeof ContainerAction>;

/** Docker's health status of a container; `none` when the image defines no healthcheck. */
export const HealthStatus = z.enum(["healthy", "unhealthy", "starting", "none"]);
export type HealthStatus = z.infer<typeof HealthStatus>;

export const CONTAINER_EVENT_TYPE = "fleetheal.evt.v1.container";

/** Longest health check output an event or a record carries. */
export const MAX_HEALTH_OUTPUT = 1024;

/**
 * The tail of a health check's output, as agents publish it: at most {@link MAX_HEALTH_OUTPUT}
 * characters, with every control character but the newline escaped (`\u001b`), so that a
 * terminal, a log or a chat message that shows it cannot be steered by it.
 */
export const HealthOutput = z
  .string()
  .max(MAX_HEALTH_OUTPUT)
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are the point
  .regex(/^[^\u0000-\u0009\u000b-\u001f\u007f-\u009f]*$/, "control characters must be escaped");

/**
 * Docker's id of an image: a content digest, `sha256:` and 64 hex digits today (inspect's
 * `Image` field of a container). Any lowercase algorithm with 32–128 hex digits is accepted, so
 * that an engine using another digest still validates; the length stays bounded.
 */
export const ImageId = z
  .string()
  .regex(/^[a-z0-9]{1,32}:[0-9a-f]{32,128}$/, "must be an image id such as sha256:<64 hex digits>");
export type ImageId = z.infer<typeof ImageId>;

/**
 * One Docker container event, forwarded by the agent of the host it happened on.
 *
 * Published on `fleetheal.v1.evt.<host>.<container id>.<action>` and kept in the
 * `FLEETHEAL_EVENTS` stream. `id` is stable for one Docker event, so a redelivered or republished
 * event can be recognised (it is also the JetStream `Nats-Msg-Id`).
 */
export const ContainerEvent = z.object({
  type: z.literal(CONTAINER_EVENT_TYPE),
  /** Schema version of this payload. */
  v: z.literal(1),
  /** `<host>:<container id>:<timeNano>:<action>`. */
  id: z.string().min(1).max(512),
  host: HostId,
  action: ContainerAction,
  /** Docker's own event time, in nanoseconds since the epoch, as a decimal string. */
  timeNano: z.string().regex(/^\d{1,25}$/, "must be a decimal nanosecond timestamp"),
  /** The same instant as an ISO-8601 string, for people and tools that do not want nanoseconds. */
  time: z.iso.datetime(),
  container: z.object({
    id: ContainerId,
    /** Container name without Docker's leading slash. */
    name: z.string().max(256),
    image: z.string().max(1024),
    /**
     * Docker's id of the container's image, when the agent knows it (it has inspected the
     * container). One name can stand for different images on different hosts, and a name is
     * whatever a host says it is; the id names the image's content. Absent from older agents.
     */
    imageId: ImageId.optional(),
    labels: Labels,
    /** What the agent cut from the container's labels to keep them within the limits. */
    labelsCut: LabelsCut.optional(),
    /** Whether the container has opted in to healing (the opt-in label, or the agent watches all). */
    optedIn: z.boolean(),
    /**
     * Docker's `State.StartedAt` of the run this event belongs to, when the agent knows it. It
     * names the incident: one run of a container can be healed at most once.
     */
    startedAt: z.iso.datetime({ offset: true }).optional(),
  }),
  /**
   * Who saw the transition: Docker's event stream, the agent's reconciliation after a gap (Docker
   * did not report it while nobody was listening), the agent's label probe, or the agent's
   * resync, which re-asserts every resync interval that an opted-in running container is still
   * unhealthy (healing is level-triggered: a lost or unanswered trigger is decided again).
   */
  source: z.enum(["docker", "reconcile", "probe", "resync"]).default("docker"),
  /**
   * For `unhealthy` events: since when the agent has known the container unhealthy in this run
   * (the transition's time, by Docker's clock when Docker reported it). A `resync` event carries
   * it, so that the policy counts from the transition, not from the re-assertion.
   */
  unhealthySince: z.iso.datetime({ offset: true }).optional(),
  /**
   * For `unhealthy` and `healthy` events: the last lines of the health check's output (Docker's
   * `State.Health.Log`, or the label probe's), at most 1 KiB, control characters escaped.
   */
  healthOutput: HealthOutput.optional(),
  /** Exit code, for `die` events. */
  exitCode: z.number().int().optional(),
  /**
   * For `die` events: a kill or stop preceded it in the same run, so someone stopped the
   * container (a person, Docker, or fleetheal) rather than it crashing.
   */
  stopped: z.boolean().optional(),
  /** Signal number, for `kill` events. */
  signal: z.string().max(32).optional(),
});
export type ContainerEvent = z.infer<typeof ContainerEvent>;

/** Builds the stable id of an event; also used as the JetStream message id for dedup. */
export function containerEventId(
  host: string,
  containerId: string,
  timeNano: string,
  action: ContainerAction,
): string {
  return `${host}:${containerId}:${timeNano}:${action}`;
}
