import { afterEach, describe, expect, it } from "vitest";
import { containerEvent, remediationRecord } from "../../test/support/fixtures.js";
import {
  MemoryEventLog,
  startTestGateway,
  T0,
  type TestGateway,
} from "../../test/support/gateway-fakes.js";
import { MemoryHistoryCounter } from "../../test/support/history-memory.js";
import { waitFor } from "../../test/support/wait.js";
import type { HistoryCounts, StreamRecord } from "./api-schemas.js";
import { CONCURRENT_HISTORY_COUNTS, HISTORY_COUNTS_CACHE_MS } from "./routes/history-routes.js";

let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.app.close();
  gw = undefined;
});

const CID = "0123456789ab".padEnd(64, "0");
let seq = 0;

function act(host: string, phase: "restarted" | "failed" | "skipped", atMs: number): StreamRecord {
  seq++;
  return {
    kind: "remediation",
    seq,
    subject: `fleetheal.v1.act.${host}.${CID}.${phase}`,
    storedAt: new Date(atMs).toISOString(),
    remediation: remediationRecord({
      remediationId: `rem${seq}`,
      host,
      containerId: CID,
      phase,
      at: new Date(atMs).toISOString(),
    }),
  };
}

function unhealthy(host: string, atMs: number, source: "docker" | "resync" = "docker") {
  seq++;
  return {
    kind: "event",
    seq,
    subject: `fleetheal.v1.evt.${host}.${CID}.unhealthy`,
    storedAt: new Date(atMs).toISOString(),
    event: containerEvent({
      host,
      action: "unhealthy",
      source,
      timeNano: `${atMs}000000`,
      container: { id: CID },
    }),
  } satisfies StreamRecord;
}

async function start(records: StreamRecord[]) {
  const events = new MemoryEventLog();
  for (const r of records) events.records.push(r);
  const history = new MemoryHistoryCounter(events);
  gw = await startTestGateway({ events, feed: events, history });
  return { gw, history, events };
}

const MIN = 60_000;

describe("GET /history/counts", () => {
  it("counts restarts, failures and unhealthy transitions per minute over the last hour, by host", async () => {
    const { gw } = await start([
      act("a", "restarted", T0 - 30 * MIN),
      act("a", "restarted", T0 - 30 * MIN + 5_000),
      act("b", "failed", T0 - 2 * MIN),
      act("a", "skipped", T0 - 2 * MIN),
      unhealthy("a", T0 - 31 * MIN),
      unhealthy("a", T0 - 20 * MIN, "resync"),
      unhealthy("b", T0 - 61 * MIN),
    ]);
    const res = await gw.app.inject({ method: "GET", url: "/history/counts" });
    expect(res.statusCode).toBe(200);
    const body = res.json<HistoryCounts>();
    expect(body).toMatchObject({
      window: "1h",
      bucketSeconds: 60,
      totals: { restarts: 2, failed: 1, unhealthy: 1 },
      hosts: [
        { host: "a", restarts: 2, failed: 0, unhealthy: 1 },
        { host: "b", restarts: 0, failed: 1, unhealthy: 0 },
      ],
      hostsOmitted: 0,
    });
    expect(body.host).toBeUndefined();
    expect(body.buckets).toHaveLength(60);
    const at = (ms: number) =>
      body.buckets.find((b) => b.start === new Date(Math.floor(ms / MIN) * MIN).toISOString());
    expect(at(T0 - 30 * MIN)).toMatchObject({ restarts: 2, failed: 0, unhealthy: 0 });
    expect(at(T0 - 31 * MIN)).toMatchObject({ restarts: 0, failed: 0, unhealthy: 1 });
    expect(at(T0 - 2 * MIN)).toMatchObject({ restarts: 0, failed: 1, unhealthy: 0 });

    const one = await gw.app.inject({ method: "GET", url: "/history/counts?window=24h&host=b" });
    expect(one.statusCode).toBe(200);
    expect(one.json()).toMatchObject({
      window: "24h",
      host: "b",
      bucketSeconds: 900,
      totals: { restarts: 0, failed: 1, unhealthy: 1 },
      hosts: [{ host: "b", restarts: 0, failed: 1, unhealthy: 1 }],
    });
    expect(one.json<HistoryCounts>().buckets).toHaveLength(96);
  });

  it("refuses other windows and malformed hosts", async () => {
    const { gw, history } = await start([]);
    for (const url of [
      "/history/counts?window=7d",
      "/history/counts?host=a.b",
      "/history/counts?host=*",
      `/history/counts?host=${"x".repeat(129)}`,
    ]) {
      const res = await gw.app.inject({ method: "GET", url });
      expect(res.statusCode, url).toBe(400);
      expect(res.json().error.code, url).toBe("FLEETHEAL_ERR_BAD_REQUEST");
    }
    expect(history.queries).toEqual([]);
  });

  it("reuses an answer for a few seconds, so that polling dashboards do not each scan", async () => {
    const { gw, history, events } = await start([act("a", "restarted", T0 - MIN)]);
    const get = (url = "/history/counts") => gw.app.inject({ method: "GET", url });
    expect((await get()).json().totals.restarts).toBe(1);
    events.records.push(act("a", "restarted", T0 - MIN));
    expect((await get()).json().totals.restarts).toBe(1);
    expect(history.queries).toHaveLength(1);
    // Another query is another count.
    expect((await get("/history/counts?host=a")).json().totals.restarts).toBe(2);
    expect(history.queries).toHaveLength(2);
    gw.advance(HISTORY_COUNTS_CACHE_MS);
    expect((await get()).json().totals.restarts).toBe(2);
    expect(history.queries).toHaveLength(3);
  });

  it("shares a running count, and runs only so many at once: the next is a 503", async () => {
    const { gw, history } = await start([]);
    let release = () => {};
    history.gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const get = (url: string) => gw.app.inject({ method: "GET", url });
    const same = [get("/history/counts"), get("/history/counts")];
    const others = Array.from({ length: CONCURRENT_HISTORY_COUNTS - 1 }, (_, i) =>
      get(`/history/counts?host=h${i}`),
    );
    await waitFor(() => history.queries.length === CONCURRENT_HISTORY_COUNTS, {
      timeoutMs: 5_000,
      message: () => `${history.queries.length} counts started`,
    });
    // Every slot is taken now: one more query is refused at once, and not kept.
    const refused = await get("/history/counts?host=extra");
    expect(refused.statusCode).toBe(503);
    expect(refused.json().error.code).toBe("FLEETHEAL_ERR_UNAVAILABLE");
    release();
    for (const res of await Promise.all([...same, ...others])) expect(res.statusCode).toBe(200);
    expect(history.queries).toHaveLength(CONCURRENT_HISTORY_COUNTS);
    history.gate = undefined;
    expect((await get("/history/counts?host=extra")).statusCode).toBe(200);
  });

  it("is documented in the OpenAPI document", async () => {
    const { gw } = await start([]);
    const doc = (await gw.app.inject({ method: "GET", url: "/openapi.json" })).json();
    expect(Object.keys(doc.paths)).toContain("/history/counts");
  });
});
