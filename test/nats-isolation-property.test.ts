// Property test of the account boundary of one host, on a real nats-server running the accounts
// that `fleetheal nats-auth` writes. From host-b's own credentials, every subject that crosses
// host-b's account boundary (and a few that do not) is published with reply subjects that name
// host-a's commands, control-plane subjects and keys, and JetStream's reserved replies, with and
// without the headers that change what JetStream does. Witnesses: a raw client inside host-a's
// account listening on host-a's command subjects, and the per-subject state of every stream and
// consumer of FLEET and READER, which may change only on host-b's own event subjects and key.

import { type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { type NatsConnection, headers as natsHeaders } from "@nats-io/nats-core";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openFleetJetStream } from "../common/jetstream-resources.js";
import {
  FLEET_STREAMS,
  MIRROR_DELIVER_PREFIX,
  READER_MIRRORS,
  subjectMatches,
} from "../common/nats-permissions.js";
import { ensureReaderMirrors } from "../common/reader-mirrors.js";
import { EVENTS_STREAM, encode, HOSTS_BUCKET } from "../contracts/index.js";
import { restartDraft, stopDraft } from "./support/fixtures.js";
import { createHostEventStreams } from "./support/fleet.js";
import { type AccountsNats, startAccountsNats } from "./support/fleet-nats.js";
import { waitFor } from "./support/wait.js";

const A_CID = "a".repeat(64);
const B_CID = "b".repeat(64);
/** What host-b may change: its own events and its own snapshot key. */
const OWN = [`fleetheal.v1.evt.host-b.>`, `$KV.${HOSTS_BUCKET}.host-b`];

let nats: AccountsNats;
let asA: NatsConnection;
let asB: NatsConnection;
let fleetJsm: JetStreamManager;
let readerJsm: JetStreamManager;
/** Every message host-a's account saw on host-a's command subjects. */
const reachedA: string[] = [];

beforeAll(async () => {
  nats = await startAccountsNats(["host-a", "host-b"]);
  const handler = await nats.connect({ user: "handler" });
  const fjs = await openFleetJetStream(handler);
  // The hosts' events streams, as the handlers' keeper makes them once each agent writes its key.
  await createHostEventStreams(handler, ["host-a", "host-b"]);
  expect(await ensureReaderMirrors(handler, { info() {}, warn() {} } as never)).toBe("created");
  fleetJsm = fjs.jsm;
  // State of the fleet's that an attack would change: the policy, a ledger entry of host-a and
  // host-a's snapshot.
  await fjs.config.put("policy", encode({ paused: true }));
  await fjs.ledger.put(`host-a.${A_CID}`, encode({ restarts: [] }));
  // The handlers' durable, whose state must not move.
  await fleetJsm.consumers.add(EVENTS_STREAM, {
    durable_name: "fleetheal-heal",
    ack_policy: "explicit" as never,
    filter_subject: "fleetheal.v1.evt.>",
  });
  readerJsm = await jetstreamManager(await nats.connect({ user: "reader" }));
  asA = await nats.connect({ user: "agent-host-a" });
  await jetstream(asA).publish(`$KV.${HOSTS_BUCKET}.host-a`, encode({ own: "host-a" }));
  asA.subscribe("fleetheal.v1.cmd.host-a.>", {
    callback: (_e, m) => {
      reachedA.push(`${m.subject} ${m.string().slice(0, 80)}`);
    },
  });
  await asA.flush();
  asB = await nats.connect({ user: "agent-host-b" });
  // Host-b's own key exists, as its agent writes it.
  await jetstream(asB).publish(`$KV.${HOSTS_BUCKET}.host-b`, encode({ own: true }));
}, 60_000);

afterAll(async () => {
  await nats?.[Symbol.asyncDispose]();
});

/**
 * Every stream's subjects in FLEET and READER, each with its message count and last sequence
 * (a KV key keeps one message, so only its sequence shows an overwrite), and every consumer but
 * READER's mirror consumers (which follow the streams) with its position and settings.
 */
async function state(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const [account, jsm, streams] of [
    ["FLEET", fleetJsm, FLEET_STREAMS],
    ["READER", readerJsm, READER_MIRRORS],
  ] as const) {
    for (const name of streams) {
      const info = await jsm.streams.info(name, { subjects_filter: ">" });
      for (const [subject, n] of Object.entries(info.state.subjects ?? {})) {
        const last = await jsm.streams.getMessage(name, { last_by_subj: subject });
        out.set(`${account} ${name} ${subject}`, `${n}@${last?.seq}`);
      }
    }
  }
  // Consumers from the server's monitoring, which sees every account (no user may list them all).
  const jsz = (await (
    await fetch(
      `${nats.server.monitorUrl}/jsz?accounts=true&streams=true&consumers=true&config=true`,
    )
  ).json()) as JszReport;
  for (const account of jsz.account_details ?? []) {
    for (const stream of account.stream_detail ?? []) {
      for (const c of stream.consumer_detail ?? []) {
        if (c.config.deliver_subject?.startsWith(MIRROR_DELIVER_PREFIX)) continue;
        out.set(
          `${account.name} ${stream.name} consumer ${c.name}`,
          JSON.stringify([c.delivered, c.ack_floor, c.num_ack_pending, c.config]),
        );
      }
    }
  }
  return out;
}

/** The part of nats-server's `/jsz` report read here. */
interface JszReport {
  account_details?: {
    name: string;
    stream_detail?: {
      name: string;
      consumer_detail?: {
        name: string;
        delivered: unknown;
        ack_floor: unknown;
        num_ack_pending: number;
        config: { deliver_subject?: string };
      }[];
    }[];
  }[];
}

/** The entries that differ, other than host-b's own subjects. */
function foreignChanges(before: Map<string, string>, after: Map<string, string>): string[] {
  const changed: string[] = [];
  for (const key of new Set([...before.keys(), ...after.keys()])) {
    if (before.get(key) === after.get(key)) continue;
    const subject = key.split(" ")[2] ?? "";
    // The mirrors follow FLEET a moment later; their own subjects are host-b's as well.
    if (OWN.some((p) => subjectMatches(p, subject))) continue;
    changed.push(`${key}: ${before.get(key)} -> ${after.get(key)}`);
  }
  return changed;
}

/** Waits until host-b's JetStream publishes so far are stored: JetStream works in order. */
async function barrier(): Promise<void> {
  const js = jetstream(asB);
  await js.publish(`fleetheal.v1.evt.host-b.${B_CID}.start`, encode({ barrier: true }));
  await js.publish(`$KV.${HOSTS_BUCKET}.host-b`, encode({ barrier: true }));
  await asB.flush();
}

const stopA = encode(
  stopDraft({
    commandId: "attack-0001",
    host: "host-a",
    containerId: A_CID,
    reason: "attack",
    requestedBy: "handler",
  }),
);
const restartA = encode(
  restartDraft({
    commandId: "attack-0002",
    host: "host-a",
    containerId: A_CID,
    reason: "attack",
    requestedBy: "handler",
  }),
);

/** Subjects that cross host-b's boundary (its imports and exports), and some that do not. */
const subjects = fc.oneof(
  fc
    .constantFrom("start", "die", "unhealthy", "healthy", "x")
    .map((action) => `fleetheal.v1.evt.host-b.${B_CID}.${action}`),
  fc.constant(`$KV.${HOSTS_BUCKET}.host-b`),
  fc.constant("fleetheal.v1.host.host-b.snapshot"),
  fc.constantFrom(
    `fleetheal.v1.evt.host-a.${A_CID}.unhealthy`,
    `$KV.${HOSTS_BUCKET}.host-a`,
    "$KV.fleetheal_config.policy",
    "fleetheal.v1.cmd.host-a.stop",
    `$JS.API.DIRECT.GET.KV_${HOSTS_BUCKET}.$KV.${HOSTS_BUCKET}.host-b`,
    "$JS.API.CONSUMER.CREATE.FLEETHEAL_EVENTS",
    `fleetheal.v1.act.host-a.${A_CID}.restarted`,
  ),
);
const replies = fc.constantFrom(
  undefined,
  "fleetheal.v1.cmd.host-a.stop",
  "fleetheal.v1.cmd.host-a.restart",
  `fleetheal.v1.act.host-a.${A_CID}.restarted`,
  `fleetheal.v1.evt.host-a.${A_CID}.unhealthy`,
  "$KV.fleetheal_config.policy",
  `$KV.${HOSTS_BUCKET}.host-a`,
  `$KV.fleetheal_ledger.host-a.${A_CID}`,
  "$JS.ACK.FLEETHEAL_EVENTS.fleetheal-heal.1.1.1.1796000000000000000.0",
  "$JS.FC.FLEETHEAL_EVENTS.fleetheal-heal.1",
  "_R_.abcdef.ghijkl",
  "_INBOX_host-b.own",
);
const payloads = fc.constantFrom(
  stopA,
  restartA,
  encode({ paused: true }),
  new TextEncoder().encode("+TERM"),
  new Uint8Array(),
  encode({ type: "fleetheal.evt.v1.container", host: "host-a" }),
);
const headerSets = fc.record(
  {
    rollup: fc.constantFrom("all", "sub"),
    msgId: fc.constantFrom("dup-1", `host-a:${A_CID}:1796000000000000000:unhealthy`),
    expectedSeq: fc.constantFrom("0", "1", "99"),
  },
  { requiredKeys: [] },
);

describe("host-b's account boundary", () => {
  it("lets nothing reach host-a's commands and changes no state but host-b's own", async () => {
    let sent = 0;
    await fc.assert(
      fc.asyncProperty(subjects, replies, payloads, headerSets, async (subject, reply, data, h) => {
        const before = await state();
        const hdrs = natsHeaders();
        if (h.rollup) hdrs.set("Nats-Rollup", h.rollup);
        if (h.msgId) hdrs.set("Nats-Msg-Id", h.msgId);
        if (h.expectedSeq) hdrs.set("Nats-Expected-Last-Subject-Sequence", h.expectedSeq);
        asB.publish(subject, data, {
          ...(reply === undefined ? {} : { reply }),
          ...(Object.keys(h).length > 0 ? { headers: hdrs } : {}),
        });
        sent++;
        await barrier();
        expect(reachedA).toEqual([]);
        expect(foreignChanges(before, await state())).toEqual([]);
      }),
      { numRuns: 150, seed: 20261207, endOnFailure: true },
    );
    expect(sent).toBe(150);
    // The crossing subjects did cross: host-b's own events were stored.
    const own = await fleetJsm.streams.info(EVENTS_STREAM, {
      subjects_filter: "fleetheal.v1.evt.host-b.>",
    });
    const stored = Object.values(own.state.subjects ?? {}).reduce((a, b) => a + b, 0);
    expect(stored).toBeGreaterThan(150);
  }, 300_000);

  it("has witnesses that see a change made from inside FLEET", async () => {
    // The same checks fail when what an attack would have done is done by those who may: host-a
    // writes its own key and events, the control plane its policy and durable, and commands.
    const handler = await nats.connect({ user: "handler" });
    const js = jetstream(handler);
    const before = await state();
    await jetstream(asA).publish(`$KV.${HOSTS_BUCKET}.host-a`, encode({ forged: true }));
    await jetstream(asA).publish(`fleetheal.v1.evt.host-a.${A_CID}.unhealthy`, "{}");
    await js.publish("$KV.fleetheal_config.policy", encode({}));
    const heal = await js.consumers.get(EVENTS_STREAM, "fleetheal-heal");
    const m = await heal.next({ expires: 2_000 });
    await m?.ackAck();
    handler.publish("fleetheal.v1.cmd.host-a.stop", stopA);
    await handler.flush();
    const changes = foreignChanges(before, await state());
    for (const part of [
      `FLEET KV_${HOSTS_BUCKET} $KV.${HOSTS_BUCKET}.host-a`,
      "FLEET KV_fleetheal_config $KV.fleetheal_config.policy",
      `FLEET ${EVENTS_STREAM} fleetheal.v1.evt.host-a.${A_CID}.unhealthy`,
      `FLEET ${EVENTS_STREAM} consumer fleetheal-heal`,
    ]) {
      expect(
        changes.some((c) => c.startsWith(part)),
        part,
      ).toBe(true);
    }
    await waitFor(() => reachedA.length === 1, {
      timeoutMs: 5_000,
      message: "host-a's account did not see the command FLEET sent it",
    });
  });
});
