// The soak's verdict on each role's resident memory: after the warm-up, RSS at the end may be at
// most a tenth above RSS at the start.
//
// A process's RSS saws up and down with its garbage collections, so "at the start" and "at the
// end" are each the median of the samples in a window (15 s by default), not a single sample.

import { median, round } from "../runner/numbers.js";
import type { ProcSample } from "../runner/proc.js";

/** One role's memory over the soak, in MB. */
export interface RssVerdict {
  role: string;
  /** Median RSS in the window right after the warm-up. */
  startMb: number;
  /** Median RSS in the last window of the run. */
  endMb: number;
  /** end / start. */
  ratio: number;
  /** Highest RSS sampled after the warm-up. */
  maxMb: number;
  /** Samples in the start and end windows. */
  samples: { start: number; end: number };
  /** Whether it is judged against the limit (the nats-server is shown, not judged). */
  judged: boolean;
  pass: boolean;
}

export interface Windows {
  /** performance.now() when the warm-up ended. */
  measuredFrom: number;
  /** performance.now() when the load stopped. */
  measuredTo: number;
  windowMs: number;
  /** The most end may exceed start by, as a fraction: 0.1 is 10 %. */
  maxGrowth: number;
}

/** The verdict on one process's samples; throws when a window holds no sample. */
export function rssVerdict(
  role: string,
  samples: readonly ProcSample[],
  windows: Windows,
  judged = true,
): RssVerdict {
  const { measuredFrom, measuredTo, windowMs, maxGrowth } = windows;
  const mb = (s: ProcSample) => s.rssKb / 1024;
  const inRange = (from: number, to: number) =>
    samples.filter((s) => s.at >= from && s.at <= to).map(mb);
  const start = inRange(measuredFrom, measuredFrom + windowMs);
  const end = inRange(measuredTo - windowMs, measuredTo);
  const after = inRange(measuredFrom, measuredTo);
  if (start.length === 0 || end.length === 0) {
    throw new Error(`${role}: no RSS samples in the start or end window`);
  }
  const startMb = median(start);
  const endMb = median(end);
  const ratio = endMb / startMb;
  return {
    role,
    startMb: round(startMb, 1),
    endMb: round(endMb, 1),
    ratio: round(ratio, 3),
    maxMb: round(Math.max(...after), 1),
    samples: { start: start.length, end: end.length },
    judged,
    pass: !judged || ratio <= 1 + maxGrowth,
  };
}

/** The verdicts as a Markdown table, for the log and docs/benchmarks/PERFORMANCE.md. */
export function rssTable(verdicts: readonly RssVerdict[], maxGrowth: number): string {
  const limit = `≤ ${round(1 + maxGrowth, 2)}`;
  const rows = verdicts.map(
    (v) =>
      `| ${v.role} | ${v.startMb} | ${v.endMb} | ${v.ratio} | ${v.maxMb} | ${
        v.judged ? (v.pass ? `yes (${limit})` : `NO (${limit})`) : "not judged"
      } |`,
  );
  return [
    "| role | RSS start (MB) | RSS end (MB) | end / start | max (MB) | pass |",
    "| ---- | -------------- | ------------ | ----------- | -------- | ---- |",
    ...rows,
  ].join("\n");
}
