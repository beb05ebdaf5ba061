// A live stream whose client stops reading, on real parts: a nats-server, the gateway started
// through the CLI, and a client on a bare TCP socket that stops reading while 20,000 records
// (about 2.3 KB each) are stored. The gateway must close that stream with a last comment and
// keep what it holds for it bounded, while a client that keeps reading gets every record; the
// closed client resumes exactly after the last record it got. Also on the real gateway: the
// per-address stream limit, and the trust-proxy setting it and the failed-authentication count
// take the client address from.

import { readFile } from "node:fs/promises";
import type { NatsConnection } from "@nats-io/nats-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FleetJetStream, openFleetJetStream } from "../common/jetstream-resources.js";
import { encode, remediationSubject } from "../contracts/index.js";
import { SLOW_CLIENT_COMMENT } from "../gateway/http/sse-writer.js";
import { remediationRecord } from "./support/fixtures.js";
import { type Fleet, startFleet } from "./support/fleet.js";
import { openRawSse, type RawSse } from "./support/raw-sse.js";
import { openSse } from "./support/sse.js";
import { waitFor } from "./support/wait.js";

const HOST = "sse-host";
const CID = "5e5e".padEnd(64, "0");
const RECORDS = 20_000;
const BULK = "x".repeat(2_000);
const MiB = 1024 * 1024;
/** The gateway's bound on what one stream may hold back (sse-writer.ts's default). */
const STREAM_BOUND = MiB;

let fleet: Fleet;
let nc: NatsConnection;
let fjs: FleetJetStream;
const opened: RawSse[] = [];

beforeAll(async () => {
  fleet = await startFleet({ nats: "plain", handlers: 0, streams: true, gateway: true });
  nc = await fleet.nats.connect();
  fjs = await openFleetJetStream(nc);
});

afterAll(async () => {
  for (const s of opened) s.close();
  await fleet?.[Symbol.asyncDispose]();
});

async function raw(url: string, headers: Record<string, string> = {}): Promise<RawSse> {
  const s = await openRawSse(url, headers);
  opened.push(s);
  return s;
}

/** Stores `count` remediation records of about 2.3 KB, 200 in flight at a time; their seqs. */
async function storeRecords(from: number, count: number): Promise<number[]> {
  const seqs: number[] = [];
  for (let i = 0; i < count; i += 200) {
    const batch = Array.from({ length: Math.min(200, count - i) }, (_, j) => {
      const n = from + i + j;
      const record = remediationRecord({
        host: HOST,
        containerId: CID,
        remediationId: `slow:${n}`,
        phase: "restarted",
        message: BULK,
      });
      return fjs.js.publish(remediationSubject(HOST, CID, "restarted"), encode(record));
    });
    for (const ack of await Promise.all(batch)) seqs.push(ack.seq);
  }
  return seqs;
}

/** The gateway process's resident memory, from the kernel. */
async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
  if (kb === undefined) throw new Error(`no VmRSS for process ${pid}`);
  return Number(kb) * 1024;
}

/** Every sample of the gateway's metrics, by series (`name` or `name{labels}`). */
async function scrape(base: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const values = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line.startsWith("#") || line === "") continue;
    const at = line.lastIndexOf(" ");
    values.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return values;
}

const shed = (reason: string) => `fleetheal_gateway_streams_shed_total{reason="${reason}"}`;

describe("a live stream whose client stops reading", () => {
  it("is closed with a last comment, holds at most its bound, and resumes where it stopped", async () => {
    const gateway = fleet.gateway;
    const base = gateway.url;
    // Warm up: the gateway has decoded and sent records before its memory is taken as the base.
    {
      await using warm = await openSse(`${base}/events/stream`);
      const seqs = await storeRecords(0, 1_000);
      await warm.nextMatching((m) => m.id === String(seqs.at(-1)), 30_000, "the warm-up records");
    }
    const rssBefore = await rssBytes(gateway.pid);

    const slow = await raw(`${base}/events/stream`);
    expect(slow.status).toBe(200);
    await slow.waitForBody((b) => b.includes("event: health"), 10_000, "no initial health");
    slow.pause();

    await using reader = await openSse(`${base}/events/stream`);
    await reader.nextMatching((m) => m.event === "health", 10_000, "the reader's health");
    const seen: number[] = [];
    const reading = (async () => {
      for (;;) {
        const m = await reader.nextMatching((x) => x.event === "record", 120_000, "a record");
        seen.push(Number(m.id));
      }
    })().catch(() => {});

    // Sample what the gateway holds while the records are stored; read the slow socket again as
    // soon as its stream is closed, before the gateway's grace for its last bytes runs out.
    let maxPending = 0;
    let maxRss = rssBefore;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const metrics = await scrape(base);
        maxPending = Math.max(
          maxPending,
          metrics.get("fleetheal_gateway_stream_pending_bytes") ?? 0,
        );
        maxRss = Math.max(maxRss, await rssBytes(gateway.pid));
        if ((metrics.get(shed("buffer")) ?? 0) + (metrics.get(shed("drain")) ?? 0) > 0) {
          slow.resume();
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    const seqs = await storeRecords(1_000, RECORDS);
    const first = seqs[0] ?? 0;
    const last = seqs.at(-1) ?? 0;
    try {
      await waitFor(() => seen.at(-1) === last, {
        timeoutMs: 120_000,
        message: () => `the reading client got ${seen.length} of ${RECORDS} records`,
      });
    } finally {
      sampling = false;
      await sampler;
      reader.close();
      await reading;
    }
    // The reader got every record, in order, without a gap.
    const fromFirst = seen.slice(seen.indexOf(first));
    expect(fromFirst.length).toBe(RECORDS);
    expect(fromFirst.every((seq, i) => seq === first + i)).toBe(true);

    const body = await slow.waitForBody(
      (b) => b.endsWith(SLOW_CLIENT_COMMENT),
      30_000,
      "the slow stream did not end with its comment",
    );
    const metrics = await scrape(base);
    // One stream closed (the slow one), for its buffer or its drain, and none refused.
    expect((metrics.get(shed("buffer")) ?? 0) + (metrics.get(shed("drain")) ?? 0)).toBe(1);
    expect(metrics.get(shed("client-limit"))).toBe(0);

    // What the gateway held at any sample: the slow stream's bound and one record, plus what
    // the reader had in flight. Unbounded, the slow stream alone would hold about 46 MB.
    const queuedUnbounded = RECORDS * (BULK.length + 300);
    expect(maxPending, `pending bytes ${maxPending}`).toBeLessThan(3 * STREAM_BOUND);
    expect(
      maxRss - rssBefore,
      `RSS grew from ${rssBefore} to ${maxRss} bytes; unbounded the slow stream alone would queue ${queuedUnbounded}`,
    ).toBeLessThan(queuedUnbounded / 2);

    // The slow client got whole records, in order, far fewer than were stored.
    const ids = slow.ids().filter((id) => id >= first);
    expect(ids.length).toBeGreaterThan(0);
    expect(ids.length).toBeLessThan(RECORDS / 2);
    expect(ids.every((seq, i) => seq === first + i)).toBe(true);
    expect(body.split("event: record").length).toBe(slow.ids().length + 1);

    // It resumes with the record after the last one it got.
    await using again = await openSse(`${base}/events/stream`, {
      "last-event-id": String(ids.at(-1)),
    });
    const next = await again.nextMatching((m) => m.event === "record", 10_000, "a record");
    expect(Number(next.id)).toBe((ids.at(-1) ?? 0) + 1);
  });
});

describe("the client address behind a trusted proxy", () => {
  it("limits live streams and counts failed authentications per forwarded address", async () => {
    const READ = "slow-client-read-token-0123456789";
    const direct = `${fleet.gateway.url}/events/stream`;
    const proxied = await fleet.startGateway({
      name: "gateway-proxied",
      env: {
        FLEETHEAL_GATEWAY_TRUST_PROXY: "127.0.0.1",
        FLEETHEAL_GATEWAY_STREAMS_PER_CLIENT: "2",
        FLEETHEAL_GATEWAY_READ_TOKEN: READ,
      },
    });
    const url = `${proxied.url}/events/stream`;
    const as = (address: string, token = READ) => ({
      "x-forwarded-for": address,
      authorization: `Bearer ${token}`,
    });
    expect((await raw(url, as("203.0.113.5"))).status).toBe(200);
    expect((await raw(url, as("203.0.113.5"))).status).toBe(200);
    const refused = await fetch(url, { headers: as("203.0.113.5") });
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe(
      "FLEETHEAL_ERR_RATE_LIMITED",
    );
    expect((await raw(url, as("203.0.113.6"))).status).toBe(200);

    // Failed authentications: 20 a minute per address (the default), then 429 for that address
    // only.
    const hosts = (address: string, token: string) =>
      fetch(`${proxied.url}/hosts`, { headers: as(address, token) }).then((r) => r.status);
    for (let i = 0; i < 20; i++) expect(await hosts("198.51.100.1", "wrong-token")).toBe(401);
    expect(await hosts("198.51.100.1", READ)).toBe(429);
    expect(await hosts("198.51.100.2", READ)).toBe(200);

    // The fleet's first gateway trusts no proxy: every stream counts against the peer's
    // address (10 by default), whatever address it claims to forward.
    let accepted = 0;
    for (let i = 0; i < 11; i++) {
      const s = await raw(direct, { "x-forwarded-for": `192.0.2.${i}` });
      if (s.status !== 200) break;
      accepted++;
    }
    expect(accepted).toBeGreaterThan(0);
    expect(accepted).toBeLessThanOrEqual(10);
    expect((await raw(direct, { "x-forwarded-for": "192.0.2.200" })).status).toBe(429);
  });
});
