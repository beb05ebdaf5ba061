// The gateway benchmark's settings (docs/benchmarks/PERFORMANCE.md, "Gateway"), from the environment: read
// by the load generator and by the server children alike, which inherit its environment.

import path from "node:path";
import { BENCH_REPO } from "../runner/children.js";
import { envNumber } from "../runner/settings.js";

/** The checkout, passed to the children: they run from dist/bench/gateway/. */
export const REPO_ENV = "FLEETHEAL_BENCH_GATEWAY_REPO";
/** The checkout: this one, or the one the parent names for a child running from dist/. */
export const REPO = process.env[REPO_ENV] ?? BENCH_REPO;

export const FLEET_FILE_ENV = "FLEETHEAL_BENCH_GATEWAY_FLEET_FILE";

/** How compose.yaml (NODE_OPTIONS) and infra/systemd/fleetheal-gateway.service run the gateway. */
const DEPLOYED_GATEWAY_FLAGS = "--max-old-space-size=512";

export const CONFIG = {
  hosts: envNumber("FLEETHEAL_BENCH_HOSTS", 1_000),
  containersPerHost: envNumber("FLEETHEAL_BENCH_CONTAINERS_PER_HOST", 50),
  /** Share of running containers with a health check (Docker's or a label probe) that fail it. */
  unhealthyShare: envNumber("FLEETHEAL_BENCH_UNHEALTHY_SHARE", 0.02),
  /** Share of the same containers still `starting`. */
  startingShare: envNumber("FLEETHEAL_BENCH_STARTING_SHARE", 0.01),
  /** Share of hosts last heard from long enough ago to be stale (not down) for the whole run. */
  staleHostShare: envNumber("FLEETHEAL_BENCH_STALE_HOST_SHARE", 0.02),
  /** The snapshots' heartbeat; long, so that nothing changes status while the bench runs. */
  heartbeatMs: envNumber("FLEETHEAL_BENCH_HEARTBEAT_MS", 600_000),
  /**
   * Host snapshots re-applied per second while the load runs (decoded from JSON like the KV
   * watch does), each one invalidating the cached /health body and the sorted container list.
   * 0 (the default) keeps the view constant; a fleet of 1,000 agents on the default 5 s
   * heartbeat would be 200.
   */
  refreshPerSecond: envNumber("FLEETHEAL_BENCH_REFRESH_PER_S", 0),
  connections: envNumber("FLEETHEAL_BENCH_CONNECTIONS", 50),
  warmupS: envNumber("FLEETHEAL_BENCH_WARMUP_S", 2),
  durationS: envNumber("FLEETHEAL_BENCH_DURATION_S", 10),
  rounds: envNumber("FLEETHEAL_BENCH_ROUNDS", 3),
  /** `app.inject()` calls timed in-process per route (the /containers count is a tenth of it). */
  injectCalls: envNumber("FLEETHEAL_BENCH_INJECT_CALLS", 2_000),
  /**
   * Node or V8 flags for the gateway child only, space-separated. The default is the heap cap
   * that compose.yaml and the systemd unit run the gateway with; set another to measure a flag
   * before it goes into the gateway's deployment, or an empty value for V8's defaults.
   */
  gatewayNodeFlags: (process.env.FLEETHEAL_BENCH_GATEWAY_NODE_FLAGS ?? DEPLOYED_GATEWAY_FLAGS)
    .split(" ")
    .filter(Boolean),
  /** Set to a folder to write a V8 CPU profile of the gateway child (`node --cpu-prof`). */
  cpuProfDir: process.env.FLEETHEAL_BENCH_CPU_PROF ?? "",
  seed: envNumber("FLEETHEAL_BENCH_SEED", 20261127),
  output: process.env.FLEETHEAL_BENCH_OUTPUT ?? path.join(REPO, "bench", "results", "gateway.json"),
};

export const HEALTH_URL = "/health";
export const CONTAINERS_URL = "/containers?health=unhealthy";
