// A varied fleet for the gateway benchmark, as a real one looks to the gateway: hosts in three
// data centres running compose projects of public and in-house images, most containers opted
// in, with Docker health checks or label probes, a few unhealthy, starting or exited, and ledger
// entries for some of the unhealthy ones. Drawn from a seeded PRNG: every run has the same fleet.

import { writeFile } from "node:fs/promises";
import type { ContainerSnapshot, HostSnapshot, LedgerEntry } from "../../contracts/index.js";
import { hex, prng, round } from "../runner/numbers.js";
import { composeLabels, hostSnapshot } from "./snapshots.js";

export interface VariedFleetShape {
  hosts: number;
  containersPerHost: number;
  /** Share of running containers with a health check (Docker's or a label probe) that fail it. */
  unhealthyShare: number;
  /** Share of the same containers still `starting`. */
  startingShare: number;
  /** The snapshots' heartbeat. */
  heartbeatMs: number;
  seed: number;
}

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
function makeSnapshot(
  shape: VariedFleetShape,
  rand: () => number,
  index: number,
  now: number,
): HostSnapshot {
  const dc = `dc${(index % 3) + 1}`;
  const host = `${dc}-node-${String(index).padStart(4, "0")}`;
  const containers: ContainerSnapshot[] = [];
  let p = Math.floor(rand() * PROJECTS.length);
  while (containers.length < shape.containersPerHost) {
    const [project, services] = PROJECTS[p % PROJECTS.length] as (typeof PROJECTS)[number];
    p++;
    for (const service of services) {
      const replicas = service === "worker" ? 3 : service === "api" ? 2 : 1;
      for (let n = 1; n <= replicas && containers.length < shape.containersPerHost; n++) {
        containers.push(makeContainer(shape, rand, project, service, n, now));
      }
      if (containers.length >= shape.containersPerHost) break;
    }
  }
  const startedAt = now - Math.floor(rand() * 30 * 86_400_000);
  return hostSnapshot({
    host,
    seq: 1 + Math.floor(rand() * 50_000),
    at: iso(now),
    heartbeatMs: shape.heartbeatMs,
    agentStartedAt: iso(startedAt),
    uptimeSeconds: Math.floor((now - startedAt) / 1000),
    published: Math.floor(rand() * 200_000),
    lastEventTimeNano: `${BigInt(now - 2_000) * 1_000_000n + BigInt(Math.floor(rand() * 999_999))}`,
    containers,
  });
}

function makeContainer(
  shape: VariedFleetShape,
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
  const labels = composeLabels(rand, {
    project,
    service,
    number: n,
    dependsOn:
      service === "api" || service === "web"
        ? "db:service_healthy:false,cache:service_started:false"
        : "",
  });
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
      : h < shape.unhealthyShare
        ? "unhealthy"
        : h < shape.unhealthyShare + shape.startingShare
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
export async function writeVariedFleet(
  file: string,
  shape: VariedFleetShape,
): Promise<{ generateMs: number; snapshotJsonMB: number }> {
  const t0 = performance.now();
  const rand = prng(shape.seed);
  const now = Date.now();
  const lines: string[] = [];
  let bytes = 0;
  for (let i = 0; i < shape.hosts; i++) {
    const s = makeSnapshot(shape, rand, i, now);
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
