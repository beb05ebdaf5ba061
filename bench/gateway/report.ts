// The gateway benchmark's summary (medians over rounds, gateway ÷ reference) and its table.

import { median, round } from "../runner/numbers.js";
import { CONFIG } from "./config.js";
import type { Run, TargetName } from "./load.js";
import type { GatewayInfo, Measured, Timing } from "./protocol.js";

export interface TargetSummary {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  serverCpuUsPerRequest: number;
  bodyBytes: number;
  responseBytes: number;
  errors: number;
}

export function summarise(runs: Run[]) {
  const byTarget = (t: TargetName) => runs.filter((r) => r.target === t);
  const targets = {} as Record<TargetName, TargetSummary>;
  for (const t of [
    "ref /health",
    "gateway /health",
    "ref /containers",
    "gateway /containers",
  ] as const) {
    const rs = byTarget(t);
    targets[t] = {
      requestsPerSecond: Math.round(median(rs.map((r) => r.requestsPerSecond))),
      p50Ms: round(median(rs.map((r) => r.latencyMs.p50)), 2),
      p99Ms: round(median(rs.map((r) => r.latencyMs.p99)), 2),
      serverCpuUsPerRequest: round(median(rs.map((r) => r.serverCpuUsPerRequest)), 1),
      bodyBytes: rs[0]?.bodyBytes ?? 0,
      responseBytes: rs[0]?.responseBytes ?? 0,
      errors: rs.reduce((n, r) => n + r.errors, 0),
    };
  }
  const ratio = (gw: TargetName, ref: TargetName, f: (r: Run) => number) => {
    const per = byTarget(gw).map((g) => {
      const r = byTarget(ref).find((x) => x.round === g.round);
      return r ? f(g) / f(r) : Number.NaN;
    });
    return { median: round(median(per), 3), perRound: per.map((x) => round(x, 3)) };
  };
  const ratios = {
    health: {
      throughput: ratio("gateway /health", "ref /health", (r) => r.requestsPerSecond),
      p99: ratio("gateway /health", "ref /health", (r) => r.latencyMs.p99),
      p50: ratio("gateway /health", "ref /health", (r) => r.latencyMs.p50),
      serverCpuPerRequest: ratio("gateway /health", "ref /health", (r) => r.serverCpuUsPerRequest),
    },
    containers: {
      throughput: ratio("gateway /containers", "ref /containers", (r) => r.requestsPerSecond),
      p99: ratio("gateway /containers", "ref /containers", (r) => r.latencyMs.p99),
      p50: ratio("gateway /containers", "ref /containers", (r) => r.latencyMs.p50),
      serverCpuPerRequest: ratio(
        "gateway /containers",
        "ref /containers",
        (r) => r.serverCpuUsPerRequest,
      ),
    },
  };
  return { targets, ratios, throughputTarget: 0.8 };
}

export interface Printed {
  machine: { loadAverageBefore: number[]; loadAverageAfter: number[] };
  durationS: number;
  fleetJson: { generateMs: number; snapshotJsonMB: number };
  gateway: GatewayInfo;
  measured: { gateway: Measured; reference: Measured };
  memory: {
    gatewayRssMbEmpty: number;
    gatewayHeapUsedMbEmpty: number;
    gatewayRssMbLoaded: number;
    gatewayHeapUsedMbLoaded: number;
    gatewayRssMbAfterRuns: number;
    gatewayRssMbPeak: number;
    gatewayHeapUsedMbAfterRuns: number;
    gatewayHeapTotalMbAfterRuns: number;
    gatewayExternalMbAfterRuns: number;
    gatewayRssMbAfterRunsAndGc: number;
    gatewayHeapUsedMbAfterRunsAndGc: number;
    referenceRssMbLoaded: number;
    referenceHeapUsedMbLoaded: number;
    referenceRssMbAfterRuns: number;
    referenceRssMbPeak: number;
    referenceRssMbAfterRunsAndGc: number;
    idleNodeMb: number;
    meetsRssTarget: { loaded: boolean; afterRuns: boolean; peak: boolean };
  };
  summary: ReturnType<typeof summarise>;
}

export function printTable(result: Printed): void {
  const t = result.summary.targets;
  const q = result.summary.ratios;
  const g = result.gateway;
  const m = result.memory;
  const gi = result.measured.gateway;
  const ri = result.measured.reference;
  const h = gi.handler;
  const yes = (ok: boolean) => (ok ? "met" : "MISSED");
  const row = (name: TargetName) =>
    `| ${name} | ${t[name].requestsPerSecond} | ${t[name].p50Ms} | ${t[name].p99Ms} | ${t[name].bodyBytes} | ${t[name].serverCpuUsPerRequest} | ${t[name].errors} |`;
  const inj = (x: Timing) => `${x.meanUs} µs mean (p50 ${x.p50Us}, p99 ${x.p99Us})`;
  const ratioLine = (name: string, r: typeof q.health) =>
    `${name} throughput ${r.throughput.median} (rounds ${r.throughput.perRound.join(", ")}), p99 ${r.p99.median} (${r.p99.perRound.join(", ")}), p50 ${r.p50.median}, server CPU per request ${r.serverCpuPerRequest.median}`;
  const out = [
    "",
    `Gateway, ${g.fleet.hosts} hosts × ${CONFIG.containersPerHost} containers (${g.fleet.containers}; ${g.fleet.unhealthy} unhealthy, ${g.fleet.starting} starting, ${g.fleet.staleHosts} stale hosts, ${g.fleet.ledgerEntries} with a ledger), ${CONFIG.connections} connections, ${CONFIG.rounds} rounds of ${CONFIG.durationS} s after ${CONFIG.warmupS} s warm-up; medians${CONFIG.refreshPerSecond ? `; ${CONFIG.refreshPerSecond} snapshots/s re-applied during the runs` : ""}${CONFIG.gatewayNodeFlags.length ? `; gateway flags ${CONFIG.gatewayNodeFlags.join(" ")}` : ""}`,
    "",
    "| target | req/s | p50 ms | p99 ms | body B | server CPU µs/req | errors (all rounds) |",
    "|---|---:|---:|---:|---:|---:|---:|",
    row("ref /health"),
    row("gateway /health"),
    row("ref /containers"),
    row("gateway /containers"),
    "",
    "gateway ÷ reference (median of per-round ratios; throughput target ≥ 0.8):",
    ratioLine("  /health     ", q.health),
    ratioLine("  /containers ", q.containers),
    "",
    "server time in-process, app.inject():",
    `  /health     gateway ${inj(gi.inject.health)}; reference ${inj(ri.inject.health)}`,
    `  /containers gateway ${inj(gi.inject.containers)}; reference ${inj(ri.inject.containers)}`,
    h
      ? `  handlers: HealthCache.get ${h.healthCached.meanUs} µs cached, ${h.afterOneHostReports.healthRebuild.p50Ms} ms to rebuild after one host reports; findContainers ${round(h.containersQueryCached.meanUs / 1000, 3)} ms cached, after one host reports ${h.afterOneHostReports.containersQuery.p50Ms} ms`
      : undefined,
    gi.refreshed
      ? `refresh: ${gi.refreshed.snapshots} snapshots re-applied, ${gi.refreshed.perSecond}/s (target ${CONFIG.refreshPerSecond}/s)`
      : undefined,
    `setup: ${result.fleetJson.snapshotJsonMB} MB of snapshot JSON; decode ${g.setupMs.decode1000} ms, apply ${g.setupMs.apply1000} ms (${g.fleet.hosts} snapshots), first /health build ${g.setupMs.firstHealthBuild} ms, first /containers query ${g.setupMs.firstContainersQuery} ms`,
    `memory (RSS; heap used after a full GC in parentheses):`,
    `  gateway   empty view ${m.gatewayRssMbEmpty} MB (${m.gatewayHeapUsedMbEmpty}), loaded ${m.gatewayRssMbLoaded} MB (${m.gatewayHeapUsedMbLoaded}), after the runs ${m.gatewayRssMbAfterRuns} MB (heap ${m.gatewayHeapUsedMbAfterRuns} used of ${m.gatewayHeapTotalMbAfterRuns} committed, external ${m.gatewayExternalMbAfterRuns}), after the runs and a GC ${m.gatewayRssMbAfterRunsAndGc} MB (${m.gatewayHeapUsedMbAfterRunsAndGc}), peak ${m.gatewayRssMbPeak} MB`,
    `  reference loaded ${m.referenceRssMbLoaded} MB (${m.referenceHeapUsedMbLoaded}), after the runs ${m.referenceRssMbAfterRuns} MB, after the runs and a GC ${m.referenceRssMbAfterRunsAndGc} MB, peak ${m.referenceRssMbPeak} MB`,
    `  idle node ${m.idleNodeMb} MB (both servers run plain node on dist/, as deployed)`,
    `  target < 200 MB: loaded ${yes(m.meetsRssTarget.loaded)}, after the runs ${yes(m.meetsRssTarget.afterRuns)}, peak ${yes(m.meetsRssTarget.peak)}`,
    `load average ${result.machine.loadAverageBefore.join(" ")} before, ${result.machine.loadAverageAfter.join(" ")} after; ${result.durationS} s in all`,
  ];
  console.log(out.filter((line) => line !== undefined).join("\n"));
}
