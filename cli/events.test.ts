// `fleetheal events`, history and --follow, in-process against the real gateway app on a real
// port (test/support/gateway-fakes.ts). The follow tests cut the connection with a TCP proxy to
// check that records stored meanwhile arrive after the reconnect, once each.

import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import type { StreamRecord } from "../gateway/http/api-schemas.js";
import { containerEvent, remediationRecord } from "../test/support/fixtures.js";
import {
  hostSnapshot,
  startTestGateway,
  T0,
  type TestGateway,
} from "../test/support/gateway-fakes.js";
import { startTcpProxy, type TcpProxy } from "../test/support/tcp-proxy.js";
import { waitFor } from "../test/support/wait.js";
import { loadCommand, runCommandNamed } from "./commands/index.js";

vi.setConfig({ testTimeout: 20_000 });

let gw: TestGateway | undefined;
let proxy: TcpProxy | undefined;
let url: string;

beforeAll(async () => {
  await loadCommand("events");
}, 60_000);
afterEach(async () => {
  await proxy?.[Symbol.asyncDispose]();
  proxy = undefined;
  await gw?.app.close();
  gw = undefined;
});

async function start(): Promise<TestGateway> {
  gw = await startTestGateway();
  url = await gw.app.listen({ port: 0, host: "127.0.0.1" });
  gw.view.apply(hostSnapshot("h1", ["healthy", "healthy"]), T0);
  gw.view.apply(hostSnapshot("h2", ["healthy"]), T0);
  return gw;
}

const cid = (host: string, i: number) => gw?.view.get(host)?.snapshot.containers[i]?.id ?? "";

function restarted(seq: number, host = "h1", i = 0): StreamRecord {
  const at = new Date(T0 - 60_000 + seq * 1000).toISOString();
  return {
    kind: "remediation",
    seq,
    subject: `fleetheal.v1.act.${host}.${cid(host, i)}.restarted`,
    storedAt: at,
    remediation: remediationRecord({
      id: `r${seq}`,
      remediationId: `rem${seq}`,
      host,
      containerId: cid(host, i),
      containerName: `${host}-${i}`,
      phase: "restarted",
      code: "unhealthy",
      message: `restart number ${seq}`,
      actor: "handler-1",
      at,
    }),
  };
}

function died(seq: number): StreamRecord {
  const at = new Date(T0 - 60_000 + seq * 1000).toISOString();
  return {
    kind: "event",
    seq,
    subject: `fleetheal.v1.evt.h1.${cid("h1", 1)}.die`,
    storedAt: at,
    event: containerEvent({
      id: `h1:${cid("h1", 1)}:1:die`,
      host: "h1",
      action: "die",
      timeNano: "1",
      time: at,
      container: { id: cid("h1", 1), name: "h1-1" },
      source: "reconcile",
      exitCode: 137,
      stopped: true,
    }),
  };
}

/** A command running in the background, whose output lines a test can wait for. */
function background(argv: string[], target = url) {
  const out: string[] = [];
  const err: string[] = [];
  const waiters = new Set<() => void>();
  const push = (into: string[]) => (line: string) => {
    into.push(line);
    for (const w of waiters) w();
  };
  const abort = new AbortController();
  const done = runCommandNamed("events", argv, {
    io: { out: push(out), err: push(err) },
    env: { FLEETHEAL_GATEWAY_URL: target },
    cwd: "/",
    now: () => T0,
    signal: abort.signal,
    reconnectDelayMs: 50,
  });
  const waitFor = (lines: string[], pred: (l: string) => boolean, what: string) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        const hit = lines.find(pred);
        if (hit === undefined) return;
        waiters.delete(check);
        clearTimeout(timer);
        resolve(hit);
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(
          new Error(`no ${what} within 10 s; out: ${out.join(" | ")}; err: ${err.join(" | ")}`),
        );
      }, 10_000);
      waiters.add(check);
      check();
    });
  return {
    out,
    err,
    done,
    stdout: (pred: (l: string) => boolean, what: string) => waitFor(out, pred, what),
    stderr: (pred: (l: string) => boolean, what: string) => waitFor(err, pred, what),
    stop: () => abort.abort(),
  };
}

async function run(argv: string[]) {
  const job = background(argv);
  return { code: await job.done, out: job.out, err: job.err };
}

describe("fleetheal events", () => {
  it("prints history as a table with the filters given", async () => {
    const g = await start();
    g.events.records.push(restarted(1), died(2), restarted(3, "h2"));
    const r = await run(["--host", "h1", "--since", "15m"]);
    expect(r.code).toBe(0);
    expect(r.out).toEqual([
      "WHEN     HOST  CONTAINER  KIND         WHAT       DETAIL",
      "59s ago  h1    h1-0       remediation  restarted  unhealthy: restart number 1 [handler-1]",
      "58s ago  h1    h1-1       event        die        exit 137, stopped, (seen by reconcile)",
    ]);
    expect(g.events.queries.at(-1)).toEqual({ host: "h1", since: "15m", limit: 100 });
  });

  it("takes --since in days up to the history's 7, sent to the API in seconds", async () => {
    const g = await start();
    expect((await run(["--since", "1d"])).code).toBe(0);
    expect(g.events.queries.at(-1)).toEqual({ since: "86400s", limit: 100 });
    expect((await run(["--since", "7d"])).code).toBe(0);
    expect(g.events.queries.at(-1)).toEqual({ since: "604800s", limit: 100 });
    expect((await run(["--since", "1d12h"])).code).toBe(0);
    expect(g.events.queries.at(-1)).toEqual({ since: "129600s", limit: 100 });
  });

  it("--no-headers prints the rows alone; with no rows, stdout stays empty", async () => {
    const g = await start();
    g.events.records.push(restarted(1));
    const r = await run(["--no-headers"]);
    expect(r.out).toEqual([
      "59s ago  h1    h1-0       remediation  restarted  unhealthy: restart number 1 [handler-1]",
    ]);
    const none = await run(["--no-headers", "--kind", "event"]);
    expect(none).toMatchObject({ code: 0, out: [], err: ["no records"] });
  });

  it("follows every page with --all; --json is one document", async () => {
    const g = await start();
    g.events.records.push(restarted(1), died(2), restarted(3));
    const page = await run(["--limit", "2"]);
    expect(page.out).toHaveLength(3);
    expect(page.err).toEqual(["more records after 2: --all for every page"]);
    const all = await run(["--limit", "2", "--all", "--json"]);
    expect(JSON.parse(all.out.join("\n"))).toEqual({ records: g.events.records });
    expect(g.events.queries.slice(-2)).toEqual([{ limit: 2 }, { limit: 2, after: 2 }]);
    expect(JSON.parse((await run(["--kind", "event", "--json"])).out.join("\n"))).toEqual({
      records: [g.events.records[1]],
    });
  });

  it("looks up a container given by name or id prefix", async () => {
    const g = await start();
    await run(["--container", "h1-1"]);
    expect(g.events.queries.at(-1)).toMatchObject({ container: cid("h1", 1) });
    await run(["--host", "h2", "--container", cid("h2", 0).slice(0, 6)]);
    expect(g.events.queries.at(-1)).toMatchObject({ host: "h2", container: cid("h2", 0) });
    const unknown = await run(["--container", "nope"]);
    expect(unknown.code).toBe(2);
    expect(unknown.err[0]).toBe(
      "--container: no container is named nope; give --host to look it up by id prefix there",
    );
  });

  it.each([
    [
      ["--since", "yesterday"],
      "--since: expected a duration back from now (30s, 15m, 2h, 1d, up to 7d)",
    ],
    [["--since", "8d"], '--since: the history keeps 7 days, and "8d" goes back further'],
    [["--since", "2026-11-01T00:00:00Z"], "--since: the history keeps 7 days"],
    [["--limit", "5000"], '--limit: expected a whole number from 1 to 1000, got "5000"'],
    [["--limit", "abc"], '--limit: expected a whole number, got "abc"'],
    [["--kind", "docker"], '--kind: expected event or remediation, got "docker"'],
    [["--follow", "--all"], "--follow prints every record already: leave out --all"],
    [["--no-headers", "--json"], "--no-headers and --json exclude each other: give one"],
  ])("%j is a usage error", async (argv, message) => {
    await start();
    const r = await run(argv);
    expect(r.code).toBe(2);
    expect(r.err[0]).toContain(message);
  });
});

describe("fleetheal events --follow", () => {
  it("prints records as they are stored and resumes after a dropped connection", async () => {
    const g = await start();
    proxy = await startTcpProxy({ port: Number(new URL(url).port) });
    const job = background(["--follow", "--host", "h1"], `http://127.0.0.1:${proxy.port}`);
    await job.stderr((l) => l.startsWith("following http://127.0.0.1:"), "following notice");
    g.events.push(restarted(1));
    g.events.push(restarted(2, "h2"));
    g.events.push(died(3));
    await job.stdout((l) => l.includes("die"), "the die event");
    expect(job.out).toHaveLength(2);
    // Local time, then fixed-width columns: host, container, kind, what, detail.
    expect(job.out[0]?.slice(0, 19)).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    expect(job.out[0]?.slice(19)).toBe(
      "  h1            h1-0                  remediation  restarted     unhealthy: restart number 1 [handler-1]",
    );

    // Cut: the records stored while the CLI is away come after the reconnect, none twice.
    proxy.cut();
    await job.stderr((l) => l.startsWith("connection lost"), "connection lost notice");
    g.events.push(restarted(4));
    g.events.push(restarted(5));
    proxy.restore();
    await job.stderr((l) => l === "reconnected; resuming after record 3", "reconnect notice");
    g.events.push(restarted(6));
    await job.stdout((l) => l.includes("restart number 6"), "record 6");
    expect(job.out.map((l) => /number (\d)|die/.exec(l)?.[1] ?? "die")).toEqual([
      "1",
      "die",
      "4",
      "5",
      "6",
    ]);
    // The gateway caught the CLI up from the Last-Event-ID it sent.
    expect(g.events.queries.at(-1)).toEqual({ host: "h1", after: 3, limit: 1000 });

    job.stop();
    expect(await job.done).toBe(0);
    // Ctrl-C closes the connection: the gateway's stream ends too.
    await waitFor(() => g.events.subscriberCount === 0, {
      timeoutMs: 5_000,
      message: "the gateway still streams to a CLI that stopped",
    });
  });

  it("prints history first with --since, then live records, as JSON lines with --json", async () => {
    const g = await start();
    g.events.push(restarted(1));
    g.events.push(restarted(2));
    const job = background(["-f", "--since", "1h", "--json"]);
    await job.stdout((l) => l.includes('"seq":2'), "history");
    await job.stderr((l) => l.startsWith("following"), "following notice");
    g.events.push(died(3));
    await job.stdout((l) => l.includes('"seq":3'), "live record");
    expect(job.out.map((l) => JSON.parse(l))).toEqual(g.events.records);
    job.stop();
    expect(await job.done).toBe(0);
  });

  it("catches up by time after a drop before any record was seen", async () => {
    const g = await start();
    proxy = await startTcpProxy({ port: Number(new URL(url).port) });
    const job = background(["-f"], `http://127.0.0.1:${proxy.port}`);
    await job.stderr((l) => l.startsWith("following"), "following notice");
    proxy.cut();
    await job.stderr((l) => l.startsWith("connection lost"), "connection lost notice");
    g.events.push(restarted(1));
    proxy.restore();
    await job.stdout((l) => l.includes("restart number 1"), "the record stored while away");
    expect(g.events.queries.at(-1)).toEqual({ since: "5s", limit: 1000 });
    job.stop();
    expect(await job.done).toBe(0);
  });

  it("exits 3 when the gateway cannot be reached at all", async () => {
    await start();
    await gw?.app.close();
    const r = await run(["--follow"]);
    expect(r.code).toBe(3);
    expect(r.err[0]).toMatch(/^FLEETHEAL_ERR_UNREACHABLE: cannot reach the gateway/);
  });
});
