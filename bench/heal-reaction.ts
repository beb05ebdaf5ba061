// Heal reaction: the time from Docker's `health_status: unhealthy` event to the `kill` event of
// the restart, by Docker's own timeNano, for fleetheal's whole distributed path (agent →
// JetStream → handler → ledger compare-and-set → command → agent → Docker) and, in the same run
// on the same engine, for the floor (DESIGN.md §6): one process that restarts a container the
// moment it sees `unhealthy` (bench/heal/floor.ts).
//
//   npm run build && npm run bench:heal
//
// fleetheal runs twice side by side, each with its own nats-server, agent and handlers: with
// signed commands, as deployed, and with signing off (the handlers have no key, the agent takes
// unsigned commands), so that what signing costs is measured against a baseline of the same run.
// Each agent has its own opt-in label, so each heals only its own containers.
//
// Incidents rotate over the three paths, one at a time, so that all see the same machine
// (bench/heal/incidents.ts).
// A container is made unhealthy by deleting a file on the host that its healthcheck tests through
// a bind mount: no `docker exec` near the measurement. The fleetheal side also records when the
// event and the restart command crossed NATS, to show where its time goes.
//
// With FLEETHEAL_BENCH_BASELINE=<checkout>, the second fleetheal is
// that build, signing too, in place of this build with signing off: the two builds are compared
// on the same engine, incident by incident, in the same run.
//
// Settings are environment variables (CONFIG below). Results go to bench/results/heal-reaction.json.

import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { HealPolicy } from "../contracts/index.js";
import { ensureBusyboxImage } from "../test/support/busybox-image.js";
import { recordDockerEvents } from "../test/support/containers.js";
import { startDockerEngine } from "../test/support/dockerd.js";
import { startProcess } from "../test/support/process.js";
import {
  type BenchContainer,
  createContainer,
  type Incident,
  runIncident,
  waitHealthy,
} from "./heal/incidents.js";
import { printReaction, type ReactionSummary, summary } from "./heal/report.js";
import { checkSigning, type FleetPath, STACKS, type Stack, startStack } from "./heal/stacks.js";
import { Teardown } from "./runner/async.js";
import { baselineBuild, currentBuild } from "./runner/builds.js";
import { BENCH_REPO } from "./runner/children.js";
import { round } from "./runner/numbers.js";
import {
  benchLog,
  loadAverage,
  natsServerVersion,
  resultFile,
  runMain,
  writeResult,
} from "./runner/report.js";
import { envNumber } from "./runner/settings.js";

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
  output: resultFile("heal-reaction.json"),
};

const FLOOR_LABEL = "bench.floor";
const STOP_TIMEOUT_SECONDS = 10;
const log = benchLog("heal");

type PathName = FleetPath | "floor";

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

async function main(): Promise<void> {
  const teardown = new Teardown();
  const loadAtStart = loadAverage();
  const current = currentBuild();
  const baseline = baselineBuild();
  // Without a baseline, signing off is the second fleetheal; with one, the baseline is.
  const fleetPaths: FleetPath[] = ["signed", baseline ? "baseline" : "unsigned"];
  const paths: PathName[] = [...fleetPaths, "floor"];
  try {
    log("starting dockerd");
    const engine = await startDockerEngine("bench-heal");
    teardown.add(() => engine.stop());
    await ensureBusyboxImage(engine);
    const dir = await mkdtemp(path.join(os.tmpdir(), "fleetheal-bench-heal-"));
    teardown.add(() => rm(dir, { recursive: true, force: true }));

    log(
      baseline
        ? `starting fleetheal twice: this build (${current.commit}) and the baseline (${baseline.commit}), both signing`
        : "starting fleetheal twice: with signed commands, and with signing off",
    );
    const settings = {
      stopTimeoutSeconds: STOP_TIMEOUT_SECONDS,
      handlers: CONFIG.handlers,
      logLevel: CONFIG.logLevel,
    };
    const stacks: Partial<Record<FleetPath, Stack>> = {};
    for (const p of fleetPaths) {
      const build = p === "baseline" && baseline ? baseline : current;
      stacks[p] = await startStack(p, build, engine, settings, teardown);
    }
    const stackOf = (p: FleetPath) => stacks[p] as Stack;
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
      args: ["--import", "tsx", path.join(BENCH_REPO, "bench", "heal", "floor.ts")],
      env: {
        DOCKER_HOST: engine.dockerHost,
        FLOOR_LABEL,
        STOP_TIMEOUT: String(STOP_TIMEOUT_SECONDS),
      },
      cwd: BENCH_REPO,
    });
    teardown.add(() => floor[Symbol.asyncDispose]());
    await floor.waitForJson((l) => l.ready === true, 30_000, "floor healer did not start");

    const recorder = await recordDockerEvents(engine);
    teardown.add(() => recorder.close());

    log(`starting ${CONFIG.containersPerPath} containers per path`);
    const containers = Object.fromEntries(paths.map((p) => [p, []])) as unknown as Record<
      PathName,
      BenchContainer<PathName>[]
    >;
    for (let i = 0; i < CONFIG.containersPerPath; i++) {
      for (const p of paths) {
        containers[p].push(
          await createContainer(engine, dir, p, i, {
            labels: labelsOf(p),
            healthIntervalMs: CONFIG.healthIntervalMs,
            stopTimeoutSeconds: STOP_TIMEOUT_SECONDS,
          }),
        );
      }
    }
    for (const c of paths.flatMap((p) => containers[p])) {
      await waitHealthy(recorder, c, c.lastStartNano);
    }
    // The handlers must know the policy before the first measured incident.
    await Promise.all(fleetPaths.map((p) => stackOf(p).storePolicy(policy)));

    const incidents: Incident<PathName>[] = [];
    const total = CONFIG.warmup + CONFIG.incidents;
    for (let i = 0; i < total; i++) {
      // Rotate which path goes first, so none always follows another's recovery.
      const order = paths.map((_, k) => paths[(i + k) % paths.length] as PathName);
      for (const p of order) {
        const list = containers[p];
        const c = list[i % list.length] as BenchContainer<PathName>;
        const incident = await runIncident(
          recorder,
          c,
          p === "floor" ? undefined : stackOf(p).seen,
        );
        if (i >= CONFIG.warmup) incidents.push(incident);
      }
      if ((i + 1) % 20 === 0) log(`${i + 1} of ${total} incidents per path`);
    }
    checkSigning(stacks);

    const reactions = (p: PathName): number[] =>
      incidents.filter((x) => x.path === p).map((x) => x.reactionMs);
    const reactionMs = Object.fromEntries(paths.map((p) => [p, summary(reactions(p))])) as Record<
      PathName,
      ReactionSummary
    >;
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
    // `ratios` is this build as deployed, signed: what the targets (and bench/run-all.ts) read.
    const ratios = ratioOf("signed");
    const unsigned = baseline ? undefined : ratioOf("unsigned");
    const signingCost = unsigned && {
      p50: round(ratios.p50 - unsigned.p50),
      p99: round(ratios.p99 - unsigned.p99),
    };
    const base = baseline && { commit: baseline.commit, ratios: ratioOf("baseline") };
    const comparison = base && {
      p50: round(ratios.p50 - base.ratios.p50),
      p99: round(ratios.p99 - base.ratios.p99),
    };
    const [dockerVersion, natsVersion] = await Promise.all([
      engine.docker.version().then((v) => v.Version),
      natsServerVersion(),
    ]);
    const bySide = <T>(f: (p: FleetPath) => T) =>
      Object.fromEntries(fleetPaths.map((p) => [p, f(p)])) as Record<FleetPath, T>;
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
        loadAverage1_5_15: { atStart: loadAtStart, atEnd: loadAverage() },
      },
      config: CONFIG,
      incidentsPerPath: CONFIG.incidents,
      reactionMs,
      fleethealBreakdownMs: bySide(breakdownOf),
      ratios,
      ...(unsigned ? { ratiosUnsigned: unsigned, signingCost } : {}),
      ...(base ? { current: { commit: current.commit }, baseline: base, comparison } : {}),
      targets: { p50: 1.5, p99: 3, signingCostP50: 0.1 },
      meetsTargets: {
        p50: ratios.p50 <= 1.5,
        p99: ratios.p99 <= 3,
        ...(signingCost ? { signingCostP50: signingCost.p50 <= 0.1 } : {}),
      },
      commandsSeen: bySide((p) => ({
        signed: stackOf(p).seen.signed,
        unsigned: stackOf(p).seen.unsigned,
      })),
      eventsStored: Object.fromEntries(
        await Promise.all(fleetPaths.map(async (p) => [p, await stackOf(p).eventsStored()])),
      ),
      incidents,
    };
    await writeResult(CONFIG.output, result, log);
    printReaction({
      incidents: CONFIG.incidents,
      output: CONFIG.output,
      fleetPaths,
      reactionMs,
      breakdown: result.fleethealBreakdownMs,
      ratios,
      unsigned,
      signingCost,
      baseline: base && comparison && { ...base, comparison, current: current.commit },
    });
  } finally {
    await teardown.run(log);
  }
}

runMain(main);
