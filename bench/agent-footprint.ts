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
import { mkdir, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { promisify } from "node:util";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { openFleetJetStream } from "../common/jetstream-resources.js";
import { EVENTS_STREAM, HOSTS_BUCKET, SUBJECTS } from "../contracts/index.js";
import { recordDockerEvents, runTestContainer } from "../test/support/containers.js";
import { startDockerEngine } from "../test/support/dockerd.js";
import { createHostEventStreams } from "../test/support/fleet.js";
import { REPO, startRole } from "../test/support/fleetheal.js";
import { startNatsServer } from "../test/support/nats-server.js";
import { describeError, waitFor } from "../test/support/wait.js";
import { CONFIG, HOST, type OpKind } from "./agent/config.js";
import { jetstreamReference } from "./agent/reference.js";
import { printTable } from "./agent/report.js";
import { runStep, type StepResult } from "./agent/step.js";
import { expectedId, followStream, readSnapshot, watchDockerDelivery } from "./agent/stream.js";
import { allRunning, type Phase } from "./agent/transitions.js";
import { round } from "./runner/numbers.js";
import { clockTicks, footprint, startSampler } from "./runner/proc.js";
import { runMain } from "./runner/report.js";

const execFileAsync = promisify(execFile);

async function main(): Promise<void> {
  const t0 = performance.now();
  const loadAtStart = os.loadavg().map((n) => round(n, 2));
  const cleanups: Array<() => PromiseLike<unknown>> = [];
  const log = (msg: string): void => {
    console.error(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${msg}`);
  };
  let failure: unknown;
  try {
    log("starting nats-server and dockerd");
    const [nats, engine] = await Promise.all([startNatsServer(), startDockerEngine("bench")]);
    cleanups.push(() => nats[Symbol.asyncDispose]());
    cleanups.push(() => engine.stop());
    const nc = await connect({ servers: nats.url, name: "bench-reader" });
    cleanups.push(() => nc.close());
    // The fleet's streams and buckets, as the handler and the gateway open them: an agent only
    // writes to them.
    await openFleetJetStream(nc);
    // No handler runs here to make the host's events stream.
    await createHostEventStreams(nc, [HOST]);

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
        last_by_subj: SUBJECTS.hostEvents(HOST),
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
        clockTicks: await clockTicks(),
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

runMain(main);
