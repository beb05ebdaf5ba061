// Gateway at fleet scale: what `GET /health` and `GET /containers?health=unhealthy` cost with
// 1,000 hosts × 50 containers in the view, against a plain Fastify route that returns a constant
// body of the same bytes, with the same load tool, in the same run (docs/benchmarks/PERFORMANCE.md).
//
//   npm run bench:gateway
//
// Three processes: this one runs the load generator (autocannon); the gateway under test and the
// reference each run in a child process of their own, so the load generator never shares an
// event loop (or a core's time slice) with a server, and each server's RSS and CPU time are its
// own (/proc/<pid>).
//
// The servers run as the gateway is deployed: plain `node` on the compiled code in dist/, with no
// TypeScript loader (a loader's own RSS would make the memory figures estimates).
// So this bench first runs `npm run build` (and stops if it fails), then transpiles the child
// programs (bench/gateway/gateway-server.ts, bench/gateway/reference-server.ts) and the bench/
// and test/ modules they import (the in-memory ports of test/support/gateway-fakes.ts, shared
// helpers) into dist/bench/ and dist/test/, where their relative imports resolve to the built
// gateway (bench/gateway/compile.ts).
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
// Everything is configurable through environment variables (bench/gateway/config.ts); with
// FLEETHEAL_BENCH_CPU_PROF=<dir> the gateway child writes a V8 CPU profile there, and
// FLEETHEAL_BENCH_GATEWAY_NODE_FLAGS gives it Node/V8 flags (by default the heap cap it is

import { rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { writeVariedFleet } from "./fleet/varied-fleet.js";
import { compileChildren, idleNodeMb } from "./gateway/compile.js";
import { CONFIG, CONTAINERS_URL, FLEET_FILE_ENV, HEALTH_URL } from "./gateway/config.js";
import { load, type Run, type TargetName } from "./gateway/load.js";
import type { GatewayInfo, ReferenceInfo } from "./gateway/protocol.js";
import { printTable, summarise } from "./gateway/report.js";
import { ask, type Server, startServer, stopServer } from "./gateway/servers.js";
import { round } from "./runner/numbers.js";
import { procStat } from "./runner/proc.js";
import { benchLog, machineInfo, runMain, writeResult } from "./runner/report.js";

const log = benchLog("gateway");

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
    const fleet = await writeVariedFleet(fleetFile, CONFIG);
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
    await writeResult(CONFIG.output, result, log);
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

runMain(main);
