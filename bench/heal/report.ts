// What the heal benchmark prints: the reaction of every path, and the ratios to the floor.

import path from "node:path";
import { percentile, round } from "../runner/numbers.js";
import type { FleetPath } from "./stacks.js";

export interface ReactionSummary {
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export function summary(values: number[]): ReactionSummary {
  const s = [...values].sort((a, b) => a - b);
  return {
    p50: round(percentile(s, 50)),
    p90: round(percentile(s, 90)),
    p99: round(percentile(s, 99)),
    max: round(s[s.length - 1] ?? Number.NaN),
  };
}

interface Ratios {
  p50: number;
  p99: number;
}

export interface ReactionReport {
  incidents: number;
  output: string;
  fleetPaths: FleetPath[];
  reactionMs: Record<FleetPath | "floor", ReactionSummary>;
  breakdown: Record<
    FleetPath,
    { eventOnNatsMs: ReactionSummary; commandOnNatsMs: ReactionSummary }
  >;
  ratios: Ratios;
  unsigned: Ratios | undefined;
  signingCost: Ratios | undefined;
  baseline: { commit: string; current: string; ratios: Ratios; comparison: Ratios } | undefined;
}

const NAMES: Record<FleetPath, string> = {
  signed: "fleetheal, signed commands",
  unsigned: "fleetheal, signing off",
  baseline: "baseline build, signed commands",
};

export function printReaction(r: ReactionReport): void {
  const row = (name: string, s: ReactionSummary): string =>
    `| ${name.padEnd(38)} | ${String(s.p50).padStart(8)} | ${String(s.p90).padStart(8)} | ${String(s.p99).padStart(8)} | ${String(s.max).padStart(8)} |`;
  console.log(`\nHeal reaction, ${r.incidents} incidents per path (ms, Docker's clock)\n`);
  console.log(`| ${"path".padEnd(38)} |      p50 |      p90 |      p99 |      max |`);
  console.log(`| ${"-".repeat(38)} | -------: | -------: | -------: | -------: |`);
  console.log(row("floor (restart on the event)", r.reactionMs.floor));
  for (const p of r.fleetPaths) {
    const b = r.breakdown[p];
    console.log(row(NAMES[p], r.reactionMs[p]));
    console.log(row("  unhealthy → event on NATS", b.eventOnNatsMs));
    console.log(row("  unhealthy → command on NATS", b.commandOnNatsMs));
  }
  console.log(
    `\nfleetheal ÷ floor, signed: p50 ${r.ratios.p50} (target ≤ 1.5), p99 ${r.ratios.p99} (target ≤ 3)`,
  );
  if (r.unsigned && r.signingCost) {
    console.log(`fleetheal ÷ floor, signing off: p50 ${r.unsigned.p50}, p99 ${r.unsigned.p99}`);
    console.log(
      `signing adds: p50 ${r.signingCost.p50} (target ≤ 0.1), p99 ${r.signingCost.p99} to the ratio`,
    );
  }
  if (r.baseline) {
    const { commit, current, ratios, comparison } = r.baseline;
    console.log(`baseline ${commit} ÷ floor, signed: p50 ${ratios.p50}, p99 ${ratios.p99}`);
    console.log(
      `this build (${current}) − baseline: p50 ${comparison.p50}, p99 ${comparison.p99} to the ratio`,
    );
  }
  console.log(`written to ${path.relative(process.cwd(), r.output)}`);
}
