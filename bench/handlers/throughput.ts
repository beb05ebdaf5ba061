// The throughput runs: per replica count, the handler between two bare JetStream references (the
// one before it is the previous run's), then the operations floor; with a baseline build, its
// handler too, between references of its own, in alternating order.

import { encode, type HealPolicy, POLICY_KEY } from "../../contracts/index.js";
import type { Build } from "../runner/builds.js";
import { round } from "../runner/numbers.js";
import { benchLog } from "../runner/report.js";
import { CONFIG } from "./config.js";
import type { Context } from "./context.js";
import { type HandlerRun, handlerRun } from "./handler-runs.js";
import type { PathRun } from "./heal-path.js";
import { type FloorRun, floorRun } from "./ops-floor-run.js";
import { referenceRun } from "./reference.js";

const log = benchLog("handlers");

export type RatedRun = HandlerRun & {
  /** To bare JetStream: the target. */
  ratio: number;
  references: number[];
  ratioToFloor: number | undefined;
};
export type RatedFloor = FloorRun & { ratio: number };

export interface Throughput {
  references: PathRun[];
  runs: RatedRun[];
  floors: RatedFloor[];
  /** The baseline build's handler runs, rated the same way, when it is compared. */
  baseline?: { commit: string; runs: RatedRun[] };
}

/**
 * Handler and floor are rated against the mean of the two references around the handler run.
 * With a baseline, the two builds take turns at going first, so that neither always follows the
 * other.
 */
export async function throughputRuns(ctx: Context, lifted: HealPolicy): Promise<Throughput> {
  const out: Throughput = { references: [], runs: [], floors: [] };
  const baselineRuns: RatedRun[] = [];
  const reference = async () => {
    const r = await referenceRun(ctx);
    out.references.push(r);
    log(`reference: ${r.eventsPerSecond} msg/s (${r.seconds} s, publish ${r.publishSeconds} s)`);
    return r;
  };
  let before = CONFIG.replicas.length > 0 ? await reference() : undefined;
  /** One build's handler run, then the reference after it, rated against both references. */
  const rated = async (build: Build, replicas: number, runNo: number) => {
    await ctx.fjs.config.put(POLICY_KEY, encode(lifted));
    const run = await handlerRun(ctx, build, replicas, runNo);
    const which = build.name === "current" ? "handlers" : `baseline ${build.commit} handlers`;
    log(
      `${which} x${replicas}: ${run.eventsPerSecond} events/s (${run.seconds} s, publish ${run.publishSeconds} s), ${run.restarts} restarts`,
    );
    const after = await reference();
    const previous = before ?? after;
    before = after;
    const refRate = (previous.eventsPerSecond + after.eventsPerSecond) / 2;
    return {
      run,
      refRate,
      references: [previous.eventsPerSecond, after.eventsPerSecond],
    };
  };
  for (const [i, replicas] of CONFIG.replicas.entries()) {
    const builds = ctx.baseline
      ? i % 2 === 0
        ? [ctx.current, ctx.baseline]
        : [ctx.baseline, ctx.current]
      : [ctx.current];
    const measured = new Map<Build, Awaited<ReturnType<typeof rated>>>();
    for (const build of builds) measured.set(build, await rated(build, replicas, i + 1));
    const current = measured.get(ctx.current);
    if (!current) throw new Error("the current build was not measured");
    const floor = CONFIG.floor ? await floorRun(ctx, replicas, i + 1) : undefined;
    if (floor) {
      log(
        `ops floor x${replicas}: ${floor.eventsPerSecond} events/s (${floor.seconds} s, publish ${floor.publishSeconds} s), ${floor.restarts} restarts`,
      );
      out.floors.push({ ...floor, ratio: round(floor.eventsPerSecond / current.refRate, 3) });
    }
    const rate = (m: Awaited<ReturnType<typeof rated>>): RatedRun => ({
      ...m.run,
      ratio: round(m.run.eventsPerSecond / m.refRate, 3),
      references: m.references,
      ratioToFloor: floor && round(m.run.eventsPerSecond / floor.eventsPerSecond, 3),
    });
    out.runs.push(rate(current));
    const base = ctx.baseline && measured.get(ctx.baseline);
    if (base) baselineRuns.push(rate(base));
  }
  if (ctx.baseline) out.baseline = { commit: ctx.baseline.commit, runs: baselineRuns };
  return out;
}
