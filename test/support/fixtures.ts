// Contract messages for tests: each builder fills in a valid message and takes only what the test
// cares about, then validates the result with the contract's own schema, so a fixture cannot
// drift from the wire format (it throws instead). Imports contracts/ and common/ only, so that
// unit tests beside the sources can use it as well as the integration tests.

import type { z } from "zod";
import type { RestartDraft } from "../../common/agent-commands.js";
import {
  COMMAND_REPLY_TYPE,
  CONTAINER_EVENT_TYPE,
  CommandReply,
  ContainerEvent,
  type ContainerSnapshot,
  ContainerSnapshot as ContainerSnapshotSchema,
  containerEventId,
  HealPolicy,
  HOST_SNAPSHOT_TYPE,
  HostSnapshot,
  ImageFailures,
  INSPECT_REQUEST_TYPE,
  InspectRequest,
  LedgerEntry,
  RECREATE_COMMAND_TYPE,
  REMEDIATION_TYPE,
  RESTART_COMMAND_TYPE,
  RecreateCommand,
  RemediationRecord,
  RestartCommand,
  SNAPSHOT_REQUEST_TYPE,
  SnapshotRequest,
  STOP_COMMAND_TYPE,
  StopCommand,
} from "../../contracts/index.js";

/** The host of a fixture unless it names one. */
export const FIXTURE_HOST = "host-a";
/** The container of a fixture unless it names one: a full 64-digit Docker id. */
export const FIXTURE_CONTAINER_ID = "0123456789abcdef".repeat(4);

/** A 64-digit container id of its own for each `n`, for tests with several containers. */
export function fixtureContainerId(n: number): string {
  return n.toString(16).padStart(64, "c");
}

let lastNano = 0n;

/**
 * Now, in nanoseconds since the epoch as a decimal string (a Docker event's `timeNano`), later
 * than any earlier call in this process: events built one after the other never share an id.
 */
export function nowNano(): string {
  const now = BigInt(Date.now()) * 1_000_000n;
  lastNano = now > lastNano ? now : lastNano + 1n;
  return lastNano.toString();
}

/** The ISO-8601 time of a nanosecond timestamp, as events carry both. */
export function isoOfNano(timeNano: string): string {
  return new Date(Number(BigInt(timeNano) / 1_000_000n)).toISOString();
}

/** What a test may set on a {@link containerEvent}; the container's fields one by one. */
export type ContainerEventInit = Partial<Omit<ContainerEvent, "container">> & {
  container?: Partial<ContainerEvent["container"]>;
};

/**
 * A container event as an agent forwards it. Defaults: `unhealthy` of an opted-in busybox
 * container `web` (no labels) on {@link FIXTURE_HOST}, now, from Docker; `id` and `time` follow
 * from the host, container, time and action unless given.
 */
export function containerEvent(init: ContainerEventInit = {}): ContainerEvent {
  const host = init.host ?? FIXTURE_HOST;
  const action = init.action ?? "unhealthy";
  const timeNano = init.timeNano ?? nowNano();
  const container = {
    id: FIXTURE_CONTAINER_ID,
    name: "web",
    image: "busybox",
    labels: {},
    optedIn: true,
    ...init.container,
  };
  return ContainerEvent.parse({
    type: CONTAINER_EVENT_TYPE,
    v: 1,
    id: containerEventId(host, container.id, timeNano, action),
    time: isoOfNano(timeNano),
    source: "docker",
    ...init,
    host,
    action,
    timeNano,
    container,
  });
}

/**
 * One container of a host snapshot. Defaults: the running, healthy, opted-in busybox container
 * `web` ({@link FIXTURE_CONTAINER_ID}), without labels, its health from Docker.
 */
export function containerSnapshot(init: Partial<ContainerSnapshot> = {}): ContainerSnapshot {
  return ContainerSnapshotSchema.parse({
    id: FIXTURE_CONTAINER_ID,
    name: "web",
    image: "busybox",
    state: "running",
    health: "healthy",
    optedIn: true,
    labels: {},
    restartCount: 0,
    failingStreak: 0,
    healthSource: "docker",
    ...init,
  });
}

/** What a test may set on a {@link hostSnapshot}; the agent's fields one by one. */
export type HostSnapshotInit = Partial<Omit<HostSnapshot, "agent" | "containers">> & {
  agent?: Partial<HostSnapshot["agent"]>;
  /** Each one completed by {@link containerSnapshot}. */
  containers?: Partial<ContainerSnapshot>[];
};

/**
 * A host snapshot as an agent publishes it. Defaults: {@link FIXTURE_HOST}, the first snapshot
 * (seq 1) of an agent started now that honours `autoheal`, an empty outbox, Docker up, and no
 * containers.
 */
export function hostSnapshot(init: HostSnapshotInit = {}): HostSnapshot {
  const now = new Date().toISOString();
  return HostSnapshot.parse({
    type: HOST_SNAPSHOT_TYPE,
    v: 1,
    host: FIXTURE_HOST,
    seq: 1,
    at: now,
    heartbeatMs: 5_000,
    outbox: { depth: 0, capacity: 10_000, published: 0, dropped: 0 },
    docker: { status: "up" },
    ...init,
    agent: {
      version: "test",
      startedAt: now,
      label: "autoheal",
      watchAll: false,
      uptimeSeconds: 1,
      ...init.agent,
    },
    containers: (init.containers ?? []).map(containerSnapshot),
  });
}

/**
 * A remediation record as a handler writes it. Defaults: a `skipped` record about the container
 * `web` on {@link FIXTURE_HOST}, written now by `test`, its code the phase; `remediationId` names
 * the host and container, and `id` is `<remediationId>:<phase>`, unless given.
 */
export function remediationRecord(init: Partial<RemediationRecord> = {}): RemediationRecord {
  const host = init.host ?? FIXTURE_HOST;
  const containerId = init.containerId ?? FIXTURE_CONTAINER_ID;
  const phase = init.phase ?? "skipped";
  const remediationId = init.remediationId ?? `test:${host}:${containerId.slice(0, 12)}:1`;
  return RemediationRecord.parse({
    type: REMEDIATION_TYPE,
    v: 1,
    id: `${remediationId}:${phase}`,
    containerName: "web",
    code: phase,
    message: `${phase} (test record)`,
    actor: "test",
    at: new Date().toISOString(),
    dryRun: false,
    ...init,
    host,
    containerId,
    phase,
    remediationId,
  });
}

/**
 * The fleet's heal policy from a partial document, every field left out at its default, as the
 * handlers and the gateway load it from KV.
 */
export function healPolicy(doc: z.input<typeof HealPolicy> = {}): HealPolicy {
  return HealPolicy.parse(doc);
}

/** A container's ledger entry. Defaults: {@link FIXTURE_CONTAINER_ID} on its host, no history. */
export function ledgerEntry(init: Partial<LedgerEntry> = {}): LedgerEntry {
  return LedgerEntry.parse({
    v: 1,
    host: FIXTURE_HOST,
    containerId: FIXTURE_CONTAINER_ID,
    restarts: [],
    consecutiveRestarts: 0,
    ...init,
  });
}

/** An image breaker's count of failing containers. Defaults: image `busybox`, no failures. */
export function imageFailures(init: Partial<ImageFailures> = {}): ImageFailures {
  return ImageFailures.parse({ v: 1, image: "busybox", failures: [], ...init });
}

let commands = 0;

/** A command id that no earlier one of this process has. */
export function fixtureCommandId(prefix = "test"): string {
  commands++;
  return `${prefix}-${Date.now()}-${commands}`;
}

const RestartDraftSchema = RestartCommand.omit({ issuedAt: true, expiresAt: true });
const StopDraftSchema = StopCommand.omit({ issuedAt: true, expiresAt: true });
type StopDraft = Omit<StopCommand, "issuedAt" | "expiresAt">;
const RecreateDraftSchema = RecreateCommand.omit({ issuedAt: true, expiresAt: true });
type RecreateDraft = Omit<RecreateCommand, "issuedAt" | "expiresAt">;

/** The fields every container command shares, for the test's host and container. */
function commandBase(init: { host?: string; containerId?: string }) {
  return {
    v: 1 as const,
    commandId: fixtureCommandId(),
    host: init.host ?? FIXTURE_HOST,
    containerId: init.containerId ?? FIXTURE_CONTAINER_ID,
    reason: "test",
    requestedBy: "test",
  };
}

/**
 * A restart as a decision takes it, before it is stamped and signed for sending
 * (common/agent-commands.ts): a fresh command id, for {@link FIXTURE_CONTAINER_ID}.
 */
export function restartDraft(init: Partial<RestartDraft> = {}): RestartDraft {
  return RestartDraftSchema.parse({
    type: RESTART_COMMAND_TYPE,
    ...commandBase(init),
    ...init,
  }) as RestartDraft;
}

/** A stop as a decision takes it; see {@link restartDraft}. */
export function stopDraft(init: Partial<StopDraft> = {}): StopDraft {
  return StopDraftSchema.parse({ type: STOP_COMMAND_TYPE, ...commandBase(init), ...init });
}

/** A recreate as a decision takes it; see {@link restartDraft}. */
export function recreateDraft(init: Partial<RecreateDraft> = {}): RecreateDraft {
  return RecreateDraftSchema.parse({
    type: RECREATE_COMMAND_TYPE,
    ...commandBase(init),
    ...init,
  });
}

/** The lifetime of a command issued at `at`: valid for `ttlMs` (30 s) from then. */
function lifetime(at = Date.now(), ttlMs = 30_000) {
  return {
    issuedAt: new Date(at).toISOString(),
    expiresAt: new Date(at + ttlMs).toISOString(),
  };
}

/** A restart command as it goes on the wire (unsigned): a draft, issued now for 30 s. */
export function restartCommand(init: Partial<RestartCommand> = {}): RestartCommand {
  return RestartCommand.parse({ ...restartDraft(), ...lifetime(), ...init });
}

/** A stop command as it goes on the wire (unsigned): a draft, issued now for 30 s. */
export function stopCommand(init: Partial<StopCommand> = {}): StopCommand {
  return StopCommand.parse({ ...stopDraft(), ...lifetime(), ...init });
}

/** A recreate command, built like {@link stopCommand}. */
export function recreateCommand(init: Partial<RecreateCommand> = {}): RecreateCommand {
  return RecreateCommand.parse({ ...recreateDraft(), ...lifetime(), ...init });
}

/**
 * An agent's reply to a command. Defaults: the restart of {@link FIXTURE_CONTAINER_ID} on
 * {@link FIXTURE_HOST} succeeded just now in 1 ms, the first time for its command id `test`.
 */
export function commandReply(init: Partial<CommandReply> = {}): CommandReply {
  return CommandReply.parse({
    type: COMMAND_REPLY_TYPE,
    v: 1,
    verb: "restart",
    commandId: "test",
    host: FIXTURE_HOST,
    containerId: FIXTURE_CONTAINER_ID,
    outcome: "restarted",
    code: "restarted",
    message: "restarted (stop timeout 10s)",
    duplicate: false,
    startedAt: new Date().toISOString(),
    durationMs: 1,
    ...init,
  });
}

/** Asks the agent of `host` for its snapshot. */
export function snapshotRequest(host = FIXTURE_HOST): SnapshotRequest {
  return SnapshotRequest.parse({ type: SNAPSHOT_REQUEST_TYPE, v: 1, host });
}

/** Asks the agent of `host` for one container. */
export function inspectRequest(
  init: Partial<Omit<InspectRequest, "type" | "v">> = {},
): InspectRequest {
  return InspectRequest.parse({
    type: INSPECT_REQUEST_TYPE,
    v: 1,
    host: FIXTURE_HOST,
    containerId: FIXTURE_CONTAINER_ID,
    ...init,
  });
}
