// Docker transitions at a target rate: stop/start cycles and pause/unpause on a pool of containers.

import { setTimeout as delay } from "node:timers/promises";
import type { DockerEngine } from "../../test/support/dockerd.js";
import { describeError } from "../../test/support/wait.js";
import type { OpKind } from "./config.js";

export type Phase = "running" | "stopped" | "paused";

/**
 * Events Docker emits per operation. A cycle is `stop -t 0` then `start`: kill (SIGTERM), kill
 * (SIGKILL), die, stop, start. A pause operation is one pause or one unpause.
 */
export const EVENTS_PER_OP: Record<OpKind, number> = { cycle: 5, pause: 1 };

export async function operate(
  engine: DockerEngine,
  kind: OpKind,
  id: string,
  phase: Map<string, Phase>,
): Promise<void> {
  const c = engine.docker.getContainer(id);
  const now = phase.get(id);
  if (kind === "cycle") {
    if (now === "running") {
      phase.set(id, "stopped");
      await c.stop({ t: 0 });
    }
    await c.start();
    phase.set(id, "running");
  } else if (now === "paused") {
    await c.unpause();
    phase.set(id, "running");
  } else {
    await c.pause();
    phase.set(id, "paused");
  }
}

/**
 * Launches operations at `opsPerSecond` for `durationMs`, each on a container no other operation
 * is using. When every container is busy the due operations are skipped (counted), so a saturated
 * Docker shows up as an achieved rate below the target instead of an ever-growing backlog.
 */
export async function generate(
  engine: DockerEngine,
  kind: OpKind,
  opsPerSecond: number,
  durationMs: number,
  pool: string[],
  phase: Map<string, Phase>,
): Promise<{ launched: number; skipped: number; errors: string[] }> {
  const busy = new Set<string>();
  const inflight = new Set<Promise<void>>();
  const errors: string[] = [];
  let launched = 0;
  let due = 0;
  let skipped = 0;
  let cursor = 0;
  const start = performance.now();
  for (;;) {
    const elapsed = performance.now() - start;
    if (elapsed >= durationMs) break;
    const shouldHave = Math.floor((elapsed / 1000) * opsPerSecond);
    while (due < shouldHave) {
      due++;
      let id: string | undefined;
      for (let k = 0; k < pool.length; k++) {
        const candidate = pool[(cursor + k) % pool.length] as string;
        if (!busy.has(candidate)) {
          id = candidate;
          cursor = (cursor + k + 1) % pool.length;
          break;
        }
      }
      if (!id) {
        skipped++;
        continue;
      }
      const target = id;
      launched++;
      busy.add(target);
      const p: Promise<void> = operate(engine, kind, target, phase)
        .catch(async (err: unknown) => {
          errors.push(describeError(err));
          // Whatever half happened, the next operation on it starts from Docker's view.
          phase.set(target, await actualPhase(engine, target).catch(() => "running" as const));
        })
        .finally(() => {
          busy.delete(target);
          inflight.delete(p);
        });
      inflight.add(p);
    }
    await delay(5);
  }
  await Promise.all(inflight);
  return { launched, skipped, errors };
}

export async function actualPhase(engine: DockerEngine, id: string): Promise<Phase> {
  const state = (await engine.docker.getContainer(id).inspect()).State;
  return state.Paused ? "paused" : state.Running ? "running" : "stopped";
}

/** Brings every container back to running (unpausing or starting as needed), by Docker's view. */
export async function allRunning(
  engine: DockerEngine,
  pool: string[],
  phase: Map<string, Phase>,
): Promise<void> {
  for (let i = 0; i < pool.length; i += 10) {
    await Promise.all(
      pool.slice(i, i + 10).map(async (id) => {
        const c = engine.docker.getContainer(id);
        const now = await actualPhase(engine, id);
        if (now === "paused") await c.unpause();
        else if (now === "stopped") await c.start();
        phase.set(id, "running");
      }),
    );
  }
}
