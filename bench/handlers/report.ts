// What the handler benchmark prints and the figures its targets are about.

import os from "node:os";
import { round } from "../runner/numbers.js";
import { CONFIG, TARGETS } from "./config.js";
import type { HealPathRun, PathRun } from "./heal-path.js";
import type { StormResult } from "./storm.js";
import type { RatedRun, Throughput } from "./throughput.js";

/** The figures the targets are about; the replica count with the better ratio stands. */
export function summarise({ runs, floors, baseline }: Throughput, storm: StormResult | undefined) {
  const best = runs.reduce<(typeof runs)[number] | undefined>(
    (a, b) => (a === undefined || b.ratio > a.ratio ? b : a),
    undefined,
  );
  return {
    throughputRatio: best?.ratio,
    throughputReplicas: best?.replicas,
    throughputRatioByReplicas: Object.fromEntries(runs.map((r) => [r.replicas, r.ratio])),
    throughputTarget: TARGETS.throughputRatio,
    /** What the design's JetStream operations alone reach, by replica count (no target). */
    floorRatioToBare: Object.fromEntries(floors.map((f) => [f.replicas, f.ratio])),
    /** How much of the floor the handler reaches: the cost of fleetheal's own code. */
    handlerRatioToFloor: Object.fromEntries(
      runs.flatMap((r) => (r.ratioToFloor === undefined ? [] : [[r.replicas, r.ratioToFloor]])),
    ),
    stormDecidedSeconds: storm?.decidedSeconds,
    stormTargetSeconds: TARGETS.stormDecidedS,
    stormCapsHeld: storm?.capsHeld,
    ...(baseline ? { baseline: compared(runs, baseline) } : {}),
  };
}

/** The baseline build's throughput ratios, and this build's as a share of them, by replicas. */
function compared(runs: RatedRun[], baseline: NonNullable<Throughput["baseline"]>) {
  return {
    commit: baseline.commit,
    throughputRatioByReplicas: Object.fromEntries(baseline.runs.map((r) => [r.replicas, r.ratio])),
    currentToBaselineByReplicas: Object.fromEntries(
      runs.flatMap((r) => {
        const base = baseline.runs.find((b) => b.replicas === r.replicas);
        return base ? [[r.replicas, round(r.ratio / base.ratio, 3)]] : [];
      }),
    ),
  };
}

/** How fast a path went. */
function speedCells(r: PathRun): string {
  return `${r.eventsPerSecond} | ${r.seconds}`;
}

/** What a path cost: CPU, and what the server carried and stored per event. */
function costCells(r: PathRun): string {
  const t = r.traffic;
  const stored = Object.entries(t.stored)
    .map(([name, n]) => `${name} ${n}`)
    .join(", ");
  const kb = (bytes: number) => round(bytes / 1024, 1);
  return `${r.cpuMsPerEvent.handlers} | ${r.cpuMsPerEvent.natsServer} | ${r.cpuMsPerEvent.bench} | ${t.inMsgs}/${t.outMsgs} (${kb(t.inBytes)}/${kb(t.outBytes)} kB) | ${t.storedTotal} (${stored})`;
}

function healCells(r: HealPathRun): string {
  return `${r.restarts} | ${r.containersRestartedTwice} | ${r.ledgerSample.restarted}/${r.ledgerSample.checked} | ${r.dependentsDrainedS ?? "no"} s (backlog ${r.dependentsBacklogAtEnd})`;
}

function throughputTable(
  fleet: { hosts: number; containers: number; eventBytes: number },
  throughput: Throughput,
): string[] {
  const yes = (ok: boolean) => (ok ? "met" : "MISSED");
  return [
    "",
    `Handler throughput: ${throughput.runs[0]?.events ?? CONFIG.events} unhealthy events per run across ${fleet.hosts} hosts (${fleet.containers} containers; ${fleet.eventBytes} B each), caps and image breaker lifted; restart replies after ${CONFIG.restartMs} ms`,
    "ops floor: the handler's NATS and JetStream operations per event without fleetheal's code, one child process per replica",
    "",
    "| path | events/s | seconds | ratio to bare JetStream | ratio to ops floor | CPU ms/event consumer | nats-server | bench | server msgs in/out per event (kB) | stored per event | restarts | twice | ledger sample ok | dependents drained |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...throughput.references.map(
      (r, i) => `| bare JetStream (${i + 1}) | ${speedCells(r)} | 1 | | ${costCells(r)} | | | | |`,
    ),
    ...throughput.floors.map(
      (f) =>
        `| ops floor ×${f.replicas} | ${speedCells(f)} | ${f.ratio} | 1 | ${costCells(f)} | ${healCells(f)} |`,
    ),
    ...throughput.runs.map(
      (r) =>
        `| handler ×${r.replicas} | ${speedCells(r)} | **${r.ratio}** (${yes(r.ratio >= TARGETS.throughputRatio)}) | ${r.ratioToFloor ?? ""} | ${costCells(r)} | ${healCells(r)} |`,
    ),
    ...(throughput.baseline?.runs ?? []).map(
      (r) =>
        `| baseline ${throughput.baseline?.commit} handler ×${r.replicas} | ${speedCells(r)} | ${r.ratio} | ${r.ratioToFloor ?? ""} | ${costCells(r)} | ${healCells(r)} |`,
    ),
    ...throughput.floors.map(
      (f) =>
        `ops floor ×${f.replicas}: acked ${f.acked.heal} events and ${f.acked.dependents} restarted records`,
    ),
    ...throughput.runs.map(
      (r) =>
        `handler ×${r.replicas}: heal counters ${JSON.stringify(r.handlers.heal)}; warnings ${JSON.stringify(r.handlers.warnings)}`,
    ),
    ...baselineLines(throughput),
  ];
}

/** This build's throughput as a share of the baseline's, when one was measured. */
function baselineLines({ runs, baseline }: Throughput): string[] {
  if (!baseline) return [];
  const { currentToBaselineByReplicas: share } = compared(runs, baseline);
  return [
    `this build ÷ baseline ${baseline.commit}, throughput ratio to bare JetStream: ${Object.entries(
      share,
    )
      .map(([replicas, r]) => `×${replicas} ${r}`)
      .join(", ")}`,
  ];
}

export function printTable(result: {
  fleet: { hosts: number; containers: number; eventBytes: number; snapshotBytes: number };
  throughput: Throughput;
  storm: StormResult | undefined;
  machine: { loadAverageBefore: number[]; loadAverageAfter: number[] };
  durationS: number;
}): void {
  const { fleet, throughput, storm } = result;
  const yes = (ok: boolean) => (ok ? "met" : "MISSED");
  const out = throughputTable(fleet, throughput);
  if (storm) {
    out.push(
      "",
      `Storm: ${storm.events} containers unhealthy within 1 s, default policy, ${storm.replicas} replicas, restarts held ${CONFIG.stormHoldMs} ms; published in ${storm.publishSeconds} s`,
      `  every event decided after ${storm.decidedSeconds ?? "—"} s (${storm.decided}/${storm.events}; target < ${TARGETS.stormDecidedS} s: ${yes(storm.decidedSeconds !== undefined && storm.decidedSeconds < TARGETS.stormDecidedS)})`,
      `  first records: ${Object.entries(storm.firstRecords)
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `${k} ${v}`)
        .join(", ")}`,
      `  restarts in ${storm.observedSeconds} s: ${storm.restarts}; at once max ${storm.maxConcurrent.host}/host (cap ${storm.caps.concurrentHost}), ${storm.maxConcurrent.fleet} fleet (cap ${storm.caps.concurrentFleet}); rate slots taken within any 60 s max ${storm.slotsTakenPer60s.host}/host (cap ${storm.caps.perMinuteHost}), ${storm.slotsTakenPer60s.fleet} fleet (cap ${storm.caps.perMinuteFleet}); restarts without a slot ${storm.slotsTakenPer60s.startsWithoutSlot}: caps ${storm.capsHeld ? "held" : "EXCEEDED"}`,
      `  agents' own clock: started within any 60 s max ${storm.maxStartedPer60s.host}/host, ${storm.maxStartedPer60s.fleet} fleet (a restart reaches its agent ${storm.slotsTakenPer60s.slotToAgentMs.p50} ms after its slot at p50, ${storm.slotsTakenPer60s.slotToAgentMs.max} ms at most); restarted twice: ${storm.containersRestartedTwice}`,
      `  until decided, per event: CPU ms handlers ${storm.untilDecided.cpuMs.handlers}, nats-server ${storm.untilDecided.cpuMs.natsServer}, bench ${storm.untilDecided.cpuMs.bench} (${storm.untilDecided.cpuMsTotal} in all: ${storm.untilDecided.cpuBoundSeconds} s of all ${os.cpus().length} cores); server msgs in/out ${storm.untilDecided.traffic.inMsgs}/${storm.untilDecided.traffic.outMsgs}, stored ${storm.untilDecided.traffic.storedTotal} (${Object.entries(
        storm.untilDecided.traffic.stored,
      )
        .map(([k, v]) => `${k} ${v}`)
        .join(", ")})`,
      `  CPU ms per event over the whole observation: handlers ${storm.cpuMsPerEvent.handlers}, nats-server ${storm.cpuMsPerEvent.natsServer}, bench ${storm.cpuMsPerEvent.bench}`,
      `  heal deliveries: ${storm.deliveriesTotal} in all; per second by 5 s window: ${storm.deliveries.map((d) => `${d.atS}s:${d.perSecond}`).join(" ")}`,
      `  per minute (deliveries/restarts): ${storm.perMinute.map((m) => `${m.minute}: ${m.deliveries}/${m.restarts}`).join(", ")}`,
      `  dead letters: ${storm.deadLetters}; heal counters ${JSON.stringify(storm.handlers.heal)}; warnings ${JSON.stringify(storm.handlers.warnings)}`,
    );
  }
  out.push(
    `load average ${result.machine.loadAverageBefore.join(" ")} before, ${result.machine.loadAverageAfter.join(" ")} after; ${result.durationS} s in all`,
  );
  console.log(out.join("\n"));
}
