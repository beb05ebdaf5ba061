// The gateway under test, a child program of bench/gateway.ts: the real `buildApp()` on
// in-memory control and event ports, its FleetView fed the fleet the parent wrote (one JSON
// document at a time, decoded with the contract as the KV watch does), listening on a port.

import { createReadStream, openSync, readSync } from "node:fs";
import { createInterface } from "node:readline";
import { decode, HostSnapshot, LedgerEntry } from "../../contracts/index.js";
import { buildApp } from "../../gateway/http/app.js";
import { findContainers } from "../../gateway/view/container-query.js";
import { FleetView } from "../../gateway/view/fleet-view.js";
import { HealthCache } from "../../gateway/view/health-cache.js";
import { FakeFleetControl, MemoryEventLog } from "../../test/support/gateway-fakes.js";
import { percentile, round } from "../runner/numbers.js";
import { runChild } from "../runner/report.js";
import { CONFIG, CONTAINERS_URL, FLEET_FILE_ENV, HEALTH_URL } from "./config.js";
import type { Measured } from "./protocol.js";
import {
  listen,
  send,
  serveParent,
  settledMemory,
  timeCalls,
  timeInject,
  timing,
} from "./server-child.js";

async function serveGateway(): Promise<void> {
  const now = Date.now();

  const staleness = { staleAfterHeartbeats: 3, downAfterHeartbeats: 12 };
  const view = new FleetView();
  const health = new HealthCache(view, staleness);
  const events = new MemoryEventLog();
  const app = await buildApp({
    view,
    staleness,
    health,
    natsConnected: () => true,
    control: new FakeFleetControl(),
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
      // the view's ledger keys: the bench's input counted as the gateway's memory.
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
        // keeping the fleet's JSON in memory would count against the gateway's RSS.
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

runChild(serveGateway);
