// One load run with autocannon against one server child: throughput, latency, server CPU.

import { percentile, round } from "../runner/numbers.js";
import { procStat } from "../runner/proc.js";
import { CONFIG } from "./config.js";
import type { Server } from "./servers.js";

export type TargetName =
  | "ref /health"
  | "gateway /health"
  | "ref /containers"
  | "gateway /containers";

export interface Run {
  target: TargetName;
  round: number;
  requests: number;
  requestsPerSecond: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  /** autocannon's own (whole-millisecond) percentiles, for comparison. */
  autocannonLatencyMs: { p50: number; p99: number };
  bodyBytes: number;
  responseBytes: number;
  serverCpuUsPerRequest: number;
  serverCpuPercentOfOneCore: number;
  errors: number;
  non2xx: number;
}

export async function load(
  autocannon: typeof import("autocannon"),
  target: TargetName,
  roundNo: number,
  server: Server,
  url: string,
  bodyBytes: number,
): Promise<Run> {
  const opts = {
    url: `http://127.0.0.1:${server.port}${url}`,
    connections: CONFIG.connections,
    pipelining: 1,
  };
  if (CONFIG.warmupS > 0) await autocannon({ ...opts, duration: CONFIG.warmupS });
  const latencies = new Float64Array(Math.max(1_000_000, CONFIG.durationS * 200_000));
  let n = 0;
  let bytes = 0;
  const before = await procStat(server.child.pid as number);
  const t0 = performance.now();
  const result = await new Promise<import("autocannon").Result>((resolve, reject) => {
    const instance = autocannon({ ...opts, duration: CONFIG.durationS }, (err, r) =>
      err ? reject(err) : resolve(r),
    );
    instance.on("response", (_client, status, resBytes, ms) => {
      if (status === 200 && n < latencies.length) latencies[n++] = ms;
      bytes += resBytes;
    });
  });
  const seconds = (performance.now() - t0) / 1000;
  const after = await procStat(server.child.pid as number);
  const sorted = latencies.subarray(0, n).sort();
  const total = result.requests.total;
  const cpuS = (after.cpuMs - before.cpuMs) / 1000;
  return {
    target,
    round: roundNo,
    requests: total,
    requestsPerSecond: round(total / result.duration, 0),
    latencyMs: {
      p50: round(percentile(sorted, 50), 2),
      p90: round(percentile(sorted, 90), 2),
      p99: round(percentile(sorted, 99), 2),
      max: round(percentile(sorted, 100), 2),
    },
    autocannonLatencyMs: { p50: result.latency.p50, p99: result.latency.p99 },
    bodyBytes,
    responseBytes: total ? Math.round(bytes / total) : 0,
    serverCpuUsPerRequest: total ? round((cpuS / total) * 1e6, 1) : Number.NaN,
    serverCpuPercentOfOneCore: round((cpuS / seconds) * 100, 1),
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
}
