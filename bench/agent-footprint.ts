// Agent footprint: what one fleetheal agent costs on a host with 100 running containers, idle and
// under a burst of Docker transitions, on the real parts of the integration rig (a private dockerd,
// nats-server with JetStream, the agent as `node bin/fleetheal.js agent` from dist/).
//
//   npm run build && npm run bench:agent
//
// Idle: CPU time (utime+stime of /proc/<pid>/stat) and RSS (VmRSS) sampled once a second. The
// targets are absolute: idle CPU < 0.5 % of one core and RSS < 80 MB.
//
// Burst: Docker transitions are generated at increasing target rates (stop/start cycles, then
// pause/unpause, which Docker can do faster). For each step the achieved rate is Docker's own count
// of forwarded events, from an independent event recorder, and the step passes when every one of
// those events is stored in the stream exactly once (by message id `<host>:<id>:<timeNano>:<action>`).
// The reference measured in the same run is bare JetStream publish+consume of the same number of
// messages of the same size, with the agent's publish window.
//
// Everything is configurable through environment variables (see CONFIG below). Results go to
// bench/results/agent-footprint.json.

import { execFile } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { promisify } from "node:util";
import { type ConsumerMessages, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import {
  ContainerEvent,
  decode,
  EVENTS_STREAM,
  HOSTS_BUCKET,
  HostSnapshot,
  LIFECYCLE_ACTIONS,
} from "../contracts/index.js";
import {
  type DockerEventRecord,
  type DockerEventRecorder,
  recordDockerEvents,
  runTestContainer,
} from "../test/support/containers.js";
import { type DockerEngine, startDockerEngine } from "../test/support/dockerd.js";
import { type FleetProcess, REPO, startRole } from "../test/support/fleetheal.js";
import { startNatsServer } from "../test/support/nats-server.js";
import { describeError, waitFor } from "../test/support/wait.js";
import { percentile, round } from "./runner/numbers.js";
import { envNumber } from "./runner/settings.js";

const execFileAsync = promisify(execFile);

type OpKind = "cycle" | "pause";
interface StepPlan {
  kind: OpKind;
  /** Target Docker events per second. */
  target: number;
}

/** `cycle:20,cycle:40,pause:100` → steps. */
function parseSteps(raw: string): StepPlan[] {
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

const CONFIG = {
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
  output:
    process.env.FLEETHEAL_BENCH_OUTPUT ??
    path.join(REPO, "bench", "results", "agent-footprint.json"),
};

const HOST = "bench-host";
/** Docker actions the agent forwards (besides `health_status: …`). */
const FORWARDED: ReadonlySet<string> = new Set(LIFECYCLE_ACTIONS);

function messageId(
  id: string,
  timeNano: bigint | string,
  dockerAction: string,
): string | undefined {
  const action = dockerAction.startsWith("health_status: ")
    ? dockerAction.slice("health_status: ".length)
    : FORWARDED.has(dockerAction)
      ? dockerAction
      : undefined;
  return action && `${HOST}:${id}:${timeNano}:${action}`;
}

function expectedId(e: DockerEventRecord): string | undefined {
  return messageId(e.id, e.timeNano, e.action);
}

// --- process sampling -------------------------------------------------------------------------

interface ProcSample {
  at: number;
  cpuTicks: number;
  rssKb: number;
}

let clockTicks = 100;

async function sampleProc(pid: number): Promise<ProcSample> {
  const [stat, status] = await Promise.all([
    readFile(`/proc/${pid}/stat`, "utf8"),
    readFile(`/proc/${pid}/status`, "utf8"),
  ]);
  // Fields after "(comm)": state is field 3, utime 14 and stime 15 (proc(5)).
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const cpuTicks = Number(rest[11]) + Number(rest[12]);
  const rss = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
  return { at: performance.now(), cpuTicks, rssKb: Number(rss ?? Number.NaN) };
}

/** Samples `pid` every `intervalMs` until stopped. */
function startSampler(pid: number, intervalMs: number) {
  const samples: ProcSample[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      samples.push(await sampleProc(pid));
      await delay(intervalMs);
    }
  })();
  return {
    samples,
    async stop(): Promise<ProcSample[]> {
      stopped = true;
      await loop;
      samples.push(await sampleProc(pid));
      return samples;
    },
  };
}

interface Footprint {
  seconds: number;
  cpuPercentOfOneCore: number;
  rssMbMax: number;
  rssMbFinal: number;
}

function footprint(samples: ProcSample[]): Footprint {
  const first = samples[0];
  const last = samples.at(-1);
  if (!first || !last || samples.length < 2) throw new Error("not enough process samples");
  const seconds = (last.at - first.at) / 1000;
  const cpuSeconds = (last.cpuTicks - first.cpuTicks) / clockTicks;
  return {
    seconds: round(seconds, 1),
    cpuPercentOfOneCore: round((cpuSeconds / seconds) * 100, 3),
    rssMbMax: round(Math.max(...samples.map((s) => s.rssKb)) / 1024, 1),
    rssMbFinal: round(last.rssKb / 1024, 1),
  };
}

// --- what reached the stream ------------------------------------------------------------------

interface StoredView {
  /** Stored Docker-sourced events by id: how many times, and store time minus Docker time (ms). */
  counts: Map<string, number>;
  lagMs: Map<string, number>;
  /** When JetStream stored each id (ms since the epoch). */
  storedAtMs: Map<string, number>;
  total: number;
  close(): Promise<void>;
}

/** Follows every event of the bench host in the stream with an ordered consumer, from the start. */
async function followStream(nc: NatsConnection): Promise<StoredView> {
  const consumer = await jetstream(nc).consumers.get(EVENTS_STREAM, {
    filter_subjects: `fleetheal.v1.evt.${HOST}.>`,
  });
  const messages: ConsumerMessages = await consumer.consume();
  const view: StoredView = {
    counts: new Map(),
    lagMs: new Map(),
    storedAtMs: new Map(),
    total: 0,
    async close() {
      await messages.close();
      await done;
    },
  };
  const done = (async () => {
    for await (const m of messages) {
      view.total++;
      const decoded = decode(ContainerEvent, m.data);
      if (!decoded.ok || decoded.value.source !== "docker") continue;
      const id = decoded.value.id;
      view.counts.set(id, (view.counts.get(id) ?? 0) + 1);
      if (!view.lagMs.has(id)) {
        // Both are nanoseconds since the epoch; a double keeps them to well under a microsecond.
        view.lagMs.set(id, (m.info.timestampNanos - Number(decoded.value.timeNano)) / 1e6);
        view.storedAtMs.set(id, m.info.timestampNanos / 1e6);
      }
    }
  })();
  return view;
}

/**
 * A second plain listener on Docker's event stream that notes when each event arrives, so the
 * stored lag can be split into Docker's own delivery delay and what the agent path adds.
 */
async function watchDockerDelivery(engine: DockerEngine) {
  const arrivedLagMs = new Map<string, number>();
  const stream = (await engine.docker.getEvents({
    filters: JSON.stringify({ type: ["container"] }),
  } as unknown as Parameters<
    typeof engine.docker.getEvents
  >[0])) as unknown as NodeJS.ReadableStream & {
    destroy(): void;
  };
  let buffered = "";
  stream.on("data", (chunk: Buffer) => {
    const now = Date.now();
    buffered += chunk.toString("utf8");
    let nl = buffered.indexOf("\n");
    while (nl >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      nl = buffered.indexOf("\n");
      const nano = /"timeNano":(\d+)/.exec(line)?.[1];
      try {
        const raw = JSON.parse(line) as { Action?: string; Actor?: { ID?: string } };
        const id = nano && raw.Actor?.ID && raw.Action && messageId(raw.Actor.ID, nano, raw.Action);
        if (id && nano) arrivedLagMs.set(id, now - Number(nano) / 1e6);
      } catch {
        // A partial or foreign line; the recorder is the witness, this is only for timing.
      }
    }
  });
  stream.on("error", () => {});
  return { arrivedLagMs, close: async () => stream.destroy() };
}

// --- generating transitions -------------------------------------------------------------------

type Phase = "running" | "stopped" | "paused";

/**
 * Events Docker emits per operation. A cycle is `stop -t 0` then `start`: kill (SIGTERM), kill
 * (SIGKILL), die, stop, start. A pause operation is one pause or one unpause.
 */
const EVENTS_PER_OP: Record<OpKind, number> = { cycle: 5, pause: 1 };

async function operate(
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
async function generate(
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

async function actualPhase(engine: DockerEngine, id: string): Promise<Phase> {
  const state = (await engine.docker.getContainer(id).inspect()).State;
  return state.Paused ? "paused" : state.Running ? "running" : "stopped";
}

/** Brings every container back to running (unpausing or starting as needed), by Docker's view. */
async function allRunning(
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

// --- steps --------------------------------------------------------------------------------------

interface StepResult {
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

async function runStep(
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

async function readSnapshot(kv: KV): Promise<HostSnapshot | undefined> {
  const entry = await kv.get(HOST);
  const decoded = entry && entry.length > 0 ? decode(HostSnapshot, entry.value) : undefined;
  return decoded?.ok ? decoded.value : undefined;
}

// --- the bare JetStream reference ---------------------------------------------------------------

/**
 * Publishes `count` messages of `size` bytes with message ids and the agent's window of 64 acks
 * in flight to a scratch stream, then consumes them all with an ordered consumer.
 */
async function jetstreamReference(
  nc: NatsConnection,
  count: number,
  size: number,
): Promise<{ messages: number; bytes: number; seconds: number; perSecond: number }> {
  const jsm = await jetstreamManager(nc);
  const stream = "FLEETHEAL_BENCH_REFERENCE";
  await jsm.streams.add({ name: stream, subjects: ["bench.reference.>"] });
  try {
    const js = jetstream(nc);
    const payload = new Uint8Array(size).fill(120);
    const start = performance.now();
    let next = 0;
    const worker = async (): Promise<void> => {
      for (;;) {
        const i = next++;
        if (i >= count) return;
        await js.publish(`bench.reference.${i % 100}`, payload, { msgID: `ref-${i}` });
      }
    };
    await Promise.all(Array.from({ length: 64 }, worker));
    const consumer = await js.consumers.get(stream);
    const messages = await consumer.consume();
    let received = 0;
    for await (const m of messages) {
      received++;
      if (m.info.pending === 0 && received >= count) break;
    }
    await messages.close();
    const seconds = (performance.now() - start) / 1000;
    return {
      messages: count,
      bytes: size,
      seconds: round(seconds, 2),
      perSecond: Math.round(count / seconds),
    };
  } finally {
    await jsm.streams.delete(stream);
  }
}

// --- main ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const t0 = performance.now();
  const loadAtStart = os.loadavg().map((n) => round(n, 2));
  const cleanups: Array<() => PromiseLike<unknown>> = [];
  const log = (msg: string): void => {
    console.error(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${msg}`);
  };
  let failure: unknown;
  try {
    clockTicks = Number((await execFileAsync("getconf", ["CLK_TCK"])).stdout.trim()) || 100;

    log("starting nats-server and dockerd");
    const [nats, engine] = await Promise.all([startNatsServer(), startDockerEngine("bench")]);
    cleanups.push(() => nats[Symbol.asyncDispose]());
    cleanups.push(() => engine.stop());
    const nc = await connect({ servers: nats.url, name: "bench-reader" });
    cleanups.push(() => nc.close());

    log(`starting ${CONFIG.containers} containers`);
    const pool: string[] = [];
    for (let i = 0; i < CONFIG.containers; i += 10) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(10, CONFIG.containers - i) }, (_, k) =>
          runTestContainer(engine, { name: `bench-${i + k}`, healthcheck: false }),
        ),
      );
      pool.push(...batch.map((c) => c.id));
    }
    const phase = new Map<string, Phase>(pool.map((id) => [id, "running"]));
    const recorder = await recordDockerEvents(engine);
    cleanups.push(async () => recorder.close());
    const delivery = await watchDockerDelivery(engine);
    cleanups.push(() => delivery.close());

    log("starting the agent (default heartbeat)");
    const agent = await startRole("agent", "bench-agent", {
      FLEETHEAL_NATS_URL: nats.url,
      FLEETHEAL_HOST_ID: HOST,
      DOCKER_HOST: engine.dockerHost,
      FLEETHEAL_LOG_LEVEL: CONFIG.logLevel,
      ...(CONFIG.agentNodeOptions ? { NODE_OPTIONS: CONFIG.agentNodeOptions } : {}),
    });
    cleanups.push(() => agent[Symbol.asyncDispose]());
    const kv = await waitFor(() => new Kvm(nc).open(HOSTS_BUCKET), {
      timeoutMs: 10_000,
      message: "hosts bucket never appeared",
    });
    const first = await waitFor(
      async () => {
        const s = await readSnapshot(kv);
        return s && s.containers.length === CONFIG.containers ? s : undefined;
      },
      {
        timeoutMs: 60_000,
        intervalMs: 250,
        message: `snapshot never listed ${CONFIG.containers} containers`,
      },
    );
    log(`snapshot lists ${first.containers.length} containers (heartbeat ${first.heartbeatMs} ms)`);
    const stored = await followStream(nc);
    cleanups.push(() => stored.close());

    await delay(CONFIG.settleS * 1000);
    log(`idle: sampling the agent for ${CONFIG.idleS} s`);
    const idleSampler = startSampler(agent.pid, 1000);
    await delay(CONFIG.idleS * 1000);
    const idle = footprint(await idleSampler.stop());
    const idleSnapshot = await readSnapshot(kv);
    log(
      `idle: ${idle.cpuPercentOfOneCore} % of one core, RSS max ${idle.rssMbMax} MB, final ${idle.rssMbFinal} MB`,
    );

    const steps: StepResult[] = [];
    const saturated = new Set<OpKind>();
    for (const plan of CONFIG.steps) {
      if (saturated.has(plan.kind)) continue;
      if (steps.some((s) => !s.zeroLoss)) break;
      // A stopped container cannot be paused: switching kinds starts from all running.
      if (steps.length > 0 && steps.at(-1)?.kind !== plan.kind) {
        await allRunning(engine, pool, phase);
        await delay(1000);
      }
      log(`burst: ${plan.kind} at ${plan.target} events/s for ${CONFIG.stepS} s`);
      const r = await runStep(
        { engine, recorder, stored, agent, kv, pool, phase, delivery: delivery.arrivedLagMs },
        plan,
      );
      steps.push(r);
      log(
        `  docker ${r.dockerEventsPerSecond} ev/s (${r.dockerEvents} events), missing ${r.missing}, ` +
          `duplicated ${r.duplicated}, drain ${r.drainMs} ms, lag p50 ${r.lagMsP50} ms p99 ${r.lagMsP99} ms ` +
          `(Docker delivery p50 ${r.dockerDeliveryLagMsP50} ms p99 ${r.dockerDeliveryLagMsP99} ms), ` +
          `agent ${r.agent.cpuPercentOfOneCore} % CPU, RSS max ${r.agent.rssMbMax} MB`,
      );
      // Docker could not keep up with the target: a higher target of this kind says nothing new.
      if (r.dockerEventsPerSecond < plan.target * 0.7) saturated.add(plan.kind);
    }
    await allRunning(engine, pool, phase);

    // Every forwarded transition since the agent started, across all steps and between them.
    await delay(500);
    const allExpected = recorder.events
      .filter((e) => pool.includes(e.id))
      .map(expectedId)
      .filter((id): id is string => id !== undefined);
    await waitFor(() => allExpected.every((id) => stored.counts.has(id)), {
      timeoutMs: CONFIG.drainS * 1000,
      message: "not every transition reached the stream",
    }).catch(() => {}); // counted below
    const overall = {
      dockerEvents: allExpected.length,
      missing: allExpected.filter((id) => !stored.counts.has(id)).length,
      duplicated: allExpected.filter((id) => (stored.counts.get(id) ?? 0) > 1).length,
    };
    const finalSnapshot = await readSnapshot(kv);

    let reference: Awaited<ReturnType<typeof jetstreamReference>> | undefined;
    if (CONFIG.referenceMessages > 0) {
      const jsm = await jetstreamManager(nc);
      const sample = await jsm.streams.getMessage(EVENTS_STREAM, {
        last_by_subj: `fleetheal.v1.evt.${HOST}.>`,
      });
      const size = sample?.data.length ?? 600;
      log(`reference: bare JetStream publish+consume of ${CONFIG.referenceMessages} × ${size} B`);
      reference = await jetstreamReference(nc, CONFIG.referenceMessages, size);
    }

    const passing = steps.filter((s) => s.zeroLoss);
    const best = passing.reduce<StepResult | undefined>(
      (a, s) => (!a || s.dockerEventsPerSecond > a.dockerEventsPerSecond ? s : a),
      undefined,
    );
    const [dockerVersion, natsVersion] = await Promise.all([
      engine.docker.version().then((v) => v.Version),
      execFileAsync("nats-server", ["--version"]).then(
        (r) => r.stdout.trim(),
        () => "unknown",
      ),
    ]);
    const result = {
      date: new Date().toISOString(),
      command: "npm run build && npm run bench:agent",
      machine: {
        cores: os.cpus().length,
        cpu: os.cpus()[0]?.model ?? "unknown",
        memGiB: round(os.totalmem() / 2 ** 30, 1),
        kernel: os.release(),
        node: process.version,
        docker: dockerVersion,
        nats: natsVersion,
        clockTicks,
        // The machine is shared: a high load average means other work competed with this run.
        loadAverage1_5_15: { atStart: loadAtStart, atEnd: os.loadavg().map((n) => round(n, 2)) },
      },
      config: CONFIG,
      containers: CONFIG.containers,
      heartbeatMs: first.heartbeatMs,
      idle: {
        ...idle,
        targets: { cpuPercentOfOneCore: 0.5, rssMb: 80 },
        meetsCpuTarget: idle.cpuPercentOfOneCore < 0.5,
        meetsRssTarget: idle.rssMbMax < 80,
        snapshotsDuringIdle: idleSnapshot && first ? idleSnapshot.seq - first.seq : undefined,
      },
      burst: {
        steps,
        best: best
          ? {
              kind: best.kind,
              dockerEventsPerSecond: best.dockerEventsPerSecond,
              agentCpuPercentOfOneCore: best.agent.cpuPercentOfOneCore,
              agentRssMbMax: best.agent.rssMbMax,
              lagMsP50: best.lagMsP50,
              lagMsP99: best.lagMsP99,
              ratioToJetStreamReference: reference
                ? round(best.dockerEventsPerSecond / reference.perSecond, 4)
                : undefined,
            }
          : undefined,
        limitedBy: steps.some((s) => !s.zeroLoss)
          ? "loss or duplicates in the agent path"
          : "Docker's own rate of transitions (every step had zero loss)",
        overall,
        outboxDropped: finalSnapshot?.outbox.dropped,
        outboxPublished: finalSnapshot?.outbox.published,
      },
      reference,
      runtimeSeconds: 0,
    };
    result.runtimeSeconds = Math.round((performance.now() - t0) / 1000);

    printTable(result.idle, steps, reference);
    await mkdir(path.dirname(CONFIG.output), { recursive: true });
    await writeFile(CONFIG.output, `${JSON.stringify(result, null, 2)}\n`);
    log(`wrote ${path.relative(REPO, CONFIG.output)}`);
    if (overall.missing > 0 || overall.duplicated > 0) {
      throw new Error(
        `${overall.missing} Docker transitions missing and ${overall.duplicated} duplicated in the stream overall`,
      );
    }
  } catch (err) {
    failure = err;
  } finally {
    log("tearing down");
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch (err) {
        console.error(`teardown: ${describeError(err)}`);
        failure ??= err;
      }
    }
    log("done");
  }
  if (failure) throw failure;
}

function printTable(
  idle: Footprint & { meetsCpuTarget: boolean; meetsRssTarget: boolean },
  steps: StepResult[],
  reference: { perSecond: number } | undefined,
): void {
  const out: string[] = [
    "",
    `Agent footprint, ${CONFIG.containers} running containers`,
    "",
    "| phase | Docker ev/s | stored once / expected | dup | stored lag p50/p99 ms | Docker delivery p50/p99 ms | agent CPU % of 1 core | agent RSS max MB |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
    `| idle ${idle.seconds} s | 0 | – | – | – | – | ${idle.cpuPercentOfOneCore} (target < 0.5: ${idle.meetsCpuTarget ? "met" : "MISSED"}) | ${idle.rssMbMax} (final ${idle.rssMbFinal}; target < 80: ${idle.meetsRssTarget ? "met" : "MISSED"}) |`,
  ];
  for (const s of steps) {
    out.push(
      `| ${s.kind} @ ${s.targetEventsPerSecond} | ${s.dockerEventsPerSecond} | ${s.stored - s.duplicated}/${s.dockerEvents} | ${s.duplicated} | ${s.lagMsP50}/${s.lagMsP99} | ${s.dockerDeliveryLagMsP50}/${s.dockerDeliveryLagMsP99} | ${s.agent.cpuPercentOfOneCore} | ${s.agent.rssMbMax} |`,
    );
  }
  if (reference)
    out.push(`\nbare JetStream publish+consume reference: ${reference.perSecond} msg/s`);
  console.log(out.join("\n"));
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
