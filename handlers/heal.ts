import { releasedEntry } from "../common/quarantine-release.js";
import {
  ContainerEvent,
  containerKey,
  eventSubjectMismatch,
  type HealPolicy,
  type LedgerEntry,
  SUBJECTS,
} from "../contracts/index.js";
import {
  evaluateHeal,
  evaluateRelease,
  type HealVerdict,
  observeHealthy,
  observeTrouble,
  type Trigger,
} from "../policy/heal-policy.js";
import type { BreakerState } from "../policy/image-breaker.js";
import { imageName } from "../policy/image-breaker-tally.js";
import { effectivePolicy } from "../policy/policy-labels.js";
import type { Decision } from "./decisions.js";
import type { HandlerContext, HandlerDefinition } from "./handler.js";
import { countImageFailure, readImageBreaker } from "./heal-image-breaker.js";
import {
  commandIdFor,
  HEAL_HANDLER,
  healRecords,
  type RecordFn,
  restartCommand,
  resumeIfPending,
  sendRestart,
} from "./heal-restart.js";
import { heldBackRetryMs, stormLeases, stormRetryDelayMs } from "./storm-slots.js";

/** Settings of the heal handler that are not policy (the policy lives in KV). */
export interface HealOptions {
  /** Triggers older than this are history, not a reason to restart now. */
  maxEventAgeMs: number;
  /** Delay before a restart that could not reach the agent is tried again. */
  retryDelayMs: number;
}

const MAX_HISTORY = 50;

/**
 * Heals opted-in containers by policy: restarts on `unhealthy` (and on a crash, if the policy
 * says so), at most once per incident (one run of the container, named by its StartedAt),
 * however many replicas see the event; and tracks healthy stretches for backoff resets and
 * quarantine releases. Deferred decisions (backoff, pause, start period…) are the same message
 * redelivered later, so nothing is lost while waiting.
 */
export function healHandler(options: HealOptions): HandlerDefinition<ContainerEvent> {
  return {
    name: HEAL_HANDLER,
    subject: SUBJECTS.events,
    schema: ContainerEvent,
    subjectMismatch: eventSubjectMismatch,
    concurrency: 32,
    // Deferrals are redeliveries too; a generous limit keeps a long backoff from being dropped.
    maxDeliver: 10_000,
    handle: (event, ctx) => decideHeal(event, ctx, options),
  };
}

/** The heal decisions for one container event; exported for unit tests. */
export async function decideHeal(
  event: ContainerEvent,
  ctx: HandlerContext,
  options: HealOptions,
): Promise<Decision[]> {
  switch (event.action) {
    case "unhealthy":
      return decideTrouble(event, "unhealthy", ctx, options);
    case "die":
      return isCrash(event, ctx.policy) ? decideTrouble(event, "exit", ctx, options) : [];
    case "healthy":
      return event.container.optedIn ? decideHealthy(event, ctx) : [];
    default:
      return [];
  }
}

/** A die that nobody asked for, with a non-zero code, on a container whose policy cares. */
function isCrash(event: ContainerEvent, fleet: HealPolicy): boolean {
  if (!event.container.optedIn || event.stopped || !event.exitCode) return false;
  return effectivePolicy(fleet, event.container.labels).policy.restartOnExit;
}

/** What one trouble event is decided from, once the ledger entry is read. */
interface Trouble {
  event: ContainerEvent;
  trigger: Trigger;
  ctx: HandlerContext;
  options: HealOptions;
  policy: HealPolicy;
  record: RecordFn;
  /** The container's run this event is about. */
  incident: string;
  eventTime: number;
  /** The ledger entry with what this event taught about the health history. */
  observed: LedgerEntry;
  /** Writes the ledger entry, if it is still as read. */
  claim: (value: LedgerEntry) => Decision;
  /** The claim of `observed`, when this event changed the entry: kept whatever else is done. */
  keepObserved: Decision[];
  /** Warnings about the container's policy labels. */
  warnings: Decision[];
}

async function decideTrouble(
  event: ContainerEvent,
  trigger: Trigger,
  ctx: HandlerContext,
  options: HealOptions,
): Promise<Decision[]> {
  const record = healRecords(event, ctx.now);
  if (!event.container.optedIn) {
    return [record("skipped", "not-opted-in", "container has not opted in to healing")];
  }
  const { policy, labelErrors } = effectivePolicy(ctx.policy, event.container.labels);
  const key = containerKey(event.host, event.container.id);
  const incident = event.container.startedAt ?? event.id;
  // Read with the ledger rather than after it, so that a restart waits for one round trip, not
  // two; when the verdict is not a restart it is simply not used.
  const breakerRead = readImageBreaker(event, policy, ctx);
  const current = await ctx.read("ledger", key);
  const entry = current?.value ?? emptyEntry(event);
  const eventTime = Date.parse(event.time);
  const observed = observeTrouble(entry, eventTime, policy);
  // Before the policy: a claimed incident must get its answer however late the redelivery.
  if (entry.lastIncident === incident) {
    return resumeIfPending(event, entry, ctx, options.retryDelayMs, record);
  }
  // A copy of an older incident that arrives after a newer one was claimed: deciding it again
  // would count a restart that never happens (the agent dedupes the command id).
  if (isPastIncident(incident, entry)) {
    const fields = { id: event.id, incident, lastIncident: entry.lastIncident };
    return [{ kind: "log", level: "debug", msg: "an earlier incident, already handled", fields }];
  }
  const claim = (value: LedgerEntry): Decision => ({
    kind: "claim",
    store: "ledger",
    key,
    expectedRevision: current?.revision ?? 0,
    value,
  });
  const trouble: Trouble = {
    event,
    trigger,
    ctx,
    options,
    policy,
    record,
    incident,
    eventTime,
    observed,
    claim,
    keepObserved: observed !== entry ? [claim(observed)] : [],
    warnings: labelErrors.map((error) => ({
      kind: "log",
      level: "warn",
      msg: `ignoring a policy label on ${event.container.name}: ${error}`,
      fields: { containerId: event.container.id },
    })),
  };
  const verdict = evaluateHeal({
    trigger,
    host: event.host,
    now: ctx.now.getTime(),
    eventTime,
    startedAt: event.container.startedAt ? Date.parse(event.container.startedAt) : undefined,
    entry: observed,
    policy,
    // Age matters only the first time: a redelivery is late because a guard said "not yet".
    maxEventAgeMs: ctx.deliveryCount > 1 ? Number.POSITIVE_INFINITY : options.maxEventAgeMs,
  });
  if (verdict.kind === "restart") {
    return [...trouble.warnings, ...(await decideRestart(trouble, verdict, await breakerRead))];
  }
  return [...trouble.warnings, ...notRestarting(trouble, verdict)];
}

/** Every verdict but a restart: what is recorded, and when to look again. */
function notRestarting(t: Trouble, verdict: Exclude<HealVerdict, { kind: "restart" }>): Decision[] {
  const { record, observed } = t;
  const now = t.ctx.now;
  switch (verdict.kind) {
    case "skip":
      return [...t.keepObserved, record("skipped", verdict.code, verdict.message)];
    case "defer":
      return [
        ...t.keepObserved,
        record("skipped", verdict.code, `${verdict.message}; will look again`),
        {
          kind: "retry",
          reason: verdict.code,
          delayMs: Math.max(50, verdict.untilMs - now.getTime()),
        },
      ];
    case "quarantine":
      return [
        // No lastIncident: later triggers of this run must still reach the health bookkeeping
        // (for the release), and a released container must be healable in the same run. The
        // quarantine guard is what stops restarts meanwhile.
        t.claim({
          ...observed,
          quarantine: { since: now.toISOString(), reason: verdict.message.slice(0, 512) },
        }),
        record("quarantined", "budget-spent", verdict.message),
      ];
    case "dry-run":
      return [
        t.claim({ ...observed, lastIncident: t.incident }),
        record("decided", "dry-run", verdict.message, undefined, true),
      ];
  }
}

/**
 * A restart the policy allows: held back while the image breaker is open; otherwise, with
 * slots under the storm guard's caps, claimed in the ledger and sent.
 */
async function decideRestart(
  t: Trouble,
  verdict: Extract<HealVerdict, { kind: "restart" }>,
  breakerRead: Awaited<ReturnType<typeof readImageBreaker>>,
): Promise<Decision[]> {
  const { event, ctx, policy, record, observed, incident } = t;
  const now = ctx.now;
  const breaker = countImageFailure(breakerRead, event, incident, t.eventTime, now, policy);
  const { windowSeconds } = policy.storm.imageBreaker;
  const heldBack = ({ containers, hosts }: BreakerState): Decision[] => [
    ...t.keepObserved,
    record(
      "quarantined",
      "image-breaker",
      `${containers} containers of image ${imageName(event)} failed within ${windowSeconds}s on ${hosts} ${hosts === 1 ? "host" : "hosts"}: not restarting them until failures thin out`,
    ),
    {
      kind: "retry",
      reason: "image-breaker",
      delayMs: heldBackRetryMs(event.id, ctx.deliveryCount, windowSeconds * 1000),
    },
  ];
  if (breaker?.state.open) {
    // Whatever other replicas count meanwhile, an open breaker holds this restart back (at
    // worst until the redelivery looks again), so the count is a plain update; one that
    // counts nothing new need not be written.
    return [...(breaker.changed ? [breaker.tally] : []), ...heldBack(breaker.state)];
  }
  const command = restartCommand(event, incident, commandIdFor(event), t.trigger);
  const restart = {
    at: now.toISOString(),
    incident,
    commandId: command.commandId,
    outcome: "pending" as const,
  };
  const next: LedgerEntry = {
    ...observed,
    lastIncident: incident,
    lastCommandId: command.commandId,
    lastRestartAt: now.toISOString(),
    consecutiveRestarts: observed.consecutiveRestarts + 1,
    restarts: [restart, ...observed.restarts].slice(0, MAX_HISTORY),
  };
  return [
    {
      kind: "lease",
      holder: command.commandId,
      leases: stormLeases(event.host, policy),
      // Counted whether or not a slot is free, while the slots are taken. What was stored
      // decides: with the counts of every message before it, this one's included, the
      // breaker may have opened meanwhile, and then the restart is held back (its slots
      // are given back with the failed delivery).
      alongside: breaker ? [breaker.countThen(heldBack)] : [],
      onDenied: (denial) => [
        record("skipped", "storm-cap", `storm guard: ${denial.cap}; waiting for a slot`),
        {
          kind: "retry",
          reason: "storm-cap",
          delayMs: stormRetryDelayMs(event.id, ctx.deliveryCount, denial),
        },
      ],
    },
    // Only with the slots held: a ledger claim without them would let the redelivery
    // restart with no slot at all (resumeIfPending takes none).
    t.claim(next),
    record("decided", t.trigger, verdict.message, command.commandId),
    ...sendRestart(command, event.container.labels, ctx, t.options.retryDelayMs, record),
  ];
}

/**
 * A healthy event starts a healthy stretch (for the backoff reset), and releases a quarantined
 * container once the stretch is long enough: until then the event is redelivered at the time
 * the release is due, and a trouble event in between ends the stretch.
 */
async function decideHealthy(event: ContainerEvent, ctx: HandlerContext): Promise<Decision[]> {
  const key = containerKey(event.host, event.container.id);
  const current = await ctx.read("ledger", key);
  // No history: nothing to reset or release.
  if (!current) return [];
  const { policy } = effectivePolicy(ctx.policy, event.container.labels);
  const observed = observeHealthy(current.value, Date.parse(event.time));
  const claim = (value: LedgerEntry): Decision => ({
    kind: "claim",
    store: "ledger",
    key,
    expectedRevision: current.revision,
    value,
  });
  const release = evaluateRelease(observed, policy, ctx.now.getTime());
  if (release?.kind === "release") {
    const record = healRecords(event, ctx.now);
    return [
      claim(releasedEntry(observed, ctx.now)),
      record("released", "healthy", release.message),
    ];
  }
  const decisions: Decision[] = observed !== current.value ? [claim(observed)] : [];
  if (release?.kind === "wait") {
    decisions.push({
      kind: "retry",
      reason: "quarantine-release",
      delayMs: Math.max(50, release.untilMs - ctx.now.getTime()),
    });
  }
  return decisions;
}

/** The incident was decided before, or belongs to a run older than the last one decided. */
function isPastIncident(incident: string, entry: LedgerEntry): boolean {
  if (entry.restarts.some((r) => r.incident === incident)) return true;
  if (!entry.lastIncident) return false;
  const run = Date.parse(incident);
  const last = Date.parse(entry.lastIncident);
  return !Number.isNaN(run) && !Number.isNaN(last) && run < last;
}

function emptyEntry(event: ContainerEvent): LedgerEntry {
  return {
    v: 1,
    host: event.host,
    containerId: event.container.id,
    restarts: [],
    consecutiveRestarts: 0,
  };
}
