// The agent benchmark's settings (docs/benchmarks/PERFORMANCE.md, "Agent footprint"), from the environment.

import { resultFile } from "../runner/report.js";
import { envNumber } from "../runner/settings.js";

export type OpKind = "cycle" | "pause";
export interface StepPlan {
  kind: OpKind;
  /** Target Docker events per second. */
  target: number;
}

/** `cycle:20,cycle:40,pause:100` → steps. */
export function parseSteps(raw: string): StepPlan[] {
  return raw
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      const [kind, rate] = s.split(":");
      if ((kind !== "cycle" && kind !== "pause") || !rate || !(Number(rate) > 0)) {
        throw new Error(
          `FLEETHEAL_BENCH_STEPS: bad step "${s}" (want cycle:<ev/s> or pause:<ev/s>)`,
        );
      }
      return { kind, target: Number(rate) };
    });
}

export const CONFIG = {
  containers: envNumber("FLEETHEAL_BENCH_CONTAINERS", 100),
  /** Pause between the snapshot listing every container and the idle window. */
  settleS: envNumber("FLEETHEAL_BENCH_SETTLE_S", 5),
  idleS: envNumber("FLEETHEAL_BENCH_IDLE_S", 60),
  stepS: envNumber("FLEETHEAL_BENCH_STEP_S", 10),
  /** How long a step may take to get every event into the stream after generation stops. */
  drainS: envNumber("FLEETHEAL_BENCH_DRAIN_S", 30),
  steps: parseSteps(
    process.env.FLEETHEAL_BENCH_STEPS ??
      "cycle:20,cycle:40,cycle:60,cycle:80,pause:100,pause:150,pause:200,pause:300,pause:400,pause:600,pause:800",
  ),
  /** Messages in the bare JetStream reference; 0 skips it. */
  referenceMessages: envNumber("FLEETHEAL_BENCH_REFERENCE_MSGS", 5_000),
  /** The agent's log level; debug (the rig's default) would add a log line per event. */
  logLevel: process.env.FLEETHEAL_BENCH_LOG_LEVEL ?? "info",
  /**
   * NODE_OPTIONS for the agent only, e.g. `--max-semi-space-size=16` to compare with V8's default
   * young generation (bin/fleetheal.js then leaves it alone). Empty: as operators run it.
   */
  agentNodeOptions: process.env.FLEETHEAL_BENCH_AGENT_NODE_OPTIONS ?? "",
  output: resultFile("agent-footprint.json"),
};

export const HOST = "bench-host";
