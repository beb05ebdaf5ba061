// One burst step: transitions at a target rate, then what reached the stream and what it cost.

import { setTimeout as delay } from "node:timers/promises";
import type { KV } from "@nats-io/kv";
import type { DockerEventRecorder } from "../../test/support/containers.js";
import type { DockerEngine } from "../../test/support/dockerd.js";
import type { FleetProcess } from "../../test/support/fleetheal.js";
import { percentile, round } from "../runner/numbers.js";
import { type Footprint, footprint, startSampler } from "../runner/proc.js";
import { CONFIG, HOST, type OpKind, type StepPlan } from "./config.js";
import { expectedId, readSnapshot, type StoredView } from "./stream.js";
import { EVENTS_PER_OP, generate, type Phase } from "./transitions.js";

export interface StepResult {
  kind: OpKind;
  targetEventsPerSecond: number;
  operations: number;
  skippedOperations: number;
  operationErrors: number;
  /** A few distinct error messages of the generator's Docker calls. */
  operationErrorSamples: string[];
  dockerEvents: number;
  dockerEventsPerSecond: number;
  stored: number;
  missing: number;
  duplicated: number;
  /** Stored Docker events of this window the independent recorder did not see. */
  notWitnessed: number;
  forwardedRatio: number;
  /** From generation end until JetStream stored the step's last event (0: it kept up). */
  drainMs: number;
  lagMsP50: number;
  lagMsP99: number;
  lagMsMax: number;
  /** Docker event time to arrival at a plain listener in the bench process. */
  dockerDeliveryLagMsP50: number;
  dockerDeliveryLagMsP99: number;
  outboxDroppedTotal: number;
  agent: Footprint;
  zeroLoss: boolean;
}

export async function runStep(
  ctx: {
    engine: DockerEngine;
    recorder: DockerEventRecorder;
    stored: StoredView;
    agent: FleetProcess;
    kv: KV;
    pool: string[];
    phase: Map<string, Phase>;
    delivery: Map<string, number>;
  },
  plan: StepPlan,
): Promise<StepResult> {
  const { engine, recorder, stored, agent, pool, phase } = ctx;
  const poolIds = new Set(pool);
  const firstIndex = recorder.events.length;
  const startNano = BigInt(Date.now()) * 1_000_000n;
  const sampler = startSampler(agent.pid, 500);
  const durationMs = CONFIG.stepS * 1000;
  const gen = await generate(
    engine,
    plan.kind,
    plan.target / EVENTS_PER_OP[plan.kind],
    durationMs,
    pool,
    phase,
  );
  const genEndMs = Date.now();
  const endNano = BigInt(Date.now()) * 1_000_000n;
  // The last operations' events are still on their way to the recorder.
  await delay(500);
  const window = recorder.events
    .slice(firstIndex)
    .filter((e) => poolIds.has(e.id) && expectedId(e) !== undefined);
  const expected = window.map((e) => expectedId(e) as string);
  const inWindow = window.filter((e) => e.timeNano >= startNano && e.timeNano <= endNano).length;
  const deadline = performance.now() + CONFIG.drainS * 1000;
  while (performance.now() < deadline && !expected.every((id) => stored.counts.has(id))) {
    await delay(50);
  }
  // From the end of generation until JetStream stored the step's last event.
  const lastStored = Math.max(0, ...expected.map((id) => stored.storedAtMs.get(id) ?? 0));
  const drainMs = Math.max(0, lastStored - genEndMs);
  const samples = await sampler.stop();
  // CPU and RSS over generation plus drain: all the work the burst caused.
  const agentFootprint = footprint(samples);

  const missing = expected.filter((id) => !stored.counts.has(id)).length;
  const duplicated = expected.filter((id) => (stored.counts.get(id) ?? 0) > 1).length;
  const witnessed = new Set(expected);
  const prefixes = pool.map((id) => `${HOST}:${id}:`);
  let notWitnessed = 0;
  for (const id of stored.counts.keys()) {
    if (witnessed.has(id) || !prefixes.some((p) => id.startsWith(p))) continue;
    const nano = BigInt(id.split(":")[2] ?? "0");
    if (nano >= startNano && nano <= endNano) notWitnessed++;
  }
  const lags = expected
    .map((id) => stored.lagMs.get(id))
    .filter((v): v is number => v !== undefined)
    .sort((a, b) => a - b);
  const delivery = expected
    .map((id) => ctx.delivery.get(id))
    .filter((v): v is number => v !== undefined)
    .sort((a, b) => a - b);
  const snapshot = await readSnapshot(ctx.kv);
  const seconds = CONFIG.stepS;
  return {
    kind: plan.kind,
    targetEventsPerSecond: plan.target,
    operations: gen.launched,
    skippedOperations: gen.skipped,
    operationErrors: gen.errors.length,
    operationErrorSamples: [...new Set(gen.errors)].slice(0, 3),
    dockerEvents: expected.length,
    dockerEventsPerSecond: round(inWindow / seconds, 1),
    stored: expected.length - missing,
    missing,
    duplicated,
    notWitnessed,
    forwardedRatio:
      expected.length === 0 ? 0 : round((expected.length - missing) / expected.length, 4),
    drainMs: Math.round(drainMs),
    lagMsP50: round(percentile(lags, 50), 1),
    lagMsP99: round(percentile(lags, 99), 1),
    lagMsMax: round(lags.at(-1) ?? Number.NaN, 1),
    dockerDeliveryLagMsP50: round(percentile(delivery, 50), 1),
    dockerDeliveryLagMsP99: round(percentile(delivery, 99), 1),
    outboxDroppedTotal: snapshot?.outbox.dropped ?? -1,
    agent: agentFootprint,
    zeroLoss: missing === 0 && duplicated === 0 && expected.length > 0,
  };
}
