// Heal reaction: the time from Docker's `health_status: unhealthy` event to the `kill` event of
// the restart, by Docker's own timeNano, for fleetheal's whole distributed path (agent →
// JetStream → handler → ledger compare-and-set → command → agent → Docker) and, in the same run
// on the same engine, for the floor (DESIGN.md §6): one process that restarts a container the
// moment it sees `unhealthy` (bench/heal-floor.ts).
//
//   npm run build && npm run bench:heal
//
// Incidents alternate between the two paths, one at a time, so that both see the same machine.
// A container is made unhealthy by deleting a file on the host that its healthcheck tests through
// a bind mount: no `docker exec` near the measurement. The fleetheal side also records when the
// event and the restart command crossed NATS, to show where its time goes.
//
// Settings are environment variables (CONFIG below). Results go to bench/results/heal-reaction.json.

import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, unlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import {
  CONFIG_BUCKET,
  commandSubject,
  EVENTS_STREAM,
  encode,
  HealPolicy,
  POLICY_KEY,
  SUBJECTS,
} from "../contracts/index.js";
import { ensureBusyboxImage, TEST_IMAGE } from "../test/support/busybox-image.js";
import { type DockerEventRecorder, recordDockerEvents } from "../test/support/containers.js";
import { type DockerEngine, startDockerEngine } from "../test/support/dockerd.js";
import { REPO, startRole } from "../test/support/fleetheal.js";
import { startNatsServer } from "../test/support/nats-server.js";
import { startProcess } from "../test/support/process.js";
import { waitFor } from "../test/support/wait.js";
import { envNumber, percentile, round } from "./numbers.js";

const execFileAsync = promisify(execFile);

const CONFIG = {
  /** Measured incidents per path. */
  incidents: envNumber("FLEETHEAL_BENCH_INCIDENTS", 100),
  /** Unmeasured incidents per path first (JIT, connections, first KV keys). */
  warmup: envNumber("FLEETHEAL_BENCH_WARMUP", 5),
  /** Containers per path; incidents rotate over them so a restarted one has time to recover. */
  containersPerPath: envNumber("FLEETHEAL_BENCH_CONTAINERS_PER_PATH", 3),
  /** Healthcheck interval. Short enough to keep the run short, long enough not to load dockerd. */
  healthIntervalMs: envNumber("FLEETHEAL_BENCH_HEALTH_INTERVAL_MS", 500),
  handlers: envNumber("FLEETHEAL_BENCH_HANDLERS", 1),
  logLevel: process.env.FLEETHEAL_BENCH_LOG_LEVEL ?? "info",
  output:
    process.env.FLEETHEAL_BENCH_OUTPUT ?? path.join(REPO, "bench", "results", "heal-reaction.json"),
};

const HOST = "bench-host";
const FLOOR_LABEL = "bench.floor";
const STOP_TIMEOUT_SECONDS = 10;
const NS_PER_MS = 1_000_000n;

type PathName = "fleetheal" | "floor";

interface BenchContainer {
  path: PathName;
  id: string;
  name: string;
  /** Host file the healthcheck tests (bind-mounted at /h). */
  healthFile: string;
  /** Docker's time of its latest start: it is healthy again once a healthy event follows. */
  lastStartNano: bigint;
}

interface Incident {
  path: PathName;
  container: string;
  /** Docker's unhealthy → Docker's kill. */
  reactionMs: number;
  /** fleetheal only: unhealthy → the event seen on NATS → the restart command seen on NATS. */
  eventOnNatsMs?: number;
  commandOnNatsMs?: number;
}

function summary(values: number[]): { p50: number; p90: number; p99: number; max: number } {
  const s = [...values].sort((a, b) => a - b);
  return {
    p50: round(percentile(s, 50)),
    p90: round(percentile(s, 90)),
    p99: round(percentile(s, 99)),
    max: round(s[s.length - 1] ?? Number.NaN),
  };
}

const nowNano = (): bigint => BigInt(Date.now()) * NS_PER_MS;

/**
 * A busybox container whose healthcheck tests a file on the host. It recreates the file at every
 * start, so a restart repairs it, as a restart repairs a wedged service.
 */
async function createContainer(
  engine: DockerEngine,
  dir: string,
  pathName: PathName,
  index: number,
): Promise<BenchContainer> {
  const name = `${pathName}-${index}`;
  const hostDir = path.join(dir, name);
  await mkdir(hostDir, { recursive: true });
  const labels: Record<string, string> =
    pathName === "floor"
      ? { [FLOOR_LABEL]: "true" }
      : // Every incident of this bench is a new one on a container that was just healthy: no
        // backoff, and a budget that a hundred incidents in a few minutes does not spend.
        {
          autoheal: "true",
          "autoheal.backoff.initial": "0",
          "autoheal.budget.restarts": "50",
          "autoheal.budget.window": "1s",
        };
  const container = await engine.docker.createContainer({
    name,
    Image: TEST_IMAGE,
    Cmd: [
      "sh",
      "-c",
      // PID 1 ignores SIGTERM unless trapped; `sleep & wait` lets the trap run at once.
      "trap 'exit 0' TERM\ntouch /h/healthy\nwhile :; do sleep 1 & wait $!; done",
    ],
    Labels: labels,
    StopTimeout: STOP_TIMEOUT_SECONDS,
    Healthcheck: {
      Test: ["CMD", "test", "-f", "/h/healthy"],
      Interval: CONFIG.healthIntervalMs * 1_000_000,
      Timeout: 2_000 * 1_000_000,
      Retries: 1,
      StartPeriod: 0,
    },
    HostConfig: { NetworkMode: "none", Binds: [`${hostDir}:/h`] },
  });
  const lastStartNano = nowNano();
  await container.start();
  return {
    path: pathName,
    id: container.id,
    name,
    healthFile: path.join(hostDir, "healthy"),
    lastStartNano,
  };
}

/** When (ms, this machine's clock) each container's unhealthy events and restart commands crossed NATS. */
interface NatsSightings {
  events: Map<string, number[]>;
  commands: Map<string, number[]>;
}

function watchNats(nc: NatsConnection): NatsSightings {
  const sightings: NatsSightings = { events: new Map(), commands: new Map() };
  const note = (map: Map<string, number[]>, containerId: string): void => {
    const list = map.get(containerId) ?? [];
    list.push(Date.now());
    map.set(containerId, list);
  };
  nc.subscribe(SUBJECTS.eventsWithAction("unhealthy"), {
    callback: (_e, m) => note(sightings.events, m.subject.split(".")[4] ?? ""),
  });
  nc.subscribe(commandSubject(HOST, "restart"), {
    callback: (_e, m) => {
      const command = JSON.parse(new TextDecoder().decode(m.data)) as { containerId: string };
      note(sightings.commands, command.containerId);
    },
  });
  return sightings;
}

/** The first sighting at or after `after`, relative to it. */
function firstAfter(list: number[] | undefined, after: number): number | undefined {
  const at = list?.find((t) => t >= Math.floor(after));
  return at === undefined ? undefined : round(at - after);
}

async function waitHealthy(
  recorder: DockerEventRecorder,
  c: BenchContainer,
  sinceNano: bigint,
): Promise<void> {
  await recorder.waitFor(
    (e) => e.id === c.id && e.action === "health_status: healthy" && e.timeNano >= sinceNano,
    30_000,
    `${c.name} did not become healthy`,
  );
}

/** One incident: break the container, then wait for Docker's unhealthy, kill and start. */
async function runIncident(
  recorder: DockerEventRecorder,
  c: BenchContainer,
  nats: NatsSightings,
): Promise<Incident> {
  // Incidents rotate over the containers, so this one's restart finished a while ago.
  await waitHealthy(recorder, c, c.lastStartNano);
  const triggerNano = nowNano();
  await unlink(c.healthFile);
  const unhealthy = await recorder.waitFor(
    (e) => e.id === c.id && e.action === "health_status: unhealthy" && e.timeNano >= triggerNano,
    30_000,
    `${c.name} did not turn unhealthy`,
  );
  const kill = await recorder.waitFor(
    (e) => e.id === c.id && e.action === "kill" && e.timeNano >= unhealthy.timeNano,
    30_000,
    `${c.name} (${c.path}) was not restarted within 30 s of turning unhealthy`,
  );
  const start = await recorder.waitFor(
    (e) => e.id === c.id && e.action === "start" && e.timeNano >= kill.timeNano,
    30_000,
    `${c.name} did not start again after its restart`,
  );
  c.lastStartNano = start.timeNano;
  const unhealthyMs = Number(unhealthy.timeNano / 1000n) / 1000;
  const incident: Incident = {
    path: c.path,
    container: c.name,
    reactionMs: Number(kill.timeNano - unhealthy.timeNano) / 1e6,
  };
  if (c.path === "fleetheal") {
    const evt = firstAfter(nats.events.get(c.id), unhealthyMs);
    const cmd = firstAfter(nats.commands.get(c.id), unhealthyMs);
    if (evt !== undefined) incident.eventOnNatsMs = evt;
    if (cmd !== undefined) incident.commandOnNatsMs = cmd;
  }
  return incident;
}

async function main(): Promise<void> {
  const cleanups: Array<() => PromiseLike<unknown>> = [];
  const t0 = performance.now();
  const log = (msg: string): void => {
    console.error(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${msg}`);
  };
  const loadAtStart = os.loadavg().map((n) => round(n, 2));
  try {
    log("starting nats-server and dockerd");
    const [nats, engine] = await Promise.all([startNatsServer(), startDockerEngine("bench-heal")]);
    cleanups.push(() => nats[Symbol.asyncDispose]());
    cleanups.push(() => engine.stop());
    await ensureBusyboxImage(engine);
    const dir = await mkdtemp(path.join(os.tmpdir(), "fleetheal-bench-heal-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));

    const common = { FLEETHEAL_NATS_URL: nats.url, FLEETHEAL_LOG_LEVEL: CONFIG.logLevel };
    log("starting the agent and handlers");
    const agent = await startRole("agent", "bench-agent", {
      ...common,
      FLEETHEAL_HOST_ID: HOST,
      DOCKER_HOST: engine.dockerHost,
      FLEETHEAL_STOP_TIMEOUT: String(STOP_TIMEOUT_SECONDS),
    });
    cleanups.push(() => agent[Symbol.asyncDispose]());
    for (let i = 0; i < CONFIG.handlers; i++) {
      const handler = await startRole("handler", `bench-handler-${i}`, common);
      cleanups.push(() => handler[Symbol.asyncDispose]());
    }
    const nc = await connect({ servers: nats.url, name: "bench-heal" });
    cleanups.push(() => nc.close());
    // The default storm caps allow 30 restarts a minute per host; this bench does more on its
    // one host. The caps stay on (their leases are on the measured path), only wider.
    const policy = HealPolicy.parse({
      storm: {
        maxPerMinutePerHost: 10_000,
        maxPerMinuteFleet: 100_000,
        imageBreaker: { failures: 10_000, windowSeconds: 60 },
      },
    });
    const config = await new Kvm(nc).open(CONFIG_BUCKET);
    await config.put(POLICY_KEY, encode(policy));

    log("starting the floor healer");
    const floor = await startProcess({
      name: "bench-floor",
      command: process.execPath,
      args: ["--import", "tsx", path.join(REPO, "bench", "heal-floor.ts")],
      env: {
        DOCKER_HOST: engine.dockerHost,
        FLOOR_LABEL,
        STOP_TIMEOUT: String(STOP_TIMEOUT_SECONDS),
      },
      cwd: REPO,
    });
    cleanups.push(() => floor[Symbol.asyncDispose]());
    await floor.waitForJson((l) => l.ready === true, 30_000, "floor healer did not start");

    const recorder = await recordDockerEvents(engine);
    cleanups.push(async () => recorder.close());
    const seen = watchNats(nc);

    log(`starting ${CONFIG.containersPerPath} containers per path`);
    const containers: Record<PathName, BenchContainer[]> = { fleetheal: [], floor: [] };
    for (let i = 0; i < CONFIG.containersPerPath; i++) {
      for (const p of ["fleetheal", "floor"] as const) {
        containers[p].push(await createContainer(engine, dir, p, i));
      }
    }
    for (const c of [...containers.fleetheal, ...containers.floor]) {
      await waitHealthy(recorder, c, c.lastStartNano);
    }
    // The handler must know the policy before the first measured incident.
    await waitFor(async () => (await config.get(POLICY_KEY))?.value.length, {
      timeoutMs: 10_000,
      message: "policy not stored",
    });

    const incidents: Incident[] = [];
    const total = CONFIG.warmup + CONFIG.incidents;
    for (let i = 0; i < total; i++) {
      // Alternate which path goes first, so neither always follows the other's recovery.
      const order: PathName[] = i % 2 === 0 ? ["fleetheal", "floor"] : ["floor", "fleetheal"];
      for (const p of order) {
        const list = containers[p];
        const c = list[i % list.length] as BenchContainer;
        const incident = await runIncident(recorder, c, seen);
        if (i >= CONFIG.warmup) incidents.push(incident);
      }
      if ((i + 1) % 20 === 0) log(`${i + 1} of ${total} incidents per path`);
    }

    const of = (p: PathName): number[] =>
      incidents.filter((x) => x.path === p).map((x) => x.reactionMs);
    const fleet = summary(of("fleetheal"));
    const floorStats = summary(of("floor"));
    const fleetIncidents = incidents.filter((x) => x.path === "fleetheal");
    const breakdown = {
      eventOnNatsMs: summary(fleetIncidents.flatMap((x) => x.eventOnNatsMs ?? [])),
      commandOnNatsMs: summary(fleetIncidents.flatMap((x) => x.commandOnNatsMs ?? [])),
    };
    const ratios = {
      p50: round(fleet.p50 / floorStats.p50),
      p99: round(fleet.p99 / floorStats.p99),
    };
    const [dockerVersion, natsVersion] = await Promise.all([
      engine.docker.version().then((v) => v.Version),
      execFileAsync("nats-server", ["--version"]).then(
        (r) => r.stdout.trim(),
        () => "unknown",
      ),
    ]);
    const stored = await (await jetstreamManager(nc)).streams.info(EVENTS_STREAM);
    const result = {
      date: new Date().toISOString(),
      command: "npm run build && npm run bench:heal",
      machine: {
        cores: os.cpus().length,
        cpu: os.cpus()[0]?.model ?? "unknown",
        kernel: os.release(),
        node: process.version,
        docker: dockerVersion,
        nats: natsVersion,
        loadAverage1_5_15: { atStart: loadAtStart, atEnd: os.loadavg().map((n) => round(n, 2)) },
      },
      config: CONFIG,
      incidentsPerPath: CONFIG.incidents,
      reactionMs: { fleetheal: fleet, floor: floorStats },
      fleethealBreakdownMs: breakdown,
      ratios,
      targets: { p50: 1.5, p99: 3 },
      meetsTargets: { p50: ratios.p50 <= 1.5, p99: ratios.p99 <= 3 },
      eventsStored: stored.state.messages,
      incidents,
    };
    await mkdir(path.dirname(CONFIG.output), { recursive: true });
    await writeFile(CONFIG.output, `${JSON.stringify(result, null, 2)}\n`);

    const row = (name: string, s: ReturnType<typeof summary>): string =>
      `| ${name.padEnd(34)} | ${String(s.p50).padStart(8)} | ${String(s.p90).padStart(8)} | ${String(s.p99).padStart(8)} | ${String(s.max).padStart(8)} |`;
    console.log(`\nHeal reaction, ${CONFIG.incidents} incidents per path (ms, Docker's clock)\n`);
    console.log(`| ${"path".padEnd(34)} |      p50 |      p90 |      p99 |      max |`);
    console.log(`| ${"-".repeat(34)} | -------: | -------: | -------: | -------: |`);
    console.log(row("floor (restart on the event)", floorStats));
    console.log(row("fleetheal (agent→NATS→handler→agent)", fleet));
    console.log(row("  unhealthy → event on NATS", breakdown.eventOnNatsMs));
    console.log(row("  unhealthy → command on NATS", breakdown.commandOnNatsMs));
    console.log(
      `\nfleetheal ÷ floor: p50 ${ratios.p50} (target ≤ 1.5), p99 ${ratios.p99} (target ≤ 3)`,
    );
    console.log(`written to ${path.relative(process.cwd(), CONFIG.output)}`);
  } finally {
    for (const cleanup of cleanups.reverse()) {
      await Promise.resolve(cleanup()).catch((error: unknown) =>
        log(`cleanup failed: ${String(error)}`),
      );
    }
  }
}

await main();
