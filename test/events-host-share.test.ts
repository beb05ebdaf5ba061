// History per host: one host that floods its events must not push the other hosts' history out
// of FLEETHEAL_EVENTS. On a real nats-server with the accounts of `fleetheal nats-auth`, the
// handler's keeper (handlers/host-event-keeper.ts, run here on the handler's own connection)
// gives each host an ingest stream sourced into FLEETHEAL_EVENTS; host-a then publishes, as its
// agent's NATS user, far more than FLEETHEAL_EVENTS holds. Without the shares, host-b's events
// would be the oldest and the first to go.

import { AckPolicy, type JetStreamClient, jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeError } from "../common/errors.js";
import {
  DEFAULT_HOST_STREAM_SETTINGS,
  ensureHostEventStreams,
  hostEventsStream,
  jetStreamHostStreams,
} from "../common/host-event-streams.js";
import {
  DEFAULT_STREAM_LIMITS,
  type FleetJetStream,
  openFleetJetStream,
} from "../common/jetstream-resources.js";
import { EVENTS_STREAM, eventSubject, HOSTS_BUCKET, SUBJECTS } from "../contracts/index.js";
import {
  type HostEventKeeper,
  kvHostKeys,
  startHostEventKeeper,
} from "../handlers/host-event-keeper.js";
import {
  type AccountsNats,
  type FleetNats,
  startAccountsNats,
  startPlainNats,
} from "./support/fleet-nats.js";
import { waitFor } from "./support/wait.js";

const MiB = 1024 * 1024;
const log = pino({ level: "silent" });
const cid = (n: number) => n.toString(16).padStart(64, "0");

/** Messages of `host` in FLEETHEAL_EVENTS. */
async function storedOf(fjs: FleetJetStream, host: string): Promise<number> {
  const filter = SUBJECTS.hostEvents(host);
  const info = await fjs.jsm.streams.info(EVENTS_STREAM, { subjects_filter: filter });
  return Object.values(info.state.subjects ?? {}).reduce((sum, n) => sum + n, 0);
}

/** Waits until the keeper has made `host`'s stream and FLEETHEAL_EVENTS sources it. */
async function waitForHostStream(fjs: FleetJetStream, host: string): Promise<void> {
  await waitFor(
    async () => {
      const { config } = await fjs.jsm.streams.info(EVENTS_STREAM);
      return (config.sources ?? []).some((s) => s.name === hostEventsStream(host));
    },
    { timeoutMs: 15_000, message: `${EVENTS_STREAM} never sourced ${host}'s events stream` },
  );
}

/** The host's agent writes its key in the hosts bucket, as its snapshot does. */
async function writeHostKey(nc: NatsConnection, host: string): Promise<void> {
  await nc.request(`$KV.${HOSTS_BUCKET}.${host}`, new TextEncoder().encode("{}"), {
    timeout: 5_000,
  });
}

describe("history per host, with accounts", () => {
  let nats: AccountsNats;
  let fjs: FleetJetStream;
  let keeper: HostEventKeeper;
  let asA: JetStreamClient;
  let asB: JetStreamClient;
  let agentA: NatsConnection;
  let agentB: NatsConnection;

  beforeAll(async () => {
    nats = await startAccountsNats(["host-a", "host-b", "host-c"]);
    // A small fleet stream, so that a flood of a few MiB would push everything else out of it.
    fjs = await openFleetJetStream(await nats.connect({ user: "handler" }), {
      ...DEFAULT_STREAM_LIMITS,
      maxBytes: 3 * MiB,
    });
    keeper = await startHostEventKeeper({
      keys: kvHostKeys(fjs.hosts),
      api: jetStreamHostStreams(fjs.jsm),
      settings: { ...DEFAULT_HOST_STREAM_SETTINGS, hostMaxBytes: MiB },
      log,
    });
    agentA = await nats.connect({ user: "agent-host-a" });
    agentB = await nats.connect({ user: "agent-host-b" });
    asA = jetstream(agentA);
    asB = jetstream(agentB);
  }, 60_000);

  afterAll(async () => {
    await keeper?.stop();
    await nats?.[Symbol.asyncDispose]();
  });

  it("accepts the handlers' and the gateway's consumer filters before any host has a stream", async () => {
    // nats-server 2.9 checks a filter against the stream's subjects, which no longer include the
    // hosts' events: the filter anchor (FILTER_ANCHOR_SOURCE) lets these through.
    await fjs.jsm.consumers.add(EVENTS_STREAM, {
      durable_name: "starts",
      filter_subject: SUBJECTS.eventsWithAction("start"),
      ack_policy: AckPolicy.Explicit,
    });
    const byContainer = await fjs.js.consumers.get(EVENTS_STREAM, {
      filter_subjects: `fleetheal.v1.evt.*.${cid(1)}.*`,
    });
    await byContainer.delete();
  });

  it("answers a host's events only once its stream exists, and the agent's ack comes back", async () => {
    // Nothing answers yet. Through the service import of a host account, the agent sees no
    // "no responders" (nats-server 2.9 does not pass it back across accounts) but a timeout; its
    // outbox retries either.
    const early = await asB
      .publish(eventSubject("host-b", cid(0), "start"), "early", { timeout: 1_000 })
      .then(
        () => "stored",
        (error: unknown) => describeError(error),
      );
    expect(early).toMatch(/no responders|timeout/i);
    await writeHostKey(agentB, "host-b");
    await writeHostKey(agentA, "host-a");
    await waitForHostStream(fjs, "host-b");
    await waitForHostStream(fjs, "host-a");
    const ack = await asB.publish(eventSubject("host-b", cid(0), "start"), "now", {
      msgID: "b-0",
    });
    expect(ack.stream).toBe(hostEventsStream("host-b"));
  });

  it("keeps host-b's history and events while host-a floods past its share", async () => {
    for (let i = 1; i <= 20; i++) {
      await asB.publish(eventSubject("host-b", cid(i), "start"), `b ${i}`, { msgID: `b-${i}` });
    }
    await waitFor(async () => (await storedOf(fjs, "host-b")) === 21, {
      timeoutMs: 15_000,
      message: "host-b's 21 events never reached FLEETHEAL_EVENTS",
    });

    // 100 × 64 KiB = 6.25 MiB: twice what FLEETHEAL_EVENTS holds, six times host-a's share.
    const big = new Uint8Array(64 * 1024).fill(120);
    let accepted = 0;
    const refusals: string[] = [];
    for (let i = 0; i < 100; i++) {
      try {
        await asA.publish(eventSubject("host-a", cid(i), "die"), big, { msgID: `a-${i}` });
        accepted++;
      } catch (error) {
        refusals.push(describeError(error));
      }
    }
    expect(accepted).toBeGreaterThan(0);
    expect(accepted * big.length).toBeLessThanOrEqual(MiB);
    expect(refusals.length).toBe(100 - accepted);
    expect(new Set(refusals)).toEqual(new Set([expect.stringMatching(/maximum bytes exceeded/i)]));
    await waitFor(async () => (await storedOf(fjs, "host-a")) === accepted, {
      timeoutMs: 15_000,
      message: `host-a's ${accepted} accepted events never all reached FLEETHEAL_EVENTS`,
    });

    // host-b's history is all there, and its new events still arrive, deduplicated as before.
    expect(await storedOf(fjs, "host-b")).toBe(21);
    await asB.publish(eventSubject("host-b", cid(21), "die"), "after the flood", { msgID: "b-21" });
    const again = await asB.publish(eventSubject("host-b", cid(21), "die"), "after the flood", {
      msgID: "b-21",
    });
    expect(again.duplicate).toBe(true);
    await waitFor(async () => (await storedOf(fjs, "host-b")) === 22, {
      timeoutMs: 15_000,
      message: "host-b's event after the flood never reached FLEETHEAL_EVENTS",
    });
    // A consumer with a filter sees the sourced events: host-b's 21 starts, none of host-a's.
    expect((await fjs.jsm.consumers.info(EVENTS_STREAM, "starts")).num_pending).toBe(21);
    // host-a stays refused: its share comes back only as its events age out.
    await expect(
      asA.publish(eventSubject("host-a", cid(999), "die"), big, { msgID: "a-999" }),
    ).rejects.toThrow(/maximum bytes exceeded/i);
  }, 120_000);

  it("gives a host its share back as its own events of a window ago expire", async () => {
    // A window of 2 s instead of a day (the setting's minimum is a minute): the stream is made
    // here as the keeper makes it, which then finds it and only sources it.
    const windowMs = 2_000;
    const pass = await ensureHostEventStreams(jetStreamHostStreams(fjs.jsm), ["host-c"], {
      hostMaxBytes: MiB,
      hostWindowMs: windowMs,
    });
    expect(pass.created).toEqual(["host-c"]);
    const agentC = await nats.connect({ user: "agent-host-c" });
    try {
      await writeHostKey(agentC, "host-c");
      await waitForHostStream(fjs, "host-c");
      const asC = jetstream(agentC);
      const big = new Uint8Array(64 * 1024).fill(121);
      let n = 0;
      const publish = () =>
        asC.publish(eventSubject("host-c", cid(n), "die"), big, { msgID: `c-${n++}` });
      // Fill the share: the first refusal comes within 1 MiB.
      const firstAt = Date.now();
      let refusedAt: number | undefined;
      for (let i = 0; i < 32 && refusedAt === undefined; i++) {
        await publish().catch((error: unknown) => {
          expect(describeError(error)).toMatch(/maximum bytes exceeded/i);
          refusedAt = Date.now();
        });
      }
      expect(refusedAt, "host-c was never refused past its share").toBeDefined();
      // Then room comes back on its own, and not before the oldest event's window is over.
      await waitFor(
        () =>
          publish().then(
            () => true,
            () => false,
          ),
        {
          timeoutMs: 15_000,
          intervalMs: 200,
          message: "host-c's share never came back as its events expired",
        },
      );
      // Room came from expiry: never before the first event's window was over.
      expect(Date.now() - firstAt).toBeGreaterThanOrEqual(windowMs * 0.9);
      const info = await fjs.jsm.streams.info(hostEventsStream("host-c"));
      expect(info.config.max_age).toBe(windowMs * 1_000_000);
      expect(info.state.bytes).toBeLessThanOrEqual(MiB);
    } finally {
      await agentC.close();
    }
  }, 60_000);
});

describe("history per host, migrating the old layout", () => {
  let nats: FleetNats;

  afterAll(async () => {
    await nats?.[Symbol.asyncDispose]();
  });

  it("stops capturing host events in FLEETHEAL_EVENTS, keeps what it holds, and sources them", async () => {
    nats = await startPlainNats();
    const nc = await nats.connect();
    const js = jetstream(nc);
    // FLEETHEAL_EVENTS as fleetheal created it before: capturing host events itself.
    const fjs = await openFleetJetStream(nc);
    await fjs.jsm.streams.update(EVENTS_STREAM, {
      subjects: [SUBJECTS.events, SUBJECTS.remediations],
    });
    await js.publish(eventSubject("old-host", cid(1), "start"), "before", { msgID: "old-1" });
    expect(await storedOf(fjs, "old-host")).toBe(1);

    const keeper = await startHostEventKeeper({
      keys: kvHostKeys(fjs.hosts),
      api: jetStreamHostStreams(fjs.jsm),
      settings: { ...DEFAULT_HOST_STREAM_SETTINGS, hostMaxBytes: MiB },
      log,
    });
    try {
      await fjs.hosts.put("old-host", "{}");
      await waitForHostStream(fjs, "old-host");
      const { config } = await fjs.jsm.streams.info(EVENTS_STREAM);
      expect(config.subjects).toEqual([SUBJECTS.remediations]);
      const ack = await js.publish(eventSubject("old-host", cid(1), "die"), "after", {
        msgID: "old-2",
      });
      expect(ack.stream).toBe(hostEventsStream("old-host"));
      await waitFor(async () => (await storedOf(fjs, "old-host")) === 2, {
        timeoutMs: 15_000,
        message: "old-host's event after the migration never reached FLEETHEAL_EVENTS",
      });
    } finally {
      await keeper.stop();
    }
  }, 60_000);
});
