// Dependents' cost per record: what the dependents handler spends on one `restarted` record of a
// host of 200, 800 and 2,000 containers, in process (no NATS, no Docker), as built in dist/.
//
//   npm run build && npm run bench:dependents
//
// Three host shapes (bench/dependents/hosts.ts): compose projects with depends_on chains and
// fans, the restarted container with five dependents; one long depends_on chain; one wide
// network_mode fan. Two steps are timed per record: the graph work (references to gone
// containers, the graph, the plan) on the decoded snapshot, and the handler's whole decision
// (decideDependents: the snapshot decoded and validated from its bytes, the graph, the plan, the
// ledgers read, the round's first decisions). The reference is the floor of any reader of that
// snapshot: a plain JSON.parse of its bytes, timed in the same rounds. Every build must plan the
// same number of dependents and decide a first restart, or the run fails.
//
// With FLEETHEAL_BENCH_BASELINE=<checkout> (its dist/ built), that build is timed in the same
// rounds, at the sizes up to FLEETHEAL_BENCH_DEPENDENTS_BASELINE_MAX. Results go to
// bench/results/dependents-cost.json.

import os from "node:os";
import { performance } from "node:perf_hooks";
import { type LoadedBuild, loadBuild } from "./dependents/builds.js";
import { type BenchHost, benchHost, SHAPES } from "./dependents/hosts.js";
import { baselineBuild, currentBuild } from "./runner/builds.js";
import { median, percentile, round } from "./runner/numbers.js";
import { benchLog, machineInfo, resultFile, runMain, writeResult } from "./runner/report.js";
import { envList, envNumber } from "./runner/settings.js";

const log = benchLog("dependents");

const CONFIG = {
  sizes: envList("FLEETHEAL_BENCH_DEPENDENTS_SIZES", [200, 800, 2_000]),
  /** Timed rounds per host; each round times every step once, in a rotating order. */
  runs: envNumber("FLEETHEAL_BENCH_DEPENDENTS_RUNS", 20),
  warmup: envNumber("FLEETHEAL_BENCH_DEPENDENTS_WARMUP", 3),
  /** The largest host the baseline build is timed on (a quadratic build takes seconds). */
  baselineMax: envNumber("FLEETHEAL_BENCH_DEPENDENTS_BASELINE_MAX", 800),
  seed: envNumber("FLEETHEAL_BENCH_SEED", 20261207),
  output: resultFile("dependents-cost.json"),
};

/** Per record, on a 2,000-container host (issue 18). */
const TARGET_MS = 50;

interface Timing {
  p50: number;
  p90: number;
  /** The fastest round: on a busy machine, the closest to the cost on an idle one. */
  min: number;
}

interface BuildRow {
  commit: string;
  /** Dependents it planned. */
  planned: number;
  graphMs: Timing;
  decideMs: Timing;
  /** p50 over the reference's p50. */
  graphRatio: number;
  decideRatio: number;
}

interface Row {
  shape: string;
  containers: number;
  snapshotKiB: number;
  referenceMs: Timing;
  /** The snapshot decoded and validated (zod), as every round of the handler does first. */
  decodeMs: Timing;
  current: BuildRow;
  baseline?: BuildRow;
}

type Step = () => unknown;

function timing(values: number[]): Timing {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    p50: round(median(values), 3),
    p90: round(percentile(sorted, 90), 3),
    min: round(sorted[0] ?? Number.NaN, 3),
  };
}

async function timed(step: Step): Promise<number> {
  const start = performance.now();
  await step();
  return performance.now() - start;
}

/** Checks that a build plans what the host holds and decides a first restart; the plan's size. */
async function check(build: LoadedBuild, host: BenchHost): Promise<number> {
  const planned = build.graphAndPlan(host);
  const decisions = await build.decide(host);
  const where = `${build.build.name} (${build.build.commit}), ${host.shape} ${host.containers}`;
  if (planned !== (host.dependents ?? Math.max(planned, 1))) {
    throw new Error(`${where}: planned ${planned} dependents, not ${host.dependents ?? "some"}`);
  }
  if (!decisions.some((d) => d.kind === "command")) {
    throw new Error(`${where}: no restart decided (${decisions.map((d) => d.kind).join(", ")})`);
  }
  return planned;
}

async function measure(host: BenchHost, builds: LoadedBuild[]): Promise<Row> {
  const text = new TextDecoder();
  const [current, baseline] = builds as [LoadedBuild, LoadedBuild?];
  const steps: [string, Step][] = [
    ["reference", () => JSON.parse(text.decode(host.bytes))],
    ["decode", () => current.decode(host)],
  ];
  const planned = new Map<LoadedBuild, number>();
  for (const b of builds) {
    planned.set(b, await check(b, host));
    steps.push([`${b.build.name}.graph`, () => b.graphAndPlan(host)]);
    steps.push([`${b.build.name}.decide`, () => b.decide(host)]);
  }
  const samples = new Map<string, number[]>(steps.map(([name]) => [name, []]));
  for (let r = 0; r < CONFIG.warmup + CONFIG.runs; r++) {
    for (let i = 0; i < steps.length; i++) {
      const [name, step] = steps[(r + i) % steps.length] as [string, Step];
      const ms = await timed(step);
      if (r >= CONFIG.warmup) samples.get(name)?.push(ms);
    }
  }
  const reference = timing(samples.get("reference") ?? []);
  const rowOf = (b: LoadedBuild): BuildRow => {
    const graphMs = timing(samples.get(`${b.build.name}.graph`) ?? []);
    const decideMs = timing(samples.get(`${b.build.name}.decide`) ?? []);
    return {
      commit: b.build.commit,
      planned: planned.get(b) ?? 0,
      graphMs,
      decideMs,
      graphRatio: round(graphMs.p50 / reference.p50, 1),
      decideRatio: round(decideMs.p50 / reference.p50, 1),
    };
  };
  return {
    shape: host.shape,
    containers: host.containers,
    snapshotKiB: round(host.bytes.length / 1024, 0),
    referenceMs: reference,
    decodeMs: timing(samples.get("decode") ?? []),
    current: rowOf(current),
    ...(baseline ? { baseline: rowOf(baseline) } : {}),
  };
}

function printTable(rows: Row[]): void {
  console.log(
    "\nDependents' cost per `restarted` record (ms: p50 / fastest; ×: p50's ratio to JSON.parse's)\n",
  );
  const header = [
    "host",
    "snapshot",
    "planned",
    "JSON.parse",
    "decode (zod)",
    "graph + plan",
    "whole decision",
    "baseline planned",
    "baseline graph + plan",
    "baseline decision",
  ];
  console.log(`| ${header.join(" | ")} |`);
  console.log(
    `| --- | ${header
      .slice(1)
      .map(() => "---:")
      .join(" | ")} |`,
  );
  const cell = (t: Timing, ratio: number) => `${t.p50} / ${t.min} (×${ratio})`;
  for (const r of rows) {
    const b = r.baseline;
    const cells = [
      `${r.shape} ${r.containers}`,
      `${r.snapshotKiB} KiB`,
      String(r.current.planned),
      `${r.referenceMs.p50} / ${r.referenceMs.min}`,
      cell(r.decodeMs, round(r.decodeMs.p50 / r.referenceMs.p50, 1)),
      cell(r.current.graphMs, r.current.graphRatio),
      cell(r.current.decideMs, r.current.decideRatio),
      b ? String(b.planned) : "",
      b ? cell(b.graphMs, b.graphRatio) : "",
      b ? cell(b.decideMs, b.decideRatio) : "",
    ];
    console.log(`| ${cells.join(" | ")} |`);
  }
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const loadBefore = os.loadavg();
  const current = await loadBuild(currentBuild());
  const base = baselineBuild();
  const baseline = base ? await loadBuild(base) : undefined;
  log(
    `current ${current.build.commit}${baseline ? `, baseline ${baseline.build.commit}` : ""}; sizes ${CONFIG.sizes.join(", ")}; ${CONFIG.runs} rounds`,
  );
  const rows: Row[] = [];
  for (const size of CONFIG.sizes) {
    for (const shape of SHAPES) {
      const host = benchHost(shape, size, CONFIG.seed);
      const builds = baseline && size <= CONFIG.baselineMax ? [current, baseline] : [current];
      rows.push(await measure(host, builds));
      log(`${shape} ${size}: done`);
    }
  }
  printTable(rows);
  const largest = Math.max(...CONFIG.sizes);
  const atLargest = rows.filter((r) => r.containers === largest);
  const worstGraph = Math.max(...atLargest.map((r) => r.current.graphMs.p50));
  const worstDecide = Math.max(...atLargest.map((r) => r.current.decideMs.p50));
  console.log(
    `\nLargest host (${largest} containers), worst shape: graph + plan ${worstGraph} ms, whole decision ${worstDecide} ms (target < ${TARGET_MS} ms per record)`,
  );
  await writeResult(
    CONFIG.output,
    {
      startedAt: startedAt.toISOString(),
      seconds: round((Date.now() - startedAt.getTime()) / 1000, 1),
      machine: machineInfo(loadBefore),
      config: { ...CONFIG, output: undefined },
      rows,
      summary: {
        largest,
        targetMs: TARGET_MS,
        worstGraphMs: worstGraph,
        worstDecideMs: worstDecide,
        met: worstGraph < TARGET_MS,
      },
    },
    log,
  );
}

runMain(main);
