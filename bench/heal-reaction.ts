// Heal reaction: the time from Docker's `health_status: unhealthy` event to the `kill` event of
// the restart, by Docker's own timeNano, for fleetheal's whole distributed path (agent →
// JetStream → handler → ledger compare-and-set → command → agent → Docker) and, in the same run
// on the same engine, for the floor (DESIGN.md §6): one process that restarts a container the
// moment it sees `unhealthy` (bench/heal-floor.ts).
//
//   npm run build && npm run bench:heal
//
// fleetheal runs twice side by side, each with its own nats-server, agent and handlers: with
// signed commands, as deployed, and with signing off (the handlers have no key, the agent takes
// unsigned commands), so that what signing costs is measured against a baseline of the same run.
// Each agent has its own opt-in label, so each heals only its own containers.
//
// Incidents rotate over the three paths, one at a time, so that all see the same machine.
// A container is made unhealthy by deleting a file on the host that its healthcheck tests through
// a bind mount: no `docker exec` near the measurement. The fleetheal side also records when the
// event and the restart command crossed NATS, to show where its time goes.
//
// Settings are environment variables (CONFIG below). Results go to bench/results/heal-reaction.json.

import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import {
  CONFIG_BUCKET,
  EVENTS_STREAM,
  encode,
  HealPolicy,
  POLICY_KEY,
} from "../contracts/index.js";
import { ensureBusyboxImage } from "../test/support/busybox-image.js";
import { recordDockerEvents } from "../test/support/containers.js";
import { type DockerEngine, startDockerEngine } from "../test/support/dockerd.js";
import { REPO, startRole } from "../test/support/fleetheal.js";
import { startNatsServer } from "../test/support/nats-server.js";
import { startProcess } from "../test/support/process.js";
import { waitFor } from "../test/support/wait.js";
import {
  type BenchContainer,
  createContainer,
  type Incident,
  type NatsSightings,
  runIncident,
  waitHealthy,
  watchNats,
} from "./heal-incidents.js";
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

const FLOOR_LABEL = "bench.floor";
const STOP_TIMEOUT_SECONDS = 10;

/** fleetheal with signed commands (as deployed), fleetheal with signing off, and the floor. */
const PATHS = ["signed", "unsigned", "floor"] as const;
type PathName = (typeof PATHS)[number];
type FleetPath = Exclude<PathName, "floor">;

/** Each fleetheal path's host id and opt-in label: its agent heals only its own containers. */
const STACKS: Record<FleetPath, { host: string; label: string }> = {
  signed: { host: "bench-signed", label: "autoheal" },
  unsigned: { host: "bench-unsigned", label: "bench.unsigned" },
};

function summary(values: number[]): { p50: number; p90: number; p99: number; max: number } {
  const s = [...values].sort((a, b) => a - b);
  return {
    p50: round(percentile(s, 50)),
    p90: round(percentile(s, 90)),
    p99: round(percentile(s, 99)),
    max: round(s[s.length - 1] ?? Number.NaN),
  };
}

/** What makes a container one path's: the floor's label, or a fleetheal agent's opt-in. */
function labelsOf(p: PathName): Record<string, string> {
  if (p === "floor") return { [FLOOR_LABEL]: "true" };
  // Every incident of this bench is a new one on a container that was just healthy: no
  // backoff, and a budget that a hundred incidents in a few minutes does not spend.
  return {
    [STACKS[p].label]: "true",
    "autoheal.backoff.initial": "0",
    "autoheal.budget.restarts": "50",
    "autoheal.budget.window": "1s",
  };
}

/** One fleetheal: its own nats-server, an agent on the shared engine, and its handlers. */
interface Stack {
  nc: NatsConnection;
  seen: NatsSightings;
  /** Stores the fleet policy; resolves once it can be read back. */
  storePolicy(policy: HealPolicy): Promise<void>;
  eventsStored(): Promise<number>;
}

/**
 * Signing on is what startRole does by default (the test process's key). Off: the handlers
 * have no key and the agent accepts unsigned commands. A handler without a key warns at start,
 * and the commands seen on NATS are checked at the end, so the two cannot be swapped silently.
 */
async function startStack(
  which: FleetPath,
  engine: DockerEngine,
  cleanups: Array<() => PromiseLike<unknown>>,
): Promise<Stack> {
  const nats = await startNatsServer();
  cleanups.push(() => nats[Symbol.asyncDispose]());
  const { host, label } = STACKS[which];
  const off = which === "unsigned";
  const common = { FLEETHEAL_NATS_URL: nats.url, FLEETHEAL_LOG_LEVEL: CONFIG.logLevel };
  const agent = await startRole("agent", `bench-agent-${which}`, {
    ...common,
    FLEETHEAL_HOST_ID: host,
    FLEETHEAL_LABEL: label,
    DOCKER_HOST: engine.dockerHost,
    FLEETHEAL_STOP_TIMEOUT: String(STOP_TIMEOUT_SECONDS),
    ...(off ? { FLEETHEAL_COMMAND_KEYS: "", FLEETHEAL_INSECURE_UNSIGNED_COMMANDS: "true" } : {}),
  });
  cleanups.push(() => agent[Symbol.asyncDispose]());
  for (let i = 0; i < CONFIG.handlers; i++) {
    const handler = await startRole("handler", `bench-handler-${which}-${i}`, {
      ...common,
      ...(off ? { FLEETHEAL_COMMAND_SIGNING_KEY_FILE: "" } : {}),
    });
    cleanups.push(() => handler[Symbol.asyncDispose]());
    const unsignedWarning = handler.json.some((l) =>
      String(l.msg).startsWith("FLEETHEAL_COMMAND_SIGNING_KEY_FILE is not set"),
    );
    if (unsignedWarning !== off) {
      throw new Error(`bench-handler-${which}-${i} should ${off ? "not " : ""}sign commands`);
    }
  }
  const nc = await connect({ servers: nats.url, name: `bench-heal-${which}` });
  cleanups.push(() => nc.close());
  const config = await new Kvm(nc).open(CONFIG_BUCKET);
  return {
    nc,
    seen: watchNats(nc, host),
    async storePolicy(policy) {
      await config.put(POLICY_KEY, encode(policy));
      await waitFor(async () => (await config.get(POLICY_KEY))?.value.length, {
        timeoutMs: 10_000,
        message: "policy not stored",
      });
    },
    eventsStored: async () =>
      (await (await jetstreamManager(nc)).streams.info(EVENTS_STREAM)).state.messages,
  };
}

async function main(): Promise<void> {
  const cleanups: Array<() => PromiseLike<unknown>> = [];
  const t0 = performance.now();
  const log = (msg: string): void => {
    console.error(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${msg}`);
  };
  const loadAtStart = os.loadavg().map((n) => round(n, 2));
  try {
    log("starting dockerd");
    const engine = await startDockerEngine("bench-heal");
    cleanups.push(() => engine.stop());
    await ensureBusyboxImage(engine);
    const dir = await mkdtemp(path.join(os.tmpdir(), "fleetheal-bench-heal-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));

    log("starting fleetheal twice: with signed commands, and with signing off");
    const stacks: Record<FleetPath, Stack> = {
      signed: await startStack("signed", engine, cleanups),
      unsigned: await startStack("unsigned", engine, cleanups),
    };
    // The default storm caps allow 30 restarts a minute per host; this bench does more on its
    // one host. The caps stay on (their leases are on the measured path), only wider.
    const policy = HealPolicy.parse({
      storm: {
        maxPerMinutePerHost: 10_000,
        maxPerMinuteFleet: 100_000,
        imageBreaker: { failures: 10_000, windowSeconds: 60 },
      },
    });

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

    log(`starting ${CONFIG.containersPerPath} containers per path`);
    const containers: Record<PathName, BenchContainer<PathName>[]> = {
      signed: [],
      unsigned: [],
      floor: [],
    };
    for (let i = 0; i < CONFIG.containersPerPath; i++) {
      for (const p of PATHS) {
        containers[p].push(
          await createContainer(engine, dir, p, i, {
            labels: labelsOf(p),
            healthIntervalMs: CONFIG.healthIntervalMs,
            stopTimeoutSeconds: STOP_TIMEOUT_SECONDS,
          }),
        );
      }
    }
    for (const c of PATHS.flatMap((p) => containers[p])) {
      await waitHealthy(recorder, c, c.lastStartNano);
    }
    // The handlers must know the policy before the first measured incident.
    await Promise.all([stacks.signed.storePolicy(policy), stacks.unsigned.storePolicy(policy)]);

    const incidents: Incident<PathName>[] = [];
    const total = CONFIG.warmup + CONFIG.incidents;
    for (let i = 0; i < total; i++) {
      // Rotate which path goes first, so none always follows another's recovery.
      const order = PATHS.map((_, k) => PATHS[(i + k) % PATHS.length] as PathName);
      for (const p of order) {
        const list = containers[p];
        const c = list[i % list.length] as BenchContainer<PathName>;
        const incident = await runIncident(recorder, c, p === "floor" ? undefined : stacks[p].seen);
        if (i >= CONFIG.warmup) incidents.push(incident);
      }
      if ((i + 1) % 20 === 0) log(`${i + 1} of ${total} incidents per path`);
    }
    // Each stack sent what it was meant to: a run with signing off on both sides measures
    // nothing.
    const { signed, unsigned } = { signed: stacks.signed.seen, unsigned: stacks.unsigned.seen };
    if (signed.unsigned > 0 || unsigned.signed > 0 || signed.signed === 0) {
      throw new Error(
        `commands on the wrong side: signed path ${signed.signed} signed/${signed.unsigned} unsigned, unsigned path ${unsigned.signed}/${unsigned.unsigned}`,
      );
    }

    const reactions = (p: PathName): number[] =>
      incidents.filter((x) => x.path === p).map((x) => x.reactionMs);
    const reactionMs = {
      floor: summary(reactions("floor")),
      signed: summary(reactions("signed")),
      unsigned: summary(reactions("unsigned")),
    };
    const breakdownOf = (p: FleetPath) => {
      const of = incidents.filter((x) => x.path === p);
      return {
        eventOnNatsMs: summary(of.flatMap((x) => x.eventOnNatsMs ?? [])),
        commandOnNatsMs: summary(of.flatMap((x) => x.commandOnNatsMs ?? [])),
      };
    };
    const ratioOf = (p: FleetPath) => ({
      p50: round(reactionMs[p].p50 / reactionMs.floor.p50),
      p99: round(reactionMs[p].p99 / reactionMs.floor.p99),
    });
    // `ratios` is the path as deployed, signed: what the targets (and bench/run-all.ts) read.
    const ratios = ratioOf("signed");
    const ratiosUnsigned = ratioOf("unsigned");
    const signingCost = {
      p50: round(ratios.p50 - ratiosUnsigned.p50),
      p99: round(ratios.p99 - ratiosUnsigned.p99),
    };
    const [dockerVersion, natsVersion] = await Promise.all([
      engine.docker.version().then((v) => v.Version),
      execFileAsync("nats-server", ["--version"]).then(
        (r) => r.stdout.trim(),
        () => "unknown",
      ),
    ]);
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
      reactionMs,
      fleethealBreakdownMs: { signed: breakdownOf("signed"), unsigned: breakdownOf("unsigned") },
      ratios,
      ratiosUnsigned,
      signingCost,
      targets: { p50: 1.5, p99: 3, signingCostP50: 0.1 },
      meetsTargets: {
        p50: ratios.p50 <= 1.5,
        p99: ratios.p99 <= 3,
        signingCostP50: signingCost.p50 <= 0.1,
      },
      commandsSeen: {
        signed: { signed: signed.signed, unsigned: signed.unsigned },
        unsigned: { signed: unsigned.signed, unsigned: unsigned.unsigned },
      },
      eventsStored: {
        signed: await stacks.signed.eventsStored(),
        unsigned: await stacks.unsigned.eventsStored(),
      },
      incidents,
    };
    await mkdir(path.dirname(CONFIG.output), { recursive: true });
    await writeFile(CONFIG.output, `${JSON.stringify(result, null, 2)}\n`);

    const row = (name: string, s: ReturnType<typeof summary>): string =>
      `| ${name.padEnd(38)} | ${String(s.p50).padStart(8)} | ${String(s.p90).padStart(8)} | ${String(s.p99).padStart(8)} | ${String(s.max).padStart(8)} |`;
    console.log(`\nHeal reaction, ${CONFIG.incidents} incidents per path (ms, Docker's clock)\n`);
    console.log(`| ${"path".padEnd(38)} |      p50 |      p90 |      p99 |      max |`);
    console.log(`| ${"-".repeat(38)} | -------: | -------: | -------: | -------: |`);
    console.log(row("floor (restart on the event)", reactionMs.floor));
    for (const p of ["signed", "unsigned"] as const) {
      const b = result.fleethealBreakdownMs[p];
      console.log(
        row(`fleetheal, ${p === "signed" ? "signed commands" : "signing off"}`, reactionMs[p]),
      );
      console.log(row("  unhealthy → event on NATS", b.eventOnNatsMs));
      console.log(row("  unhealthy → command on NATS", b.commandOnNatsMs));
    }
    console.log(
      `\nfleetheal ÷ floor, signed: p50 ${ratios.p50} (target ≤ 1.5), p99 ${ratios.p99} (target ≤ 3)`,
    );
    console.log(
      `fleetheal ÷ floor, signing off: p50 ${ratiosUnsigned.p50}, p99 ${ratiosUnsigned.p99}`,
    );
    console.log(
      `signing adds: p50 ${signingCost.p50} (target ≤ 0.1), p99 ${signingCost.p99} to the ratio`,
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
