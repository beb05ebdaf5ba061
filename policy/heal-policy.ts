import type { HealPolicy, LedgerEntry } from "../contracts/index.js";

/** What can start a restart. */
export type Trigger = "unhealthy" | "exit";

/** Everything the heal policy looks at; all times in milliseconds since the epoch. */
export interface HealInput {
  trigger: Trigger;
  host: string;
  now: number;
  /** When the trouble began (Docker's time for the event; for a resync, the transition's). */
  eventTime: number;
  /**
   * When the trigger was last seen to hold, for the staleness check: a resync re-asserts an old
   * trouble now. The event time when absent.
   */
  observedAt?: number;
  /** The StartedAt of the run the trigger belongs to, if known. */
  startedAt: number | undefined;
  /** The container's ledger entry, after this event has been observed (see observe()). */
  entry: LedgerEntry | undefined;
  policy: HealPolicy;
  /** Triggers older than this are history, not a reason to act. */
  maxEventAgeMs: number;
}

/** The policy's answer. */
export type HealVerdict =
  | { kind: "restart"; message: string }
  | { kind: "dry-run"; message: string }
  /**
   * Not now; look again at `untilMs` (the message is redelivered then). `endsMs` is when the
   * hold itself ends, when it has a known end (a pause has none): later than `untilMs` when the
   * look-again is capped, and what a person is told.
   */
  | { kind: "defer"; code: string; message: string; untilMs: number; endsMs?: number }
  | { kind: "quarantine"; message: string }
  | { kind: "skip"; code: string; message: string };

/** How long to wait before looking again while the fleet is paused. */
export const PAUSE_RECHECK_MS = 30_000;
/** Longest single deferral, so that a changed policy is seen in reasonable time. */
export const MAX_DEFER_MS = 300_000;

/**
 * The heal policy for one trigger, as a pure function. Guards apply in this order: stale,
 * quarantined, paused, maintenance, start period, unhealthy-for, budget (quarantine), backoff,
 * dry-run. docs/POLICY.md describes each.
 */
export function evaluateHeal(input: HealInput): HealVerdict {
  const { now, policy, entry } = input;
  const age = now - input.eventTime;
  const observedAge = now - (input.observedAt ?? input.eventTime);
  if (observedAge > input.maxEventAgeMs) {
    return skip("stale-event", `the trigger is ${seconds(observedAge)} old; not acting on history`);
  }
  if (entry?.quarantine) {
    return skip(
      "quarantined",
      `quarantined since ${entry.quarantine.since}: ${entry.quarantine.reason}`,
    );
  }
  if (policy.paused) {
    return defer("paused", "healing is paused fleet-wide", now + PAUSE_RECHECK_MS, now, false);
  }
  const window = activeMaintenance(policy, input.host, now);
  if (window) {
    return defer(
      "maintenance",
      `maintenance window until ${new Date(window.end).toISOString()}${window.reason ? `: ${window.reason}` : ""}`,
      window.end,
      now,
    );
  }
  if (input.startedAt !== undefined) {
    const graceEnds = input.startedAt + policy.startPeriodSeconds * 1000;
    if (now < graceEnds) {
      return defer(
        "start-period",
        `started ${seconds(now - input.startedAt)} ago; start period is ${policy.startPeriodSeconds}s`,
        graceEnds,
        now,
      );
    }
  }
  if (input.trigger === "unhealthy") {
    if (entry?.healthySince && Date.parse(entry.healthySince) > input.eventTime) {
      return skip("recovered", `healthy again since ${entry.healthySince}`);
    }
    const longEnough = input.eventTime + policy.unhealthyForSeconds * 1000;
    if (now < longEnough) {
      return defer(
        "unhealthy-for",
        `unhealthy for ${seconds(age)}; acting after ${policy.unhealthyForSeconds}s`,
        longEnough,
        now,
      );
    }
  }
  const recent = restartsWithin(entry, now - policy.budget.windowSeconds * 1000);
  if (recent >= policy.budget.restarts) {
    return {
      kind: "quarantine",
      message: `${recent} restarts in ${policy.budget.windowSeconds}s spend the budget of ${policy.budget.restarts}; quarantined until healthy for ${policy.budget.releaseAfterHealthySeconds}s or released by hand`,
    };
  }
  const nextAllowed = backoffUntil(entry, policy);
  if (nextAllowed !== undefined && now < nextAllowed) {
    return defer(
      "backoff",
      `restart ${(entry?.consecutiveRestarts ?? 0) + 1} waits ${seconds(nextAllowed - now)} (backoff)`,
      nextAllowed,
      now,
    );
  }
  const reason =
    input.trigger === "unhealthy" ? "container is unhealthy" : "container exited with an error";
  if (policy.dryRun) return { kind: "dry-run", message: `${reason}; would restart (dry-run)` };
  return { kind: "restart", message: `${reason}; restarting it` };
}

/**
 * The backoff before the next restart: none for the first, then `initial` doubling up to `max`
 * (Kubernetes' CrashLoopBackOff). Undefined when there is nothing to wait for.
 */
export function backoffUntil(
  entry: LedgerEntry | undefined,
  policy: HealPolicy,
): number | undefined {
  const consecutive = entry?.consecutiveRestarts ?? 0;
  if (consecutive === 0 || !entry?.lastRestartAt) return undefined;
  const delaySeconds = Math.min(
    policy.backoff.initialSeconds * 2 ** (consecutive - 1),
    policy.backoff.maxSeconds,
  );
  return Date.parse(entry.lastRestartAt) + delaySeconds * 1000;
}

/** Attempts that acted (or may have) since `since`: refused and skipped commands did nothing. */
export function restartsWithin(entry: LedgerEntry | undefined, since: number): number {
  if (!entry) return 0;
  // A release from quarantine starts a fresh budget.
  const from = Math.max(since, entry.releasedAt ? Date.parse(entry.releasedAt) : 0);
  return entry.restarts.filter(
    (r) =>
      Date.parse(r.at) >= from &&
      (r.outcome === "pending" ||
        r.outcome === "restarted" ||
        r.outcome === "stopped" ||
        r.outcome === "recreated" ||
        r.outcome === "failed"),
  ).length;
}

/**
 * Records what a trigger tells about the container's health history, before deciding: an
 * unhealthy or exit trigger ends a healthy stretch, and a stretch that lasted `resetAfter`
 * starts the backoff over. Returns the entry unchanged (same object) when nothing changes.
 */
export function observeTrouble(
  entry: LedgerEntry,
  eventTime: number,
  policy: HealPolicy,
): LedgerEntry {
  const lastTrouble = entry.lastTroubleAt ? Date.parse(entry.lastTroubleAt) : undefined;
  // A redelivery, or an event older than what is known: it teaches nothing new.
  if (lastTrouble !== undefined && eventTime <= lastTrouble) return entry;
  const { healthySince, ...rest } = entry;
  const healthyFor = healthySince ? eventTime - Date.parse(healthySince) : -1;
  if (healthyFor < 0 && healthySince) return entry;
  const resetAfter = policy.backoff.resetAfterSeconds * 1000;
  // Like Kubernetes, running without trouble for resetAfter since the last restart also counts,
  // for containers that have no health check to report a healthy stretch.
  const lastRestart = entry.lastRestartAt ? Date.parse(entry.lastRestartAt) : undefined;
  const quietSinceRestart =
    lastRestart !== undefined &&
    (lastTrouble === undefined || lastTrouble <= lastRestart) &&
    eventTime - lastRestart >= resetAfter;
  const reset = healthyFor >= resetAfter || quietSinceRestart;
  return {
    ...rest,
    lastTroubleAt: new Date(eventTime).toISOString(),
    consecutiveRestarts: reset ? 0 : entry.consecutiveRestarts,
  };
}

/**
 * A healthy event starts a healthy stretch, unless one is running already or the event is older
 * than the last trouble (a late redelivery must not paper over it).
 */
export function observeHealthy(entry: LedgerEntry, eventTime: number): LedgerEntry {
  if (entry.healthySince) return entry;
  if (entry.lastTroubleAt && eventTime <= Date.parse(entry.lastTroubleAt)) return entry;
  return { ...entry, healthySince: new Date(eventTime).toISOString() };
}

/** For a quarantined container that is healthy: release it, or look again later. */
export function evaluateRelease(
  entry: LedgerEntry,
  policy: HealPolicy,
  now: number,
): { kind: "release"; message: string } | { kind: "wait"; untilMs: number } | undefined {
  if (!entry.quarantine || !entry.healthySince) return undefined;
  const releaseAt =
    Date.parse(entry.healthySince) + policy.budget.releaseAfterHealthySeconds * 1000;
  if (now >= releaseAt) {
    return {
      kind: "release",
      message: `healthy since ${entry.healthySince} (${policy.budget.releaseAfterHealthySeconds}s); released from quarantine`,
    };
  }
  return { kind: "wait", untilMs: Math.min(releaseAt, now + MAX_DEFER_MS) };
}

function activeMaintenance(
  policy: HealPolicy,
  host: string,
  now: number,
): { end: number; reason?: string } | undefined {
  for (const w of policy.maintenance) {
    const start = Date.parse(w.start);
    const end = Date.parse(w.end);
    if (now >= start && now < end && (!w.hosts || w.hosts.includes(host))) {
      return { end, ...(w.reason ? { reason: w.reason } : {}) };
    }
  }
  return undefined;
}

function skip(code: string, message: string): HealVerdict {
  return { kind: "skip", code, message };
}

/** A deferral to `until`; `ends`: `until` is when the hold ends, not only a time to look again. */
function defer(
  code: string,
  message: string,
  until: number,
  now: number,
  ends = true,
): HealVerdict {
  const untilMs = Math.min(until, now + MAX_DEFER_MS);
  return { kind: "defer", code, message, untilMs, ...(ends ? { endsMs: until } : {}) };
}

function seconds(ms: number): string {
  return `${Math.round(ms / 1000)}s`;
}
