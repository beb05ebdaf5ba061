import { createHash } from "node:crypto";
import type { RestartDraft } from "../common/agent-commands.js";
import {
  ContainerEvent,
  containerKey,
  eventSubjectMismatch,
  type HealPolicy,
  type ImageFailures,
  type Labels,
  type LedgerEntry,
  type LedgerRestart,
  REMEDIATION_TYPE,
  RESTART_COMMAND_TYPE,
  type RemediationPhase,
  type RemediationRecord,
  SUBJECTS,
  stopTimeoutFromLabels,
} from "../contracts/index.js";
import {
  evaluateHeal,
  evaluateRelease,
  MAX_DEFER_MS,
  observeHealthy,
  observeTrouble,
  type Trigger,
} from "../policy/heal-policy.js";
import {
  type BreakerState,
  type ImageRef,
  imageKey,
  recordImageFailure,
} from "../policy/image-breaker.js";
import { effectivePolicy } from "../policy/policy-labels.js";
import type {
  CommandResult,
  Decision,
  HandlerContext,
  HandlerDefinition,
  Versioned,
} from "./handler.js";
import type { LeaseDenial, LeaseRequest } from "./leases.js";

/** Settings of the heal handler that are not policy (the policy lives in KV). */
export interface HealOptions {
  /** Triggers older than this are history, not a reason to restart now. */
  maxEventAgeMs: number;
  /** Delay before a restart that could not reach the agent is tried again. */
  retryDelayMs: number;
}

const HANDLER = "heal";
/** Docker's own default, used when the container has no stop-timeout label. */
const DEFAULT_STOP_TIMEOUT_SECONDS = 10;
const MAX_HISTORY = 50;
/** The least spread of the looks again at held-back restarts; doubles with each delivery. */
const HELD_BACK_RETRY_MS = 1_000;

/**
 * Heals opted-in containers by policy: restarts on `unhealthy` (and on a crash, if the policy
 * says so), at most once per incident (one run of the container, named by its StartedAt),
 * however many replicas see the event; and tracks healthy stretches for backoff resets and
 * quarantine releases. Deferred decisions (backoff, pause, start period…) are the same message
 * redelivered later, so nothing is lost while waiting.
 */
export function healHandler(options: HealOptions): HandlerDefinition<ContainerEvent> {
  return {
    name: HANDLER,
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

async function decideTrouble(
  event: ContainerEvent,
  trigger: Trigger,
  ctx: HandlerContext,
  options: HealOptions,
): Promise<Decision[]> {
  const now = ctx.now;
  const record = recordFactory(event, now);
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
  const revision = current?.revision ?? 0;
  const eventTime = Date.parse(event.time);
  const observed = observeTrouble(entry, eventTime, policy);
  // Before the policy: a claimed incident must get its answer however late the redelivery.
  if (entry.lastIncident === incident) return resumeIfPending(event, entry, ctx, options, record);
  // A copy of an older incident that arrives after a newer one was claimed: deciding it again
  // would count a restart that never happens (the agent dedupes the command id).
  if (isPastIncident(incident, entry)) {
    return [
      {
        kind: "log",
        level: "debug",
        msg: "an earlier incident, already handled",
        fields: { id: event.id, incident, lastIncident: entry.lastIncident },
      },
    ];
  }
  const claim = (value: LedgerEntry): Decision => ({
    kind: "claim",
    store: "ledger",
    key,
    expectedRevision: revision,
    value,
  });
  // What this event taught about the health history is kept whatever else is (not) done.
  const keepObserved = observed !== entry ? [claim(observed)] : [];

  const verdict = evaluateHeal({
    trigger,
    host: event.host,
    now: now.getTime(),
    eventTime,
    startedAt: event.container.startedAt ? Date.parse(event.container.startedAt) : undefined,
    entry: observed,
    policy,
    // Age matters only the first time: a redelivery is late because a guard said "not yet".
    maxEventAgeMs: ctx.deliveryCount > 1 ? Number.POSITIVE_INFINITY : options.maxEventAgeMs,
  });
  const decisions: Decision[] = labelErrors.map((error) => ({
    kind: "log",
    level: "warn",
    msg: `ignoring a policy label on ${event.container.name}: ${error}`,
    fields: { containerId: event.container.id },
  }));
  switch (verdict.kind) {
    case "skip":
      return [...decisions, ...keepObserved, record("skipped", verdict.code, verdict.message)];
    case "defer":
      return [
        ...decisions,
        ...keepObserved,
        record("skipped", verdict.code, `${verdict.message}; will look again`),
        {
          kind: "retry",
          reason: verdict.code,
          delayMs: Math.max(50, verdict.untilMs - now.getTime()),
        },
      ];
    case "quarantine":
      return [
        ...decisions,
        // No lastIncident: later triggers of this run must still reach the health bookkeeping
        // (for the release), and a released container must be healable in the same run. The
        // quarantine guard is what stops restarts meanwhile.
        claim({
          ...observed,
          quarantine: { since: now.toISOString(), reason: verdict.message.slice(0, 512) },
        }),
        record("quarantined", "budget-spent", verdict.message),
      ];
    case "dry-run":
      return [
        ...decisions,
        claim({ ...observed, lastIncident: incident }),
        record("decided", "dry-run", verdict.message, undefined, true),
      ];
    case "restart": {
      const breaker = imageBreaker(await breakerRead, event, incident, eventTime, now, policy);
      const { windowSeconds } = policy.storm.imageBreaker;
      const heldBack = ({ containers, hosts }: BreakerState): Decision[] => [
        ...keepObserved,
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
        return [
          ...decisions,
          ...(breaker.changed ? [breaker.tally] : []),
          ...heldBack(breaker.state),
        ];
      }
      const command = restartCommand(event, incident, commandIdFor(event), trigger);
      const next: LedgerEntry = {
        ...observed,
        lastIncident: incident,
        lastCommandId: command.commandId,
        lastRestartAt: now.toISOString(),
        consecutiveRestarts: observed.consecutiveRestarts + 1,
        restarts: [
          {
            at: now.toISOString(),
            incident,
            commandId: command.commandId,
            outcome: "pending" as const,
          },
          ...observed.restarts,
        ].slice(0, MAX_HISTORY),
      };
      return [
        ...decisions,
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
        claim(next),
        record("decided", trigger, verdict.message, command.commandId),
        ...sendRestart(command, event.container.labels, ctx, options, record),
      ];
    }
  }
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
    const { quarantine: _released, ...rest } = observed;
    const record = recordFactory(event, ctx.now);
    return [
      claim({ ...rest, consecutiveRestarts: 0, releasedAt: ctx.now.toISOString() }),
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

type RecordFn = (
  phase: RemediationPhase,
  code: string,
  message: string,
  commandId?: string,
  dryRun?: boolean,
) => Decision;

/**
 * The ledger says this incident was already decided. If its restart never got an answer (the
 * replica died, or the agent was unreachable), send the same command again: the agent executes
 * a command id once, so this cannot restart twice.
 */
function resumeIfPending(
  event: ContainerEvent,
  entry: LedgerEntry,
  ctx: HandlerContext,
  options: HealOptions,
  record: RecordFn,
): Decision[] {
  const last = entry.restarts[0];
  if (
    last?.outcome !== "pending" ||
    last.commandId !== entry.lastCommandId ||
    last.incident !== entry.lastIncident
  ) {
    return [
      { kind: "log", level: "debug", msg: "incident already handled", fields: { id: event.id } },
    ];
  }
  const trigger: Trigger = event.action === "die" ? "exit" : "unhealthy";
  return sendRestart(
    restartCommand(event, last.incident, last.commandId, trigger),
    event.container.labels,
    ctx,
    options,
    record,
  );
}

/**
 * A restart takes up to the container's stop timeout plus the time to start it again; waiting
 * less would report a restart that is merely slow as failed.
 */
function restartDeadlineMs(labels: Labels): number {
  return ((stopTimeoutFromLabels(labels) ?? DEFAULT_STOP_TIMEOUT_SECONDS) + 30) * 1000;
}

function sendRestart(
  command: RestartDraft,
  labels: Labels,
  ctx: HandlerContext,
  options: HealOptions,
  record: RecordFn,
): Decision[] {
  return [
    record("restarting", "restart-sent", "restart command sent to the agent", command.commandId),
    {
      kind: "restart",
      command,
      minTimeoutMs: restartDeadlineMs(labels),
      onReply: (result) => afterRestart(result, command, ctx, options, record),
    },
  ];
}

function afterRestart(
  result: CommandResult,
  command: RestartDraft,
  ctx: HandlerContext,
  options: HealOptions,
  record: RecordFn,
): Decision[] {
  const { lastDelivery } = ctx;
  if (!result.ok) {
    const unreachable = result.code === "no-responders" || result.code === "timeout";
    if (unreachable && !lastDelivery) {
      return [
        {
          kind: "retry",
          reason: `agent unreachable: ${result.message}`,
          delayMs: options.retryDelayMs,
        },
      ];
    }
    return [
      setOutcome(command, "failed"),
      record("failed", result.code, result.message, command.commandId),
    ];
  }
  const { reply } = result;
  const phase: RemediationPhase =
    reply.outcome === "restarted" ? "restarted" : reply.outcome === "failed" ? "failed" : "skipped";
  return [
    setOutcome(command, reply.outcome),
    record(phase, reply.code, reply.message, command.commandId),
  ];
}

function setOutcome(command: RestartDraft, outcome: LedgerRestart["outcome"]): Decision {
  return {
    kind: "update",
    store: "ledger",
    key: containerKey(command.host, command.containerId),
    update: (current) => {
      // The entry can only be missing if an operator deleted it; start a new history then.
      const entry: LedgerEntry = (current as LedgerEntry | undefined) ?? {
        v: 1,
        host: command.host,
        containerId: command.containerId,
        restarts: [],
        consecutiveRestarts: 0,
      };
      return {
        ...entry,
        restarts: entry.restarts.map((r) =>
          r.commandId === command.commandId ? { ...r, outcome } : r,
        ),
      };
    },
  };
}

/** What the image breaker decides from: its entry, and whether the fleet has several hosts. */
interface BreakerRead {
  current: Versioned<ImageFailures> | undefined;
  severalHosts: boolean;
}

/** The image a failure counts against: its id, or its name from an agent that sends no id. */
function imageRef(event: ContainerEvent): ImageRef {
  return { id: event.container.imageId, name: event.container.image };
}

/** The image as records name it. */
function imageName(event: ContainerEvent): string {
  const { image, imageId } = event.container;
  return imageId ? `${image} (${imageId})` : image;
}

/**
 * Starts reading the image's breaker, unless the breaker is off. Whether the fleet has several
 * hosts comes from the runtime's count, which it refreshes now and then rather than per event
 * (see HandlerContext.severalHosts), so it costs no round trip here; a context without one is
 * taken for several hosts, where one host cannot open the breaker alone.
 */
function readImageBreaker(
  event: ContainerEvent,
  policy: HealPolicy,
  ctx: HandlerContext,
): Promise<BreakerRead> | undefined {
  if (policy.storm.imageBreaker.failures === 0) return undefined;
  const read = Promise.all([
    ctx.read("breakers", imageKey(imageRef(event))),
    ctx.severalHosts ? ctx.severalHosts().catch(() => true) : true,
  ]).then(([current, severalHosts]) => ({ current, severalHosts }));
  // Not awaited when the verdict is not a restart; its failure then matters to nobody.
  read.catch(() => {});
  return read;
}

/**
 * Counts this trouble against its image, unless the breaker is off. Both ways to store the
 * count are read-modify-writes that another message's count cannot undo: the tally, for a
 * decision that stands whatever the others counted (an open breaker), and `countThen`, whose
 * decisions follow from the count as stored (a restart, unless that count opened the breaker).
 * Neither re-decides the whole message when another one counted first: in a storm every
 * container of a failing image counts against one key.
 */
function imageBreaker(
  read: BreakerRead | undefined,
  event: ContainerEvent,
  incident: string,
  at: number,
  now: Date,
  policy: HealPolicy,
):
  | {
      state: BreakerState;
      changed: boolean;
      tally: Extract<Decision, { kind: "update" }>;
      countThen: (heldBack: (state: BreakerState) => Decision[]) => Decision;
    }
  | undefined {
  if (!read || policy.storm.imageBreaker.failures === 0) return undefined;
  const { current, severalHosts } = read;
  const image = imageRef(event);
  const failure = { at, host: event.host, containerId: event.container.id, incident };
  // Failures age out of the window as time passes (docs/POLICY.md), not only as newer ones
  // come: a trigger held back by the breaker comes back with its own old time, and counted
  // from that time the failures it was held back for would never leave the window.
  const since = now.getTime() - policy.storm.imageBreaker.windowSeconds * 1000;
  const count = (failures: ImageFailures | undefined) =>
    recordImageFailure(
      failures && {
        ...failures,
        failures: failures.failures.filter((f) => Date.parse(f.at) >= since),
      },
      image,
      failure,
      policy,
      { severalHosts },
    );
  const state = count(current?.value);
  const tally: Extract<Decision, { kind: "update" }> = {
    kind: "update",
    store: "breakers",
    key: imageKey(image),
    // Read with the ledger: absent means absent, and the first count creates the key.
    read: current ?? null,
    update: (latest) => count(latest as ImageFailures | undefined).entry,
  };
  return {
    state,
    changed: !current || !sameFailures(current.value, state.entry),
    tally,
    countThen: (heldBack) => ({
      ...tally,
      // The stored entry holds this failure already; counting it again changes nothing.
      onStored: (stored) => {
        const counted = count(stored as ImageFailures);
        return counted.open ? heldBack(counted) : [];
      },
    }),
  };
}

function sameFailures(a: ImageFailures, b: ImageFailures): boolean {
  return (
    a.failures.length === b.failures.length &&
    a.failures.every((f, i) => {
      const g = b.failures[i];
      return (
        g !== undefined &&
        f.at === g.at &&
        f.host === g.host &&
        f.containerId === g.containerId &&
        f.incident === g.incident
      );
    })
  );
}

/** The incident was decided before, or belongs to a run older than the last one decided. */
function isPastIncident(incident: string, entry: LedgerEntry): boolean {
  if (entry.restarts.some((r) => r.incident === incident)) return true;
  if (!entry.lastIncident) return false;
  const run = Date.parse(incident);
  const last = Date.parse(entry.lastIncident);
  return !Number.isNaN(run) && !Number.isNaN(last) && run < last;
}

/** The storm guard's caps for one restart on `host` (see HealPolicy.storm). */
export function stormLeases(host: string, policy: HealPolicy): LeaseRequest[] {
  const { storm } = policy;
  return [
    {
      bucket: "inflight",
      prefix: `host.${host}`,
      cap: storm.maxConcurrentPerHost,
      label: `at most ${storm.maxConcurrentPerHost} restarts at once on host ${host}`,
    },
    {
      bucket: "inflight",
      prefix: "fleet",
      cap: storm.maxConcurrentFleet,
      label: `at most ${storm.maxConcurrentFleet} restarts at once in the fleet`,
    },
    {
      bucket: "rate",
      prefix: `host.${host}`,
      cap: storm.maxPerMinutePerHost,
      label: `at most ${storm.maxPerMinutePerHost} restarts a minute on host ${host}`,
    },
    {
      bucket: "rate",
      prefix: "fleet",
      cap: storm.maxPerMinuteFleet,
      label: `at most ${storm.maxPerMinuteFleet} restarts a minute in the fleet`,
    },
  ];
}

/**
 * When to look again at a restart the storm guard held back: not before a slot of the full cap
 * can free (known for a rate cap), then a wait that doubles with each delivery. A storm of
 * thousands of held-back restarts thus comes back less and less often instead of every second,
 * while the first few retries of a small queue stay quick. Exported for unit tests.
 */
export function stormRetryDelayMs(
  eventId: string,
  deliveryCount: number,
  denial: LeaseDenial,
): number {
  return heldBackRetryMs(eventId, deliveryCount, denial.freeInMs ?? 0);
}

/**
 * `earliestMs`, then a spread that starts at a quarter of it (at least 1 s), doubles with each
 * delivery up to MAX_DEFER_MS and is scaled by 0.5–1.5 per event and delivery: restarts held
 * back together come back spread over a time that grows with how long they waited, not all at
 * once when the slot frees. With the heal handler's maxDeliver of 10,000, a restart held back
 * this way reaches its last delivery (and the dead-letter stream) only after weeks.
 */
function heldBackRetryMs(eventId: string, deliveryCount: number, earliestMs: number): number {
  const base = Math.max(HELD_BACK_RETRY_MS, earliestMs / 4);
  const doubling = 2 ** Math.min(Math.max(0, deliveryCount - 1), 20);
  const backoff = Math.min(base * doubling, MAX_DEFER_MS);
  const spread =
    0.5 +
    createHash("sha256").update(`${eventId}:${deliveryCount}`).digest().readUInt16BE(0) / 65_536;
  return Math.round(earliestMs + backoff * spread);
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

function restartCommand(
  event: ContainerEvent,
  incident: string,
  commandId: string,
  trigger: Trigger,
): RestartDraft {
  return {
    type: RESTART_COMMAND_TYPE,
    v: 1,
    commandId,
    host: event.host,
    containerId: event.container.id,
    reason: trigger === "unhealthy" ? "unhealthy" : `exited with code ${event.exitCode ?? "?"}`,
    requestedBy: `handler:${HANDLER}`,
    // A crashed container is not unhealthy; only an unhealthy trigger needs it to still be.
    ...(trigger === "unhealthy" ? { requireUnhealthy: true } : {}),
    // Only a real StartedAt lets the agent detect a stale command.
    ...(event.container.startedAt === incident ? { incident } : {}),
  };
}

/** Deterministic, so that a redelivered event produces the same command id. */
function commandIdFor(event: ContainerEvent): string {
  return `heal-${createHash("sha256").update(event.id).digest("hex").slice(0, 32)}`;
}

function recordFactory(event: ContainerEvent, now: Date): RecordFn {
  const remediationId = `${HANDLER}:${event.id}`;
  return (phase, code, message, commandId, dryRun = false) => {
    const record: RemediationRecord = {
      type: REMEDIATION_TYPE,
      v: 1,
      // Deterministic per phase and reason, so JetStream drops the copy a redelivery publishes.
      id: `${remediationId}:${phase}:${code}`,
      remediationId,
      host: event.host,
      containerId: event.container.id,
      containerName: event.container.name,
      phase,
      code,
      message,
      ...(event.container.startedAt ? { incident: event.container.startedAt } : {}),
      triggerEventId: event.id,
      ...(commandId ? { commandId } : {}),
      actor: `handler:${HANDLER}`,
      at: now.toISOString(),
      dryRun,
    };
    return { kind: "remediation", record };
  };
}
