import { z } from "zod";
import { CommandOutcome } from "./commands.js";
import { ImageId } from "./container-event.js";
import { HealAction } from "./heal-policy.js";
import { ContainerId, HostId } from "./tokens.js";

/** One restart fleetheal performed. */
export const LedgerRestart = z.object({
  at: z.iso.datetime(),
  incident: z.string().max(512),
  commandId: z.string().max(128),
  /** `pending` until the agent answers, then the agent's outcome. */
  outcome: z.enum(["pending", ...CommandOutcome.options]),
  /** What was done; absent means restart. */
  action: HealAction.optional(),
});
export type LedgerRestart = z.infer<typeof LedgerRestart>;

/**
 * A container's healing history, in the `fleetheal_ledger` KV bucket. Handler replicas decide
 * through a compare-and-set on this entry, which is what makes a decision happen once per
 * incident however many replicas see the event.
 */
export const LedgerEntry = z.object({
  v: z.literal(1),
  host: HostId,
  containerId: ContainerId,
  /** The incident last acted on (the container run's `StartedAt`, or the trigger event id). */
  lastIncident: z.string().max(512).optional(),
  /** The command sent for `lastIncident`; resent with the same id if its outcome is unknown. */
  lastCommandId: z.string().max(128).optional(),
  lastRestartAt: z.iso.datetime().optional(),
  /** Most recent first, bounded. */
  restarts: z.array(LedgerRestart).max(50),
  /** Restarts since the container was last healthy for the backoff's reset time. */
  consecutiveRestarts: z.number().int().nonnegative().default(0),
  /** The last unhealthy or crash event seen: a healthy event older than it starts no stretch. */
  lastTroubleAt: z.iso.datetime().optional(),
  /** Since when the container has been healthy without interruption, if it is. */
  healthySince: z.iso.datetime().optional(),
  /** The last release from quarantine; restarts before it no longer count against the budget. */
  releasedAt: z.iso.datetime().optional(),
  /**
   * Why an unhealthy container is not being healed now, while that is so: `held` by the policy
   * (its `code`, and `until` when the hold has an end), or `stuck` after an attempt that failed
   * (the failure's code and message). Cleared when an attempt is sent, when the container is
   * healthy again, and by a new incident. The heal handler writes a record only when this
   * changes, so a held container does not flood the history at every resync.
   */
  notHealing: z
    .object({
      reason: z.enum(["held", "stuck"]),
      code: z.string().max(64),
      message: z.string().max(2048),
      since: z.iso.datetime(),
      until: z.iso.datetime().optional(),
      incident: z.string().max(512).optional(),
    })
    .optional(),
  /** The incident whose `unhealed` alert went out (one per incident). */
  unhealedNotified: z.string().max(512).optional(),
  /** Set while the container is quarantined: no restarts until it is released. */
  quarantine: z
    .object({
      since: z.iso.datetime(),
      reason: z.string().max(512),
    })
    .optional(),
});
export type LedgerEntry = z.infer<typeof LedgerEntry>;

/** What auto-monitor records about an opted-in container when it starts. */
export const MonitoredContainer = z.object({
  v: z.literal(1),
  host: HostId,
  containerId: ContainerId,
  name: z.string().max(256),
  image: z.string().max(1024),
  firstSeenAt: z.iso.datetime(),
  lastStartedAt: z.iso.datetime(),
  starts: z.number().int().positive(),
});
export type MonitoredContainer = z.infer<typeof MonitoredContainer>;

/**
 * Recent failures of one image across the fleet, in the `fleetheal_breakers` KV bucket (key: a
 * hash of the image id, or of the image name for events that carry no id). The heal handler
 * trips the image breaker from it.
 */
export const ImageFailures = z.object({
  v: z.literal(1),
  /** The image's name, as the latest failure named it. */
  image: z.string().max(1024),
  /** The image's id, when the entry is keyed by it. */
  imageId: ImageId.optional(),
  /**
   * Newest first, pruned to the breaker's window: one per failing container (its latest
   * incident), at most as many per host as the breaker's threshold.
   */
  failures: z
    .array(
      z.object({
        at: z.iso.datetime(),
        host: HostId,
        containerId: ContainerId,
        incident: z.string().max(512),
      }),
    )
    .max(10_000),
});
export type ImageFailures = z.infer<typeof ImageFailures>;
