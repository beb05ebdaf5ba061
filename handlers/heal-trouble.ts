import {
  type ContainerEvent,
  containerKey,
  type LedgerEntry,
  type LedgerRestart,
} from "../contracts/index.js";
import {
  evaluateHeal,
  type HealVerdict,
  observeTrouble,
  type Trigger,
} from "../policy/heal-policy.js";
import { effectivePolicy } from "../policy/policy-labels.js";
import { selectionHold } from "../policy/selection.js";
import type { Decision } from "./decisions.js";
import type { HandlerContext } from "./handler.js";
import { decideAction, type HealOptions, type Trouble } from "./heal-act.js";
import { healRecords, resumePending, troubleSinceMs } from "./heal-command.js";
import { type Hold, holdDecisions } from "./heal-holds.js";
import { readImageBreaker } from "./heal-image-breaker.js";

/** Outcomes after which an incident is over: the container is in a new run, or stopped. */
const DONE = new Set<LedgerRestart["outcome"]>(["restarted", "stopped", "recreated"]);
/**
 * A pending attempt older than this lost its answer for good (its message ran out of
 * deliveries): a resync may decide the next one. Longer than any command's lifetime.
 */
const LOST_ATTEMPT_MS = 15 * 60_000;

/**
 * The heal decisions for an unhealthy or crashed container: within one incident (a run, named
 * by its StartedAt) attempt after attempt, each decided once by a ledger compare-and-set, until
 * one succeeds; holds are remembered in the ledger and recorded once.
 */
export async function decideTrouble(
  event: ContainerEvent,
  trigger: Trigger,
  ctx: HandlerContext,
  options: HealOptions,
): Promise<Decision[]> {
  const resync = event.source === "resync";
  if (!event.container.optedIn) {
    // The agent re-asserts only opted-in containers; a stray one says nothing worth keeping.
    if (resync) return [];
    const record = healRecords(event, ctx.now);
    return [record("skipped", "not-opted-in", "container has not opted in to healing")];
  }
  const { policy, recreatePull, labelErrors } = effectivePolicy(ctx.policy, event.container.labels);
  const key = containerKey(event.host, event.container.id);
  const incident = event.container.startedAt ?? event.id;
  // Read with the ledger rather than after it, so that a restart waits for one round trip, not
  // two; when the verdict is not a restart it is simply not used.
  const breakerRead = readImageBreaker(event, policy, ctx);
  const current = await ctx.read("ledger", key);
  const stored = current?.value ?? emptyEntry(event);
  const troubleSince = troubleSinceMs(event, trigger);
  const observed = observeTrouble(stored, troubleSince, policy);
  const last = stored.restarts[0];
  if (stored.lastIncident === incident && last?.incident === incident) {
    if (last.outcome === "pending") {
      // Before the policy: a claimed attempt must get its answer however late the redelivery.
      // A resync leaves an attempt in flight to the message that claimed it.
      if (!resync && last.commandId === stored.lastCommandId) {
        const record = healRecords(event, ctx.now, attemptOf(stored, incident));
        return resumePending(event, last, ctx, options.retryDelayMs, record, recreatePull);
      }
      if (ctx.now.getTime() - Date.parse(last.at) < LOST_ATTEMPT_MS) {
        return [log("debug", "an attempt is in flight", event)];
      }
    } else if (DONE.has(last.outcome)) {
      return [log("debug", "incident already handled", event)];
    }
  } else if (stored.lastIncident !== incident && isPastIncident(incident, stored)) {
    // A copy of an older incident that arrives after a newer one was claimed: deciding it again
    // would count a restart that never happens (the agent dedupes the command id).
    return [log("debug", "an earlier incident, already handled", event)];
  }
  const attempt = attemptOf(stored, incident) + 1;
  const t: Trouble = {
    event,
    trigger,
    ctx,
    options,
    policy,
    incident,
    now: ctx.now,
    troubleSince,
    observed,
    stored,
    record: healRecords(event, ctx.now, attempt),
    claim: (value) => ({
      kind: "claim",
      store: "ledger",
      key,
      expectedRevision: current?.revision ?? 0,
      value,
    }),
    keepObserved: [],
    resync,
    attempt,
    action: policy.action,
    pull: recreatePull,
    warnings: labelErrors.map((error) => ({
      kind: "log",
      level: "warn",
      msg: `ignoring a policy label on ${event.container.name}: ${error}`,
      fields: { containerId: event.container.id },
    })),
  };
  if (observed !== stored) t.keepObserved = [t.claim(observed)];
  const selected = selectionHold(policy, {
    host: event.host,
    name: event.container.name,
    image: event.container.image,
  });
  if (selected) {
    const hold: Hold = { reason: "held", code: selected.code, message: selected.message };
    return [...t.warnings, ...holdDecisions(t, hold, "skipped")];
  }
  const verdict = evaluateHeal({
    trigger,
    host: event.host,
    now: ctx.now.getTime(),
    eventTime: troubleSince,
    observedAt: Date.parse(event.time),
    startedAt: event.container.startedAt ? Date.parse(event.container.startedAt) : undefined,
    entry: observed,
    policy,
    // Age matters only the first time: a redelivery is late because a guard said "not yet".
    maxEventAgeMs: ctx.deliveryCount > 1 ? Number.POSITIVE_INFINITY : options.maxEventAgeMs,
  });
  if (verdict.kind === "restart") {
    return [...t.warnings, ...(await decideAction(t, verdict, await breakerRead))];
  }
  return [...t.warnings, ...notActing(t, verdict)];
}

/** Every verdict but a restart: what is held and recorded, and when to look again. */
function notActing(t: Trouble, verdict: Exclude<HealVerdict, { kind: "restart" }>): Decision[] {
  const { record, now } = t;
  switch (verdict.kind) {
    case "skip":
      if (verdict.code === "quarantined") {
        const hold: Hold = { reason: "held", code: verdict.code, message: verdict.message };
        return holdDecisions(t, hold, "skipped");
      }
      // A stale re-assertion is superseded by the next one; a stale Docker event is history.
      if (t.resync) return [...t.keepObserved, log("debug", verdict.message, t.event)];
      return [...t.keepObserved, record("skipped", verdict.code, verdict.message)];
    case "defer": {
      const hold = deferredHold(t, { ...verdict, message: `${verdict.message}; will look again` });
      const decisions = holdDecisions(t, hold, "skipped");
      // The next resync looks again at a re-assertion; a trigger comes back when the hold ends.
      if (t.resync) return decisions;
      const delayMs = Math.max(50, verdict.untilMs - now.getTime());
      return [...decisions, { kind: "retry", reason: verdict.code, delayMs }];
    }
    case "quarantine":
      // No lastIncident: later triggers of this run must still reach the health bookkeeping
      // (for the release), and a released container must be healable in the same run. The
      // quarantine guard is what stops restarts meanwhile.
      return holdDecisions(
        t,
        { reason: "held", code: "quarantined", message: verdict.message },
        "quarantined",
        {
          recordCode: "budget-spent",
          write: {
            quarantine: { since: now.toISOString(), reason: verdict.message.slice(0, 512) },
          },
        },
      );
    case "dry-run":
      return holdDecisions(
        t,
        { reason: "held", code: "dry-run", message: verdict.message },
        "decided",
        { extras: { dryRun: true }, write: { lastIncident: t.incident } },
      );
  }
}

/**
 * A deferral as a hold. After a failed attempt the container is stuck with that failure while
 * the backoff runs, not merely held back: the failure is what an operator needs to see.
 */
function deferredHold(t: Trouble, verdict: Extract<HealVerdict, { kind: "defer" }>): Hold {
  const held = t.stored.notHealing;
  if (verdict.code === "backoff" && held?.reason === "stuck" && held.incident === t.incident) {
    return { reason: "stuck", code: held.code, message: held.message, untilMs: verdict.endsMs };
  }
  // What people are told is the hold's own end (a maintenance window's), not the capped time
  // the handler looks again, which a repeated hold would leave standing in the past.
  return { reason: "held", code: verdict.code, message: verdict.message, untilMs: verdict.endsMs };
}

/** Attempts already decided for this incident. */
function attemptOf(entry: LedgerEntry, incident: string): number {
  return entry.restarts.filter((r) => r.incident === incident).length;
}

/** The incident was decided before, or belongs to a run older than the last one decided. */
function isPastIncident(incident: string, entry: LedgerEntry): boolean {
  if (entry.restarts.some((r) => r.incident === incident)) return true;
  if (!entry.lastIncident) return false;
  const run = Date.parse(incident);
  const last = Date.parse(entry.lastIncident);
  return !Number.isNaN(run) && !Number.isNaN(last) && run < last;
}

export function emptyEntry(event: ContainerEvent): LedgerEntry {
  return {
    v: 1,
    host: event.host,
    containerId: event.container.id,
    restarts: [],
    consecutiveRestarts: 0,
  };
}

function log(level: "debug", msg: string, event: ContainerEvent): Decision {
  return { kind: "log", level, msg, fields: { id: event.id } };
}
