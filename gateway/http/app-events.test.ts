import { afterEach, describe, expect, it } from "vitest";
import { containerEvent, remediationRecord } from "../../test/support/fixtures.js";
import {
  hostSnapshot,
  startTestGateway,
  T0,
  type TestGateway,
} from "../../test/support/gateway-fakes.js";
import { openSse } from "../../test/support/sse.js";
import { waitFor } from "../../test/support/wait.js";
import { HealthReport } from "../view/health-report.js";
import type { StreamRecord } from "./api-schemas.js";

let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.app.close();
  gw = undefined;
});

async function start(options: Parameters<typeof startTestGateway>[0] = {}) {
  gw = await startTestGateway(options);
  return gw;
}

const CID = "0123456789ab".padEnd(64, "0");

function remediation(
  seq: number,
  host: string,
  phase: "restarted" | "failed",
  failure = "timeout",
): StreamRecord {
  return {
    kind: "remediation",
    seq,
    subject: `fleetheal.v1.act.${host}.${CID}.${phase}`,
    storedAt: new Date(T0 + seq).toISOString(),
    remediation: remediationRecord({
      id: `r${seq}`,
      remediationId: `rem${seq}`,
      host,
      containerId: CID,
      containerName: "web",
      phase,
      code: phase === "restarted" ? "unhealthy" : failure,
      message: "m",
      actor: "handler-1",
      at: new Date(T0 + seq).toISOString(),
    }),
  };
}

function dockerEvent(seq: number, host: string, atMs: number): StreamRecord {
  return {
    kind: "event",
    seq,
    subject: `fleetheal.v1.evt.${host}.${CID}.unhealthy`,
    storedAt: new Date(atMs).toISOString(),
    event: containerEvent({
      id: `${host}:${CID}:${atMs}000000:unhealthy`,
      host,
      action: "unhealthy",
      timeNano: `${atMs}000000`,
      time: new Date(atMs).toISOString(),
      container: { id: CID, name: "web" },
    }),
  };
}

describe("GET /events", () => {
  it("runs only so many history reads at once, and answers the next 503", async () => {
    let release = () => {};
    let entered = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const reading = new Promise<void>((resolve) => {
      entered = resolve;
    });
    const events = {
      read: async () => {
        entered();
        await gate;
        return { records: [] };
      },
    };
    const g = await start({ events, concurrentHistoryReads: 1 });
    const first = g.app.inject({ method: "GET", url: "/events" });
    // The first read holds the only slot until the gate opens.
    await reading;
    const second = await g.app.inject({ method: "GET", url: "/events" });
    expect(second.statusCode).toBe(503);
    expect(second.json().error.code).toBe("FLEETHEAL_ERR_UNAVAILABLE");
    release();
    expect((await first).statusCode).toBe(200);
    expect((await g.app.inject({ method: "GET", url: "/events" })).statusCode).toBe(200);
  });

  it("passes the validated query to the event log and returns its page", async () => {
    const g = await start();
    g.events.records.push(remediation(1, "h1", "restarted"), remediation(2, "h2", "failed"));
    const res = await g.app.inject({ method: "GET", url: "/events?host=h2&limit=5&since=15m" });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().records.map((r: StreamRecord) => r.seq)).toEqual([2]);
    expect(g.events.queries).toEqual([{ host: "h2", limit: 5, since: "15m" }]);
  });

  it.each([
    "?kind=docker",
    "?limit=5000",
    "?after=-1",
    "?container=abc.def",
    "?host=*",
    "?since=yesterday",
    "?since=2026-13-45T00:00:00Z",
  ])("rejects %s", async (query) => {
    const g = await start();
    const res = await g.app.inject({ method: "GET", url: `/events${query}` });
    expect(res.statusCode).toBe(400);
    expect(g.events.queries).toHaveLength(0);
  });
});

describe("GET /events/stream", () => {
  it("sends the fleet's health, then live records that pass the filter, then health changes", async () => {
    const g = await start();
    g.view.apply(hostSnapshot("h1", ["healthy"]), T0);
    const base = await g.app.listen({ port: 0, host: "127.0.0.1" });
    await using sse = await openSse(`${base}/events/stream?host=h1`);
    expect(sse.status).toBe(200);
    expect(sse.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const first = await sse.next(5_000, "the initial health");
    expect(first.event).toBe("health");
    expect(HealthReport.parse(JSON.parse(first.data)).totals.containers.total).toBe(1);

    await waitFor(() => g.events.subscriberCount === 1, {
      timeoutMs: 5_000,
      message: "the stream did not subscribe to the feed",
    });
    g.events.push(remediation(7, "h2", "restarted"));
    g.events.push(remediation(8, "h1", "restarted"));
    const record = await sse.nextMatching((m) => m.event === "record", 5_000, "a record");
    expect(record.id).toBe("8");
    expect(JSON.parse(record.data).remediation.host).toBe("h1");

    g.view.apply(hostSnapshot("h1", ["healthy", "unhealthy"]), T0);
    const health = await sse.nextMatching((m) => m.event === "health", 5_000, "a health push");
    expect(JSON.parse(health.data).totals.containers.unhealthy).toBe(1);
  });

  it("catches a reconnecting client up from Last-Event-ID without gaps or repeats", async () => {
    const g = await start();
    for (let seq = 1; seq <= 5; seq++) g.events.push(remediation(seq, "h1", "restarted"));
    const base = await g.app.listen({ port: 0, host: "127.0.0.1" });
    await using sse = await openSse(`${base}/events/stream`, { "last-event-id": "3" });
    await waitFor(() => g.events.subscriberCount === 1, {
      timeoutMs: 5_000,
      message: "the stream did not subscribe to the feed",
    });
    g.events.push(remediation(6, "h1", "failed"));
    const ids: string[] = [];
    while (ids.length < 3) {
      const m = await sse.nextMatching((x) => x.event === "record", 5_000, "a record");
      ids.push(m.id ?? "");
    }
    expect(ids).toEqual(["4", "5", "6"]);
  });

  it("ends open streams when the server closes, and limits how many are open", async () => {
    const g = await start({ maxStreams: 1 });
    const base = await g.app.listen({ port: 0, host: "127.0.0.1" });
    const sse = await openSse(`${base}/events/stream`);
    await sse.next(5_000, "the initial health");
    const second = await fetch(`${base}/events/stream`);
    expect(second.status).toBe(503);
    expect(((await second.json()) as { error: { message: string } }).error.message).toContain(
      "FLEETHEAL_GATEWAY_MAX_STREAMS",
    );
    await g.app.close();
    gw = undefined;
    await expect(sse.next(5_000, "the end")).rejects.toThrow(/stream ended|terminated|aborted/);
    expect(g.events.subscriberCount).toBe(0);
  });
});

describe("GET /metrics", () => {
  it("exports fleet gauges, lag and process metrics, and no restarts from the events feed", async () => {
    const g = await start();
    g.view.apply(hostSnapshot("h1", ["healthy", "unhealthy"]), T0);
    g.view.apply(hostSnapshot("h2", ["healthy"]), T0 - 5_000);
    g.view.applyLedger("h1", "feedfeedfeed", undefined);
    // Every gateway sees every record: counting them would double with two gateways.
    g.metrics.observe(remediation(1, "h1", "restarted"), T0);
    g.metrics.observe(remediation(3, "h2", "failed"), T0);
    g.metrics.observe(remediation(6, "h2", "failed", "made-up-code"), T0);
    g.metrics.observe(dockerEvent(4, "h1", T0 - 40), T0);
    const res = await g.app.inject({ method: "GET", url: "/metrics" });
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^text\/plain/);
    const text = res.body;
    expect(text).toContain('fleetheal_hosts{status="up"} 1');
    expect(text).toContain('fleetheal_hosts{status="stale"} 1');
    expect(text).toContain('fleetheal_containers{health="unhealthy"} 1');
    expect(text).toContain('fleetheal_containers{health="healthy"} 2');
    expect(text).toContain("fleetheal_containers_quarantined 0");
    expect(text).toContain('fleetheal_restarts_total{trigger="manual",outcome="restarted"} 0');
    expect(text).toContain('fleetheal_restarts_total{trigger="manual",outcome="failed"} 0');
    expect(text).not.toMatch(/fleetheal_restarts_total\{host=/);
    expect(text).not.toContain("made-up-code");
    expect(text).toContain('fleetheal_event_lag_seconds_bucket{le="0.05"} 1');
    expect(text).toContain('fleetheal_event_lag_seconds_bucket{le="0.025"} 0');
    expect(text).toContain("process_resident_memory_bytes");
  });
});
