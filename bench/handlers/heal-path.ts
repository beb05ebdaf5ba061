// The heal path measured: a run's events published as the agents publish them, and each one done
// when its `restarted` record arrives, the last step of the path; the same way for the handler
// and for its operations floor.

import type { NatsConnection } from "@nats-io/nats-core";
import type { FleetJetStream } from "../../common/jetstream-resources.js";
import {
  containerKey,
  decode,
  LedgerEntry,
  parseRemediationSubject,
  SUBJECTS,
} from "../../contracts/index.js";
import { waitFor } from "../../test/support/wait.js";
import {
  type OutgoingEvent,
  startedAtFor,
  type UniformFleet,
  unhealthyEvents,
} from "../fleet/uniform-fleet.js";
import { withTimeout } from "../runner/async.js";
import { prng, round } from "../runner/numbers.js";
import { CONFIG } from "./config.js";
import { type Context, publishAll } from "./context.js";
import { DEPENDENTS, HEAL } from "./handler-settings.js";
import {
  consumerState,
  cpuSnapshot,
  perEvent,
  serverCounters,
  type Traffic,
  trafficPerEvent,
} from "./server-counters.js";

export interface PathRun {
  events: number;
  seconds: number;
  eventsPerSecond: number;
  publishSeconds: number;
  /** `handlers` is the consumer of the path: handler replicas, floor or reference consumer. */
  cpuMsPerEvent: { handlers: number; natsServer: number; bench: number };
  /** What the server carried and stored per event, from the first publish until settled. */
  traffic: Traffic;
}

/** What the heal path (the handler or its operations floor) did with one run's events. */
export interface HealPathRun extends PathRun {
  replicas: number;
  restarts: number;
  duplicateCommands: number;
  containersRestartedTwice: number;
  ledgerSample: { checked: number; restarted: number };
  dependentsBacklogAtEnd: number;
  dependentsDrainedS: number | undefined;
}

/**
 * Publishes a run's events and measures the heal path that `consumers` run, the same way for the
 * handler and for its operations floor. An event is done when its `restarted` record is stored;
 * the traffic is counted until both consumers have settled, so it holds the dependents' work.
 * `failed` rejects when a consumer reports that it cannot go on.
 */
export async function measureHealPath(
  ctx: Context,
  consumers: { pid: number }[],
  label: string,
  runNo: number,
  failed?: Promise<never>,
): Promise<Omit<HealPathRun, "replicas">> {
  const { fleet, agents } = ctx;
  const events = unhealthyEvents(fleet, Date.now(), 0, CONFIG.events);
  const restarted = watchRestarted(ctx.observerNc, events);
  try {
    await ctx.observerNc.flush();
    await agents.flush();
    const cpu0 = await cpuSnapshot(ctx, consumers);
    const traffic0 = await serverCounters(ctx);
    const t0 = Date.now();
    const publishMs = await publishAll(ctx.js, events);
    await withTimeout(
      failed ? Promise.race([restarted.all, failed]) : restarted.all,
      CONFIG.runTimeoutS * 1000,
      () => `${label}: ${restarted.state.done} of ${events.length} restarted`,
    );
    const seconds = (restarted.state.lastAt - t0) / 1000;
    const cpu1 = await cpuSnapshot(ctx, consumers);
    restarted.stop();
    const settled = await settleConsumers(ctx.fjs);
    const traffic1 = await serverCounters(ctx);
    return {
      events: events.length,
      seconds: round(seconds, 2),
      eventsPerSecond: Math.round(events.length / seconds),
      publishSeconds: round(publishMs / 1000, 2),
      cpuMsPerEvent: perEvent(cpu0, cpu1, events.length),
      traffic: trafficPerEvent(traffic0, traffic1, events.length),
      restarts: agents.starts.length,
      duplicateCommands: agents.duplicates,
      containersRestartedTwice: [...agents.byContainer.values()].filter((s) => s.size > 1).length,
      ledgerSample: await sampleLedger(ctx.fjs, fleet, events, runNo),
      ...settled,
    };
  } finally {
    restarted.stop();
  }
}

/**
 * Counts the `restarted` records of `events` as they arrive: the last thing the heal path does
 * for an event before acking it (the restart's outcome is in the ledger, and this record is
 * stored).
 */
function watchRestarted(nc: NatsConnection, events: OutgoingEvent[]) {
  const expected = new Set(events.map((e) => e.key));
  const state = { done: 0, lastAt: 0 };
  let resolveAll: () => void = () => {};
  const all = new Promise<void>((resolve) => {
    resolveAll = resolve;
  });
  const sub = nc.subscribe(SUBJECTS.remediationsWithPhase("restarted"), {
    callback: (error, msg) => {
      if (error) return;
      const record = parseRemediationSubject(msg.subject);
      if (!record || !expected.delete(containerKey(record.host, record.containerId))) return;
      state.done++;
      state.lastAt = Date.now();
      if (state.done === events.length) resolveAll();
    },
  });
  return {
    all,
    state,
    stop: () => {
      if (!sub.isClosed()) sub.unsubscribe();
    },
  };
}

/**
 * Waits until the heal consumer has nothing outstanding and the dependents consumer has caught
 * up; how far behind the dependents were when the last event was done, and how long they took.
 */
async function settleConsumers(fjs: FleetJetStream) {
  await waitFor(
    async () => {
      const s = await consumerState(fjs, HEAL.durable);
      return s.pending === 0 && s.ackPending === 0;
    },
    { timeoutMs: 30_000, message: "the heal consumer did not settle" },
  );
  const atEnd = await consumerState(fjs, DEPENDENTS.durable);
  const drainStart = Date.now();
  const drained = await waitFor(
    async () => {
      const s = await consumerState(fjs, DEPENDENTS.durable);
      return s.pending === 0 && s.ackPending === 0;
    },
    { timeoutMs: 60_000, intervalMs: 200, message: "dependents did not drain" },
  ).then(
    () => (Date.now() - drainStart) / 1000,
    () => undefined,
  );
  return {
    dependentsBacklogAtEnd: atEnd.pending + atEnd.ackPending,
    dependentsDrainedS: drained === undefined ? undefined : round(drained, 1),
  };
}

/** A sample of ledger entries: each must hold the run's incident with outcome `restarted`. */
async function sampleLedger(
  fjs: FleetJetStream,
  fleet: UniformFleet,
  events: OutgoingEvent[],
  runNo: number,
) {
  const rand = prng(CONFIG.seed + runNo);
  let restarted = 0;
  const checked = Math.min(200, events.length);
  for (let n = 0; n < checked; n++) {
    const e = events[Math.floor(rand() * events.length)] as OutgoingEvent;
    const entry = await fjs.ledger.get(e.key);
    const decoded = entry?.operation === "PUT" ? decode(LedgerEntry, entry.value) : undefined;
    const last = decoded?.ok ? decoded.value.restarts[0] : undefined;
    if (last?.incident === startedAtFor(fleet, e.index) && last.outcome === "restarted") {
      restarted++;
    }
  }
  return { checked, restarted };
}
