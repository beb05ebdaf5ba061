import { z } from "zod";
import { ContainerId, HostId } from "./tokens.js";

export const REMEDIATION_TYPE = "fleetheal.act.v1.remediation";

/** The phases of a remediation, as they appear in the last token of an `act` subject. */
export const RemediationPhase = z.enum([
  /** A handler decided to restart; the ledger claim succeeded. */
  "decided",
  /** The restart command was sent to the agent. */
  "restarting",
  /** The agent confirmed the restart. */
  "restarted",
  /** The agent or Docker failed, or the agent could not be reached. */
  "failed",
  /** A handler saw a trigger and chose not to act; `code` says why. */
  "skipped",
  /** The container's restart budget is spent; no more restarts until it is released. */
  "quarantined",
  /** The container left quarantine. */
  "released",
]);
export type RemediationPhase = z.infer<typeof RemediationPhase>;

/**
 * One step of a remediation: what fleetheal decided or did about a container, and why.
 *
 * Published on `fleetheal.v1.act.<host>.<container id>.<phase>` and kept in the
 * `FLEETHEAL_EVENTS` stream. All records of one remediation share `remediationId`.
 */
export const RemediationRecord = z.object({
  type: z.literal(REMEDIATION_TYPE),
  v: z.literal(1),
  /** Unique per record; the JetStream message id. */
  id: z.string().min(1).max(256),
  remediationId: z.string().min(1).max(256),
  host: HostId,
  containerId: ContainerId,
  containerName: z.string().max(256),
  phase: RemediationPhase,
  /** Stable machine-readable reason, for example `unhealthy`, `cooldown` or `not-opted-in`. */
  code: z.string().max(64),
  /** One sentence for people. */
  message: z.string().max(2048),
  /** The container run (its `State.StartedAt`) this is about, when known. */
  incident: z.string().max(64).optional(),
  /** The event that triggered it. */
  triggerEventId: z.string().max(512).optional(),
  /** The restart command id, once there is one. */
  commandId: z.string().max(128).optional(),
  /** The handler (or `gateway`) that wrote the record. */
  actor: z.string().min(1).max(128),
  at: z.iso.datetime(),
  dryRun: z.boolean().default(false),
});
export type RemediationRecord = z.infer<typeof RemediationRecord>;
