// Handler throughput and storm: what the heal path costs at fleet scale, on the real parts
// (nats-server with JetStream, the handler as operators run it: `node bin/fleetheal.js handler`
// from dist/), with synthetic hosts in place of agents and Docker.
//
//   npm run build && npm run bench:handlers
//
// Synthetic hosts: 1,000 hosts × 50 containers, each with a host snapshot in KV (so that the
// dependents handler finds the restarted container, as it would in production), publishing
// contract events with their message id like agent/outbox.ts, and answering the restart
// commands on `fleetheal.v1.cmd.<host>.restart` with a valid `restarted` reply, as agents do.
//
// Throughput: 20,000 containers spread over every host turn unhealthy once; the fleet policy
// (KV) lifts the storm caps and the image breaker, so every event is a real restart decision.
// An event is done when its `restarted` record arrives: the handler publishes it after the
// ledger holds the outcome and acks the event only once it is stored, so it is the last step
// of the whole path. The reference is bare JetStream publish + consume with explicit acks of
// the same messages (same count, same bytes, same publisher, consumer in a child process like
// the handler) on the same server, measured before and after each handler run. A second
// reference, the operations floor, runs after the reference that follows each handler run: the
// same events through the handler's own consumers and buckets, with exactly the NATS and
// JetStream operations the handler makes per event, but none of fleetheal's code (see
// serveOpsFloor). nats-server's message counters (`/varz`) and the streams' sequences show that
// both make the same operations; the handler's ratio to the floor is what fleetheal's code costs.
//
// Storm: the default policy; all 50,000 containers turn unhealthy within one second. Measured:
// the time until every one has its first remediation record (decided, skipped storm-cap,
// quarantined image-breaker…); the caps, as restarts in progress at the synthetic agents (each
// restart held FLEETHEAL_BENCH_STORM_HOLD_MS) and as restarts per minute timed by when their
// rate slots were taken; and how often the heal consumer delivers afterwards.
//
// Everything is configurable through environment variables (see CONFIG and docs/PERFORMANCE.md);
// with FLEETHEAL_BENCH_CPU_PROF=<dir> every handler and floor process writes a V8 CPU profile
// there.
// Results go to bench/results/handler-throughput.json.

import { type ChildProcess, execFile, fork } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import {
  AckPolicy,
  type ConsumerMessages,
  DeliverPolicy,
  DiscardPolicy,
  type JetStreamClient,
  type JsMsg,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
} from "@nats-io/jetstream";
import { type KV, Kvm, KvWatchInclude } from "@nats-io/kv";
import type { Msg, NatsConnection, Subscription } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { type FleetJetStream, openFleetJetStream } from "../common/jetstream-resources.js";
import {
  BREAKERS_BUCKET,
  COMMAND_REPLY_TYPE,
  CONTAINER_EVENT_TYPE,
  type CommandReply,
  ContainerEvent,
  commandSubject,
  containerEventId,
  DLQ_STREAM,
  decode,
  EVENTS_STREAM,
  encode,
  eventSubject,
  HandlerStats,
  HealPolicy,
  HOST_SNAPSHOT_TYPE,
  HOSTS_BUCKET,
  HostSnapshot,
  handlerStatsSubject,
  INFLIGHT_BUCKET,
  LEDGER_BUCKET,
  LedgerEntry,
  POLICY_KEY,
  RATE_BUCKET,
  toToken,
} from "../contracts/index.js";
import { dependentsHandler } from "../handlers/dependents.js";
import { healHandler } from "../handlers/heal.js";
import { CLI, REPO, startRole } from "../test/support/fleetheal.js";
import { startNatsServer } from "../test/support/nats-server.js";
import { type ManagedProcess, startProcess } from "../test/support/process.js";
import { waitFor } from "../test/support/wait.js";
import { envNumber, hex, machineInfo, prng, round } from "./numbers.js";

const SELF = fileURLToPath(import.meta.url);
const ROLE_ENV = "FLEETHEAL_BENCH_HANDLERS_ROLE";
const execFileAsync = promisify(execFile);

function envList(name: string, fallback: number[]): number[] {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  if (raw.trim() === "0") return [];
  const list = raw.split(",").map((s) => Number(s.trim()));
  if (list.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new Error(`${name} must be a comma-separated list of positive integers`);
  }
  return list;
}

const CONFIG = {
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
  output:
    process.env.FLEETHEAL_BENCH_OUTPUT ??
    path.join(REPO, "bench", "results", "handler-throughput.json"),
};

const TARGETS = { throughputRatio: 0.5, stormDecidedS: 10 };
const REFERENCE_STREAM = "BENCH_REFERENCE";
/** Same length as `fleetheal`, so the reference's subjects have the same size. */
const REFERENCE_ROOT = "benchrefs";
const HEAL_DURABLE = "fleetheal-heal";
const DEPENDENTS_DURABLE = "fleetheal-dependents";

// --- small helpers ------------------------------------------------------------------------------

function log(message: string): void {
  console.error(`[bench:handlers +${process.uptime().toFixed(1)}s] ${message}`);
}

let clockTicks = 100;

/** utime+stime of a process in ms. */
async function cpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(rest[11]) + Number(rest[12])) / clockTicks) * 1000;
}

function selfCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

async function mapLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>) {
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

// --- the synthetic fleet ------------------------------------------------------------------------

interface Container {
  host: string;
  id: string;
  name: string;
  image: string;
  labels: Record<string, string>;
}

interface Fleet {
  hosts: string[];
  containers: Container[];
  /** Base of every container's StartedAt: the incidents are the same in every run. */
  startedMs: number;
}

const SERVICES = ["web", "api", "worker", "cache", "queue", "auth", "search", "mail", "cron", "db"];

function makeFleet(): Fleet {
  const rand = prng(CONFIG.seed);
  const hosts: string[] = [];
  const containers: Container[] = [];
  for (let h = 0; h < CONFIG.hosts; h++) {
    const host = `bench-${String(h).padStart(4, "0")}`;
    hosts.push(host);
    for (let c = 0; c < CONFIG.containersPerHost; c++) {
      const project = `shop${Math.floor(c / SERVICES.length)}`;
      const service = SERVICES[c % SERVICES.length] as string;
      const imageNo = (h * CONFIG.containersPerHost + c) % Math.max(1, CONFIG.stormImages);
      const image = `registry.internal.example:5000/app-${imageNo}:1.${imageNo % 17}.${imageNo % 5}`;
      containers.push({
        host,
        id: createHash("sha256").update(`${host}/${c}`).digest("hex"),
        name: `${project}-${service}-1`,
        image,
        // What docker compose puts on a container, plus the opt-in label; no depends_on, so the
        // dependents handler finds nothing to restart after each restart.
        labels: {
          autoheal: "true",
          "com.docker.compose.config-hash": hex(rand, 64),
          "com.docker.compose.container-number": "1",
          "com.docker.compose.depends_on": "",
          "com.docker.compose.image": `sha256:${hex(rand, 64)}`,
          "com.docker.compose.oneoff": "False",
          "com.docker.compose.project": project,
          "com.docker.compose.project.config_files": `/srv/${project}/compose.yaml`,
          "com.docker.compose.project.working_dir": `/srv/${project}`,
          "com.docker.compose.service": service,
          "com.docker.compose.version": "2.29.2",
        },
      });
    }
  }
  return { hosts, containers, startedMs: Date.now() - 3_600_000 };
}

const keyOf = (host: string, containerId: string) => `${host}.${containerId}`;

/** The incident of a container: its StartedAt (runs start from an empty ledger). */
function startedAtFor(fleet: Fleet, index: number): string {
  return new Date(fleet.startedMs + index).toISOString();
}

function snapshotOf(fleet: Fleet, host: string): HostSnapshot {
  const now = new Date().toISOString();
  const first = fleet.hosts.indexOf(host) * CONFIG.containersPerHost;
  const containers = fleet.containers
    .slice(first, first + CONFIG.containersPerHost)
    .map((c, i) => ({
      id: c.id,
      name: c.name,
      image: c.image,
      state: "running" as const,
      health: "healthy" as const,
      optedIn: true,
      labels: c.labels,
      startedAt: startedAtFor(fleet, first + i),
      restartCount: 0,
      failingStreak: 0,
      lastHealthOutput: "ok",
      healthSource: "docker" as const,
      networkMode: "bridge",
      compose: {
        project: c.labels["com.docker.compose.project"] as string,
        service: c.labels["com.docker.compose.service"] as string,
      },
    }));
  return {
    type: HOST_SNAPSHOT_TYPE,
    v: 1,
    host,
    seq: 1,
    at: now,
    heartbeatMs: 5_000,
    agent: {
      version: "0.1.0",
      startedAt: now,
      label: "autoheal",
      watchAll: false,
      uptimeSeconds: 3_600,
    },
    outbox: { depth: 0, capacity: 10_000, published: 0, dropped: 0 },
    docker: { status: "up", version: "24.0.9" },
    containers,
  };
}

/** What the agents of the fleet publish, once per run, before their restarts. */
async function writeSnapshots(fjs: FleetJetStream, fleet: Fleet) {
  HostSnapshot.parse(snapshotOf(fleet, fleet.hosts[0] as string));
  let bytes = 0;
  await mapLimit(fleet.hosts, 32, async (host) => {
    const data = encode(snapshotOf(fleet, host));
    bytes += data.length;
    await fjs.hosts.put(host, data);
  });
  return { hosts: fleet.hosts.length, meanBytes: Math.round(bytes / fleet.hosts.length) };
}

interface Outgoing {
  subject: string;
  msgId: string;
  payload: Uint8Array;
  key: string;
  eventId: string;
  /** The container's index in the fleet. */
  index: number;
}

/**
 * One `unhealthy` event for each of the first `count` containers in the order a thousand
 * agents publishing at once would interleave them (container 0 of every host, then container
 * 1…), with Docker times spread over `spreadMs` from `timeMs` in that order.
 */
function unhealthyEvents(
  fleet: Fleet,
  timeMs: number,
  spreadMs: number,
  count = fleet.containers.length,
): Outgoing[] {
  const n = Math.min(count, fleet.containers.length);
  const hosts = fleet.hosts.length;
  const out = Array.from({ length: n }, (_, j) => {
    const i = (j % hosts) * CONFIG.containersPerHost + Math.floor(j / hosts);
    const c = fleet.containers[i] as Container;
    const at = timeMs + Math.floor((j / n) * spreadMs);
    const timeNano = `${BigInt(at) * 1_000_000n + BigInt(j % 1_000_000)}`;
    const event: ContainerEvent = {
      type: CONTAINER_EVENT_TYPE,
      v: 1,
      id: containerEventId(c.host, c.id, timeNano, "unhealthy"),
      host: c.host,
      action: "unhealthy",
      timeNano,
      time: new Date(at).toISOString(),
      container: {
        id: c.id,
        name: c.name,
        image: c.image,
        labels: c.labels,
        optedIn: true,
        startedAt: startedAtFor(fleet, i),
      },
      source: "docker",
    };
    return {
      subject: eventSubject(c.host, c.id, "unhealthy"),
      msgId: event.id,
      payload: encode(event),
      key: keyOf(c.host, c.id),
      eventId: event.id,
      index: i,
    };
  });
  ContainerEvent.parse(JSON.parse(new TextDecoder().decode(out[0]?.payload)));
  return out;
}

/** Publishes every message with its id and `window` acks in flight, like the agent's outbox. */
async function publishAll(
  js: JetStreamClient,
  messages: Outgoing[],
  subjectOf: (m: Outgoing) => string = (m) => m.subject,
): Promise<number> {
  const t0 = Date.now();
  await mapLimit(messages, CONFIG.publishWindow, async (m) => {
    await js.publish(subjectOf(m), m.payload, { msgID: m.msgId });
  });
  return Date.now() - t0;
}

// --- synthetic agents: the restart command API --------------------------------------------------

interface Start {
  host: string;
  key: string;
  commandId: string;
  at: number;
}

/**
 * Serves `fleetheal.v1.cmd.<host>.restart` for every host like the agent does: each command id
 * is executed once (a repeat gets the first reply), and a restart takes `holdMs`. Counts the
 * restarts in progress per host and fleet-wide, and when each one started.
 */
class SyntheticAgents {
  holdMs = 0;
  readonly starts: Start[] = [];
  readonly byContainer = new Map<string, Set<string>>();
  duplicates = 0;
  maxFleet = 0;
  maxHost = 0;
  private fleetNow = 0;
  private readonly hostNow = new Map<string, number>();
  private readonly replies = new Map<string, Promise<Uint8Array>>();
  private readonly subs: Subscription[] = [];

  constructor(
    private readonly nc: NatsConnection,
    hosts: string[],
  ) {
    for (const host of hosts) {
      this.subs.push(
        nc.subscribe(commandSubject(host, "restart"), {
          callback: (error, msg) => {
            if (!error) this.onCommand(host, msg);
          },
        }),
      );
    }
  }

  reset(holdMs: number): void {
    this.holdMs = holdMs;
    this.starts.length = 0;
    this.byContainer.clear();
    this.replies.clear();
    this.duplicates = 0;
    this.maxFleet = 0;
    this.maxHost = 0;
  }

  async flush(): Promise<void> {
    await this.nc.flush();
  }

  private onCommand(host: string, msg: Msg): void {
    const command = JSON.parse(new TextDecoder().decode(msg.data)) as {
      commandId: string;
      containerId: string;
      host: string;
    };
    const earlier = this.replies.get(command.commandId);
    if (earlier) {
      this.duplicates++;
      void earlier.then((data) => msg.respond(data));
      return;
    }
    const key = keyOf(host, command.containerId);
    const at = Date.now();
    this.starts.push({ host, key, commandId: command.commandId, at });
    const ids = this.byContainer.get(key) ?? new Set<string>();
    ids.add(command.commandId);
    this.byContainer.set(key, ids);
    this.fleetNow++;
    const onHost = (this.hostNow.get(host) ?? 0) + 1;
    this.hostNow.set(host, onHost);
    this.maxFleet = Math.max(this.maxFleet, this.fleetNow);
    this.maxHost = Math.max(this.maxHost, onHost);
    const finish = (): Uint8Array => {
      this.fleetNow--;
      this.hostNow.set(host, (this.hostNow.get(host) ?? 1) - 1);
      const reply: CommandReply = {
        type: COMMAND_REPLY_TYPE,
        v: 1,
        verb: "restart",
        commandId: command.commandId,
        host,
        containerId: command.containerId,
        outcome: "restarted",
        code: "restarted",
        message: "restarted (stop timeout 10s)",
        duplicate: false,
        startedAt: new Date(at).toISOString(),
        durationMs: Date.now() - at,
      };
      const data = encode(reply);
      msg.respond(data);
      return encode({ ...reply, duplicate: true });
    };
    if (this.holdMs === 0) {
      this.replies.set(command.commandId, Promise.resolve(finish()));
    } else {
      this.replies.set(
        command.commandId,
        new Promise((resolve) => setTimeout(() => resolve(finish()), this.holdMs)),
      );
    }
  }

  stop(): void {
    for (const s of this.subs) s.unsubscribe();
  }
}

/** The most restarts started within any `windowMs`, fleet-wide and on the busiest host. */
function maxStartsWithin(starts: Start[], windowMs: number) {
  const most = (times: number[]) => {
    const sorted = [...times].sort((a, b) => a - b);
    let best = 0;
    let lo = 0;
    for (let hi = 0; hi < sorted.length; hi++) {
      while ((sorted[hi] as number) - (sorted[lo] as number) >= windowMs) lo++;
      best = Math.max(best, hi - lo + 1);
    }
    return best;
  };
  const perHost = new Map<string, number[]>();
  for (const s of starts) {
    const list = perHost.get(s.host) ?? [];
    list.push(s.at);
    perHost.set(s.host, list);
  }
  return {
    fleet: most(starts.map((s) => s.at)),
    host: Math.max(0, ...[...perHost.values()].map(most)),
  };
}

/**
 * The restarts the agents saw, timed by when their rate slots were taken (the server's clock):
 * the most within any minute, fleet-wide and on the busiest host, and how long after its
 * fleet slot each restart reached its agent.
 */
function slotWindows(slots: { key: string; holder: string; at: number }[], starts: Start[]) {
  const fleetSlot = new Map<string, number>();
  const hostSlot = new Map<string, number>();
  for (const s of slots) {
    if (s.key.startsWith("fleet.")) fleetSlot.set(s.holder, s.at);
    else hostSlot.set(s.holder, s.at);
  }
  const timed: Start[] = [];
  const lagMs: number[] = [];
  let withoutSlot = 0;
  for (const s of starts) {
    const at = fleetSlot.get(s.commandId);
    if (at === undefined || !hostSlot.has(s.commandId)) {
      withoutSlot++;
      continue;
    }
    timed.push({ ...s, at });
    lagMs.push(s.at - at);
  }
  const most = maxStartsWithin(timed, 60_000);
  lagMs.sort((a, b) => a - b);
  return {
    fleet: most.fleet,
    host: most.host,
    startsWithoutSlot: withoutSlot,
    slotToAgentMs: {
      p50: lagMs[Math.floor(lagMs.length / 2)] ?? 0,
      max: lagMs.at(-1) ?? 0,
    },
  };
}

// --- handlers -----------------------------------------------------------------------------------

async function startHandlers(url: string, count: number, label: string): Promise<ManagedProcess[]> {
  const env: Record<string, string> = {
    FLEETHEAL_NATS_URL: url,
    FLEETHEAL_LOG_LEVEL: CONFIG.logLevel,
  };
  const started = await Promise.all(
    Array.from({ length: count }, (_, i) => startHandler(`${label}-${i + 1}`, env)),
  );
  if (CONFIG.cpuProfDir) {
    log(`${label}: CPU profiles of pids ${started.map((p) => p.pid).join(", ")}`);
  }
  return started;
}

/**
 * The handler role as startRole runs it; with a profile folder, the same command with node's
 * --cpu-prof (which Node 20 does not take from NODE_OPTIONS).
 */
async function startHandler(name: string, env: Record<string, string>): Promise<ManagedProcess> {
  if (!CONFIG.cpuProfDir) return startRole("handler", name, env);
  const dir = path.resolve(CONFIG.cpuProfDir);
  await mkdir(dir, { recursive: true });
  const proc = await startProcess({
    name,
    command: process.execPath,
    args: ["--cpu-prof", "--cpu-prof-dir", dir, CLI, "handler"],
    env,
    cwd: REPO,
  });
  await proc.waitForJson((l) => l.msg === "handler replica started", 30_000);
  return proc;
}

async function stopHandlers(handlers: ManagedProcess[]): Promise<void> {
  await Promise.all(handlers.map((h) => h.stop("SIGTERM", 30_000)));
}

/**
 * The heal handler's counters summed over the replicas (their `fleetheal-handler` stats
 * endpoint), and their warnings and errors by message.
 */
async function handlerReport(nc: NatsConnection, handlers: ManagedProcess[]) {
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

interface ConsumerState {
  pending: number;
  ackPending: number;
  deliveries: number;
  redelivered: number;
}

async function consumerState(fjs: FleetJetStream, durable: string): Promise<ConsumerState> {
  const info = await fjs.jsm.consumers.info(EVENTS_STREAM, durable);
  return {
    pending: info.num_pending,
    ackPending: info.num_ack_pending,
    deliveries: info.delivered.consumer_seq,
    redelivered: info.num_redelivered,
  };
}

// --- throughput: the handler path ---------------------------------------------------------------

interface PathRun {
  events: number;
  seconds: number;
  eventsPerSecond: number;
  publishSeconds: number;
  /** `handlers` is the consumer of the path: handler replicas, floor or reference consumer. */
  cpuMsPerEvent: { handlers: number; natsServer: number; bench: number };
  /** What the server carried and stored per event, from the first publish until settled. */
  traffic: Traffic;
}

/** What the heal path (the handler or its operations floor) did with one run's events. */
interface HealPathRun extends PathRun {
  replicas: number;
  restarts: number;
  duplicateCommands: number;
  containersRestartedTwice: number;
  ledgerSample: { checked: number; restarted: number };
  dependentsBacklogAtEnd: number;
  dependentsDrainedS: number | undefined;
}

interface HandlerRun extends HealPathRun {
  handlers: Awaited<ReturnType<typeof handlerReport>>;
}

async function handlerRun(ctx: Context, replicas: number, runNo: number): Promise<HandlerRun> {
  // A clean ledger, so that every container's restart is its first (no backoff).
  await resetBuckets(ctx, [LEDGER_BUCKET]);
  ctx.agents.reset(CONFIG.restartMs);
  const handlers = await startHandlers(ctx.natsUrl, replicas, `handler-x${replicas}-r${runNo}`);
  try {
    const run = await measureHealPath(ctx, handlers, `handler run x${replicas}`, runNo);
    return { ...run, replicas, handlers: await handlerReport(ctx.observerNc, handlers) };
  } finally {
    await stopHandlers(handlers);
  }
}

/**
 * Publishes a run's events and measures the heal path that `consumers` run, the same way for the
 * handler and for its operations floor. An event is done when its `restarted` record is stored;
 * the traffic is counted until both consumers have settled, so it holds the dependents' work.
 * `failed` rejects when a consumer reports that it cannot go on.
 */
async function measureHealPath(
  ctx: Context,
  consumers: { pid: number }[],
  label: string,
  runNo: number,
  failed?: Promise<never>,
): Promise<Omit<HealPathRun, "replicas">> {
  const { fleet, agents } = ctx;
  const events = unhealthyEvents(fleet, Date.now(), 0, CONFIG.events);
  const restarted = watchRestarted(ctx.observerNc, events);
  try {
    await ctx.observerNc.flush();
    await agents.flush();
    const cpu0 = await cpuSnapshot(ctx, consumers);
    const traffic0 = await serverCounters(ctx);
    const t0 = Date.now();
    const publishMs = await publishAll(ctx.js, events);
    await withTimeout(
      failed ? Promise.race([restarted.all, failed]) : restarted.all,
      CONFIG.runTimeoutS * 1000,
      () => `${label}: ${restarted.state.done} of ${events.length} restarted`,
    );
    const seconds = (restarted.state.lastAt - t0) / 1000;
    const cpu1 = await cpuSnapshot(ctx, consumers);
    restarted.stop();
    const settled = await settleConsumers(ctx.fjs);
    const traffic1 = await serverCounters(ctx);
    return {
      events: events.length,
      seconds: round(seconds, 2),
      eventsPerSecond: Math.round(events.length / seconds),
      publishSeconds: round(publishMs / 1000, 2),
      cpuMsPerEvent: perEvent(cpu0, cpu1, events.length),
      traffic: trafficPerEvent(traffic0, traffic1, events.length),
      restarts: agents.starts.length,
      duplicateCommands: agents.duplicates,
      containersRestartedTwice: [...agents.byContainer.values()].filter((s) => s.size > 1).length,
      ledgerSample: await sampleLedger(ctx.fjs, fleet, events, runNo),
      ...settled,
    };
  } finally {
    restarted.stop();
  }
}

/**
 * Counts the `restarted` records of `events` as they arrive: the last thing the heal path does
 * for an event before acking it (the restart's outcome is in the ledger, and this record is
 * stored).
 */
function watchRestarted(nc: NatsConnection, events: Outgoing[]) {
  const expected = new Set(events.map((e) => e.key));
  const state = { done: 0, lastAt: 0 };
  let resolveAll: () => void = () => {};
  const all = new Promise<void>((resolve) => {
    resolveAll = resolve;
  });
  const sub = nc.subscribe("fleetheal.v1.act.*.*.restarted", {
    callback: (error, msg) => {
      if (error) return;
      const t = msg.subject.split(".");
      if (!expected.delete(`${t[3]}.${t[4]}`)) return;
      state.done++;
      state.lastAt = Date.now();
      if (state.done === events.length) resolveAll();
    },
  });
  return {
    all,
    state,
    stop: () => {
      if (!sub.isClosed()) sub.unsubscribe();
    },
  };
}

/**
 * Waits until the heal consumer has nothing outstanding and the dependents consumer has caught
 * up; how far behind the dependents were when the last event was done, and how long they took.
 */
async function settleConsumers(fjs: FleetJetStream) {
  await waitFor(
    async () => {
      const s = await consumerState(fjs, HEAL_DURABLE);
      return s.pending === 0 && s.ackPending === 0;
    },
    { timeoutMs: 30_000, message: "the heal consumer did not settle" },
  );
  const atEnd = await consumerState(fjs, DEPENDENTS_DURABLE);
  const drainStart = Date.now();
  const drained = await waitFor(
    async () => {
      const s = await consumerState(fjs, DEPENDENTS_DURABLE);
      return s.pending === 0 && s.ackPending === 0;
    },
    { timeoutMs: 60_000, intervalMs: 200, message: "dependents did not drain" },
  ).then(
    () => (Date.now() - drainStart) / 1000,
    () => undefined,
  );
  return {
    dependentsBacklogAtEnd: atEnd.pending + atEnd.ackPending,
    dependentsDrainedS: drained === undefined ? undefined : round(drained, 1),
  };
}

/** A sample of ledger entries: each must hold the run's incident with outcome `restarted`. */
async function sampleLedger(fjs: FleetJetStream, fleet: Fleet, events: Outgoing[], runNo: number) {
  const rand = prng(CONFIG.seed + runNo);
  let restarted = 0;
  const checked = Math.min(200, events.length);
  for (let n = 0; n < checked; n++) {
    const e = events[Math.floor(rand() * events.length)] as Outgoing;
    const entry = await fjs.ledger.get(e.key);
    const decoded = entry?.operation === "PUT" ? decode(LedgerEntry, entry.value) : undefined;
    const last = decoded?.ok ? decoded.value.restarts[0] : undefined;
    if (last?.incident === startedAtFor(fleet, e.index) && last.outcome === "restarted") {
      restarted++;
    }
  }
  return { checked, restarted };
}

interface CpuSnapshot {
  handlers: number;
  natsServer: number;
  bench: number;
}

async function cpuSnapshot(ctx: Context, handlers: { pid: number }[]): Promise<CpuSnapshot> {
  const hs = await Promise.all(handlers.map((h) => cpuMs(h.pid)));
  return {
    handlers: hs.reduce((a, b) => a + b, 0),
    natsServer: await cpuMs(ctx.natsPid),
    bench: selfCpuMs(),
  };
}

function perEvent(a: CpuSnapshot, b: CpuSnapshot, n: number) {
  return {
    handlers: round((b.handlers - a.handlers) / n, 3),
    natsServer: round((b.natsServer - a.natsServer) / n, 3),
    bench: round((b.bench - a.bench) / n, 3),
  };
}

interface ServerCounters {
  inMsgs: number;
  outMsgs: number;
  inBytes: number;
  outBytes: number;
  /** Last sequence of every stream (KV buckets included). */
  lastSeq: Record<string, number>;
}

/** Messages per event in and out of nats-server (`/varz`), and stored per event by stream. */
interface Traffic {
  inMsgs: number;
  outMsgs: number;
  inBytes: number;
  outBytes: number;
  /** By stream, `FLEETHEAL_`/`KV_fleetheal_` left off; streams that stored nothing omitted. */
  stored: Record<string, number>;
  storedTotal: number;
}

/**
 * The server's own message counters: whatever a path does in NATS (publish, request, reply,
 * KV read, ack, pull) shows in them, so two paths that do the same operations per event show
 * the same figures here whatever their code.
 */
async function serverCounters(ctx: Context): Promise<ServerCounters> {
  const res = await fetch(`${ctx.monitorUrl}/varz`, { signal: AbortSignal.timeout(5_000) });
  if (!res.ok) throw new Error(`nats-server /varz answered ${res.status}`);
  const varz = (await res.json()) as Record<
    "in_msgs" | "out_msgs" | "in_bytes" | "out_bytes",
    number
  >;
  const lastSeq: Record<string, number> = {};
  for await (const s of ctx.fjs.jsm.streams.list()) lastSeq[s.config.name] = s.state.last_seq;
  return {
    inMsgs: varz.in_msgs,
    outMsgs: varz.out_msgs,
    inBytes: varz.in_bytes,
    outBytes: varz.out_bytes,
    lastSeq,
  };
}

function trafficPerEvent(a: ServerCounters, b: ServerCounters, n: number): Traffic {
  const stored: Record<string, number> = {};
  let total = 0;
  for (const [name, seq] of Object.entries(b.lastSeq)) {
    const added = seq - (a.lastSeq[name] ?? 0);
    if (added === 0) continue;
    total += added;
    stored[name.replace(/^KV_fleetheal_|^FLEETHEAL_/, "")] = round(added / n, 2);
  }
  return {
    inMsgs: round((b.inMsgs - a.inMsgs) / n, 2),
    outMsgs: round((b.outMsgs - a.outMsgs) / n, 2),
    inBytes: Math.round((b.inBytes - a.inBytes) / n),
    outBytes: Math.round((b.outBytes - a.outBytes) / n),
    stored,
    storedTotal: round(total / n, 2),
  };
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what()}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

// --- throughput: the bare JetStream reference ---------------------------------------------------

type ToChild = { type: "consume"; url: string; stream: string; durable: string; count: number };
type ToParent = { type: "ready" } | { type: "done"; at: number; acked: number };

/** The reference consumer (child process): consume and ack every message, nothing else. */
async function serveReferenceConsumer(): Promise<void> {
  const send = (m: ToParent) => process.send?.(m);
  const order = await new Promise<ToChild>((resolve) => process.once("message", resolve));
  const nc = await connect({ servers: order.url, name: "bench-reference-consumer" });
  const js = jetstream(nc);
  const consumer = await js.consumers.get(order.stream, order.durable);
  const messages = await consumer.consume();
  send({ type: "ready" });
  let acked = 0;
  for await (const m of messages) {
    m.ack();
    if (++acked === order.count) break;
  }
  await nc.flush();
  send({ type: "done", at: Date.now(), acked });
  await messages.close();
  await nc.close();
}

async function referenceRun(ctx: Context): Promise<PathRun> {
  const jsm = await jetstreamManager(ctx.nc);
  // The events stream's storage settings, so that only the work differs.
  await jsm.streams.add({
    name: REFERENCE_STREAM,
    subjects: [`${REFERENCE_ROOT}.v1.evt.>`],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_bytes: 1024 * 1024 * 1024,
    duplicate_window: 10 * 60 * 1_000_000_000,
  });
  await jsm.consumers.add(REFERENCE_STREAM, {
    durable_name: "bench-reference",
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    max_ack_pending: 10_000,
  });
  const events = unhealthyEvents(ctx.fleet, Date.now(), 0, CONFIG.events);
  const child = fork(SELF, [], {
    cwd: REPO,
    execArgv: ["--import", "tsx"],
    env: { ...process.env, [ROLE_ENV]: "reference-consumer" },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  try {
    const next = (type: ToParent["type"]) =>
      new Promise<ToParent>((resolve, reject) => {
        const onMessage = (m: ToParent) => {
          if (m.type !== type) return;
          child.off("message", onMessage);
          resolve(m);
        };
        child.on("message", onMessage);
        child.once("exit", (code) => reject(new Error(`reference consumer exited with ${code}`)));
      });
    const ready = next("ready");
    child.send({
      type: "consume",
      url: ctx.natsUrl,
      stream: REFERENCE_STREAM,
      durable: "bench-reference",
      count: events.length,
    } satisfies ToChild);
    await ready;
    const done = next("done");
    const pid = child.pid as number;
    const before = await cpuSnapshot(ctx, [{ pid }]);
    const traffic0 = await serverCounters(ctx);
    const t0 = Date.now();
    const publishMs = await publishAll(
      ctx.js,
      events,
      (m) => `${REFERENCE_ROOT}${m.subject.slice("fleetheal".length)}`,
    );
    const finished = (await withTimeout(done, CONFIG.runTimeoutS * 1000, () => "reference")) as {
      at: number;
    };
    const after = await cpuSnapshot(ctx, [{ pid }]);
    const traffic1 = await serverCounters(ctx);
    const seconds = (finished.at - t0) / 1000;
    return {
      events: events.length,
      seconds: round(seconds, 2),
      eventsPerSecond: Math.round(events.length / seconds),
      publishSeconds: round(publishMs / 1000, 2),
      cpuMsPerEvent: perEvent(before, after, events.length),
      traffic: trafficPerEvent(traffic0, traffic1, events.length),
    };
  } finally {
    if (child.exitCode === null) child.kill("SIGTERM");
    await jsm.streams.delete(REFERENCE_STREAM);
  }
}

// --- throughput: the JetStream operations floor -------------------------------------------------
//
// What the heal path would cost if fleetheal's own code cost nothing: a child process per handler
// replica (FLOOR_ROLE) that makes, per event, exactly the NATS and JetStream operations one
// restart decision of the heal handler and the dependents handler make with caps and breaker
// lifted, in the same order and overlap, on the same consumers, buckets and subjects, with
// bodies of the same shapes and sizes, but with no fleetheal code on the way: no schema
// validation, no policy, no decision objects, no logging. (The child is this file, so it loads
// the modules this file imports; it calls none of them per event.) The handler's ratio to this
// floor is what fleetheal's code costs; the floor's ratio to bare JetStream is what the design's
// operations cost.

const FLOOR_ROLE = "ops-floor";
/** The floor child's orders, in its environment: it needs them before it can listen. */
const FLOOR_ORDER_ENV = "FLEETHEAL_BENCH_FLOOR_ORDER";
/** runtime.ts's pull expiry. */
const FLOOR_PULL_EXPIRES_MS = 5_000;
/** heal.ts's restart deadline for a container without a stop-timeout label: 10 s + 30 s. */
const FLOOR_COMMAND_TIMEOUT_MS = 40_000;

/** One consumer as runtime.ts binds a handler: its concurrency, and twice that per pull (≥ 16). */
interface FloorConsumer {
  durable: string;
  concurrency: number;
  maxMessages: number;
}

interface FloorOrder {
  url: string;
  name: string;
  heal: FloorConsumer;
  dependents: FloorConsumer;
}

type ToFloor = { type: "stop" };
type FromFloor =
  | { type: "ready" }
  | { type: "failed"; error: string }
  | { type: "stopped"; heal: number; dependents: number };

function floorConsumer(durable: string, concurrency: number): FloorConsumer {
  return { durable, concurrency, maxMessages: Math.max(concurrency * 2, 16) };
}

/** The handlers' own concurrency, so that the floor follows it if it changes. */
function floorOrder(url: string, name: string): FloorOrder {
  const heal = healHandler({ maxEventAgeMs: 0, retryDelayMs: 0 });
  const dependents = dependentsHandler({ retryDelayMs: 0 });
  return {
    url,
    name,
    heal: floorConsumer(HEAL_DURABLE, heal.concurrency),
    dependents: floorConsumer(DEPENDENTS_DURABLE, dependents.concurrency),
  };
}

/** The floor child: both consumers on one connection, as in one handler replica. */
async function serveOpsFloor(): Promise<void> {
  const send = (m: FromFloor) => process.send?.(m);
  const stopOrder = new Promise<ToFloor>((resolve) => process.once("message", resolve));
  const order = JSON.parse(process.env[FLOOR_ORDER_ENV] ?? "") as FloorOrder;
  // The handler sets the same option on its connection (handlers/main.ts).
  const nc = await connect({ servers: order.url, name: order.name, noAsyncTraces: true });
  const js = jetstream(nc);
  const kvm = new Kvm(js);
  // As openFleetJetStream opens them: the existing buckets, read with direct gets.
  const [ledger, hosts] = await Promise.all([kvm.create(LEDGER_BUCKET), kvm.create(HOSTS_BUCKET)]);
  const fail = (error: unknown) => send({ type: "failed", error: String(error) });
  const io: FloorIo = { nc, js, ledger };
  const heal = await floorLoop(js, order.heal, (m) => floorHeal(m, io), fail);
  const dependents = await floorLoop(js, order.dependents, (m) => floorDependents(m, hosts), fail);
  send({ type: "ready" });
  await stopOrder;
  const [healAcked, dependentsAcked] = await Promise.all([heal.stop(), dependents.stop()]);
  await nc.drain();
  send({ type: "stopped", heal: healAcked, dependents: dependentsAcked });
}

/**
 * runtime.ts's loop: a message is taken from the consumer only when one of `concurrency` is
 * free. Returns a stop that ends the consumer, waits for the messages in progress and says how
 * many were done and acked.
 */
async function floorLoop(
  js: JetStreamClient,
  spec: FloorConsumer,
  work: (msg: JsMsg) => Promise<void>,
  fail: (error: unknown) => void,
): Promise<{ stop: () => Promise<number> }> {
  const consumer = await js.consumers.get(EVENTS_STREAM, spec.durable);
  const messages: ConsumerMessages = await consumer.consume({
    max_messages: spec.maxMessages,
    expires: FLOOR_PULL_EXPIRES_MS,
  });
  let acked = 0;
  const loop = (async () => {
    const inFlight = new Set<Promise<void>>();
    let freed: (() => void) | undefined;
    for await (const msg of messages) {
      while (inFlight.size >= spec.concurrency) await new Promise<void>((r) => (freed = r));
      const job: Promise<void> = work(msg)
        .then(() => {
          acked++;
        }, fail)
        .finally(() => {
          inFlight.delete(job);
          const wake = freed;
          freed = undefined;
          wake?.();
        });
      inFlight.add(job);
    }
    await Promise.all(inFlight);
  })();
  return {
    stop: async () => {
      await messages.close();
      await loop;
      return acked;
    },
  };
}

interface FloorIo {
  nc: NatsConnection;
  js: JetStreamClient;
  ledger: KV;
}

/** What the floor reads of an event: the ids and times the records and the ledger carry. */
interface FloorEvent {
  id: string;
  host: string;
  time: string;
  container: { id: string; name: string; startedAt: string };
}

const floorText = new TextEncoder();
const floorUtf8 = new TextDecoder();

/**
 * One restart decision's operations, as runtime.ts applies heal.ts's decisions for a first
 * restart with caps and breaker lifted: read the ledger; (no leases: every cap is 0); claim the
 * ledger with a create; `decided` and `restarting` records and the restart request leave
 * together; on the reply, the outcome into the ledger at the claimed revision, then the
 * `restarted` record; ack once every record is stored.
 */
async function floorHeal(msg: JsMsg, io: FloorIo): Promise<void> {
  const event = JSON.parse(floorUtf8.decode(msg.data)) as FloorEvent;
  const { host } = event;
  const containerId = event.container.id;
  const key = `${host}.${containerId}`;
  const at = new Date().toISOString();
  // Derived from the event like heal.ts's, so that a redelivery would send the same command.
  const commandId = `heal-${createHash("sha256").update(event.id).digest("hex").slice(0, 32)}`;
  const record = floorRecord(io.js, event, at, commandId);
  await io.ledger.get(key);
  const revision = await io.ledger.create(
    key,
    floorText.encode(JSON.stringify(floorLedgerEntry(event, at, commandId, "pending"))),
  );
  const stored = [
    record("decided", "unhealthy", "container is unhealthy; restarting it"),
    record("restarting", "restart-sent", "restart command sent to the agent"),
  ];
  const reply = await io.nc.request(
    `fleetheal.v1.cmd.${host}.restart`,
    floorText.encode(JSON.stringify(floorCommand(event, commandId))),
    { timeout: FLOOR_COMMAND_TIMEOUT_MS },
  );
  const answer = JSON.parse(floorUtf8.decode(reply.data)) as {
    outcome: string;
    code: string;
    message: string;
  };
  if (answer.outcome !== "restarted") throw new Error(`${key}: agent answered ${answer.outcome}`);
  await io.ledger.update(
    key,
    floorText.encode(JSON.stringify(floorLedgerEntry(event, at, commandId, answer.outcome))),
    revision,
  );
  stored.push(record("restarted", answer.code, answer.message));
  await Promise.all(stored);
  msg.ack();
}

/**
 * The dependents handler's operations on a `restarted` record: the host's snapshot read from
 * KV (its ~49 KB are not parsed: that is the handler's own work), then the ack.
 */
async function floorDependents(msg: JsMsg, hosts: KV): Promise<void> {
  const host = msg.subject.split(".")[3] as string;
  const snapshot = await hosts.get(host);
  if (snapshot?.operation !== "PUT") throw new Error(`no snapshot of ${host}`);
  msg.ack();
}

/** Publishes a remediation record shaped and identified as heal.ts's recordFactory makes it. */
function floorRecord(js: JetStreamClient, event: FloorEvent, at: string, commandId: string) {
  return (phase: string, code: string, message: string) => {
    const record = {
      type: "fleetheal.act.v1.remediation",
      v: 1,
      id: `heal:${event.id}:${phase}:${code}`,
      remediationId: `heal:${event.id}`,
      host: event.host,
      containerId: event.container.id,
      containerName: event.container.name,
      phase,
      code,
      message,
      incident: event.container.startedAt,
      triggerEventId: event.id,
      commandId,
      actor: "handler:heal",
      at,
      dryRun: false,
    };
    return js.publish(
      `fleetheal.v1.act.${event.host}.${event.container.id}.${phase}`,
      floorText.encode(JSON.stringify(record)),
      { msgID: record.id },
    );
  };
}

/** A first restart's ledger entry, as heal.ts claims it and setOutcome rewrites it. */
function floorLedgerEntry(event: FloorEvent, at: string, commandId: string, outcome: string) {
  const incident = event.container.startedAt;
  return {
    v: 1,
    host: event.host,
    containerId: event.container.id,
    lastIncident: incident,
    lastCommandId: commandId,
    lastRestartAt: at,
    restarts: [{ at, incident, commandId, outcome }],
    consecutiveRestarts: 1,
    lastTroubleAt: event.time,
  };
}

function floorCommand(event: FloorEvent, commandId: string) {
  return {
    type: "fleetheal.cmd.v1.restart",
    v: 1,
    commandId,
    host: event.host,
    containerId: event.container.id,
    reason: "unhealthy",
    requestedBy: "handler:heal",
    requireUnhealthy: true,
    incident: event.container.startedAt,
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
  const child = fork(SELF, [], {
    cwd: REPO,
    execArgv: ["--import", "tsx", ...profile],
    env: {
      ...process.env,
      [ROLE_ENV]: FLOOR_ROLE,
      [FLOOR_ORDER_ENV]: JSON.stringify(floorOrder(url, name)),
    },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
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
  return {
    pid: child.pid as number,
    ready: Promise.race([nextFromFloor(child, "ready").then(() => undefined), failed]),
    failed,
    async stop() {
      stopping = true;
      const stopped = nextFromFloor(child, "stopped");
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

function nextFromFloor<T extends FromFloor["type"]>(
  child: ChildProcess,
  type: T,
): Promise<Extract<FromFloor, { type: T }>> {
  return new Promise((resolve) => {
    const onMessage = (m: FromFloor) => {
      if (m.type !== type) return;
      child.off("message", onMessage);
      resolve(m as Extract<FromFloor, { type: T }>);
    };
    child.on("message", onMessage);
  });
}

interface FloorRun extends HealPathRun {
  /** Acked by the floor children: every event, and every `restarted` record. */
  acked: { heal: number; dependents: number };
}

/**
 * The floor on the handler's consumers: they must exist with the runtime's settings, which the
 * handler run before it has made sure of.
 */
async function floorRun(ctx: Context, replicas: number, runNo: number): Promise<FloorRun> {
  for (const durable of [HEAL_DURABLE, DEPENDENTS_DURABLE]) {
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

// --- the storm ----------------------------------------------------------------------------------

interface StormResult {
  replicas: number;
  events: number;
  publishSeconds: number;
  decidedSeconds: number | undefined;
  decided: number;
  firstRecords: Record<string, number>;
  restarts: number;
  maxConcurrent: { host: number; fleet: number };
  maxStartedPer60s: { host: number; fleet: number };
  slotsTakenPer60s: ReturnType<typeof slotWindows>;
  cpuMsPerEvent: { handlers: number; natsServer: number; bench: number };
  /**
   * Until every container was decided, per event: CPU of each process, their sum, the seconds
   * that sum takes on this machine's cores (deciding cannot be faster), and the server's traffic.
   */
  untilDecided: {
    cpuMs: { handlers: number; natsServer: number; bench: number };
    cpuMsTotal: number;
    cpuBoundSeconds: number;
    traffic: Traffic;
  };
  caps: {
    concurrentHost: number;
    concurrentFleet: number;
    perMinuteHost: number;
    perMinuteFleet: number;
  };
  capsHeld: boolean;
  containersRestartedTwice: number;
  deliveries: { atS: number; perSecond: number; count: number }[];
  /** Per minute from the first event: deliveries of the heal consumer, restarts started. */
  perMinute: { minute: number; deliveries: number; restarts: number }[];
  deliveriesTotal: number;
  deadLetters: number;
  handlers: Awaited<ReturnType<typeof handlerReport>>;
  observedSeconds: number;
}

function untilDecided(
  cpu0: CpuSnapshot,
  cpu1: CpuSnapshot,
  traffic0: ServerCounters,
  traffic1: ServerCounters,
  n: number,
): StormResult["untilDecided"] {
  const cpuMs = perEvent(cpu0, cpu1, n);
  const cpuMsTotal = round(cpuMs.handlers + cpuMs.natsServer + cpuMs.bench, 3);
  return {
    cpuMs,
    cpuMsTotal,
    cpuBoundSeconds: round((cpuMsTotal * n) / 1000 / os.cpus().length, 1),
    traffic: trafficPerEvent(traffic0, traffic1, n),
  };
}

async function stormRun(ctx: Context): Promise<StormResult> {
  await resetBuckets(ctx, [LEDGER_BUCKET, BREAKERS_BUCKET, INFLIGHT_BUCKET, RATE_BUCKET]);
  const { fleet, fjs, agents, observerNc } = ctx;
  await fjs.config.delete(POLICY_KEY);
  const policy = HealPolicy.parse({});
  agents.reset(CONFIG.stormHoldMs);
  // When each rate slot was taken, by the server's clock, and by which command: the rate caps
  // are kept by these, and the agents see each restart a little after its slot was taken.
  const slots: { key: string; holder: string; at: number }[] = [];
  const slotWatch = await fjs.rate.watch({ include: KvWatchInclude.UpdatesOnly });
  const watching = (async () => {
    for await (const e of slotWatch) {
      if (e.operation === "PUT") {
        slots.push({ key: e.key, holder: e.string(), at: e.created.getTime() });
      }
    }
  })();
  const handlers = await startHandlers(ctx.natsUrl, CONFIG.stormReplicas, "storm");
  try {
    const [cpu0, traffic0] = await Promise.all([cpuSnapshot(ctx, handlers), serverCounters(ctx)]);
    const t0 = Date.now();
    const events = unhealthyEvents(fleet, t0, 1_000);
    const byKey = new Map(events.map((e) => [e.key, e.eventId]));
    const first = new Map<string, { at: number; what: string }>();
    let resolveAll: () => void = () => {};
    const all = new Promise<void>((resolve) => {
      resolveAll = resolve;
    });
    const sub = observerNc.subscribe("fleetheal.v1.act.>", {
      callback: (error, msg) => {
        if (error) return;
        const t = msg.subject.split(".");
        const key = `${t[3]}.${t[4]}`;
        if (first.has(key) || !byKey.has(key)) return;
        const record = JSON.parse(new TextDecoder().decode(msg.data)) as {
          triggerEventId?: string;
          phase: string;
          code: string;
        };
        if (record.triggerEventId !== byKey.get(key)) return;
        first.set(key, { at: Date.now(), what: `${record.phase}:${record.code}` });
        if (first.size === events.length) resolveAll();
      },
    });
    await observerNc.flush();
    const deliveries: { atS: number; perSecond: number; count: number }[] = [];
    const start = await consumerState(fjs, HEAL_DURABLE);
    let last = { at: Date.now(), deliveries: start.deliveries };
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        await new Promise((r) => setTimeout(r, 5_000));
        const s = await consumerState(fjs, HEAL_DURABLE);
        const now = Date.now();
        deliveries.push({
          atS: round((now - t0) / 1000, 1),
          perSecond: Math.round(((s.deliveries - last.deliveries) * 1000) / (now - last.at)),
          count: s.deliveries - last.deliveries,
        });
        last = { at: now, deliveries: s.deliveries };
      }
    })();
    const publishMs = await publishAll(ctx.js, events);
    log(`storm: ${events.length} events published in ${(publishMs / 1000).toFixed(1)} s`);
    const decided = await withTimeout(all, CONFIG.runTimeoutS * 1000, () => "").then(
      () => Math.max(...[...first.values()].map((f) => f.at)) - t0,
      (error: unknown) => {
        log(`storm: ${String(error)}; ${first.size} of ${events.length} decided`);
        return undefined;
      },
    );
    // What deciding cost, up to the moment the last container had its first record: CPU is
    // the bound on two cores, and the server's counters say how much NATS work it was.
    const [cpuDecided, trafficDecided] = await Promise.all([
      cpuSnapshot(ctx, handlers),
      serverCounters(ctx),
    ]);
    if (decided !== undefined) log(`storm: every event decided after ${decided / 1000} s`);
    const observeUntil = t0 + CONFIG.stormObserveS * 1000;
    while (Date.now() < observeUntil) {
      await new Promise((r) => setTimeout(r, Math.min(1_000, observeUntil - Date.now())));
    }
    sampling = false;
    await sampler;
    sub.unsubscribe();
    const cpu1 = await cpuSnapshot(ctx, handlers);
    slotWatch.stop();
    await watching;
    const end = await consumerState(fjs, HEAL_DURABLE);
    const dlq = await fjs.jsm.streams.info(DLQ_STREAM);
    const firstRecords: Record<string, number> = {};
    for (const f of first.values()) firstRecords[f.what] = (firstRecords[f.what] ?? 0) + 1;
    const { storm } = policy;
    const maxConcurrent = { host: agents.maxHost, fleet: agents.maxFleet };
    const maxStartedPer60s = maxStartsWithin(agents.starts, 60_000);
    const slotsBy60s = slotWindows(slots, agents.starts);
    const caps = {
      concurrentHost: storm.maxConcurrentPerHost,
      concurrentFleet: storm.maxConcurrentFleet,
      perMinuteHost: storm.maxPerMinutePerHost,
      perMinuteFleet: storm.maxPerMinuteFleet,
    };
    return {
      replicas: CONFIG.stormReplicas,
      events: events.length,
      publishSeconds: round(publishMs / 1000, 2),
      decidedSeconds: decided === undefined ? undefined : round(decided / 1000, 2),
      decided: first.size,
      firstRecords,
      restarts: agents.starts.length,
      maxConcurrent,
      maxStartedPer60s,
      caps,
      slotsTakenPer60s: slotsBy60s,
      capsHeld:
        maxConcurrent.host <= caps.concurrentHost &&
        maxConcurrent.fleet <= caps.concurrentFleet &&
        slotsBy60s.host <= caps.perMinuteHost &&
        slotsBy60s.fleet <= caps.perMinuteFleet &&
        slotsBy60s.startsWithoutSlot === 0,
      cpuMsPerEvent: perEvent(cpu0, cpu1, events.length),
      untilDecided: untilDecided(cpu0, cpuDecided, traffic0, trafficDecided, events.length),
      containersRestartedTwice: [...agents.byContainer.values()].filter((s) => s.size > 1).length,
      deliveries,
      perMinute: Array.from({ length: Math.ceil(CONFIG.stormObserveS / 60) }, (_, minute) => ({
        minute: minute + 1,
        deliveries: deliveries
          .filter((d) => d.atS > minute * 60 && d.atS <= (minute + 1) * 60)
          .reduce((n, d) => n + d.count, 0),
        restarts: agents.starts.filter(
          (x) => x.at - t0 >= minute * 60_000 && x.at - t0 < (minute + 1) * 60_000,
        ).length,
      })),
      deliveriesTotal: end.deliveries - start.deliveries,
      deadLetters: dlq.state.messages,
      handlers: await handlerReport(observerNc, handlers),
      observedSeconds: round((Date.now() - t0) / 1000, 1),
    };
  } finally {
    slotWatch.stop();
    await stopHandlers(handlers);
  }
}

// --- main ---------------------------------------------------------------------------------------

interface Context {
  natsUrl: string;
  natsPid: number;
  /** nats-server's monitoring endpoint, for its message counters. */
  monitorUrl: string;
  nc: NatsConnection;
  js: JetStreamClient;
  fjs: FleetJetStream;
  observerNc: NatsConnection;
  agents: SyntheticAgents;
  fleet: Fleet;
}

/** Empties buckets (the handlers are stopped) by deleting and re-creating them. */
async function resetBuckets(ctx: Context, names: string[]): Promise<void> {
  const byName: Record<string, KV> = {
    [LEDGER_BUCKET]: ctx.fjs.ledger,
    [BREAKERS_BUCKET]: ctx.fjs.breakers,
    [INFLIGHT_BUCKET]: ctx.fjs.inflight,
    [RATE_BUCKET]: ctx.fjs.rate,
  };
  for (const name of names) await byName[name]?.destroy();
  ctx.fjs = await openFleetJetStream(ctx.nc);
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const loadBefore = os.loadavg();
  clockTicks = Number((await execFileAsync("getconf", ["CLK_TCK"])).stdout.trim()) || 100;
  const nats = await startNatsServer();
  const nc = await connect({ servers: nats.url, name: "bench-fleet-publisher" });
  const agentsNc = await connect({ servers: nats.url, name: "bench-fleet-agents" });
  const observerNc = await connect({ servers: nats.url, name: "bench-observer" });
  try {
    const fleet = makeFleet();
    const fjs = await openFleetJetStream(nc);
    const ctx: Context = {
      natsUrl: nats.url,
      natsPid: nats.pid,
      monitorUrl: nats.monitorUrl,
      nc,
      js: jetstream(nc),
      fjs,
      observerNc,
      agents: new SyntheticAgents(agentsNc, fleet.hosts),
      fleet,
    };
    const sample = unhealthyEvents(fleet, Date.now(), 0, 1_000);
    const eventBytes = Math.round(sample.reduce((n, e) => n + e.payload.length, 0) / sample.length);
    const snapshot = await writeSnapshots(fjs, fleet);
    log(
      `fleet: ${fleet.hosts.length} hosts × ${CONFIG.containersPerHost} containers; events ${eventBytes} B, snapshots ${snapshot.meanBytes} B`,
    );
    // Every event a real restart decision: no storm caps, no image breaker.
    const lifted = HealPolicy.parse({
      storm: {
        maxConcurrentPerHost: 0,
        maxConcurrentFleet: 0,
        maxPerMinutePerHost: 0,
        maxPerMinuteFleet: 0,
        imageBreaker: { failures: 0, windowSeconds: 60 },
      },
    });
    await fjs.config.put(POLICY_KEY, encode(lifted));

    const throughput = await throughputRuns(ctx, lifted);
    const storm = CONFIG.stormReplicas > 0 ? await stormRun(ctx) : undefined;
    ctx.agents.stop();
    const result = {
      startedAt: startedAt.toISOString(),
      durationS: round(process.uptime(), 1),
      machine: machineInfo(loadBefore),
      config: CONFIG,
      targets: TARGETS,
      fleet: {
        hosts: fleet.hosts.length,
        containers: fleet.containers.length,
        eventBytes,
        snapshotBytes: snapshot.meanBytes,
      },
      summary: summarise(throughput, storm),
      throughput,
      storm,
    };
    printTable(result);
    await mkdir(path.dirname(CONFIG.output), { recursive: true });
    await writeFile(CONFIG.output, `${JSON.stringify(result, null, 2)}\n`);
    log(`wrote ${path.relative(REPO, CONFIG.output)}`);
  } finally {
    await Promise.all([nc.close(), agentsNc.close(), observerNc.close()]);
    await nats[Symbol.asyncDispose]();
  }
}

type RatedRun = HandlerRun & {
  /** To bare JetStream: the issue's target. */
  ratio: number;
  references: number[];
  ratioToFloor: number | undefined;
};
type RatedFloor = FloorRun & { ratio: number };

interface Throughput {
  references: PathRun[];
  runs: RatedRun[];
  floors: RatedFloor[];
}

/**
 * Per replica count: the handler run, the bare reference after it (the one before it is the
 * previous run's), and the operations floor; handler and floor are rated against the mean of
 * the two references around the handler run.
 */
async function throughputRuns(ctx: Context, lifted: HealPolicy): Promise<Throughput> {
  const out: Throughput = { references: [], runs: [], floors: [] };
  const reference = async () => {
    const r = await referenceRun(ctx);
    out.references.push(r);
    log(`reference: ${r.eventsPerSecond} msg/s (${r.seconds} s, publish ${r.publishSeconds} s)`);
    return r;
  };
  let before = CONFIG.replicas.length > 0 ? await reference() : undefined;
  for (const [i, replicas] of CONFIG.replicas.entries()) {
    await ctx.fjs.config.put(POLICY_KEY, encode(lifted));
    const run = await handlerRun(ctx, replicas, i + 1);
    log(
      `handlers x${replicas}: ${run.eventsPerSecond} events/s (${run.seconds} s, publish ${run.publishSeconds} s), ${run.restarts} restarts`,
    );
    const after = await reference();
    const previous = before ?? after;
    const refRate = (previous.eventsPerSecond + after.eventsPerSecond) / 2;
    const floor = CONFIG.floor ? await floorRun(ctx, replicas, i + 1) : undefined;
    if (floor) {
      log(
        `ops floor x${replicas}: ${floor.eventsPerSecond} events/s (${floor.seconds} s, publish ${floor.publishSeconds} s), ${floor.restarts} restarts`,
      );
      out.floors.push({ ...floor, ratio: round(floor.eventsPerSecond / refRate, 3) });
    }
    out.runs.push({
      ...run,
      ratio: round(run.eventsPerSecond / refRate, 3),
      references: [previous.eventsPerSecond, after.eventsPerSecond],
      ratioToFloor: floor && round(run.eventsPerSecond / floor.eventsPerSecond, 3),
    });
    before = after;
  }
  return out;
}

/** The figures the targets are about; the replica count with the better ratio stands. */
function summarise({ runs, floors }: Throughput, storm: StormResult | undefined) {
  const best = runs.reduce<(typeof runs)[number] | undefined>(
    (a, b) => (a === undefined || b.ratio > a.ratio ? b : a),
    undefined,
  );
  return {
    throughputRatio: best?.ratio,
    throughputReplicas: best?.replicas,
    throughputRatioByReplicas: Object.fromEntries(runs.map((r) => [r.replicas, r.ratio])),
    throughputTarget: TARGETS.throughputRatio,
    /** What the design's JetStream operations alone reach, by replica count (no target). */
    floorRatioToBare: Object.fromEntries(floors.map((f) => [f.replicas, f.ratio])),
    /** How much of the floor the handler reaches: the cost of fleetheal's own code. */
    handlerRatioToFloor: Object.fromEntries(
      runs.flatMap((r) => (r.ratioToFloor === undefined ? [] : [[r.replicas, r.ratioToFloor]])),
    ),
    stormDecidedSeconds: storm?.decidedSeconds,
    stormTargetSeconds: TARGETS.stormDecidedS,
    stormCapsHeld: storm?.capsHeld,
  };
}

/** How fast a path went. */
function speedCells(r: PathRun): string {
  return `${r.eventsPerSecond} | ${r.seconds}`;
}

/** What a path cost: CPU, and what the server carried and stored per event. */
function costCells(r: PathRun): string {
  const t = r.traffic;
  const stored = Object.entries(t.stored)
    .map(([name, n]) => `${name} ${n}`)
    .join(", ");
  const kb = (bytes: number) => round(bytes / 1024, 1);
  return `${r.cpuMsPerEvent.handlers} | ${r.cpuMsPerEvent.natsServer} | ${r.cpuMsPerEvent.bench} | ${t.inMsgs}/${t.outMsgs} (${kb(t.inBytes)}/${kb(t.outBytes)} kB) | ${t.storedTotal} (${stored})`;
}

function healCells(r: HealPathRun): string {
  return `${r.restarts} | ${r.containersRestartedTwice} | ${r.ledgerSample.restarted}/${r.ledgerSample.checked} | ${r.dependentsDrainedS ?? "no"} s (backlog ${r.dependentsBacklogAtEnd})`;
}

function throughputTable(
  fleet: { hosts: number; containers: number; eventBytes: number },
  throughput: Throughput,
): string[] {
  const yes = (ok: boolean) => (ok ? "met" : "MISSED");
  return [
    "",
    `Handler throughput: ${throughput.runs[0]?.events ?? CONFIG.events} unhealthy events per run across ${fleet.hosts} hosts (${fleet.containers} containers; ${fleet.eventBytes} B each), caps and image breaker lifted; restart replies after ${CONFIG.restartMs} ms`,
    "ops floor: the handler's NATS and JetStream operations per event without fleetheal's code, one child process per replica",
    "",
    "| path | events/s | seconds | ratio to bare JetStream | ratio to ops floor | CPU ms/event consumer | nats-server | bench | server msgs in/out per event (kB) | stored per event | restarts | twice | ledger sample ok | dependents drained |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...throughput.references.map(
      (r, i) => `| bare JetStream (${i + 1}) | ${speedCells(r)} | 1 | | ${costCells(r)} | | | | |`,
    ),
    ...throughput.floors.map(
      (f) =>
        `| ops floor ×${f.replicas} | ${speedCells(f)} | ${f.ratio} | 1 | ${costCells(f)} | ${healCells(f)} |`,
    ),
    ...throughput.runs.map(
      (r) =>
        `| handler ×${r.replicas} | ${speedCells(r)} | **${r.ratio}** (${yes(r.ratio >= TARGETS.throughputRatio)}) | ${r.ratioToFloor ?? ""} | ${costCells(r)} | ${healCells(r)} |`,
    ),
    ...throughput.floors.map(
      (f) =>
        `ops floor ×${f.replicas}: acked ${f.acked.heal} events and ${f.acked.dependents} restarted records`,
    ),
    ...throughput.runs.map(
      (r) =>
        `handler ×${r.replicas}: heal counters ${JSON.stringify(r.handlers.heal)}; warnings ${JSON.stringify(r.handlers.warnings)}`,
    ),
  ];
}

function printTable(result: {
  fleet: { hosts: number; containers: number; eventBytes: number; snapshotBytes: number };
  throughput: Throughput;
  storm: StormResult | undefined;
  machine: { loadAverageBefore: number[]; loadAverageAfter: number[] };
  durationS: number;
}): void {
  const { fleet, throughput, storm } = result;
  const yes = (ok: boolean) => (ok ? "met" : "MISSED");
  const out = throughputTable(fleet, throughput);
  if (storm) {
    out.push(
      "",
      `Storm: ${storm.events} containers unhealthy within 1 s, default policy, ${storm.replicas} replicas, restarts held ${CONFIG.stormHoldMs} ms; published in ${storm.publishSeconds} s`,
      `  every event decided after ${storm.decidedSeconds ?? "—"} s (${storm.decided}/${storm.events}; target < ${TARGETS.stormDecidedS} s: ${yes(storm.decidedSeconds !== undefined && storm.decidedSeconds < TARGETS.stormDecidedS)})`,
      `  first records: ${Object.entries(storm.firstRecords)
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `${k} ${v}`)
        .join(", ")}`,
      `  restarts in ${storm.observedSeconds} s: ${storm.restarts}; at once max ${storm.maxConcurrent.host}/host (cap ${storm.caps.concurrentHost}), ${storm.maxConcurrent.fleet} fleet (cap ${storm.caps.concurrentFleet}); rate slots taken within any 60 s max ${storm.slotsTakenPer60s.host}/host (cap ${storm.caps.perMinuteHost}), ${storm.slotsTakenPer60s.fleet} fleet (cap ${storm.caps.perMinuteFleet}); restarts without a slot ${storm.slotsTakenPer60s.startsWithoutSlot}: caps ${storm.capsHeld ? "held" : "EXCEEDED"}`,
      `  agents' own clock: started within any 60 s max ${storm.maxStartedPer60s.host}/host, ${storm.maxStartedPer60s.fleet} fleet (a restart reaches its agent ${storm.slotsTakenPer60s.slotToAgentMs.p50} ms after its slot at p50, ${storm.slotsTakenPer60s.slotToAgentMs.max} ms at most); restarted twice: ${storm.containersRestartedTwice}`,
      `  until decided, per event: CPU ms handlers ${storm.untilDecided.cpuMs.handlers}, nats-server ${storm.untilDecided.cpuMs.natsServer}, bench ${storm.untilDecided.cpuMs.bench} (${storm.untilDecided.cpuMsTotal} in all: ${storm.untilDecided.cpuBoundSeconds} s of all ${os.cpus().length} cores); server msgs in/out ${storm.untilDecided.traffic.inMsgs}/${storm.untilDecided.traffic.outMsgs}, stored ${storm.untilDecided.traffic.storedTotal} (${Object.entries(
        storm.untilDecided.traffic.stored,
      )
        .map(([k, v]) => `${k} ${v}`)
        .join(", ")})`,
      `  CPU ms per event over the whole observation: handlers ${storm.cpuMsPerEvent.handlers}, nats-server ${storm.cpuMsPerEvent.natsServer}, bench ${storm.cpuMsPerEvent.bench}`,
      `  heal deliveries: ${storm.deliveriesTotal} in all; per second by 5 s window: ${storm.deliveries.map((d) => `${d.atS}s:${d.perSecond}`).join(" ")}`,
      `  per minute (deliveries/restarts): ${storm.perMinute.map((m) => `${m.minute}: ${m.deliveries}/${m.restarts}`).join(", ")}`,
      `  dead letters: ${storm.deadLetters}; heal counters ${JSON.stringify(storm.handlers.heal)}; warnings ${JSON.stringify(storm.handlers.warnings)}`,
    );
  }
  out.push(
    `load average ${result.machine.loadAverageBefore.join(" ")} before, ${result.machine.loadAverageAfter.join(" ")} after; ${result.durationS} s in all`,
  );
  console.log(out.join("\n"));
}

const role = process.env[ROLE_ENV];
const entry =
  role === "reference-consumer"
    ? serveReferenceConsumer
    : role === FLOOR_ROLE
      ? serveOpsFloor
      : main;
entry().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
