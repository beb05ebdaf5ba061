// The operations floor measured (bench/handlers/ops-floor.ts is its child program): one child per
// handler replica on the handler's own consumers, measured like the handler.

import path from "node:path";
import { EVENTS_STREAM, LEDGER_BUCKET } from "../../contracts/index.js";
import { withTimeout } from "../runner/async.js";
import { BENCH_REPO, forkProgram, nextMessage } from "../runner/children.js";
import { benchLog } from "../runner/report.js";
import { CONFIG } from "./config.js";
import { type Context, resetBuckets } from "./context.js";
import { type BoundHandler, DEPENDENTS, HEAL, PULL_EXPIRES_MS } from "./handler-settings.js";
import { type HealPathRun, measureHealPath } from "./heal-path.js";
import {
  FLOOR_ORDER_ENV,
  type FloorConsumer,
  type FloorOrder,
  type FromFloor,
  type ToFloor,
} from "./ops-floor-protocol.js";

const log = benchLog("handlers");
const FLOOR = path.join(BENCH_REPO, "bench", "handlers", "ops-floor.ts");
/** heal's restart deadline for a container without a stop-timeout label: 10 s + 30 s. */
const COMMAND_TIMEOUT_MS = 40_000;

function floorConsumer(handler: BoundHandler): FloorConsumer {
  return {
    durable: handler.durable,
    concurrency: handler.concurrency,
    maxMessages: Math.max(handler.concurrency * 2, 16),
    expiresMs: PULL_EXPIRES_MS,
  };
}

/** The handlers' own consumers and concurrency, so that the floor follows them if they change. */
function floorOrder(url: string, name: string): FloorOrder {
  return {
    url,
    name,
    healName: HEAL.name,
    heal: floorConsumer(HEAL),
    dependents: floorConsumer(DEPENDENTS),
    commandTimeoutMs: COMMAND_TIMEOUT_MS,
  };
}

/** A floor child as the parent sees it. */
interface FloorChild {
  pid: number;
  ready: Promise<void>;
  /** Rejects when the child reports a failure or exits before it was stopped. */
  failed: Promise<never>;
  /** Stops it; how many events and `restarted` records it acked. */
  stop(): Promise<{ heal: number; dependents: number }>;
  kill(): void;
}

function startFloorChild(url: string, name: string): FloorChild {
  const profile = CONFIG.cpuProfDir
    ? ["--cpu-prof", "--cpu-prof-dir", path.resolve(CONFIG.cpuProfDir)]
    : [];
  const child = forkProgram(FLOOR, {
    execArgv: ["--import", "tsx", ...profile],
    env: { [FLOOR_ORDER_ENV]: JSON.stringify(floorOrder(url, name)) },
  });
  let stopping = false;
  const failed = new Promise<never>((_, reject) => {
    child.on("message", (m: FromFloor) => {
      if (m.type === "failed") reject(new Error(`${name}: ${m.error}`));
    });
    child.once("exit", (code) => {
      if (!stopping) reject(new Error(`${name} exited with ${code}`));
    });
  });
  failed.catch(() => {});
  const ready = nextMessage<FromFloor, "ready">(child, "ready").then(() => undefined);
  ready.catch(() => {});
  return {
    pid: child.pid as number,
    ready: Promise.race([ready, failed]),
    failed,
    async stop() {
      stopping = true;
      const stopped = nextMessage<FromFloor, "stopped">(child, "stopped");
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.send({ type: "stop" } satisfies ToFloor);
      const counts = await withTimeout(stopped, 30_000, () => `${name} did not stop`);
      await withTimeout(exited, 30_000, () => `${name} did not exit`);
      return { heal: counts.heal, dependents: counts.dependents };
    },
    kill() {
      stopping = true;
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    },
  };
}

export interface FloorRun extends HealPathRun {
  /** Acked by the floor children: every event, and every `restarted` record. */
  acked: { heal: number; dependents: number };
}

/**
 * The floor on the handler's consumers: they must exist with the runtime's settings, which the
 * handler run before it has made sure of.
 */
export async function floorRun(ctx: Context, replicas: number, runNo: number): Promise<FloorRun> {
  for (const durable of [HEAL.durable, DEPENDENTS.durable]) {
    await ctx.fjs.jsm.consumers.info(EVENTS_STREAM, durable).catch((error: unknown) => {
      throw new Error(`ops floor: consumer ${durable} missing (a handler run creates it)`, {
        cause: error,
      });
    });
  }
  await resetBuckets(ctx, [LEDGER_BUCKET]);
  ctx.agents.reset(CONFIG.restartMs);
  const children = Array.from({ length: replicas }, (_, i) =>
    startFloorChild(ctx.natsUrl, `bench-ops-floor-x${replicas}-r${runNo}-${i + 1}`),
  );
  try {
    if (CONFIG.cpuProfDir) {
      log(`ops floor x${replicas}: CPU profiles of pids ${children.map((c) => c.pid).join(", ")}`);
    }
    const failed = Promise.race(children.map((c) => c.failed));
    failed.catch(() => {});
    await withTimeout(
      Promise.all(children.map((c) => c.ready)),
      60_000,
      () => `ops floor x${replicas}: children not ready`,
    );
    const label = `ops floor x${replicas}`;
    const run = await measureHealPath(ctx, children, label, runNo, failed);
    const counts = await Promise.all(children.map((c) => c.stop()));
    const acked = {
      heal: counts.reduce((n, c) => n + c.heal, 0),
      dependents: counts.reduce((n, c) => n + c.dependents, 0),
    };
    if (acked.heal !== run.events || acked.dependents !== run.events) {
      throw new Error(`${label}: acked ${JSON.stringify(acked)} of ${run.events} events`);
    }
    return { ...run, replicas, acked };
  } finally {
    for (const c of children) c.kill();
  }
}
