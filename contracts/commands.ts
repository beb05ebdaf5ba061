import { z } from "zod";
import { ContainerSnapshot } from "./host-snapshot.js";
import { CONTAINER_COMMAND_VERBS } from "./subjects.js";
import { ContainerId, HostId } from "./tokens.js";

/*
 * The agent's command API: NATS requests to `fleetheal.v1.cmd.<host>.<verb>`, served by the
 * micro service `fleetheal-agent`. A request that is not valid JSON or does not match its schema
 * gets a service error (headers `Nats-Service-Error-Code: 400` and `Nats-Service-Error`); an
 * unknown container in `inspect` gets 404. Restart and stop answer with a {@link CommandReply},
 * whose `code` is stable and machine-readable, unless the agent refuses them first because they
 * are not signed, not signed by a key it trusts, or not current: then the answer is a service
 * error 403 whose message is `<refusal code>: <detail>` (command-auth.ts: the signature headers
 * and the refusal codes).
 */

export const RESTART_COMMAND_TYPE = "fleetheal.cmd.v1.restart";
export const STOP_COMMAND_TYPE = "fleetheal.cmd.v1.stop";
export const RECREATE_COMMAND_TYPE = "fleetheal.cmd.v1.recreate";
export const COMMAND_REPLY_TYPE = "fleetheal.cmd.v1.reply";
export const INSPECT_REQUEST_TYPE = "fleetheal.cmd.v1.inspect";
export const INSPECT_REPLY_TYPE = "fleetheal.cmd.v1.inspect.reply";
export const SNAPSHOT_REQUEST_TYPE = "fleetheal.cmd.v1.snapshot";

const CommandId = z
  .string()
  .min(8)
  .max(128)
  .regex(/^[A-Za-z0-9_.:-]+$/);

/** What every command that changes a container carries. */
const ContainerCommandFields = {
  v: z.literal(1),
  /** Unique per decision; the agent's dedup key. */
  commandId: CommandId,
  host: HostId,
  containerId: ContainerId,
  /** Human-readable reason, recorded by the agent in its log. */
  reason: z.string().max(512),
  /** Who asked: a handler name, `cli`, or `gateway:<user>`. */
  requestedBy: z.string().min(1).max(128),
  /**
   * Seconds Docker waits after SIGTERM before SIGKILL. Set, it wins over the container's
   * `autoheal.stop.timeout` label (agents of earlier versions let the label win); unset, the label or the
   * agent's default applies.
   */
  stopTimeoutSeconds: z.number().int().min(0).max(3600).optional(),
  /**
   * When the signer sent this attempt (UTC). The agent refuses a command issued before it
   * started, or later than its clock plus the allowed skew.
   */
  issuedAt: z.iso.datetime(),
  /**
   * After this the agent refuses the command (allowing for clock skew). At most
   * `MAX_COMMAND_LIFETIME_MS` (300 s) after `issuedAt`.
   */
  expiresAt: z.iso.datetime(),
  /**
   * The incident this command is for: the container's `State.StartedAt` when the decision was
   * taken. When present, the agent refuses to act if the container has started again since,
   * because the command is then stale.
   */
  incident: z.iso.datetime({ offset: true }).optional(),
  /**
   * Act only if the agent still judges the container `unhealthy` when the command arrives, so
   * that a delayed command cannot act on a container that has recovered on its own.
   */
  requireUnhealthy: z.boolean().optional(),
};

/**
 * Asks the agent of `host` to restart one container. Sent as a NATS request to
 * `fleetheal.v1.cmd.<host>.restart`, signed (`COMMAND_SIGNATURE_HEADERS` in command-auth.ts).
 *
 * The agent executes a given `commandId` at most once and answers repeats with the first reply,
 * so a sender that timed out can safely send the same command again.
 */
export const RestartCommand = z.object({
  type: z.literal(RESTART_COMMAND_TYPE),
  ...ContainerCommandFields,
});
export type RestartCommand = z.infer<typeof RestartCommand>;

/**
 * Asks the agent of `host` to stop one container (`docker stop`). Same guarantees as restart:
 * signed and current, opted-in containers only, each command id executed at most once.
 */
export const StopCommand = z.object({
  type: z.literal(STOP_COMMAND_TYPE),
  ...ContainerCommandFields,
});
export type StopCommand = z.infer<typeof StopCommand>;

/**
 * Asks the agent of `host` to recreate one container: a new container from the old one's
 * configuration (Docker's `Config`, `HostConfig` and networks), under the same name, started,
 * and then the old one removed. If the new one cannot be created or started, the old one is put
 * back as it was. Same guarantees as restart: signed and current, opted-in containers only,
 * each command id executed at most once. The reply names the new container.
 */
export const RecreateCommand = z.object({
  type: z.literal(RECREATE_COMMAND_TYPE),
  ...ContainerCommandFields,
  /** Pull the container's image reference again first (`autoheal.recreate.pull=true`). */
  pull: z.boolean().optional(),
  /**
   * For a container that shares another's network namespace (`network_mode: container:<id>`):
   * join this container's namespace instead, because the one it named was recreated. The agent
   * refuses it for a container whose network mode is not `container:`.
   */
  networkParent: ContainerId.optional(),
});
export type RecreateCommand = z.infer<typeof RecreateCommand>;

/** What the agent did with a restart, stop or recreate command. */
export const CommandOutcome = z.enum([
  /** The container was restarted. */
  "restarted",
  /** The container was stopped. */
  "stopped",
  /** The container was replaced by a new one (`newContainerId`). */
  "recreated",
  /** The agent will not act on it: the container has not opted in, or does not exist. */
  "refused",
  /** Nothing to do: paused, already restarting, no longer unhealthy, or the command is stale. */
  "skipped",
  /** Docker returned an error. */
  "failed",
]);
export type CommandOutcome = z.infer<typeof CommandOutcome>;

/**
 * The agent's answer to a restart, stop or recreate command. `code` is one of: `restarted`,
 * `stopped`, `recreated`, `wrong-host`, `not-found`, `not-opted-in`, `already-restarting`,
 * `paused`, `stale-incident`, `not-unhealthy`, `not-network-child`, `auto-remove` (a recreate
 * of a `--rm` container, which Docker would delete on stop), `pull-failed`, `docker-error`.
 */
export const CommandReply = z.object({
  type: z.literal(COMMAND_REPLY_TYPE),
  v: z.literal(1),
  verb: z.enum(CONTAINER_COMMAND_VERBS),
  commandId: z.string(),
  host: HostId,
  containerId: z.string(),
  outcome: CommandOutcome,
  code: z.string().max(64),
  message: z.string().max(2048),
  /** True when this reply is a repeat of an earlier execution of the same command id. */
  duplicate: z.boolean(),
  /** When the agent started executing, and how long it took. */
  startedAt: z.iso.datetime(),
  durationMs: z.number().nonnegative(),
  /** For `recreated`: the new container's id. */
  newContainerId: ContainerId.optional(),
});
export type CommandReply = z.infer<typeof CommandReply>;

/** Asks for one container as the agent sees it now (fresh from Docker). */
export const InspectRequest = z.object({
  type: z.literal(INSPECT_REQUEST_TYPE),
  v: z.literal(1),
  host: HostId,
  containerId: ContainerId,
});
export type InspectRequest = z.infer<typeof InspectRequest>;

export const InspectReply = z.object({
  type: z.literal(INSPECT_REPLY_TYPE),
  v: z.literal(1),
  host: HostId,
  container: ContainerSnapshot,
});
export type InspectReply = z.infer<typeof InspectReply>;

/** Asks for the host's snapshot now; the reply is a {@link HostSnapshot}. */
export const SnapshotRequest = z.object({
  type: z.literal(SNAPSHOT_REQUEST_TYPE),
  v: z.literal(1),
  host: HostId,
});
export type SnapshotRequest = z.infer<typeof SnapshotRequest>;
