// What both server children of the gateway benchmark do: answer the load generator, listen, and
// time their own routes in-process.

import type { FastifyInstance } from "fastify";
import { percentile, round } from "../runner/numbers.js";
import { CONFIG, CONTAINERS_URL, HEALTH_URL } from "./config.js";
import type { Measured, Timing, ToChild, ToParent } from "./protocol.js";

/** Calls `fn` `n` times and returns the per-call durations in ms, sorted. */
export async function timeCalls(n: number, fn: () => unknown): Promise<Float64Array> {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    // inject() responses stay reachable until the event loop turns; without this a tight loop
    // of injections holds every response and the figures are the garbage collector's.
    if (i % 50 === 49) await new Promise(setImmediate);
    const t0 = performance.now();
    await fn();
    out[i] = performance.now() - t0;
  }
  return out.sort();
}

export function timing(sorted: Float64Array): Timing {
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    calls: sorted.length,
    meanUs: round((sum / sorted.length) * 1000, 1),
    p50Us: round(percentile(sorted, 50) * 1000, 1),
    p99Us: round(percentile(sorted, 99) * 1000, 1),
  };
}

/** process.memoryUsage() after a full GC when the child runs with --expose-gc. */
export function settledMemory(): NodeJS.MemoryUsage {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage();
}

export function send(message: ToParent): void {
  process.send?.(message);
}

/** Times `app.inject()` of both URLs: Fastify's whole request path without a socket. */
export async function timeInject(app: FastifyInstance): Promise<Measured["inject"]> {
  const inject = (url: string) => () => app.inject({ method: "GET", url });
  const containerCalls = Math.max(100, Math.round(CONFIG.injectCalls / 10));
  await timeCalls(Math.min(500, CONFIG.injectCalls), inject(HEALTH_URL)); // warm-up
  const health = timing(await timeCalls(CONFIG.injectCalls, inject(HEALTH_URL)));
  await timeCalls(Math.min(50, containerCalls), inject(CONTAINERS_URL));
  const containers = timing(await timeCalls(containerCalls, inject(CONTAINERS_URL)));
  return { health, containers };
}

/** Answers the parent's requests until it says exit. */
export function serveParent(app: FastifyInstance, measure: () => Promise<Measured>) {
  process.on("message", (m: ToChild) => {
    if (m.type === "stats") {
      // The heap as the runs left it (garbage included), then after a full GC.
      const before = process.memoryUsage();
      send({ type: "stats", before, memory: settledMemory() });
    }
    if (m.type === "measure")
      void measure().then((measured) => send({ type: "measured", measured }));
    if (m.type === "exit") void app.close().finally(() => process.exit(0));
  });
}

export async function listen(app: FastifyInstance): Promise<number> {
  await app.listen({ host: "127.0.0.1", port: 0 });
  const address = app.server.address();
  if (!address || typeof address === "string") throw new Error("no TCP address");
  return address.port;
}
