// Handler throughput and storm: what the heal path costs at fleet scale, on the real parts
// (nats-server with JetStream, the handler as operators run it: `node bin/fleetheal.js handler`
// from dist/), with synthetic hosts in place of agents and Docker.
//
//   npm run build && npm run bench:handlers
//
// Synthetic hosts (bench/fleet/uniform-fleet.ts): 1,000 hosts × 50 containers, each with a host
// snapshot in KV (so that the dependents handler finds the restarted container, as it would in
// production), publishing contract events with their message id like agent/outbox.ts, and
// answering their restart commands with a valid `restarted` reply, as agents do.
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
// JetStream operations the handler makes per event, but none of fleetheal's code
// (bench/handlers/ops-floor.ts). nats-server's message counters (`/varz`) and the streams'
// sequences show that both make the same operations; the handler's ratio to the floor is what
// fleetheal's code costs.
//
// Storm: the default policy; all 50,000 containers turn unhealthy within one second. Measured:
// the time until every one has its first remediation record (decided, skipped storm-cap,
// quarantined image-breaker…); the caps, as restarts in progress at the synthetic agents (each
// restart held FLEETHEAL_BENCH_STORM_HOLD_MS) and as restarts per minute timed by when their
// rate slots were taken; and how often the heal consumer delivers afterwards.
//
// With FLEETHEAL_BENCH_BASELINE=<checkout>, the handler of that
// build runs too, in the same run, each between references of its own, and the two are compared.
//
// Everything is configurable through environment variables (bench/handlers/config.ts and
// docs/benchmarks/PERFORMANCE.md); with FLEETHEAL_BENCH_CPU_PROF=<dir> every handler and floor process
// writes a V8 CPU profile there. Results go to bench/results/handler-throughput.json.

import os from "node:os";
import { jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { openFleetJetStream } from "../common/jetstream-resources.js";
import { encode, HealPolicy, POLICY_KEY } from "../contracts/index.js";
import { startNatsServer } from "../test/support/nats-server.js";
import { unhealthyEvents, uniformFleet } from "./fleet/uniform-fleet.js";
import { CONFIG, TARGETS } from "./handlers/config.js";
import { type Context, writeSnapshots } from "./handlers/context.js";
import { printTable, summarise } from "./handlers/report.js";
import { stormRun } from "./handlers/storm.js";
import { SyntheticAgents } from "./handlers/synthetic-agents.js";
import { throughputRuns } from "./handlers/throughput.js";
import { baselineBuild, currentBuild } from "./runner/builds.js";
import { round } from "./runner/numbers.js";
import { benchLog, machineInfo, runMain, writeResult } from "./runner/report.js";

const log = benchLog("handlers");

async function main(): Promise<void> {
  const startedAt = new Date();
  const loadBefore = os.loadavg();
  const nats = await startNatsServer();
  const nc = await connect({ servers: nats.url, name: "bench-fleet-publisher" });
  const agentsNc = await connect({ servers: nats.url, name: "bench-fleet-agents" });
  const observerNc = await connect({ servers: nats.url, name: "bench-observer" });
  try {
    const fleet = uniformFleet({
      hosts: CONFIG.hosts,
      containersPerHost: CONFIG.containersPerHost,
      images: CONFIG.stormImages,
      seed: CONFIG.seed,
    });
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
      current: currentBuild(),
      baseline: baselineBuild(),
    };
    if (ctx.baseline) log(`baseline: ${ctx.baseline.commit} from ${ctx.baseline.checkout}`);
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
    await writeResult(CONFIG.output, result, log);
  } finally {
    await Promise.all([nc.close(), agentsNc.close(), observerNc.close()]);
    await nats[Symbol.asyncDispose]();
  }
}

runMain(main);
