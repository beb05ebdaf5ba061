import { z } from "zod";
import { ContainerId, HostId } from "./tokens.js";

export const RESTART_COMMAND_TYPE = "fleetheal.cmd.v1.restart";
export const RESTART_REPLY_TYPE = "fleetheal.cmd.v1.restart.reply";

/**
 * Asks the agent of `host` to restart one container. Sent as a NATS request to
 * `fleetheal.v1.cmd.<host>.restart`.
 *
 * The agent executes a given `commandId` at most once and answers repeats with the first reply,
 * so a sender that timed out can safely send the same command again.
 */
export const RestartCommand = z.object({
  type: z.literal(RESTART_COMMAND_TYPE),
  v: z.literal(1),
  /** Unique per decision; the agent's dedup key. */
  commandId: z
    .string()
    .min(8)
    .max(128)
    .regex(/^[A-Za-z0-9_.:-]+$/),
  host: HostId,
  containerId: ContainerId,
  /** Human-readable reason, recorded by the agent in its log. */
  reason: z.string().max(512),
  /** Who asked: a handler name or `gateway:<user>`. */
  requestedBy: z.string().min(1).max(128),
  /**
   * The incident this restart is for: the container's `State.StartedAt` when the decision was
   * taken. When present, the agent refuses to act if the container has restarted since, because
   * the command is then stale.
   */
  incident: z.iso.datetime({ offset: true }).optional(),
  /**
   * Restart only if Docker still reports the container `unhealthy` when the command arrives, so
   * that a delayed command cannot restart a container that has recovered on its own.
   */
  requireUnhealthy: z.boolean().optional(),
  /** Seconds Docker waits after SIGTERM before SIGKILL; the container's label wins if set. */
  stopTimeoutSeconds: z.number().int().min(0).max(3600).optional(),
});
export type RestartCommand = z.infer<typeof RestartCommand>;

/** What the agent did with a restart command. */
export const RestartOutcome = z.enum([
  /** The container was restarted. */
  "restarted",
  /** The agent will not act on it: the container has not opted in, or does not exist. */
  "refused",
  /** Nothing to do: paused, already restarting, or the command is stale. */
  "skipped",
  /** Docker returned an error. */
  "failed",
]);
export type RestartOutcome = z.infer<typeof RestartOutcome>;

/** The agent's answer to a {@link RestartCommand}. */
export const RestartReply = z.object({
  type: z.literal(RESTART_REPLY_TYPE),
  v: z.literal(1),
  commandId: z.string(),
  host: HostId,
  containerId: z.string(),
  outcome: RestartOutcome,
  /** Stable machine-readable reason, for example `not-opted-in` or `stale-incident`. */
  code: z.string().max(64),
  message: z.string().max(2048),
  /** True when this reply is a repeat of an earlier execution of the same command id. */
  duplicate: z.boolean(),
  /** When the agent started executing, and how long Docker took. */
  startedAt: z.iso.datetime(),
  durationMs: z.number().nonnegative(),
});
export type RestartReply = z.infer<typeof RestartReply>;
