import { z } from "zod";
import { sameInstant } from "../../common/nanosecond-time.js";
import { type ContainerSnapshot, LedgerEntry } from "../../contracts/index.js";

/*
 * "Not being healed": an opted-in, running, unhealthy container that the heal handler has
 * decided not to heal now, or one it is stuck with after an attempt that failed and left it
 * stopped (a restart whose start failed), and why (the ledger's `notHealing`, written only by the handler). The
 * gateway shows it in /health, the container summaries, /metrics and the dashboard; this file is
 * the one place that decides whether a ledger entry's reason still applies to a container.
 */

/** Why a container is not being healed: the ledger's `notHealing` without its incident. */
export const NotHealing = LedgerEntry.shape.notHealing.unwrap().omit({ incident: true });
export type NotHealing = z.infer<typeof NotHealing>;

/** The reasons, in the order counts and metrics list them. */
export const NOT_HEALING_REASONS = NotHealing.shape.reason.options;
export type NotHealingReason = NotHealing["reason"];

/** At most this many containers are listed in `/health`; the counts cover every one. */
export const MAX_NOT_HEALING_LISTED = 100;

/** One container in the `notHealing` part of `/health`. */
export const NotHealingContainer = z.object({
  host: z.string(),
  id: z.string(),
  name: z.string(),
  ...NotHealing.shape,
});
export type NotHealingContainer = z.infer<typeof NotHealingContainer>;

/** The `notHealing` part of `/health`. */
export const NotHealingReport = z.object({
  /** Every container not being healed, on hosts that are not down. */
  total: z.number().int(),
  byReason: z.object({ held: z.number().int(), stuck: z.number().int() }),
  /** The first {@link MAX_NOT_HEALING_LISTED}, by host, then name, then id. */
  containers: z.array(NotHealingContainer).max(MAX_NOT_HEALING_LISTED),
});
export type NotHealingReport = z.infer<typeof NotHealingReport>;

/**
 * Why `container` is not being healed, or undefined when it is not in that state: it must be
 * opted in and, by its host's latest snapshot, running and unhealthy, or down while the handler
 * is stuck with it (the failed attempt stopped it: its health means nothing then); and the
 * ledger's reason must be about its current run. A reason recorded for an earlier run (`incident`, the run's StartedAt)
 * no longer applies: the handler has not decided about this run yet. Docker writes StartedAt
 * with nanoseconds and the handler may have it from an event cut to milliseconds, so the two
 * are compared as instants.
 */
export function notHealingOf(
  container: ContainerSnapshot,
  entry: LedgerEntry | undefined,
): NotHealing | undefined {
  const reason = entry?.notHealing;
  if (!reason || !container.optedIn) return undefined;
  const unhealthy = container.state === "running" && container.health === "unhealthy";
  const downAndStuck = reason.reason === "stuck" && DOWN.has(container.state);
  if (!unhealthy && !downAndStuck) return undefined;
  if (
    reason.incident !== undefined &&
    (container.startedAt === undefined || !sameInstant(reason.incident, container.startedAt))
  ) {
    return undefined;
  }
  const { incident: _incident, ...shown } = reason;
  return shown;
}

/** States in which a container is down, not on its way up or out. */
const DOWN = new Set<ContainerSnapshot["state"]>(["exited", "created", "dead"]);

/** No container not being healed. */
export function emptyNotHealing(): NotHealingReport {
  return { total: 0, byReason: { held: 0, stuck: 0 }, containers: [] };
}

/** Adds one container to a report being built in the listing's order. */
export function addNotHealing(
  report: NotHealingReport,
  host: string,
  container: ContainerSnapshot,
  reason: NotHealing,
): void {
  report.total++;
  report.byReason[reason.reason]++;
  if (report.containers.length < MAX_NOT_HEALING_LISTED) {
    report.containers.push({ host, id: container.id, name: container.name, ...reason });
  }
}
