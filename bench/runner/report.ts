// How a benchmark program starts, logs, describes its machine and writes its result.

import { execFile } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { BENCH_REPO } from "./children.js";
import { round } from "./numbers.js";

/** A progress logger on stderr (stdout is for the result table): `[bench:<name> +12.3s] …`. */
export function benchLog(name: string): (message: string) => void {
  return (message) => console.error(`[bench:${name} +${process.uptime().toFixed(1)}s] ${message}`);
}

/** Runs a benchmark program's main to its end: exit 0, or the error and exit 1. */
export function runMain(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}

/** Writes a benchmark's result as JSON to `output`. */
export async function writeResult(
  output: string,
  result: unknown,
  log: (message: string) => void,
): Promise<void> {
  await mkdir(path.dirname(output), { recursive: true });
  await writeFile(output, `${JSON.stringify(result, null, 2)}\n`);
  log(`wrote ${path.relative(BENCH_REPO, output)}`);
}

/** The default place of a benchmark's JSON, unless FLEETHEAL_BENCH_OUTPUT says otherwise. */
export function resultFile(name: string): string {
  return process.env.FLEETHEAL_BENCH_OUTPUT ?? path.join(BENCH_REPO, "bench", "results", name);
}

/** The machine a benchmark ran on, with its load average before the run and now. */
export function machineInfo(loadBefore: readonly number[]) {
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memoryGiB: round(os.totalmem() / 1024 ** 3, 1),
    kernel: os.release(),
    node: process.version,
    loadAverageBefore: loadBefore.map((l) => round(l, 2)),
    loadAverageAfter: os.loadavg().map((l) => round(l, 2)),
  };
}

/** The load average now, rounded, as the Docker benchmarks report it. */
export function loadAverage(): number[] {
  return os.loadavg().map((n) => round(n, 2));
}

/** The version of nats-server on PATH, or "unknown". */
export function natsServerVersion(): Promise<string> {
  return promisify(execFile)("nats-server", ["--version"]).then(
    (r) => r.stdout.trim(),
    () => "unknown",
  );
}

/** Runs a child program's main: it serves until its parent stops it, or prints its error and exits 1. */
export function runChild(main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
