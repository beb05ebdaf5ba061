// The handler benchmark's settings (docs/benchmarks/PERFORMANCE.md, "Handler throughput and storm").

import { resultFile } from "../runner/report.js";
import { envList, envNumber } from "../runner/settings.js";

export const CONFIG = {
  hosts: envNumber("FLEETHEAL_BENCH_HOSTS", 1_000),
  containersPerHost: envNumber("FLEETHEAL_BENCH_CONTAINERS_PER_HOST", 50),
  /** Events in each throughput run (one per container, spread over every host). */
  events: envNumber("FLEETHEAL_BENCH_EVENTS", 20_000),
  /** Handler replica counts for the throughput runs, one run each; 0 skips them. */
  replicas: envList("FLEETHEAL_BENCH_REPLICAS", [1, 2]),
  /** Measure the JetStream operations floor after each throughput run's reference; 0 skips it. */
  floor: envNumber("FLEETHEAL_BENCH_FLOOR", 1) > 0,
  /** How long a synthetic agent takes to "restart" in the throughput runs. */
  restartMs: envNumber("FLEETHEAL_BENCH_RESTART_MS", 0),
  /** JetStream publishes in flight from the synthetic hosts (the agent's outbox has 64). */
  publishWindow: envNumber("FLEETHEAL_BENCH_PUBLISH_WINDOW", 256),
  /** Replicas for the storm; 0 skips the storm. */
  stormReplicas: envNumber("FLEETHEAL_BENCH_STORM_REPLICAS", 2),
  stormHoldMs: envNumber("FLEETHEAL_BENCH_STORM_HOLD_MS", 200),
  /** How long the storm is watched from its first event: past a minute, to see the rate caps. */
  stormObserveS: envNumber("FLEETHEAL_BENCH_STORM_OBSERVE_S", 70),
  /** Distinct images across the fleet (the image breaker counts per image). */
  stormImages: envNumber("FLEETHEAL_BENCH_STORM_IMAGES", 1_000),
  /** Longest wait for one throughput run or for the storm's first decisions. */
  runTimeoutS: envNumber("FLEETHEAL_BENCH_RUN_TIMEOUT_S", 120),
  /** The handler's log level; operators run `info`. */
  logLevel: process.env.FLEETHEAL_BENCH_LOG_LEVEL ?? "info",
  cpuProfDir: process.env.FLEETHEAL_BENCH_CPU_PROF ?? "",
  seed: envNumber("FLEETHEAL_BENCH_SEED", 20261128),
  output: resultFile("handler-throughput.json"),
};

export const TARGETS = { throughputRatio: 0.5, stormDecidedS: 10 };
