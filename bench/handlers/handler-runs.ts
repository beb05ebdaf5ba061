// The handler as operators run it (`fleetheal handler`, from a build's dist/), its replicas
// started and stopped around a run, and what they report about it.

import { mkdir } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { NatsConnection } from "@nats-io/nats-core";
import {
  decode,
  HandlerStats,
  handlerStatsSubject,
  LEDGER_BUCKET,
  toToken,
} from "../../contracts/index.js";
import { type ManagedProcess, startProcess } from "../../test/support/process.js";
import { type Build, cliOf, startBuildRole } from "../runner/builds.js";
import { benchLog } from "../runner/report.js";
import { CONFIG } from "./config.js";
import { BENCH_HOST_EVENTS_MAX_BYTES, type Context, resetBuckets } from "./context.js";
import { type HealPathRun, measureHealPath } from "./heal-path.js";

const log = benchLog("handlers");

export async function startHandlers(
  build: Build,
  url: string,
  count: number,
  label: string,
): Promise<ManagedProcess[]> {
  const env: Record<string, string> = {
    FLEETHEAL_NATS_URL: url,
    FLEETHEAL_LOG_LEVEL: CONFIG.logLevel,
    // A thousand hosts' shares at the default would reserve 64 GiB of the bench's disk.
    FLEETHEAL_EVENTS_HOST_MAX_BYTES: String(BENCH_HOST_EVENTS_MAX_BYTES),
  };
  const started = await Promise.all(
    Array.from({ length: count }, (_, i) => startHandler(build, `${label}-${i + 1}`, env)),
  );
  if (CONFIG.cpuProfDir) {
    log(`${label}: CPU profiles of pids ${started.map((p) => p.pid).join(", ")}`);
  }
  return started;
}

/**
 * The handler role of `build` as operators run it; with a profile folder, the same command under
 * `node --cpu-prof`.
 */
async function startHandler(
  build: Build,
  name: string,
  env: Record<string, string>,
): Promise<ManagedProcess> {
  if (!CONFIG.cpuProfDir) return startBuildRole(build, "handler", name, env);
  const dir = path.resolve(CONFIG.cpuProfDir);
  await mkdir(dir, { recursive: true });
  const proc = await startProcess({
    name,
    command: process.execPath,
    args: ["--cpu-prof", "--cpu-prof-dir", dir, cliOf(build), "handler"],
    env,
    cwd: build.checkout,
  });
  await proc.waitForJson((l) => l.msg === "handler replica started", 30_000);
  return proc;
}

export async function stopHandlers(handlers: ManagedProcess[]): Promise<void> {
  await Promise.all(handlers.map((h) => h.stop("SIGTERM", 30_000)));
}

/**
 * The heal handler's counters summed over the replicas (their `fleetheal-handler` stats
 * endpoint), and their warnings and errors by message.
 */
export async function handlerReport(nc: NatsConnection, handlers: ManagedProcess[]) {
  const heal: Record<string, number> = {};
  for (const h of handlers) {
    const replica = toToken(`fleetheal-handler-${os.hostname()}-${h.pid}`);
    const reply = await nc.request(handlerStatsSubject(replica), "", { timeout: 5_000 });
    const stats = decode(HandlerStats, reply.data);
    if (!stats.ok) throw new Error(`handler stats of ${replica}: ${stats.error.message}`);
    for (const [k, v] of Object.entries(stats.value.handlers.heal ?? {})) {
      heal[k] = (heal[k] ?? 0) + v;
    }
  }
  const warnings: Record<string, number> = {};
  for (const h of handlers) {
    for (const line of h.json) {
      if (line.level !== "warn" && line.level !== "error" && line.level !== "fatal") continue;
      const msg = String(line.msg);
      warnings[msg] = (warnings[msg] ?? 0) + 1;
    }
  }
  return { heal, warnings };
}

export interface HandlerRun extends HealPathRun {
  handlers: Awaited<ReturnType<typeof handlerReport>>;
}

/** One throughput run of `build`'s handler with `replicas` replicas. */
export async function handlerRun(
  ctx: Context,
  build: Build,
  replicas: number,
  runNo: number,
): Promise<HandlerRun> {
  // A clean ledger, so that every container's restart is its first (no backoff).
  await resetBuckets(ctx, [LEDGER_BUCKET]);
  ctx.agents.reset(CONFIG.restartMs);
  const kind = build.name === "current" ? "handler" : "baseline";
  const handlers = await startHandlers(
    build,
    ctx.natsUrl,
    replicas,
    `${kind}-x${replicas}-r${runNo}`,
  );
  try {
    const run = await measureHealPath(ctx, handlers, `${kind} run x${replicas}`, runNo);
    return { ...run, replicas, handlers: await handlerReport(ctx.observerNc, handlers) };
  } finally {
    await stopHandlers(handlers);
  }
}
