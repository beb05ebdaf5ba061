import { z } from "zod";
import { HealthOutput } from "./container-event.js";
import { HealAction } from "./heal-policy.js";
import { ContainerId, HostId } from "./tokens.js";

export const REMEDIATION_TYPE = "fleetheal.act.v1.remediation";

/** The phases of a remediation, as they appear in the last token of an `act` subject. */
export const RemediationPhase = z.enum([
  /** A handler decided to act (see `action`); the ledger claim succeeded. */
  "decided",
  /** The command was sent to the agent: a restart, or the stop or recreate `action` names. */
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
  /** The agent stopped the container (`action` stop). */
  "stopped",
  /** The agent replaced the container with a new one of the same configuration and name. */
  "recreated",
  /** `action` notify: fleetheal alerts and leaves the container as it is. */
  "alerted",
  /**
   * The container has been unhealthy longer than the policy's `notifyUnhealedAfterSeconds`, and
   * nothing is healing it (a hold, or failed attempts). Once per incident.
   */
  "unhealed",
  /** Healing was switched off for the container (by host and name) at run time. */
  "disabled",
  /** Healing was switched back on for the container. */
  "enabled",
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
  /** What the remediation does to the container; absent means restart. */
  action: HealAction.optional(),
  /** Which try within the incident this is: 1 for the first, 2 after one failed, and so on. */
  attempt: z.number().int().min(1).max(1_000).optional(),
  /** For a hold (`skipped`, `quarantined`): when it is due to end, if that is known. */
  until: z.iso.datetime().optional(),
  /** The tail of the health check's output that made the container unhealthy. */
  healthOutput: HealthOutput.optional(),
});
export type RemediationRecord = z.infer<typeof RemediationRecord>;
