import { setImmediate as yieldToIo } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { remediationRecord } from "../../test/support/fixtures.js";
import {
  hostSnapshot,
  startTestGateway,
  T0,
  type TestGateway,
} from "../../test/support/gateway-fakes.js";
import { openRawSse, type RawSse } from "../../test/support/raw-sse.js";
import { openSse } from "../../test/support/sse.js";
import { waitFor } from "../../test/support/wait.js";
import type { StreamRecord } from "./api-schemas.js";
import type { SseBufferLimits } from "./sse-writer.js";
import { SLOW_CLIENT_COMMENT } from "./sse-writer.js";

let gw: TestGateway | undefined;
const sockets: RawSse[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.close();
  await gw?.app.close();
  gw = undefined;
});

async function start(options: Parameters<typeof startTestGateway>[0] = {}) {
  gw = await startTestGateway(options);
  const base = await gw.app.listen({ port: 0, host: "127.0.0.1" });
  return { g: gw, base };
}

async function raw(url: string, headers: Record<string, string> = {}) {
  const s = await openRawSse(url, headers);
  sockets.push(s);
  return s;
}

const CID = "0123456789ab".padEnd(64, "0");
/** About 2 KB per record, so that buffers fill after a few hundred. */
const BULK = "x".repeat(2_000);

function record(seq: number): StreamRecord {
  return {
    kind: "remediation",
    seq,
    subject: `fleetheal.v1.act.h1.${CID}.restarted`,
    storedAt: new Date(T0 + seq).toISOString(),
    remediation: remediationRecord({
      id: `r${seq}`,
      remediationId: `rem${seq}`,
      host: "h1",
      containerId: CID,
      phase: "restarted",
      message: BULK,
      at: new Date(T0 + seq).toISOString(),
    }),
  };
}

/** A series' value from the gateway's registry (as /metrics renders it). */
async function metric(g: TestGateway, name: string, reason?: string): Promise<number> {
  const values = (await g.metrics.registry.getSingleMetric(name)?.get())?.values ?? [];
  const value = values.find((v) => reason === undefined || v.labels.reason === reason);
  return value?.value ?? Number.NaN;
}

const SHED = "fleetheal_gateway_streams_shed_total";
const PENDING = "fleetheal_gateway_stream_pending_bytes";

/**
 * Pushes records, yielding to I/O between batches, until `done` or `max` records. Writes made in
 * one tick wait corked in the gateway until the tick ends, so a batch must stay well under the
 * stream's buffer, as the live feed's do (one NATS read each).
 */
async function pushUntil(
  g: TestGateway,
  from: number,
  done: () => boolean | Promise<boolean>,
  max = 20_000,
): Promise<number> {
  let seq = from;
  while (!(await done())) {
    if (seq - from >= max) throw new Error(`still not done after ${max} records`);
    for (let i = 0; i < 20; i++) g.events.push(record(seq++));
    await yieldToIo();
  }
  return seq;
}

/** Opens a stream on a bare socket, reads its first health message, then stops reading. */
async function stalled(g: TestGateway, base: string): Promise<RawSse> {
  const before = g.events.subscriberCount;
  const slow = await raw(`${base}/events/stream`);
  await slow.waitForBody((b) => b.includes("event: health"), 5_000, "no initial health");
  slow.pause();
  await waitFor(() => g.events.subscriberCount === before + 1, {
    timeoutMs: 5_000,
    message: "the stream did not subscribe",
  });
  return slow;
}

const small: SseBufferLimits = {
  maxPendingBytes: 256 * 1024,
  drainTimeoutMs: 60_000,
  closeGraceMs: 10_000,
};

describe("a live stream whose client does not keep up", { timeout: 30_000 }, () => {
  it("is closed past its buffer with a last comment, while a reading client gets everything", async () => {
    const { g, base } = await start({ streamBuffer: small });
    const slow = await stalled(g, base);
    await using reader = await openSse(`${base}/events/stream`);
    await waitFor(() => g.events.subscriberCount === 2, {
      timeoutMs: 5_000,
      message: "the reader did not subscribe",
    });
    // The reader reads all along, as the records are pushed.
    const seen: number[] = [];
    const reading = (async () => {
      for (;;) {
        const m = await reader.nextMatching((x) => x.event === "record", 60_000, "a record");
        seen.push(Number(m.id));
      }
    })().catch(() => {});
    let maxPending = 0;
    const last = await pushUntil(g, 1, async () => {
      maxPending = Math.max(maxPending, await metric(g, PENDING));
      return (await metric(g, SHED, "buffer")) === 1;
    });
    await waitFor(() => seen.at(-1) === last - 1, {
      timeoutMs: 10_000,
      message: () => `the reader got ${seen.length} of ${last - 1} records`,
    });
    reader.close();
    await reading;
    // What the gateway held for the slow client never passed the bound (plus one record, and
    // whatever the reader had in flight at the scrape).
    expect(maxPending).toBeLessThan(2 * small.maxPendingBytes + 2 * BULK.length);
    expect(seen).toEqual(Array.from({ length: last - 1 }, (_, i) => i + 1));

    slow.resume();
    const body = await slow.waitForBody(
      (b) => b.endsWith(SLOW_CLIENT_COMMENT),
      5_000,
      "the slow stream did not end with its comment",
    );
    await waitFor(() => slow.ended, { timeoutMs: 5_000, message: "the response did not end" });
    // Only whole records were sent, in order, and far fewer than were pushed.
    const ids = slow.ids();
    expect(ids).toEqual(Array.from({ length: ids.length }, (_, i) => i + 1));
    expect(ids.length).toBeLessThan(last - 1);
    expect(body.split("event: record").length - 1).toBe(ids.length);
    expect(await metric(g, SHED, "drain")).toBe(0);

    // It resumes where it stopped: the next record after the last one it got, without a gap.
    await using again = await openSse(`${base}/events/stream`, {
      "last-event-id": String(ids.at(-1)),
    });
    const first = await again.nextMatching((m) => m.event === "record", 5_000, "a record");
    expect(Number(first.id)).toBe((ids.at(-1) ?? 0) + 1);
  });

  it("sends a message larger than the bound whole to a client that keeps up", async () => {
    const { g, base } = await start({ streamBuffer: { ...small, maxPendingBytes: 4 * 1024 } });
    for (let i = 0; i < 200; i++) g.view.apply(hostSnapshot(`host-${i}`, ["healthy"]), T0);
    const body = (await g.app.inject({ method: "GET", url: "/health" })).body;
    expect(body.length).toBeGreaterThan(16 * 1024);
    await using sse = await openSse(`${base}/events/stream`);
    const health = await sse.nextMatching((m) => m.event === "health", 5_000, "the health");
    expect(JSON.parse(health.data).hosts).toHaveLength(200);
    expect(await metric(g, SHED, "buffer")).toBe(0);
  });

  it("is closed when its socket does not drain in time", async () => {
    const { g, base } = await start({
      streamBuffer: {
        maxPendingBytes: 64 * 1024 * 1024,
        drainTimeoutMs: 300,
        closeGraceMs: 10_000,
      },
    });
    const slow = await stalled(g, base);
    // Enough to back up into the gateway (it needs a drain), then nothing more.
    await pushUntil(g, 1, async () => (await metric(g, PENDING)) > 64 * 1024);
    await waitFor(async () => (await metric(g, SHED, "drain")) === 1, {
      timeoutMs: 5_000,
      message: "the stream was not closed for not draining",
    });
    slow.resume();
    await slow.waitForBody((b) => b.endsWith(SLOW_CLIENT_COMMENT), 5_000, "no closing comment");
    expect(await metric(g, SHED, "buffer")).toBe(0);
    // The slot is given back once the response is over.
    await waitFor(() => g.events.subscriberCount === 0, {
      timeoutMs: 5_000,
      message: "the closed stream still listens",
    });
  });

  it("that never reads again loses its connection after the grace, and its slot", async () => {
    const { g, base } = await start({
      streamBuffer: { ...small, closeGraceMs: 200 },
      maxStreams: 1,
    });
    const slow = await stalled(g, base);
    await pushUntil(g, 1, async () => (await metric(g, SHED, "buffer")) === 1);
    // The slot comes back after the grace, though the client has not read a byte since.
    await waitFor(async () => (await raw(`${base}/events/stream`)).status === 200, {
      timeoutMs: 5_000,
      message: "the stalled stream's slot never came back",
    });
    expect(await metric(g, PENDING)).toBeLessThan(small.maxPendingBytes);
    // Its connection was cut: what it reads now ends without the response's last chunk.
    slow.resume();
    await waitFor(() => slow.closed, {
      timeoutMs: 5_000,
      message: "the stalled connection was not destroyed",
    });
    expect(slow.ended).toBe(false);
  });
});

describe("catching up from Last-Event-ID", { timeout: 30_000 }, () => {
  it("sends at most a bounded number per connection, then closes so that the client resumes", async () => {
    const { g, base } = await start();
    for (let seq = 1; seq <= 1_500; seq++) g.events.records.push(record(seq));
    const first = await raw(`${base}/events/stream`, { "last-event-id": "100" });
    await first.waitForBody(
      (b) => b.endsWith(": closing: more to catch up, resume with Last-Event-ID\n\n"),
      10_000,
      "the first catch-up did not end with its comment",
    );
    const ids = first.ids();
    expect(ids).toEqual(Array.from({ length: 1_000 }, (_, i) => 101 + i));
    const second = await raw(`${base}/events/stream`, { "last-event-id": String(ids.at(-1)) });
    await waitFor(() => g.events.subscriberCount >= 1 && second.ids().length === 400, {
      timeoutMs: 10_000,
      message: () => `the second catch-up sent ${second.ids().length} records, not 400`,
    });
    g.events.push(record(1_501));
    await second.waitForBody((b) => b.includes("id: 1501\n"), 5_000, "no live record after it");
    expect(second.ids()).toEqual(Array.from({ length: 401 }, (_, i) => 1_101 + i));
  });

  it("reads dropped live records from history when they outgrow the backlog", async () => {
    const g = (await start({ streamBuffer: small })).g;
    const base = `http://127.0.0.1:${(g.app.server.address() as { port: number }).port}`;
    for (let seq = 1; seq <= 10; seq++) g.events.records.push(record(seq));
    // Just after the first history read, 200 live records (≈ 450 KB) arrive: more than the
    // backlog of 256 KiB keeps.
    const read = g.events.read.bind(g.events);
    let reads = 0;
    g.events.read = async (query) => {
      const page = await read(query);
      if (reads++ === 0) for (let seq = 11; seq <= 210; seq++) g.events.push(record(seq));
      return page;
    };
    await using sse = await openSse(`${base}/events/stream`, { "last-event-id": "5" });
    const ids: number[] = [];
    while (ids.at(-1) !== 210) {
      const m = await sse.nextMatching((x) => x.event === "record", 5_000, "a record");
      ids.push(Number(m.id));
    }
    expect(ids).toEqual(Array.from({ length: 205 }, (_, i) => 6 + i));
    expect(reads).toBeGreaterThan(1);
  });
});

describe("stream limits per client address", () => {
  it("answer 429 past the limit for one address, leave others alone, and count refusals", async () => {
    const { g, base } = await start({ maxStreamsPerClient: 2, trustProxy: ["127.0.0.1"] });
    const a = { "x-forwarded-for": "203.0.113.5" };
    const b = { "x-forwarded-for": "203.0.113.6" };
    const first = await raw(`${base}/events/stream`, a);
    const second = await raw(`${base}/events/stream`, a);
    expect([first.status, second.status]).toEqual([200, 200]);
    const refused = await fetch(`${base}/events/stream`, { headers: a });
    expect(refused.status).toBe(429);
    const body = (await refused.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("FLEETHEAL_ERR_RATE_LIMITED");
    expect(body.error.message).toContain("FLEETHEAL_GATEWAY_STREAMS_PER_CLIENT");
    expect((await raw(`${base}/events/stream`, b)).status).toBe(200);
    expect(await metric(g, SHED, "client-limit")).toBe(1);
    first.close();
    await waitFor(async () => (await raw(`${base}/events/stream`, a)).status === 200, {
      timeoutMs: 5_000,
      message: "the address never got its slot back",
    });
  });

  it("use the peer's address when the proxy is not trusted", async () => {
    // The peer (127.0.0.1) is not the trusted proxy, so its X-Forwarded-For is ignored.
    const { base } = await start({ maxStreamsPerClient: 1, trustProxy: ["10.0.0.1"] });
    expect((await raw(`${base}/events/stream`, { "x-forwarded-for": "203.0.113.5" })).status).toBe(
      200,
    );
    const refused = await fetch(`${base}/events/stream`, {
      headers: { "x-forwarded-for": "203.0.113.6" },
    });
    expect(refused.status).toBe(429);
    await refused.body?.cancel();
  });
});

describe("failed authentications behind a trusted proxy", () => {
  it("are counted per forwarded address, and per peer when the proxy is not trusted", async () => {
    const READ = "read-token-0123456789abcdef";
    const tokens = { readToken: READ };
    const get = (g: TestGateway, forwardedFor: string, token: string) =>
      g.app.inject({
        method: "GET",
        url: "/hosts",
        remoteAddress: "127.0.0.1",
        headers: { authorization: `Bearer ${token}`, "x-forwarded-for": forwardedFor },
      });
    const trusted = (await start({ tokens, authFailuresPerMinute: 2, trustProxy: ["loopback"] })).g;
    for (let i = 0; i < 2; i++)
      expect((await get(trusted, "198.51.100.1", "wrong")).statusCode).toBe(401);
    expect((await get(trusted, "198.51.100.1", READ)).statusCode).toBe(429);
    // Another client behind the same proxy is not held back.
    expect((await get(trusted, "198.51.100.2", READ)).statusCode).toBe(200);
    await trusted.app.close();

    const direct = (await start({ tokens, authFailuresPerMinute: 2 })).g;
    for (let i = 0; i < 2; i++)
      expect((await get(direct, `198.51.100.${i}`, "wrong")).statusCode).toBe(401);
    // Without trust, a forged X-Forwarded-For does not dodge the count.
    expect((await get(direct, "198.51.100.9", READ)).statusCode).toBe(429);
  });
});
