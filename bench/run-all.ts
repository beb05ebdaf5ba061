// Every benchmark of docs/benchmarks/PERFORMANCE.md, one after the other (never two at once: they would
// measure each other), then one table of every target of the performance issue with the figure
// this run measured, read back from each benchmark's JSON.
//
//   npm run bench          (builds first; about 15 minutes, as root)
//
// FLEETHEAL_BENCH_ONLY=heal,handlers runs a subset. The summary goes to bench/results/summary.json.

import { spawn } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { REPO } from "../test/support/fleetheal.js";

interface Bench {
  name: string;
  script: string;
  output: string;
}

const BENCHES: Bench[] = [
  { name: "heal", script: "heal-reaction.ts", output: "heal-reaction.json" },
  { name: "handlers", script: "handler-throughput.ts", output: "handler-throughput.json" },
  { name: "gateway", script: "gateway.ts", output: "gateway.json" },
  { name: "agent", script: "agent-footprint.ts", output: "agent-footprint.json" },
  { name: "dependents", script: "dependents-cost.ts", output: "dependents-cost.json" },
];

/** One target of the performance issue, as measured. */
interface TargetRow {
  bench: string;
  target: string;
  measured: string;
  met: boolean | undefined;
}

type Json = Record<string, unknown>;

/** `a.b.c` of a parsed JSON document, or undefined anywhere along the way. */
function at(doc: unknown, dotted: string): unknown {
  let value = doc;
  for (const key of dotted.split(".")) {
    if (typeof value !== "object" || value === null) return undefined;
    value = (value as Json)[key];
  }
  return value;
}

function num(doc: unknown, dotted: string): number | undefined {
  const value = at(doc, dotted);
  return typeof value === "number" && Number.isFinite(value) ? value : undefined;
}

function row(
  bench: string,
  target: string,
  value: number | undefined,
  unit: string,
  met: (v: number) => boolean,
): TargetRow {
  return {
    bench,
    target,
    measured: value === undefined ? "not measured" : `${value}${unit}`,
    met: value === undefined ? undefined : met(value),
  };
}

/** The rows for one benchmark's result; the field names are those the benchmark writes. */
function targetsOf(name: string, doc: unknown): TargetRow[] {
  switch (name) {
    case "heal":
      return [
        row("heal", "reaction p50 ≤ 1.5× floor", num(doc, "ratios.p50"), "×", (v) => v <= 1.5),
        row("heal", "reaction p99 ≤ 3× floor", num(doc, "ratios.p99"), "×", (v) => v <= 3),
        row(
          "heal",
          "signing adds ≤ 0.1 to the p50 ratio",
          num(doc, "signingCost.p50"),
          "",
          (v) => v <= 0.1,
        ),
      ];
    case "handlers":
      return [
        row(
          "handlers",
          "throughput ≥ 0.5× bare JetStream",
          num(doc, "summary.throughputRatio"),
          "×",
          (v) => v >= 0.5,
        ),
        row(
          "handlers",
          "50k storm decided < 10 s",
          num(doc, "storm.decidedSeconds"),
          " s",
          (v) => v < 10,
        ),
        {
          bench: "handlers",
          target: "storm caps held",
          measured: String(at(doc, "storm.capsHeld") ?? "not measured"),
          met:
            typeof at(doc, "storm.capsHeld") === "boolean"
              ? at(doc, "storm.capsHeld") === true
              : undefined,
        },
      ];
    case "gateway":
      return [
        row(
          "gateway",
          "/health throughput ≥ 0.8× constant route",
          num(doc, "summary.ratios.health.throughput.median"),
          "×",
          (v) => v >= 0.8,
        ),
        row(
          "gateway",
          "/containers throughput ≥ 0.8× constant route",
          num(doc, "summary.ratios.containers.throughput.median"),
          "×",
          (v) => v >= 0.8,
        ),
        row(
          "gateway",
          "RSS < 200 MB with 50k containers",
          num(doc, "memory.gatewayRssMbLoaded"),
          " MB",
          (v) => v < 200,
        ),
      ];
    case "agent":
      return [
        row(
          "agent",
          "idle CPU < 0.5 % of one core",
          num(doc, "idle.cpuPercentOfOneCore"),
          " %",
          (v) => v < 0.5,
        ),
        row("agent", "idle RSS < 80 MB (max)", num(doc, "idle.rssMbMax"), " MB", (v) => v < 80),
      ];
    case "dependents":
      return [
        row(
          "dependents",
          "graph + plan < 50 ms per record, 2,000 containers",
          num(doc, "summary.worstGraphMs"),
          " ms",
          (v) => v < 50,
        ),
      ];
    default:
      return [];
  }
}

function runBench(bench: Bench): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", path.join(REPO, "bench", bench.script)],
      {
        cwd: REPO,
        stdio: "inherit",
      },
    );
    child.once("error", reject);
    child.once("exit", (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

async function main(): Promise<void> {
  const only = process.env.FLEETHEAL_BENCH_ONLY?.split(",").map((s) => s.trim());
  const unknown = only?.filter((n) => !BENCHES.some((b) => b.name === n)) ?? [];
  if (unknown.length > 0) {
    throw new Error(
      `FLEETHEAL_BENCH_ONLY: unknown ${unknown.join(", ")} (choose from ${BENCHES.map((b) => b.name).join(", ")})`,
    );
  }
  const started = Date.now();
  const rows: TargetRow[] = [];
  const runs: { name: string; exitCode: number; seconds: number }[] = [];
  for (const bench of BENCHES.filter((b) => !only || only.includes(b.name))) {
    const t0 = Date.now();
    console.error(`\n=== bench ${bench.name} (${bench.script}) ===`);
    const exitCode = await runBench(bench);
    runs.push({ name: bench.name, exitCode, seconds: Math.round((Date.now() - t0) / 1000) });
    if (exitCode !== 0) {
      rows.push({
        bench: bench.name,
        target: "(benchmark failed)",
        measured: `exit ${exitCode}`,
        met: false,
      });
      continue;
    }
    const doc = JSON.parse(
      await readFile(path.join(REPO, "bench", "results", bench.output), "utf8"),
    );
    rows.push(...targetsOf(bench.name, doc));
  }
  const totalSeconds = Math.round((Date.now() - started) / 1000);
  const width = Math.max(...rows.map((r) => r.target.length));
  console.log(`\nTargets of the performance issue, this run (${totalSeconds} s in all)\n`);
  console.log(`| bench    | ${"target".padEnd(width)} | measured       | met |`);
  console.log(`| -------- | ${"-".repeat(width)} | -------------- | --- |`);
  for (const r of rows) {
    const met = r.met === undefined ? "?" : r.met ? "yes" : "NO";
    console.log(
      `| ${r.bench.padEnd(8)} | ${r.target.padEnd(width)} | ${r.measured.padEnd(14)} | ${met.padEnd(3)} |`,
    );
  }
  await writeFile(
    path.join(REPO, "bench", "results", "summary.json"),
    `${JSON.stringify(
      {
        date: new Date().toISOString(),
        command: "npm run bench",
        machine: {
          cores: os.cpus().length,
          cpu: os.cpus()[0]?.model ?? "unknown",
          node: process.version,
        },
        totalSeconds,
        runs,
        targets: rows,
      },
      null,
      2,
    )}\n`,
  );
  if (runs.some((r) => r.exitCode !== 0)) process.exitCode = 1;
}

await main();
