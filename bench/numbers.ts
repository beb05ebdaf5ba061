// Small helpers every benchmark shares: settings from the environment, the figures they
// report, and the deterministic randomness of their synthetic fleets.

import os from "node:os";

/** A non-negative number from the environment, or `fallback` when the variable is unset. */
export function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number`);
  return n;
}

/** `n` rounded to `digits` decimals, for tables and JSON. */
export function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** The nearest-rank percentile `p` (0–100) of ascending `sorted`; NaN when it is empty. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] as number;
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

/** mulberry32: a small deterministic PRNG, so that every run builds the same fleet. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `length` hex digits drawn from `rand` (container ids, hashes). */
export function hex(rand: () => number, length: number): string {
  let s = "";
  while (s.length < length) {
    s += Math.floor(rand() * 0x100000000)
      .toString(16)
      .padStart(8, "0");
  }
  return s.slice(0, length);
}
