// Soak: the whole fleet under a steady load for minutes, and whether any role's memory grows.
//
//   npm run bench:soak        (builds first; about 4 minutes with the defaults, as root)
//
// Every role runs as its own process, as operators run them (`node bin/fleetheal.js agent`,
// `handler`, `gateway`, from dist/), on a real nats-server with the accounts of `fleetheal
// nats-auth` and a real dockerd (test/support/fleet.ts). The load, the same from start to end:
// - containers whose health flaps, one every few seconds, which the fleet heals (Docker events,
//   handler decisions, restart commands, remediation records);
// - synthetic containers whose events are published with the host agent's credentials, as the
//   agent publishes its own, so that the live streams carry a steady volume;
// - live streams on GET /events/stream: some clients read everything, some never read, and a
//   stalled client is dropped and replaced by a new stalled one every so often;
// - REST reads of /health, /hosts, /containers, /events and /metrics at a steady rate.
// RSS (VmRSS of /proc/<pid>/status) of each role is sampled every second. After the warm-up, the
// median of the first window is "start" and the median of the last window "end"; each role's end
// may be at most 10 % above its start (bench/soak/rss.ts). Exit 1 when a role fails that.
//
// Not part of CI nor of `npm run bench`. Settings are environment variables (CONFIG below);
// the result goes to bench/results/soak.json.

import { performance } from "node:perf_hooks";
import { setTimeout as delay } from "node:timers/promises";
import { startFleet } from "../../test/support/fleet.js";
import { Teardown } from "../runner/async.js";
import { currentBuild } from "../runner/builds.js";
import { round } from "../runner/numbers.js";
import { type ProcSample, startSampler } from "../runner/proc.js";
import {
  benchLog,
  loadAverage,
  machineInfo,
  natsServerVersion,
  resultFile,
  runMain,
  writeResult,
} from "../runner/report.js";
import { envNumber } from "../runner/settings.js";
import { startFlapping, startReads, startSyntheticEvents } from "./load.js";
import { rssTable, rssVerdict } from "./rss.js";
import { startSseClients } from "./sse-clients.js";

const CONFIG = {
  /** The whole run, warm-up included. */
  seconds: envNumber("FLEETHEAL_SOAK_SECONDS", 240),
  /**
   * Load runs but memory is not judged yet: JIT, first connections, buffers reaching size, and
   * V8 growing each heap to where it levels off (about a minute for the handler).
   */
  warmupSeconds: envNumber("FLEETHEAL_SOAK_WARMUP_SECONDS", 60),
  /** The windows whose median RSS is "start" and "end". */
  windowSeconds: envNumber("FLEETHEAL_SOAK_WINDOW_SECONDS", 15),
  /** Containers whose health flaps, and how often one of them is made unhealthy. */
  flapContainers: envNumber("FLEETHEAL_SOAK_FLAP_CONTAINERS", 4),
  flapEveryMs: envNumber("FLEETHEAL_SOAK_FLAP_EVERY_MS", 5_000),
  /** Events a second from the synthetic host, over this many container ids. */
  eventsPerSecond: envNumber("FLEETHEAL_SOAK_EVENTS_PER_SECOND", 100),
  syntheticContainers: envNumber("FLEETHEAL_SOAK_SYNTHETIC_CONTAINERS", 50),
  /** Live streams that read, and that never read (each replaced after its life). */
  sseReaders: envNumber("FLEETHEAL_SOAK_SSE_READERS", 4),
  sseStalled: envNumber("FLEETHEAL_SOAK_SSE_STALLED", 4),
  stalledLifeSeconds: envNumber("FLEETHEAL_SOAK_STALLED_LIFE_SECONDS", 60),
  /** REST reads a second. */
  readsPerSecond: envNumber("FLEETHEAL_SOAK_READS_PER_SECOND", 20),
  /**
   * NODE_OPTIONS per role, as deployments set them: compose and systemd cap the gateway's old
   * space at 512 MB and the handlers' at 256 MB. Empty: Node's defaults. A small cap on one role tells a leak (it runs out)
   * from a heap that V8 has not yet collected (it stays under the cap).
   */
  nodeOptions: {
    agent: process.env.FLEETHEAL_SOAK_AGENT_NODE_OPTIONS ?? "",
    handler: process.env.FLEETHEAL_SOAK_HANDLER_NODE_OPTIONS ?? "--max-old-space-size=256",
    gateway: process.env.FLEETHEAL_SOAK_GATEWAY_NODE_OPTIONS ?? "--max-old-space-size=512",
  },
  /** How far above its start a role's RSS may end: 0.1 is 10 %. */
  maxGrowth: envNumber("FLEETHEAL_SOAK_MAX_GROWTH", 0.1),
  // info at least: the fleet knows a role is ready by its "started" line.
  logLevel: process.env.FLEETHEAL_BENCH_LOG_LEVEL ?? "info",
  output: resultFile("soak.json"),
};

const HOST = "soak-host";
const PROGRESS_MS = 15_000;
const log = benchLog("soak");

async function main(): Promise<void> {
  if (CONFIG.seconds < CONFIG.warmupSeconds + 2 * CONFIG.windowSeconds) {
    throw new Error(
      "FLEETHEAL_SOAK_SECONDS must cover the warm-up and two windows (FLEETHEAL_SOAK_WARMUP_SECONDS + 2 × FLEETHEAL_SOAK_WINDOW_SECONDS)",
    );
  }
  const teardown = new Teardown();
  const loadBefore = loadAverage();
  const build = currentBuild();
  let failed = false;
  try {
    log(`starting the fleet: nats-server, dockerd, agent, handler, gateway (${build.commit})`);
    const fleet = await startFleet({
      hosts: [HOST],
      handlers: 1,
      gateway: true,
      env: {
        all: { FLEETHEAL_LOG_LEVEL: CONFIG.logLevel },
        ...Object.fromEntries(
          Object.entries(CONFIG.nodeOptions)
            .filter(([, options]) => options !== "")
            .map(([role, options]) => [role, { NODE_OPTIONS: options }]),
        ),
      },
    });
    teardown.add(() => fleet[Symbol.asyncDispose]());
    await fleet.waitForHosts();
    // Synthetic containers of the same host, published with its agent's credentials: a second
    // host would need a dockerd of its own, and its events would travel the same way.
    const synthetic = await fleet.nats.connect({ user: `agent-${HOST}` });

    const roles = {
      agent: fleet.host(HOST).agent.pid,
      handler: (fleet.handlers[0] ?? fail("no handler started")).pid,
      gateway: fleet.gateway.pid,
    };
    const samplers = Object.fromEntries(
      Object.entries(roles).map(([role, pid]) => [role, startSampler(pid, 1_000)]),
    );
    const natsSampler = startSampler(fleet.nats.server.pid, 1_000);

    log(
      `load: ${CONFIG.flapContainers} flapping containers (one every ${CONFIG.flapEveryMs} ms), ${CONFIG.eventsPerSecond} synthetic events/s, ${CONFIG.sseReaders} reading and ${CONFIG.sseStalled} stalled streams, ${CONFIG.readsPerSecond} reads/s`,
    );
    const engine = fleet.host(HOST).engine;
    const flapping = await startFlapping(engine, CONFIG.flapContainers, CONFIG.flapEveryMs);
    const events = startSyntheticEvents(
      synthetic,
      HOST,
      CONFIG.eventsPerSecond,
      CONFIG.syntheticContainers,
    );
    const sse = startSseClients(fleet.gateway.url, {
      readers: CONFIG.sseReaders,
      stalled: CONFIG.sseStalled,
      stalledLifeMs: CONFIG.stalledLifeSeconds * 1000,
    });
    const reads = startReads(fleet.gateway.url, HOST, CONFIG.readsPerSecond);
    const started = performance.now();
    const measuredFrom = started + CONFIG.warmupSeconds * 1000;
    const until = started + CONFIG.seconds * 1000;

    const heals = () =>
      fleet.host(HOST).docker.count((e) => e.action === "restart" && flapping.ids.includes(e.id));
    const rssNow = (samples: ProcSample[]) => round((samples.at(-1)?.rssKb ?? 0) / 1024, 1);
    while (performance.now() < until) {
      await delay(Math.min(PROGRESS_MS, until - performance.now()));
      log(
        `${Math.round((performance.now() - started) / 1000)} s: RSS ${Object.entries(samplers)
          .map(([role, s]) => `${role} ${rssNow(s.samples)} MB`)
          .join(
            ", ",
          )}; ${flapping.counts.flaps} flaps, ${heals()} heals, ${events.counts.published} events, ${sse.counts.records} records read, ${sse.openStreams()} streams open, ${reads.counts.ok} reads`,
      );
    }
    const measuredTo = performance.now();
    await Promise.all([flapping.stop(), events.stop(), reads.stop()]);
    sse.stop();

    const windows = {
      measuredFrom,
      measuredTo,
      windowMs: CONFIG.windowSeconds * 1000,
      maxGrowth: CONFIG.maxGrowth,
    };
    const verdicts = [];
    for (const [role, sampler] of Object.entries(samplers)) {
      verdicts.push(rssVerdict(role, await sampler.stop(), windows));
    }
    verdicts.push(rssVerdict("nats-server", await natsSampler.stop(), windows, false));

    // A driver that did nothing makes the run say nothing: that is a failure too.
    const load = {
      flaps: flapping.counts.flaps,
      flapErrors: flapping.counts.flapErrors,
      heals: heals(),
      syntheticEvents: events.counts,
      sse: sse.counts,
      reads: reads.counts,
    };
    const idle = [
      CONFIG.flapContainers > 0 && load.heals === 0 && "no container was healed",
      CONFIG.eventsPerSecond > 0 && load.syntheticEvents.published === 0 && "no event published",
      CONFIG.sseReaders > 0 && load.sse.records === 0 && "no live record read",
      CONFIG.readsPerSecond > 0 && load.reads.ok === 0 && "no REST read answered",
    ].filter((x): x is string => typeof x === "string");
    const pass = verdicts.every((v) => v.pass) && idle.length === 0;
    failed = !pass;

    console.log(
      `\nSoak: ${CONFIG.seconds} s, RSS judged after a ${CONFIG.warmupSeconds} s warm-up (medians of ${CONFIG.windowSeconds} s windows)\n`,
    );
    console.log(rssTable(verdicts, CONFIG.maxGrowth));
    console.log(`\nload: ${JSON.stringify(load)}`);
    for (const why of idle) console.log(`invalid run: ${why}`);
    console.log(`\nsoak ${pass ? "PASSED" : "FAILED"}`);

    await writeResult(
      CONFIG.output,
      {
        date: new Date().toISOString(),
        command: "npm run bench:soak",
        build: build.commit,
        config: { ...CONFIG, output: undefined },
        machine: machineInfo(loadBefore),
        natsServer: await natsServerVersion(),
        verdicts,
        load,
        invalid: idle,
        pass,
      },
      log,
    );
  } finally {
    await teardown.run(log);
  }
  if (failed) throw new Error("soak failed: see the table above");
}

function fail(message: string): never {
  throw new Error(message);
}

runMain(main);
