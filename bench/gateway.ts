// Gateway at fleet scale: what `GET /health` and `GET /containers?health=unhealthy` cost with
// 1,000 hosts × 50 containers in the view, against a plain Fastify route that returns a constant
// body of the same bytes, with the same load tool, in the same run (docs/PERFORMANCE.md).
//
//   npm run bench:gateway
//
// Three processes: this one runs the load generator (autocannon); the gateway under test and the
// reference each run in a child process of their own, so the load generator never shares an
// event loop (or a core's time slice) with a server, and each server's RSS and CPU time are its
// own (/proc/<pid>).
//
// The servers run as the gateway is deployed: plain `node` on the compiled code in dist/, with no
// TypeScript loader (tsx alone adds ~36 MB of RSS and would make the memory figures estimates).
// So this bench first runs `npm run build` (and stops if it fails), then transpiles this file
// and the bench/ and test/ modules it imports (the in-memory ports of
// test/support/gateway-fakes.ts, shared helpers) into dist/bench/ and dist/test/, where their
// relative imports resolve to the built gateway.
// Only the load generator runs under tsx.
//
// - gateway child: the real `buildApp()` on in-memory control/event ports. Its FleetView is fed
//   1,000 host snapshots (JSON written by this process, read one line at a time and decoded with
//   the contract as the KV watch does) applied with receivedAt = now. heartbeatMs is long
//   (10 min by default) so that no host changes status during the run, except the 2 % that were
//   last heard from 4.5 heartbeats ago and stay stale throughout. With
//   FLEETHEAL_BENCH_REFRESH_PER_S, snapshots are read again from the file while the load runs,
//   decoded, given what a heartbeat changes (sequence number, clock, uptime, outbox count, the
//   failing streak of unhealthy containers) and applied.
// - reference child: `Fastify({ logger: false })` with two routes that send pre-encoded JSON
//   Buffers: the exact bytes the gateway answered for `/health` and for
//   `/containers?health=unhealthy` (so the same size), on the same paths.
//
// Targets are run interleaved (ref then gateway in odd rounds, gateway then ref in even ones)
// with the same connections, warm-up and duration; figures are medians across rounds, and each
// ratio is the median of the per-round ratios (gateway ÷ reference measured back to back).
//
// After the runs (so that their garbage is in no memory figure): the server time of one request
// in-process through `app.inject()` in both children, and the gateway handlers' own work with the
// cache warm and right after one host reports. Memory: RSS and heap after a full GC with the
// view empty, loaded, and after the runs, plus the peak (VmHWM).
//
// Everything is configurable through environment variables (see CONFIG); with
// FLEETHEAL_BENCH_CPU_PROF=<dir> the gateway child writes a V8 CPU profile there, and
// FLEETHEAL_BENCH_GATEWAY_NODE_FLAGS gives it Node/V8 flags (by default the heap cap it is
// deployed with). Results go to bench/results/gateway.json.

import { type ChildProcess, execFile, fork } from "node:child_process";
import { createReadStream, openSync, readSync } from "node:fs";
import {
  copyFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  writeFile,
} from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as delay } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { ContainerSnapshot, HostSnapshot, LedgerEntry } from "../contracts/index.js";
import { envNumber, hex, machineInfo, percentile, prng, round } from "./numbers.js";

const ROLE_ENV = "FLEETHEAL_BENCH_GATEWAY_ROLE";
/** The checkout, passed to the children: they run from dist/bench/, one level deeper. */
const REPO_ENV = "FLEETHEAL_BENCH_GATEWAY_REPO";
const REPO =
  process.env[REPO_ENV] ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
/** This file compiled, as the server children run it (see compileChildren). */
const CHILD = path.join(REPO, "dist", "bench", "gateway.js");
const FLEET_FILE_ENV = "FLEETHEAL_BENCH_GATEWAY_FLEET_FILE";

/** How compose.yaml (NODE_OPTIONS) and infra/systemd/fleetheal-gateway.service run the gateway. */
const DEPLOYED_GATEWAY_FLAGS = "--max-old-space-size=512";

const CONFIG = {
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

const HEALTH_URL = "/health";
const CONTAINERS_URL = "/containers?health=unhealthy";

// --- small helpers ------------------------------------------------------------------------------

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Calls `fn` `n` times and returns the per-call durations in ms, sorted. */
async function timeCalls(n: number, fn: () => unknown): Promise<Float64Array> {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    // inject() responses stay reachable until the event loop turns; without this a tight loop
    // of 10,000 /health injections holds gigabytes and the figures are the garbage collector's.
    if (i % 50 === 49) await new Promise(setImmediate);
    const t0 = performance.now();
    await fn();
    out[i] = performance.now() - t0;
  }
  return out.sort();
}

interface Timing {
  calls: number;
  meanUs: number;
  p50Us: number;
  p99Us: number;
}

function timing(sorted: Float64Array): Timing {
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    calls: sorted.length,
    meanUs: round((sum / sorted.length) * 1000, 1),
    p50Us: round(percentile(sorted, 50) * 1000, 1),
    p99Us: round(percentile(sorted, 99) * 1000, 1),
  };
}

// --- the fleet ----------------------------------------------------------------------------------

const PROJECTS = [
  ["shop", ["web", "api", "worker", "scheduler", "db", "cache", "search", "proxy"]],
  ["billing", ["api", "worker", "db", "queue", "exporter"]],
  ["auth", ["api", "db", "cache", "admin"]],
  [
    "metrics",
    ["prometheus", "grafana", "node-exporter", "cadvisor", "alertmanager", "pushgateway"],
  ],
  ["logging", ["loki", "promtail", "vector"]],
  ["media", ["api", "transcoder", "thumbnailer", "worker", "storage", "cdn-edge"]],
  ["crm", ["web", "api", "worker", "db", "cache", "mailer"]],
  ["ci", ["runner", "registry", "buildkit"]],
] as const;

const PUBLIC_IMAGES: Record<string, string> = {
  db: "postgres:16.4-alpine",
  cache: "redis:7.2.5-alpine",
  queue: "rabbitmq:3.13-management-alpine",
  proxy: "nginx:1.27.1-alpine",
  prometheus: "prom/prometheus:v2.54.1",
  grafana: "grafana/grafana:11.2.0",
  "node-exporter": "prom/node-exporter:v1.8.2",
  cadvisor: "gcr.io/cadvisor/cadvisor:v0.49.1",
  alertmanager: "prom/alertmanager:v0.27.0",
  pushgateway: "prom/pushgateway:v1.9.0",
  loki: "grafana/loki:3.1.1",
  promtail: "grafana/promtail:3.1.1",
  vector: "timberio/vector:0.40.1-debian",
  storage: "minio/minio:RELEASE.2024-08-29T01-40-52Z",
  registry: "registry:2.8.3",
  buildkit: "moby/buildkit:v0.15.2",
};

const UNHEALTHY_OUTPUTS = [
  "curl: (7) Failed to connect to localhost port 8080 after 0 ms: Couldn't connect to server",
  "curl: (28) Operation timed out after 5001 milliseconds with 0 bytes received",
  'HTTP/1.1 503 Service Unavailable\n{"status":"DOWN","components":{"db":{"status":"DOWN","details":{"error":"connection refused"}}}}',
  "pg_isready: /var/run/postgresql:5432 - no response",
  "Could not connect to Redis at 127.0.0.1:6379: Connection refused",
];
const HEALTHY_OUTPUTS = [
  "",
  "ok",
  '{"status":"UP"}',
  "/var/run/postgresql:5432 - accepting connections",
  "PONG",
];

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** What an agent would publish for one host: compose projects, images, labels, health checks. */
function makeSnapshot(rand: () => number, index: number, now: number): HostSnapshot {
  const dc = `dc${(index % 3) + 1}`;
  const host = `${dc}-node-${String(index).padStart(4, "0")}`;
  const containers: ContainerSnapshot[] = [];
  let p = Math.floor(rand() * PROJECTS.length);
  while (containers.length < CONFIG.containersPerHost) {
    const [project, services] = PROJECTS[p % PROJECTS.length] as (typeof PROJECTS)[number];
    p++;
    for (const service of services) {
      const replicas = service === "worker" ? 3 : service === "api" ? 2 : 1;
      for (let n = 1; n <= replicas && containers.length < CONFIG.containersPerHost; n++) {
        containers.push(makeContainer(rand, project, service, n, now));
      }
      if (containers.length >= CONFIG.containersPerHost) break;
    }
  }
  const startedAt = now - Math.floor(rand() * 30 * 86_400_000);
  return {
    type: "fleetheal.snapshot.v1.host",
    v: 1,
    host,
    seq: 1 + Math.floor(rand() * 50_000),
    at: iso(now),
    heartbeatMs: CONFIG.heartbeatMs,
    agent: {
      version: "0.1.0",
      startedAt: iso(startedAt),
      label: "autoheal",
      watchAll: false,
      uptimeSeconds: Math.floor((now - startedAt) / 1000),
    },
    outbox: { depth: 0, capacity: 10_000, published: Math.floor(rand() * 200_000), dropped: 0 },
    lastEventTimeNano: `${BigInt(now - 2_000) * 1_000_000n + BigInt(Math.floor(rand() * 999_999))}`,
    docker: { status: "up", version: "24.0.9" },
    containers,
  };
}

function makeContainer(
  rand: () => number,
  project: string,
  service: string,
  n: number,
  now: number,
): ContainerSnapshot {
  const image =
    PUBLIC_IMAGES[service] ??
    `registry.internal.example:5000/${project}/${service}:1.${Math.floor(rand() * 40)}.${Math.floor(rand() * 10)}`;
  const optedIn = rand() < 0.8;
  const labels: Record<string, string> = {
    "com.docker.compose.config-hash": hex(rand, 64),
    "com.docker.compose.container-number": String(n),
    "com.docker.compose.depends_on":
      service === "api" || service === "web"
        ? `db:service_healthy:false,cache:service_started:false`
        : "",
    "com.docker.compose.image": `sha256:${hex(rand, 64)}`,
    "com.docker.compose.oneoff": "False",
    "com.docker.compose.project": project,
    "com.docker.compose.project.config_files": `/srv/${project}/compose.yaml`,
    "com.docker.compose.project.working_dir": `/srv/${project}`,
    "com.docker.compose.service": service,
    "com.docker.compose.version": "2.29.2",
  };
  if (!PUBLIC_IMAGES[service]) {
    labels["org.opencontainers.image.source"] = `https://git.example.com/${project}/${service}`;
    labels["org.opencontainers.image.revision"] = hex(rand, 40);
    labels["org.opencontainers.image.created"] = iso(now - Math.floor(rand() * 90 * 86_400_000));
  }
  if (optedIn) labels.autoheal = "true";
  if (rand() < 0.1) labels["autoheal.stop.timeout"] = "30";
  const r = rand();
  const source: ContainerSnapshot["healthSource"] =
    r < 0.75 ? "docker" : r < 0.8 ? "probe" : "none";
  if (source === "probe") {
    labels["autoheal.probe.http"] = ":8080/healthz";
    labels["autoheal.probe.interval"] = "10s";
  }
  const exited = rand() < 0.02;
  const h = rand();
  const health: ContainerSnapshot["health"] =
    exited || source === "none"
      ? "none"
      : h < CONFIG.unhealthyShare
        ? "unhealthy"
        : h < CONFIG.unhealthyShare + CONFIG.startingShare
          ? "starting"
          : "healthy";
  const started =
    health === "starting"
      ? now - Math.floor(rand() * 20_000)
      : now - Math.floor(rand() * 20 * 86_400_000);
  const output =
    source === "none" || exited
      ? undefined
      : health === "unhealthy"
        ? UNHEALTHY_OUTPUTS[Math.floor(rand() * UNHEALTHY_OUTPUTS.length)]
        : HEALTHY_OUTPUTS[Math.floor(rand() * HEALTHY_OUTPUTS.length)];
  return {
    id: hex(rand, 64),
    name: `${project}-${service}-${n}`,
    image,
    state: exited ? "exited" : "running",
    health,
    optedIn,
    labels,
    startedAt: iso(started),
    ...(exited ? { exitCode: rand() < 0.5 ? 137 : 1 } : {}),
    restartCount: rand() < 0.9 ? 0 : Math.floor(rand() * 5),
    failingStreak: health === "unhealthy" ? 3 + Math.floor(rand() * 20) : 0,
    ...(output ? { lastHealthOutput: output } : {}),
    healthSource: source,
    ...(source === "probe"
      ? { probe: { kind: "http" as const, target: "127.0.0.1:8080/healthz" } }
      : {}),
    networkMode: `${project}_default`,
    compose: { project, service },
  };
}

/** A ledger entry for a container fleetheal has restarted (some of them quarantined). */
function makeLedger(
  rand: () => number,
  host: string,
  c: ContainerSnapshot,
  now: number,
): LedgerEntry {
  const count = 1 + Math.floor(rand() * 5);
  const restarts = Array.from({ length: count }, (_, i) => ({
    at: iso(now - (i + 1) * 600_000),
    incident: iso(now - (i + 1) * 600_000 - 60_000),
    commandId: `heal-${hex(rand, 16)}`,
    outcome: "restarted" as const,
  }));
  const quarantined = count >= 4;
  return {
    v: 1,
    host,
    containerId: c.id,
    lastIncident: restarts[0]?.incident,
    lastCommandId: restarts[0]?.commandId,
    lastRestartAt: restarts[0]?.at,
    restarts,
    consecutiveRestarts: count,
    lastTroubleAt: iso(now - 30_000),
    ...(quarantined
      ? { quarantine: { since: iso(now - 120_000), reason: `${count} restarts in 1h` } }
      : {}),
  };
}

/**
 * Writes the fleet as the KV buckets would hold it: one line per host snapshot (`S\t<json>`)
 * and per ledger entry (`L\t<host>\t<container id>\t<json>`), restarts recorded for ~40 % of
 * the unhealthy containers.
 */
async function writeFleet(file: string): Promise<{ generateMs: number; snapshotJsonMB: number }> {
  const t0 = performance.now();
  const rand = prng(CONFIG.seed);
  const now = Date.now();
  const lines: string[] = [];
  let bytes = 0;
  for (let i = 0; i < CONFIG.hosts; i++) {
    const s = makeSnapshot(rand, i, now);
    const json = JSON.stringify(s);
    bytes += Buffer.byteLength(json);
    lines.push(`S\t${json}`);
    for (const c of s.containers) {
      if (c.health === "unhealthy" && rand() < 0.4) {
        lines.push(`L\t${s.host}\t${c.id}\t${JSON.stringify(makeLedger(rand, s.host, c, now))}`);
      }
    }
  }
  await writeFile(file, `${lines.join("\n")}\n`);
  return {
    generateMs: round(performance.now() - t0, 1),
    snapshotJsonMB: round(bytes / 1024 / 1024, 1),
  };
}

// --- the gateway under test (child) -------------------------------------------------------------

interface GatewayInfo {
  fleet: {
    hosts: number;
    containers: number;
    unhealthy: number;
    starting: number;
    staleHosts: number;
    ledgerEntries: number;
  };
  setupMs: {
    decode1000: number;
    apply1000: number;
    firstHealthBuild: number;
    firstContainersQuery: number;
  };
  refreshPerSecond: number;
  /** The app built and ready with an empty view, after a full GC. */
  memoryEmpty: NodeJS.MemoryUsage;
  /** The same with the fleet loaded, after a full GC, before any request. */
  memoryLoaded: NodeJS.MemoryUsage;
}

interface ReferenceInfo {
  /** The plain Fastify process ready, after a full GC, before any request. */
  memoryLoaded: NodeJS.MemoryUsage;
}

/** In-process timings, taken after the load runs (so that their garbage is not in the RSS). */
interface Measured {
  inject: { health: Timing; containers: Timing };
  /** Snapshots re-applied by the refresh loop until the timings started, and their rate. */
  refreshed?: { snapshots: number; perSecond: number };
  handler?: {
    healthCached: Timing;
    containersQueryCached: Timing;
    afterOneHostReports: Record<
      "healthRebuild" | "containersQuery",
      { p50Ms: number; maxMs: number }
    >;
  };
}

/** process.memoryUsage() after a full GC when the child runs with --expose-gc. */
function settledMemory(): NodeJS.MemoryUsage {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage();
}

type ToParent =
  | { type: "hello" }
  | { type: "ready"; port: number; info: GatewayInfo | ReferenceInfo }
  | { type: "stats"; before: NodeJS.MemoryUsage; memory: NodeJS.MemoryUsage }
  | { type: "measured"; measured: Measured };
type ToChild =
  | { type: "bodies"; routes: { path: string; body: string }[] }
  | { type: "stats" }
  | { type: "measure" }
  | { type: "exit" };

function send(message: ToParent): void {
  process.send?.(message);
}

/** Times `app.inject()` of both URLs: Fastify's whole request path without a socket. */
async function timeInject(app: import("fastify").FastifyInstance): Promise<Measured["inject"]> {
  const inject = (url: string) => () => app.inject({ method: "GET", url });
  const containerCalls = Math.max(100, Math.round(CONFIG.injectCalls / 10));
  await timeCalls(Math.min(500, CONFIG.injectCalls), inject(HEALTH_URL)); // warm-up
  const health = timing(await timeCalls(CONFIG.injectCalls, inject(HEALTH_URL)));
  await timeCalls(Math.min(50, containerCalls), inject(CONTAINERS_URL));
  const containers = timing(await timeCalls(containerCalls, inject(CONTAINERS_URL)));
  return { health, containers };
}

/** Answers the parent's requests until it says exit. */
function serveParent(app: import("fastify").FastifyInstance, measure: () => Promise<Measured>) {
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

async function listen(app: import("fastify").FastifyInstance): Promise<number> {
  await app.listen({ host: "127.0.0.1", port: 0 });
  const address = app.server.address();
  if (!address || typeof address === "string") throw new Error("no TCP address");
  return address.port;
}

async function serveGateway(): Promise<void> {
  const [{ buildApp }, { FleetView }, { HealthCache }, { findContainers }, contracts, fakes] =
    await Promise.all([
      import("../gateway/http/app.js"),
      import("../gateway/view/fleet-view.js"),
      import("../gateway/view/health-cache.js"),
      import("../gateway/view/container-query.js"),
      import("../contracts/index.js"),
      import("../test/support/gateway-fakes.js"),
    ]);
  const { decode, HostSnapshot, LedgerEntry } = contracts;
  const now = Date.now();

  const staleness = { staleAfterHeartbeats: 3, downAfterHeartbeats: 12 };
  const view = new FleetView();
  const health = new HealthCache(view, staleness);
  const events = new fakes.MemoryEventLog();
  const app = await buildApp({
    view,
    staleness,
    health,
    natsConnected: () => true,
    control: new fakes.FakeFleetControl(),
    events,
    feed: events,
    logger: false,
  });
  await app.ready();
  const memoryEmpty = settledMemory();

  // The fleet arrives one JSON document at a time, as the KV watch delivers it, and is decoded
  // with the contract (JSON.parse + zod) like view-sync.ts does. The documents were generated
  // by the parent, so that no generator garbage counts against this process's memory.
  const decoded: HostSnapshot[] = [];
  /** Where each snapshot's JSON is in the file, for the refresh loop to read it again. */
  const where: { position: number; length: number }[] = [];
  let position = 0;
  const ledger: { host: string; id: string; entry: LedgerEntry }[] = [];
  let decodeMs = 0;
  const file = process.env[FLEET_FILE_ENV];
  if (!file) throw new Error(`${FLEET_FILE_ENV} is not set`);
  const lines = createInterface({ input: createReadStream(file, "utf8"), crlfDelay: Infinity });
  for await (const line of lines) {
    const lineStart = position;
    position += Buffer.byteLength(line) + 1;
    if (line.startsWith("S\t")) {
      const json = line.slice(2);
      where.push({ position: lineStart + 2, length: position - 1 - lineStart - 2 });
      const t = performance.now();
      const d = decode(HostSnapshot, json);
      decodeMs += performance.now() - t;
      if (!d.ok)
        throw new Error(`generated snapshot does not match the contract: ${d.error.message}`);
      decoded.push(d.value);
    } else if (line.startsWith("L\t")) {
      const d = decode(LedgerEntry, line.slice(line.indexOf("{")));
      if (!d.ok)
        throw new Error(`generated ledger entry does not match the contract: ${d.error.message}`);
      // The ids as decoded, not cut from the line: a slice of it is a V8 sliced string that
      // would keep the whole chunk readline cut the line from (with its snapshots) alive in
      // the view's ledger keys, 10 MB of the bench's input counted as the gateway's memory.
      ledger.push({ host: d.value.host, id: d.value.containerId, entry: d.value });
    }
  }
  const staleEvery = CONFIG.staleHostShare > 0 ? Math.round(1 / CONFIG.staleHostShare) : 0;
  // Stale hosts were last heard from 4.5 heartbeats ago: stale (3) but not yet down (12).
  const receivedAt = (i: number) =>
    staleEvery && i % staleEvery === staleEvery - 1 ? now - 4.5 * CONFIG.heartbeatMs : now;
  let t0 = performance.now();
  for (const [i, s] of decoded.entries()) view.apply(s, receivedAt(i));
  const applyMs = performance.now() - t0;
  const hostIds = decoded.map((s) => s.host);
  decoded.length = 0;
  for (const l of ledger) view.applyLedger(l.host, l.id, l.entry);
  ledger.length = 0;
  view.markLoaded();
  t0 = performance.now();
  health.get(Date.now());
  const firstHealthMs = performance.now() - t0;
  t0 = performance.now();
  findContainers(view, { health: "unhealthy", limit: 100 });
  const firstQueryMs = performance.now() - t0;
  const memoryLoaded = settledMemory();

  for (const url of [HEALTH_URL, CONTAINERS_URL]) {
    const res = await app.inject({ method: "GET", url });
    if (res.statusCode !== 200)
      throw new Error(`${url} answered ${res.statusCode}: ${res.body.slice(0, 200)}`);
  }

  let refreshed = 0;
  let refreshStart = 0;
  if (CONFIG.refreshPerSecond > 0) {
    // Re-applies snapshots at the given rate, as KV updates would arrive (decode + apply).
    const fd = openSync(file, "r");
    refreshStart = performance.now();
    setInterval(() => {
      // By the clock, not by ticks: a busy event loop catches up, as queued KV updates would.
      const due = Math.floor(((performance.now() - refreshStart) / 1000) * CONFIG.refreshPerSecond);
      while (refreshed < due) {
        const i = refreshed % where.length;
        // Read from the file (page cache) each time, as bytes, like a KV update arriving:
        // keeping 54 MB of JSON in memory would count against the gateway's RSS.
        const at = where[i] as { position: number; length: number };
        const bytes = Buffer.allocUnsafe(at.length);
        readSync(fd, bytes, 0, at.length, at.position);
        const d = decode(HostSnapshot, bytes);
        if (d.ok) {
          // What a heartbeat changes, so that the view cannot keep the whole previous snapshot:
          // the agent's sequence number, clock, uptime and outbox counter, and the streak of
          // each unhealthy container (its health check keeps failing).
          const s = d.value;
          const beat = Math.floor(refreshed / where.length) + 1;
          s.seq += beat;
          s.at = new Date().toISOString();
          s.agent.uptimeSeconds += beat * Math.round(CONFIG.heartbeatMs / 1000);
          s.outbox.published += beat;
          for (const c of s.containers) if (c.health === "unhealthy") c.failingStreak += beat;
          view.apply(s, receivedAt(i) === now ? Date.now() : receivedAt(i));
        }
        refreshed++;
      }
    }, 10).unref();
  }

  // The handlers' own work: with the cache warm, and right after one host reports (which
  // invalidates the /health body).
  const measure = async (): Promise<Measured> => {
    const inject = await timeInject(app);
    const query = { health: "unhealthy" as const, limit: 100 };
    const calls = Math.max(100, Math.round(CONFIG.injectCalls / 10));
    const healthCached = timing(await timeCalls(100_000, () => health.get(Date.now())));
    const queryCached = timing(await timeCalls(calls, () => findContainers(view, query)));
    const after = {
      health: new Float64Array(50),
      query: new Float64Array(50),
    };
    for (let k = 0; k < 50; k++) {
      const i = (k * 97) % hostIds.length;
      // The same content again: only the view's version moves, as with a heartbeat.
      const record = view.get(hostIds[i] as string);
      if (record) view.apply(record.snapshot, record.receivedAt);
      let t = performance.now();
      health.get(Date.now());
      after.health[k] = performance.now() - t;
      t = performance.now();
      findContainers(view, query);
      after.query[k] = performance.now() - t;
      await new Promise(setImmediate);
    }
    const ms = (a: Float64Array) => {
      const s = a.sort();
      return { p50Ms: round(percentile(s, 50), 3), maxMs: round(s[s.length - 1] ?? Number.NaN, 3) };
    };
    return {
      inject,
      ...(CONFIG.refreshPerSecond > 0
        ? {
            refreshed: {
              snapshots: refreshed,
              perSecond: round(refreshed / ((performance.now() - refreshStart) / 1000), 1),
            },
          }
        : {}),
      handler: {
        healthCached,
        containersQueryCached: queryCached,
        afterOneHostReports: {
          healthRebuild: ms(after.health),
          containersQuery: ms(after.query),
        },
      },
    };
  };

  const port = await listen(app);
  serveParent(app, measure);
  const rows = view.list().flatMap((host) => host.sorted.map((container) => ({ host, container })));
  send({
    type: "ready",
    port,
    info: {
      fleet: {
        hosts: view.list().length,
        containers: rows.length,
        unhealthy: rows.filter((r) => r.container.health === "unhealthy").length,
        starting: rows.filter((r) => r.container.health === "starting").length,
        staleHosts: health.get(Date.now()).totals.hosts.stale,
        ledgerEntries: rows.filter((r) => view.ledgerEntry(r.host.snapshot.host, r.container.id))
          .length,
      },
      setupMs: {
        decode1000: round(decodeMs, 1),
        apply1000: round(applyMs, 2),
        firstHealthBuild: round(firstHealthMs, 2),
        firstContainersQuery: round(firstQueryMs, 2),
      },
      refreshPerSecond: CONFIG.refreshPerSecond,
      memoryEmpty,
      memoryLoaded,
    },
  });
}

// --- the reference (child) ----------------------------------------------------------------------

async function serveReference(): Promise<void> {
  // Asks for the bodies only once it listens for them, so the message cannot be missed.
  const bodies = new Promise<ToChild>((resolve) => process.once("message", resolve));
  send({ type: "hello" });
  const { default: Fastify } = await import("fastify");
  const m = await bodies;
  if (m.type !== "bodies") throw new Error(`reference: expected the bodies, got ${m.type}`);
  const app = Fastify({ logger: false });
  for (const { path: route, body } of m.routes) {
    // A Buffer, encoded once: the fastest a constant route can answer, so the reference is a
    // floor the gateway cannot beat by sending bytes where the reference sends a string.
    const bytes = Buffer.from(body, "utf8");
    app.get(route, (_request, reply) => {
      reply.type("application/json; charset=utf-8").send(bytes);
    });
  }
  await app.ready();
  const memoryLoaded = settledMemory();
  const port = await listen(app);
  serveParent(app, async () => ({ inject: await timeInject(app) }));
  send({ type: "ready", port, info: { memoryLoaded } });
}

// --- the load generator (main) ------------------------------------------------------------------

interface Server {
  name: "gateway" | "reference";
  child: ChildProcess;
  port: number;
  info: GatewayInfo | ReferenceInfo;
}

async function startServer(
  name: Server["name"],
  options: { onHello?: ToChild; env?: Record<string, string> } = {},
): Promise<Server> {
  const { onHello } = options;
  // Plain node, as deployed: an explicit execArgv keeps this process's tsx loader out of the
  // child. --expose-gc only lets the child settle the heap before it reports its memory.
  const execArgv = ["--expose-gc"];
  if (name === "gateway") execArgv.push(...CONFIG.gatewayNodeFlags);
  if (name === "gateway" && CONFIG.cpuProfDir) {
    await mkdir(CONFIG.cpuProfDir, { recursive: true });
    execArgv.push("--cpu-prof", "--cpu-prof-dir", CONFIG.cpuProfDir);
  }
  const child = fork(CHILD, [], {
    cwd: REPO,
    execArgv,
    env: { ...process.env, ...options.env, [ROLE_ENV]: name, [REPO_ENV]: REPO },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const ready = new Promise<ToParent & { type: "ready" }>((resolve, reject) => {
    const onMessage = (m: ToParent) => {
      if (m.type === "hello" && onHello) child.send(onHello);
      if (m.type === "ready") {
        child.off("message", onMessage);
        resolve(m);
      }
    };
    child.on("message", onMessage);
    child.once("exit", (code) =>
      reject(new Error(`${name} exited with ${code} before it was ready`)),
    );
  });
  const m = await ready;
  return { name, child, port: m.port, info: m.info };
}

/** Sends `request` and waits for the child's answer of type `answer`. */
function ask<T extends ToParent["type"]>(
  server: Server,
  request: ToChild,
  answer: T,
): Promise<Extract<ToParent, { type: T }>> {
  return new Promise((resolve) => {
    const onMessage = (m: ToParent) => {
      if (m.type === answer) {
        server.child.off("message", onMessage);
        resolve(m as Extract<ToParent, { type: T }>);
      }
    };
    server.child.on("message", onMessage);
    server.child.send(request);
  });
}

async function stopServer(server: Server): Promise<void> {
  if (server.child.exitCode !== null) return;
  const exited = new Promise((resolve) => server.child.once("exit", resolve));
  server.child.send({ type: "exit" } satisfies ToChild);
  await Promise.race([exited, delay(10_000)]);
  if (server.child.exitCode === null) server.child.kill("SIGKILL");
}

interface ProcStat {
  cpuTicks: number;
  rssKb: number;
  hwmKb: number;
}

async function procStat(pid: number): Promise<ProcStat> {
  const [stat, status] = await Promise.all([
    readFile(`/proc/${pid}/stat`, "utf8"),
    readFile(`/proc/${pid}/status`, "utf8"),
  ]);
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return {
    cpuTicks: Number(rest[11]) + Number(rest[12]),
    rssKb: Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? Number.NaN),
    hwmKb: Number(/^VmHWM:\s+(\d+)/m.exec(status)?.[1] ?? Number.NaN),
  };
}

const CLOCK_TICKS = 100; // USER_HZ on Linux

type TargetName = "ref /health" | "gateway /health" | "ref /containers" | "gateway /containers";

interface Run {
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

async function load(
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
  const cpuS = (after.cpuTicks - before.cpuTicks) / CLOCK_TICKS;
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

/** RSS of an idle `node` after a GC: what any Node server costs before it does anything. */
async function idleNodeMb(): Promise<number> {
  const code =
    "await new Promise((r) => setTimeout(r, 300)); globalThis.gc(); process.stdout.write(String(process.memoryUsage().rss));";
  const rss = async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ["--expose-gc", "--input-type=module", "-e", code],
      { cwd: REPO },
    );
    return Number(stdout) / 1024 / 1024;
  };
  return round(median([await rss(), await rss(), await rss()]), 1);
}

/**
 * Builds what the server children run: the gateway compiled by `npm run build`, and this file
 * with the local modules it imports that the build leaves out (bench/ and test/ helpers, such as
 * the in-memory ports) transpiled into dist/ beside it, so that their relative imports
 * (`../gateway/app.js`, `../../contracts/index.js`) load the built gateway and nothing else.
 */
async function compileChildren(): Promise<void> {
  try {
    await promisify(execFile)("npm", ["run", "--silent", "build"], { cwd: REPO });
  } catch (err) {
    const { stdout = "", stderr = "" } = err as { stdout?: string; stderr?: string };
    throw new Error(
      `npm run build failed; the bench measures the built gateway:\n${stdout}${stderr}`,
    );
  }
  // The project's own compiler (tsc, a native binary since TypeScript 7, with no JavaScript API)
  // compiles this file and everything it imports into a scratch directory, without type checking
  // (`npm run typecheck` does that); what the build leaves out is then copied into dist/.
  const scratch = await mkdtemp(path.join(os.tmpdir(), "fleetheal-bench-gateway-"));
  try {
    const config = path.join(scratch, "tsconfig.json");
    const out = path.join(scratch, "out");
    await writeFile(
      config,
      JSON.stringify({
        extends: path.join(REPO, "tsconfig.json"),
        compilerOptions: {
          noEmit: false,
          noCheck: true,
          declaration: false,
          sourceMap: false,
          rootDir: REPO,
          outDir: out,
          // Type roots are looked up from the config's directory, which is not the checkout.
          typeRoots: [path.join(REPO, "node_modules", "@types")],
        },
        files: [path.join(REPO, "bench", "gateway.ts")],
        include: [],
      }),
    );
    const tsc = path.join(REPO, "node_modules", ".bin", "tsc");
    try {
      await promisify(execFile)(tsc, ["-p", config], { cwd: REPO });
    } catch (err) {
      const { stdout = "", stderr = "" } = err as { stdout?: string; stderr?: string };
      throw new Error(`tsc could not compile bench/gateway.ts:\n${stdout}${stderr}`);
    }
    const buildConfig = JSON.parse(
      await readFile(path.join(REPO, "tsconfig.build.json"), "utf8"),
    ) as { include?: string[] };
    const built = new Set<string>(buildConfig.include ?? []);
    const emitted = (await readdir(out, { recursive: true })).filter((f) => f.endsWith(".js"));
    for (const file of emitted) {
      if (built.has(file.split(path.sep)[0] as string)) continue;
      const target = path.join(REPO, "dist", file);
      await mkdir(path.dirname(target), { recursive: true });
      // Written whole under another name, then renamed: a concurrent run never reads half a file.
      const partial = `${target}.${process.pid}`;
      await copyFile(path.join(out, file), partial);
      await rename(partial, target);
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

function log(message: string): void {
  console.error(`[bench:gateway +${(process.uptime()).toFixed(1)}s] ${message}`);
}

async function main(): Promise<void> {
  const { default: autocannon } = await import("autocannon");
  const startedAt = new Date();
  const loadBefore = os.loadavg();
  const servers: Server[] = [];
  const fleetFile = path.join(os.tmpdir(), `fleetheal-bench-gateway-${process.pid}.ndjson`);
  let failure: unknown;
  try {
    log(`starting the gateway with ${CONFIG.hosts} hosts × ${CONFIG.containersPerHost} containers`);
    log("building dist/ (npm run build) and the server children");
    await compileChildren();
    const idleNode = await idleNodeMb();
    const fleet = await writeFleet(fleetFile);
    log(`wrote the fleet's ${fleet.snapshotJsonMB} MB of snapshots in ${fleet.generateMs} ms`);
    const gateway = await startServer("gateway", { env: { [FLEET_FILE_ENV]: fleetFile } });
    servers.push(gateway);
    const bodies: Record<string, string> = {};
    for (const url of [HEALTH_URL, CONTAINERS_URL]) {
      const res = await fetch(`http://127.0.0.1:${gateway.port}${url}`);
      if (res.status !== 200) throw new Error(`gateway ${url} answered ${res.status}`);
      bodies[url] = await res.text();
      JSON.parse(bodies[url] as string);
    }
    const healthBody = bodies[HEALTH_URL] as string;
    const containersBody = bodies[CONTAINERS_URL] as string;
    const reference = await startServer("reference", {
      onHello: {
        type: "bodies",
        routes: [
          { path: "/health", body: healthBody },
          { path: "/containers", body: containersBody },
        ],
      },
    });
    servers.push(reference);
    const size = {
      health: Buffer.byteLength(healthBody),
      containers: Buffer.byteLength(containersBody),
    };
    for (const url of [HEALTH_URL, CONTAINERS_URL]) {
      const text = await (await fetch(`http://127.0.0.1:${reference.port}${url}`)).text();
      if (text !== bodies[url])
        throw new Error(`the reference's ${url} body differs from the gateway's`);
    }
    const rssAtReady = {
      gateway: await procStat(gateway.child.pid as number),
      reference: await procStat(reference.child.pid as number),
    };
    log(
      `bodies: /health ${size.health} B, ${CONTAINERS_URL} ${size.containers} B; gateway RSS ${round(rssAtReady.gateway.rssKb / 1024, 1)} MB`,
    );

    const runs: Run[] = [];
    for (let r = 1; r <= CONFIG.rounds; r++) {
      // ABBA: the reference goes first in odd rounds, the gateway in even ones.
      const pairs: [TargetName, Server, string, number][][] = [
        [
          ["ref /health", reference, HEALTH_URL, size.health],
          ["gateway /health", gateway, HEALTH_URL, size.health],
        ],
        [
          ["ref /containers", reference, CONTAINERS_URL, size.containers],
          ["gateway /containers", gateway, CONTAINERS_URL, size.containers],
        ],
      ];
      for (const pair of pairs) {
        for (const [target, server, url, bytes] of r % 2 ? pair : [...pair].reverse()) {
          const run = await load(autocannon, target, r, server, url, bytes);
          runs.push(run);
          log(
            `round ${r} ${target}: ${run.requestsPerSecond} req/s, p50 ${run.latencyMs.p50} ms, p99 ${run.latencyMs.p99} ms, server ${run.serverCpuUsPerRequest} µs CPU/req${run.errors || run.non2xx ? `, ${run.errors} errors, ${run.non2xx} non-2xx` : ""}`,
          );
        }
      }
    }

    // Memory as the runs left it, then after a full GC; then the in-process timings, whose
    // garbage therefore counts in neither.
    const rssAfter = {
      gateway: await procStat(gateway.child.pid as number),
      reference: await procStat(reference.child.pid as number),
    };
    const stats = {
      gateway: await ask(gateway, { type: "stats" }, "stats"),
      reference: await ask(reference, { type: "stats" }, "stats"),
    };
    const heapAfterGc = { gateway: stats.gateway.memory, reference: stats.reference.memory };
    log("timing requests in-process");
    const measured = {
      gateway: (await ask(gateway, { type: "measure" }, "measured")).measured,
      reference: (await ask(reference, { type: "measure" }, "measured")).measured,
    };
    const summary = summarise(runs);
    const gw = gateway.info as GatewayInfo;
    const ref = reference.info as ReferenceInfo;
    const mb = (bytes: number) => round(bytes / 1024 / 1024, 1);
    const result = {
      startedAt: startedAt.toISOString(),
      durationS: round(process.uptime(), 1),
      machine: machineInfo(loadBefore),
      config: CONFIG,
      method: {
        loadTool:
          "autocannon 8 in the main process (tsx); each server in its own child process, plain node on the code built in dist/",
        reference:
          "plain Fastify({ logger: false }), same paths, sending pre-encoded Buffers of the gateway's exact bodies",
        latency:
          "percentiles of every 2xx response's time as autocannon measured it (float ms), not autocannon's whole-ms histogram",
        ratios: "median over rounds of gateway ÷ reference measured back to back in the same round",
      },
      bodies: size,
      fleetJson: fleet,
      gateway: gw,
      reference: ref,
      measured,
      memory: {
        gatewayRssMbEmpty: mb(gw.memoryEmpty.rss),
        gatewayHeapUsedMbEmpty: mb(gw.memoryEmpty.heapUsed),
        gatewayRssMbLoaded: mb(gw.memoryLoaded.rss),
        gatewayHeapUsedMbLoaded: mb(gw.memoryLoaded.heapUsed),
        gatewayRssMbAfterRuns: mb(rssAfter.gateway.rssKb * 1024),
        gatewayRssMbPeak: mb(rssAfter.gateway.hwmKb * 1024),
        /** V8's heap as the runs left it: used (garbage included) and committed. */
        gatewayHeapUsedMbAfterRuns: mb(stats.gateway.before.heapUsed),
        gatewayHeapTotalMbAfterRuns: mb(stats.gateway.before.heapTotal),
        gatewayExternalMbAfterRuns: mb(stats.gateway.before.external),
        gatewayRssMbAfterRunsAndGc: mb(heapAfterGc.gateway.rss),
        gatewayHeapUsedMbAfterRunsAndGc: mb(heapAfterGc.gateway.heapUsed),
        referenceRssMbLoaded: mb(ref.memoryLoaded.rss),
        referenceHeapUsedMbLoaded: mb(ref.memoryLoaded.heapUsed),
        referenceRssMbAfterRuns: mb(rssAfter.reference.rssKb * 1024),
        referenceRssMbPeak: mb(rssAfter.reference.hwmKb * 1024),
        referenceRssMbAfterRunsAndGc: mb(heapAfterGc.reference.rss),
        /** An idle `node` after a GC: the part of every figure here that is Node itself. */
        idleNodeMb: idleNode,
        rssTargetMb: 200,
        meetsRssTarget: {
          loaded: mb(gw.memoryLoaded.rss) < 200,
          afterRuns: mb(rssAfter.gateway.rssKb * 1024) < 200,
          peak: mb(rssAfter.gateway.hwmKb * 1024) < 200,
        },
      },
      summary,
      runs,
    };
    printTable(result);
    await mkdir(path.dirname(CONFIG.output), { recursive: true });
    await writeFile(CONFIG.output, `${JSON.stringify(result, null, 2)}\n`);
    log(`wrote ${path.relative(REPO, CONFIG.output)}`);
    // A non-2xx answer means the setup is wrong; errors (timeouts after 10 s, resets) are a result.
    const wrong = runs.filter((r) => r.non2xx > 0);
    if (wrong.length) throw new Error(`${wrong.length} runs had non-2xx answers`);
    for (const r of runs.filter((x) => x.errors > 0)) {
      log(`warning: round ${r.round} ${r.target} had ${r.errors} errors or timeouts (10 s)`);
    }
  } catch (err) {
    failure = err;
  } finally {
    for (const s of servers.reverse()) await stopServer(s);
    await rm(fleetFile, { force: true });
  }
  if (failure) throw failure;
}

interface TargetSummary {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  serverCpuUsPerRequest: number;
  bodyBytes: number;
  responseBytes: number;
  errors: number;
}

function summarise(runs: Run[]) {
  const byTarget = (t: TargetName) => runs.filter((r) => r.target === t);
  const targets = {} as Record<TargetName, TargetSummary>;
  for (const t of [
    "ref /health",
    "gateway /health",
    "ref /containers",
    "gateway /containers",
  ] as const) {
    const rs = byTarget(t);
    targets[t] = {
      requestsPerSecond: Math.round(median(rs.map((r) => r.requestsPerSecond))),
      p50Ms: round(median(rs.map((r) => r.latencyMs.p50)), 2),
      p99Ms: round(median(rs.map((r) => r.latencyMs.p99)), 2),
      serverCpuUsPerRequest: round(median(rs.map((r) => r.serverCpuUsPerRequest)), 1),
      bodyBytes: rs[0]?.bodyBytes ?? 0,
      responseBytes: rs[0]?.responseBytes ?? 0,
      errors: rs.reduce((n, r) => n + r.errors, 0),
    };
  }
  const ratio = (gw: TargetName, ref: TargetName, f: (r: Run) => number) => {
    const per = byTarget(gw).map((g) => {
      const r = byTarget(ref).find((x) => x.round === g.round);
      return r ? f(g) / f(r) : Number.NaN;
    });
    return { median: round(median(per), 3), perRound: per.map((x) => round(x, 3)) };
  };
  const ratios = {
    health: {
      throughput: ratio("gateway /health", "ref /health", (r) => r.requestsPerSecond),
      p99: ratio("gateway /health", "ref /health", (r) => r.latencyMs.p99),
      p50: ratio("gateway /health", "ref /health", (r) => r.latencyMs.p50),
      serverCpuPerRequest: ratio("gateway /health", "ref /health", (r) => r.serverCpuUsPerRequest),
    },
    containers: {
      throughput: ratio("gateway /containers", "ref /containers", (r) => r.requestsPerSecond),
      p99: ratio("gateway /containers", "ref /containers", (r) => r.latencyMs.p99),
      p50: ratio("gateway /containers", "ref /containers", (r) => r.latencyMs.p50),
      serverCpuPerRequest: ratio(
        "gateway /containers",
        "ref /containers",
        (r) => r.serverCpuUsPerRequest,
      ),
    },
  };
  return { targets, ratios, throughputTarget: 0.8 };
}

interface Printed {
  machine: { loadAverageBefore: number[]; loadAverageAfter: number[] };
  durationS: number;
  fleetJson: { generateMs: number; snapshotJsonMB: number };
  gateway: GatewayInfo;
  measured: { gateway: Measured; reference: Measured };
  memory: {
    gatewayRssMbEmpty: number;
    gatewayHeapUsedMbEmpty: number;
    gatewayRssMbLoaded: number;
    gatewayHeapUsedMbLoaded: number;
    gatewayRssMbAfterRuns: number;
    gatewayRssMbPeak: number;
    gatewayHeapUsedMbAfterRuns: number;
    gatewayHeapTotalMbAfterRuns: number;
    gatewayExternalMbAfterRuns: number;
    gatewayRssMbAfterRunsAndGc: number;
    gatewayHeapUsedMbAfterRunsAndGc: number;
    referenceRssMbLoaded: number;
    referenceHeapUsedMbLoaded: number;
    referenceRssMbAfterRuns: number;
    referenceRssMbPeak: number;
    referenceRssMbAfterRunsAndGc: number;
    idleNodeMb: number;
    meetsRssTarget: { loaded: boolean; afterRuns: boolean; peak: boolean };
  };
  summary: ReturnType<typeof summarise>;
}

function printTable(result: Printed): void {
  const t = result.summary.targets;
  const q = result.summary.ratios;
  const g = result.gateway;
  const m = result.memory;
  const gi = result.measured.gateway;
  const ri = result.measured.reference;
  const h = gi.handler;
  const yes = (ok: boolean) => (ok ? "met" : "MISSED");
  const row = (name: TargetName) =>
    `| ${name} | ${t[name].requestsPerSecond} | ${t[name].p50Ms} | ${t[name].p99Ms} | ${t[name].bodyBytes} | ${t[name].serverCpuUsPerRequest} | ${t[name].errors} |`;
  const inj = (x: Timing) => `${x.meanUs} µs mean (p50 ${x.p50Us}, p99 ${x.p99Us})`;
  const ratioLine = (name: string, r: typeof q.health) =>
    `${name} throughput ${r.throughput.median} (rounds ${r.throughput.perRound.join(", ")}), p99 ${r.p99.median} (${r.p99.perRound.join(", ")}), p50 ${r.p50.median}, server CPU per request ${r.serverCpuPerRequest.median}`;
  const out = [
    "",
    `Gateway, ${g.fleet.hosts} hosts × ${CONFIG.containersPerHost} containers (${g.fleet.containers}; ${g.fleet.unhealthy} unhealthy, ${g.fleet.starting} starting, ${g.fleet.staleHosts} stale hosts, ${g.fleet.ledgerEntries} with a ledger), ${CONFIG.connections} connections, ${CONFIG.rounds} rounds of ${CONFIG.durationS} s after ${CONFIG.warmupS} s warm-up; medians${CONFIG.refreshPerSecond ? `; ${CONFIG.refreshPerSecond} snapshots/s re-applied during the runs` : ""}${CONFIG.gatewayNodeFlags.length ? `; gateway flags ${CONFIG.gatewayNodeFlags.join(" ")}` : ""}`,
    "",
    "| target | req/s | p50 ms | p99 ms | body B | server CPU µs/req | errors (all rounds) |",
    "|---|---:|---:|---:|---:|---:|---:|",
    row("ref /health"),
    row("gateway /health"),
    row("ref /containers"),
    row("gateway /containers"),
    "",
    "gateway ÷ reference (median of per-round ratios; throughput target ≥ 0.8):",
    ratioLine("  /health     ", q.health),
    ratioLine("  /containers ", q.containers),
    "",
    "server time in-process, app.inject():",
    `  /health     gateway ${inj(gi.inject.health)}; reference ${inj(ri.inject.health)}`,
    `  /containers gateway ${inj(gi.inject.containers)}; reference ${inj(ri.inject.containers)}`,
    h
      ? `  handlers: HealthCache.get ${h.healthCached.meanUs} µs cached, ${h.afterOneHostReports.healthRebuild.p50Ms} ms to rebuild after one host reports; findContainers ${round(h.containersQueryCached.meanUs / 1000, 3)} ms cached, after one host reports ${h.afterOneHostReports.containersQuery.p50Ms} ms`
      : undefined,
    gi.refreshed
      ? `refresh: ${gi.refreshed.snapshots} snapshots re-applied, ${gi.refreshed.perSecond}/s (target ${CONFIG.refreshPerSecond}/s)`
      : undefined,
    `setup: ${result.fleetJson.snapshotJsonMB} MB of snapshot JSON; decode ${g.setupMs.decode1000} ms, apply ${g.setupMs.apply1000} ms (${g.fleet.hosts} snapshots), first /health build ${g.setupMs.firstHealthBuild} ms, first /containers query ${g.setupMs.firstContainersQuery} ms`,
    `memory (RSS; heap used after a full GC in parentheses):`,
    `  gateway   empty view ${m.gatewayRssMbEmpty} MB (${m.gatewayHeapUsedMbEmpty}), loaded ${m.gatewayRssMbLoaded} MB (${m.gatewayHeapUsedMbLoaded}), after the runs ${m.gatewayRssMbAfterRuns} MB (heap ${m.gatewayHeapUsedMbAfterRuns} used of ${m.gatewayHeapTotalMbAfterRuns} committed, external ${m.gatewayExternalMbAfterRuns}), after the runs and a GC ${m.gatewayRssMbAfterRunsAndGc} MB (${m.gatewayHeapUsedMbAfterRunsAndGc}), peak ${m.gatewayRssMbPeak} MB`,
    `  reference loaded ${m.referenceRssMbLoaded} MB (${m.referenceHeapUsedMbLoaded}), after the runs ${m.referenceRssMbAfterRuns} MB, after the runs and a GC ${m.referenceRssMbAfterRunsAndGc} MB, peak ${m.referenceRssMbPeak} MB`,
    `  idle node ${m.idleNodeMb} MB (both servers run plain node on dist/, as deployed)`,
    `  target < 200 MB: loaded ${yes(m.meetsRssTarget.loaded)}, after the runs ${yes(m.meetsRssTarget.afterRuns)}, peak ${yes(m.meetsRssTarget.peak)}`,
    `load average ${result.machine.loadAverageBefore.join(" ")} before, ${result.machine.loadAverageAfter.join(" ")} after; ${result.durationS} s in all`,
  ];
  console.log(out.filter((line) => line !== undefined).join("\n"));
}

const role = process.env[ROLE_ENV];
const entry = role === "gateway" ? serveGateway : role === "reference" ? serveReference : main;
entry().then(
  () => {
    if (!role) process.exit(0);
  },
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
