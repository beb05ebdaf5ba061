// The storm: the default policy, and every container of the fleet unhealthy within one second.
// Measured: how long until every one has its first remediation record, and whether the storm
// guard's caps held, counted at the agents and by when each restart's rate slots were taken.

import os from "node:os";
import { KvWatchInclude } from "@nats-io/kv";
import {
  BREAKERS_BUCKET,
  containerKey,
  DLQ_STREAM,
  HealPolicy,
  INFLIGHT_BUCKET,
  LEDGER_BUCKET,
  POLICY_KEY,
  parseRemediationSubject,
  RATE_BUCKET,
  type RemediationRecord,
  SUBJECTS,
} from "../../contracts/index.js";
import { unhealthyEvents } from "../fleet/uniform-fleet.js";
import { withTimeout } from "../runner/async.js";
import { round } from "../runner/numbers.js";
import { benchLog } from "../runner/report.js";
import { CONFIG } from "./config.js";
import { type Context, publishAll, resetBuckets } from "./context.js";
import { handlerReport, startHandlers, stopHandlers } from "./handler-runs.js";
import { HEAL } from "./handler-settings.js";
import {
  type CpuSnapshot,
  consumerState,
  cpuSnapshot,
  perEvent,
  type ServerCounters,
  serverCounters,
  type Traffic,
  trafficPerEvent,
} from "./server-counters.js";
import { maxStartsWithin, slotWindows } from "./synthetic-agents.js";

const log = benchLog("handlers");

export interface StormResult {
  replicas: number;
  events: number;
  publishSeconds: number;
  decidedSeconds: number | undefined;
  decided: number;
  firstRecords: Record<string, number>;
  restarts: number;
  maxConcurrent: { host: number; fleet: number };
  maxStartedPer60s: { host: number; fleet: number };
  slotsTakenPer60s: ReturnType<typeof slotWindows>;
  cpuMsPerEvent: { handlers: number; natsServer: number; bench: number };
  /**
   * Until every container was decided, per event: CPU of each process, their sum, the seconds
   * that sum takes on this machine's cores (deciding cannot be faster), and the server's traffic.
   */
  untilDecided: {
    cpuMs: { handlers: number; natsServer: number; bench: number };
    cpuMsTotal: number;
    cpuBoundSeconds: number;
    traffic: Traffic;
  };
  caps: {
    concurrentHost: number;
    concurrentFleet: number;
    perMinuteHost: number;
    perMinuteFleet: number;
  };
  capsHeld: boolean;
  containersRestartedTwice: number;
  deliveries: { atS: number; perSecond: number; count: number }[];
  /** Per minute from the first event: deliveries of the heal consumer, restarts started. */
  perMinute: { minute: number; deliveries: number; restarts: number }[];
  deliveriesTotal: number;
  deadLetters: number;
  handlers: Awaited<ReturnType<typeof handlerReport>>;
  observedSeconds: number;
}

function untilDecided(
  cpu0: CpuSnapshot,
  cpu1: CpuSnapshot,
  traffic0: ServerCounters,
  traffic1: ServerCounters,
  n: number,
): StormResult["untilDecided"] {
  const cpuMs = perEvent(cpu0, cpu1, n);
  const cpuMsTotal = round(cpuMs.handlers + cpuMs.natsServer + cpuMs.bench, 3);
  return {
    cpuMs,
    cpuMsTotal,
    cpuBoundSeconds: round((cpuMsTotal * n) / 1000 / os.cpus().length, 1),
    traffic: trafficPerEvent(traffic0, traffic1, n),
  };
}

export async function stormRun(ctx: Context): Promise<StormResult> {
  await resetBuckets(ctx, [LEDGER_BUCKET, BREAKERS_BUCKET, INFLIGHT_BUCKET, RATE_BUCKET]);
  const { fleet, fjs, agents, observerNc } = ctx;
  await fjs.config.delete(POLICY_KEY);
  const policy = HealPolicy.parse({});
  agents.reset(CONFIG.stormHoldMs);
  // When each rate slot was taken, by the server's clock, and by which command: the rate caps
  // are kept by these, and the agents see each restart a little after its slot was taken.
  const slots: { key: string; holder: string; at: number }[] = [];
  const slotWatch = await fjs.rate.watch({ include: KvWatchInclude.UpdatesOnly });
  const watching = (async () => {
    for await (const e of slotWatch) {
      if (e.operation === "PUT") {
        slots.push({ key: e.key, holder: e.string(), at: e.created.getTime() });
      }
    }
  })();
  const handlers = await startHandlers(ctx.current, ctx.natsUrl, CONFIG.stormReplicas, "storm");
  try {
    const [cpu0, traffic0] = await Promise.all([cpuSnapshot(ctx, handlers), serverCounters(ctx)]);
    const t0 = Date.now();
    const events = unhealthyEvents(fleet, t0, 1_000);
    const byKey = new Map(events.map((e) => [e.key, e.eventId]));
    const first = new Map<string, { at: number; what: string }>();
    let resolveAll: () => void = () => {};
    const all = new Promise<void>((resolve) => {
      resolveAll = resolve;
    });
    const sub = observerNc.subscribe(SUBJECTS.remediations, {
      callback: (error, msg) => {
        if (error) return;
        const subject = parseRemediationSubject(msg.subject);
        const key = subject && containerKey(subject.host, subject.containerId);
        if (!key || first.has(key) || !byKey.has(key)) return;
        const record = JSON.parse(new TextDecoder().decode(msg.data)) as Pick<
          RemediationRecord,
          "triggerEventId" | "phase" | "code"
        >;
        if (record.triggerEventId !== byKey.get(key)) return;
        first.set(key, { at: Date.now(), what: `${record.phase}:${record.code}` });
        if (first.size === events.length) resolveAll();
      },
    });
    await observerNc.flush();
    const deliveries: { atS: number; perSecond: number; count: number }[] = [];
    const start = await consumerState(fjs, HEAL.durable);
    let last = { at: Date.now(), deliveries: start.deliveries };
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        await new Promise((r) => setTimeout(r, 5_000));
        const s = await consumerState(fjs, HEAL.durable);
        const now = Date.now();
        deliveries.push({
          atS: round((now - t0) / 1000, 1),
          perSecond: Math.round(((s.deliveries - last.deliveries) * 1000) / (now - last.at)),
          count: s.deliveries - last.deliveries,
        });
        last = { at: now, deliveries: s.deliveries };
      }
    })();
    const publishMs = await publishAll(ctx.js, events);
    log(`storm: ${events.length} events published in ${(publishMs / 1000).toFixed(1)} s`);
    const decided = await withTimeout(all, CONFIG.runTimeoutS * 1000, () => "").then(
      () => Math.max(...[...first.values()].map((f) => f.at)) - t0,
      (error: unknown) => {
        log(`storm: ${String(error)}; ${first.size} of ${events.length} decided`);
        return undefined;
      },
    );
    // What deciding cost, up to the moment the last container had its first record: CPU is
    // the bound on two cores, and the server's counters say how much NATS work it was.
    const [cpuDecided, trafficDecided] = await Promise.all([
      cpuSnapshot(ctx, handlers),
      serverCounters(ctx),
    ]);
    if (decided !== undefined) log(`storm: every event decided after ${decided / 1000} s`);
    const observeUntil = t0 + CONFIG.stormObserveS * 1000;
    while (Date.now() < observeUntil) {
      await new Promise((r) => setTimeout(r, Math.min(1_000, observeUntil - Date.now())));
    }
    sampling = false;
    await sampler;
    sub.unsubscribe();
    const cpu1 = await cpuSnapshot(ctx, handlers);
    slotWatch.stop();
    await watching;
    const end = await consumerState(fjs, HEAL.durable);
    const dlq = await fjs.jsm.streams.info(DLQ_STREAM);
    const firstRecords: Record<string, number> = {};
    for (const f of first.values()) firstRecords[f.what] = (firstRecords[f.what] ?? 0) + 1;
    const { storm } = policy;
    const maxConcurrent = { host: agents.maxHost, fleet: agents.maxFleet };
    const maxStartedPer60s = maxStartsWithin(agents.starts, 60_000);
    const slotsBy60s = slotWindows(slots, agents.starts);
    const caps = {
      concurrentHost: storm.maxConcurrentPerHost,
      concurrentFleet: storm.maxConcurrentFleet,
      perMinuteHost: storm.maxPerMinutePerHost,
      perMinuteFleet: storm.maxPerMinuteFleet,
    };
    return {
      replicas: CONFIG.stormReplicas,
      events: events.length,
      publishSeconds: round(publishMs / 1000, 2),
      decidedSeconds: decided === undefined ? undefined : round(decided / 1000, 2),
      decided: first.size,
      firstRecords,
      restarts: agents.starts.length,
      maxConcurrent,
      maxStartedPer60s,
      caps,
      slotsTakenPer60s: slotsBy60s,
      capsHeld:
        maxConcurrent.host <= caps.concurrentHost &&
        maxConcurrent.fleet <= caps.concurrentFleet &&
        slotsBy60s.host <= caps.perMinuteHost &&
        slotsBy60s.fleet <= caps.perMinuteFleet &&
        slotsBy60s.startsWithoutSlot === 0,
      cpuMsPerEvent: perEvent(cpu0, cpu1, events.length),
      untilDecided: untilDecided(cpu0, cpuDecided, traffic0, trafficDecided, events.length),
      containersRestartedTwice: [...agents.byContainer.values()].filter((s) => s.size > 1).length,
      deliveries,
      perMinute: Array.from({ length: Math.ceil(CONFIG.stormObserveS / 60) }, (_, minute) => ({
        minute: minute + 1,
        deliveries: deliveries
          .filter((d) => d.atS > minute * 60 && d.atS <= (minute + 1) * 60)
          .reduce((n, d) => n + d.count, 0),
        restarts: agents.starts.filter(
          (x) => x.at - t0 >= minute * 60_000 && x.at - t0 < (minute + 1) * 60_000,
        ).length,
      })),
      deliveriesTotal: end.deliveries - start.deliveries,
      deadLetters: dlq.state.messages,
      handlers: await handlerReport(observerNc, handlers),
      observedSeconds: round((Date.now() - t0) / 1000, 1),
    };
  } finally {
    slotWatch.stop();
    await stopHandlers(handlers);
  }
}
