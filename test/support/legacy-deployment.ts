// A deployment made before the accounts layout, for tests of the upgrade: `fleetheal nats-auth`
// then wrote an `authorization { users = [...] }` include file with passwords, and every role and
// all data lived in the global account `$G`. Only what the upgrade needs is here: the handler,
// with the permissions it had then (frozen: the code now writes accounts), whose credentials
// `fleetheal nats-migrate export` runs with; an unrestricted user that writes what the agents
// and the gateway would have written; that data; and ways to read it back.

import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { type JetStreamManager, jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { type NatsConnection, nkeyAuthenticator } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { FLEET_STREAMS } from "../../common/nats-permissions.js";
import {
  CONFIG_BUCKET,
  CONTAINER_EVENT_TYPE,
  type ContainerAction,
  type ContainerEvent,
  DLQ_STREAM,
  EVENTS_STREAM,
  encode,
  eventSubject,
  HOSTS_BUCKET,
  LEDGER_BUCKET,
  type LedgerEntry,
  MONITORED_BUCKET,
  POLICY_KEY,
} from "../../contracts/index.js";
import { type RawMessage, readRaw } from "./stream.js";
import { waitFor } from "./wait.js";

/** The old handler's inbox prefix, from its env file. */
export const LEGACY_HANDLER_INBOX = "_INBOX.fleetheal-handler";

const API = "$JS.API";

/** Consumers on a stream, as the old lists granted them (durable ones for the two streams). */
const consume = (stream: string, durable: boolean) => [
  `${API}.CONSUMER.CREATE.${stream}`,
  `${API}.CONSUMER.CREATE.${stream}.>`,
  `${API}.CONSUMER.INFO.${stream}.*`,
  `${API}.CONSUMER.MSG.NEXT.${stream}.*`,
  `${API}.CONSUMER.DELETE.${stream}.*`,
  ...(durable
    ? [
        `${API}.CONSUMER.DURABLE.CREATE.${stream}.*`,
        `${API}.CONSUMER.LIST.${stream}`,
        `${API}.CONSUMER.NAMES.${stream}`,
      ]
    : []),
  `$JS.ACK.${stream}.>`,
  `$JS.FC.${stream}.>`,
];

/** What the old handler user could publish: create and read every stream, no purge, no delete. */
function legacyHandlerPublish(): string[] {
  const buckets = FLEET_STREAMS.filter((s) => s.startsWith("KV_"));
  return [
    ...new Set([
      `${API}.INFO`,
      ...FLEET_STREAMS.flatMap((s) => [
        `${API}.STREAM.CREATE.${s}`,
        `${API}.STREAM.INFO.${s}`,
        `${API}.STREAM.MSG.GET.${s}`,
        `${API}.DIRECT.GET.${s}`,
        `${API}.DIRECT.GET.${s}.>`,
      ]),
      ...consume(EVENTS_STREAM, true),
      ...consume(DLQ_STREAM, true),
      ...buckets.flatMap((s) => consume(s, false)),
      ...buckets.filter((s) => s !== `KV_${HOSTS_BUCKET}`).map((s) => `$KV.${s.slice(3)}.>`),
      "fleetheal.v1.act.>",
      "fleetheal.v1.dlq.>",
      "fleetheal.v1.cmd.*.*",
    ]),
  ];
}

/** A legacy deployment's users on disk. */
export interface LegacyAuth {
  /** The include file (`authorization { … }`). */
  file: string;
  /** The unrestricted user that writes the test's data. */
  admin: { user: string; pass: string };
  /** The old handler's env file variables (without FLEETHEAL_NATS_URL). */
  handlerEnv: Record<string, string>;
}

/** Writes the include file and the handler's password file into `dir`. */
export async function writeLegacyAuth(
  dir: string,
  fileName = "fleetheal-auth.conf",
): Promise<LegacyAuth> {
  const password = () => randomBytes(24).toString("base64url");
  const handlerPassword = password();
  const admin = { user: "admin", pass: password() };
  const passwordFile = path.join(dir, "handler.password");
  await writeFile(passwordFile, `${handlerPassword}\n`, { mode: 0o600 });
  const quote = (s: string) => JSON.stringify(s);
  const file = path.join(dir, fileName);
  await writeFile(
    file,
    [
      "authorization {",
      "  users = [",
      "    {",
      `      user: "handler", password: ${quote(handlerPassword)}`,
      "      permissions: {",
      `        publish: { allow: [${legacyHandlerPublish().map(quote).join(", ")}] }`,
      `        subscribe: { allow: ["$SRV.>", "fleetheal.v1.handler.*.stats", "${LEGACY_HANDLER_INBOX}.>"] }`,
      "        allow_responses: true",
      "      }",
      "    }",
      `    { user: ${quote(admin.user)}, password: ${quote(admin.pass)} }`,
      "  ]",
      "}",
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
  return {
    file,
    admin,
    handlerEnv: {
      FLEETHEAL_NATS_USER: "handler",
      FLEETHEAL_NATS_PASSWORD_FILE: passwordFile,
      FLEETHEAL_NATS_INBOX_PREFIX: LEGACY_HANDLER_INBOX,
    },
  };
}

/** The host whose events and snapshot the data has. */
export const HOST = "host-a";
/** Its containers (ids are hex). */
export const CIDS = ["a1".repeat(6), "b2".repeat(6), "c3".repeat(6)];
/** The streams an upgrade carries, with data in them. */
export const MIGRATED = [
  EVENTS_STREAM,
  DLQ_STREAM,
  `KV_${HOSTS_BUCKET}`,
  `KV_${LEDGER_BUCKET}`,
  `KV_${MONITORED_BUCKET}`,
  `KV_${CONFIG_BUCKET}`,
];
let nano = 0;

/** An event of host-a's container `n` (modulo the three). */
export function event(action: ContainerAction, n: number, optedIn = false): ContainerEvent {
  const timeNano = `${Date.now()}${String(nano++ % 1_000_000).padStart(6, "0")}`;
  const cid = CIDS[n % CIDS.length] as string;
  return {
    type: CONTAINER_EVENT_TYPE,
    v: 1,
    id: `${HOST}:${cid}:${timeNano}:${action}`,
    host: HOST,
    action,
    timeNano,
    time: new Date().toISOString(),
    source: "docker",
    container: { id: cid, name: `app-${n}`, image: "busybox", labels: {}, optedIn },
  };
}

/** Stores events as an agent does: the event id is the message id. */
export async function publishEvents(nc: NatsConnection, events: ContainerEvent[]): Promise<void> {
  const js = jetstream(nc);
  for (const e of events) {
    await js.publish(eventSubject(e.host, e.container.id, e.action), encode(e), { msgID: e.id });
  }
}

/** The ledger entry of host-a's first container, after `consecutiveRestarts` restarts. */
export function ledgerEntry(consecutiveRestarts: number): LedgerEntry {
  return {
    v: 1,
    host: HOST,
    containerId: CIDS[0] as string,
    restarts: [],
    consecutiveRestarts,
    healthySince: new Date(Date.now() - consecutiveRestarts * 1000).toISOString(),
  };
}

/** A ledger entry with three revisions, the policy twice, snapshots, a monitored container. */
export async function writeBuckets(nc: NatsConnection): Promise<void> {
  const kvm = new Kvm(nc);
  const ledger = await kvm.open(LEDGER_BUCKET);
  const key = `${HOST}.${CIDS[0]}`;
  // As the handlers write it: create, then compare-and-set updates (their headers name the
  // revision they replace, which the import must not carry over).
  let revision = await ledger.create(key, encode(ledgerEntry(1)));
  revision = await ledger.update(key, encode(ledgerEntry(2)), revision);
  await ledger.update(key, encode(ledgerEntry(3)), revision);
  const config = await kvm.open(CONFIG_BUCKET);
  await config.put(POLICY_KEY, encode({ dryRun: true }));
  await config.put(POLICY_KEY, encode({ dryRun: true, startPeriodSeconds: 30 }));
  const hosts = await kvm.open(HOSTS_BUCKET);
  await hosts.put(HOST, encode({ snapshot: 1 }));
  await hosts.put(HOST, encode({ snapshot: 2 }));
  // A host that has left the fleet: its key ends with a delete marker.
  await hosts.put("host-gone", encode({ snapshot: "gone" }));
  await hosts.delete("host-gone");
  await (await kvm.open(MONITORED_BUCKET)).put(key, encode({ monitored: true }));
}

/** Every migrated stream's messages. */
export async function snapshotStreams(nc: NatsConnection): Promise<Map<string, RawMessage[]>> {
  const all = new Map<string, RawMessage[]>();
  for (const name of MIGRATED) all.set(name, await readRaw(nc, name));
  return all;
}

/** Subject and payload of each message: what a copy must keep to the byte. */
export const content = (messages: RawMessage[]) => messages.map((m) => [m.subject, m.data]);

/** What the hosts bucket holds after an import: each key's last value, deleted keys left out. */
export function lastValues(messages: RawMessage[]): RawMessage[] {
  const last = new Map<string, RawMessage>();
  for (const m of messages) {
    last.delete(m.subject);
    last.set(m.subject, m);
  }
  return [...last.values()].filter((m) => !m.headers.some(([k]) => k === "KV-Operation"));
}

/** A connection as the user of an env file that nats-auth wrote. */
export async function connectAs(url: string, env: Record<string, string>): Promise<NatsConnection> {
  const seed = (await readFile(env.FLEETHEAL_NATS_NKEY_FILE as string, "utf8")).trim();
  return connect({
    servers: url.split(","),
    authenticator: nkeyAuthenticator(new TextEncoder().encode(seed)),
    inboxPrefix: env.FLEETHEAL_NATS_INBOX_PREFIX as string,
  });
}

/**
 * Waits until a durable has acknowledged the last stored message that its filter takes, and
 * returns its info. (nats-server 2.9's `num_pending` can overcount for a wildcard filter that
 * started mid-stream, so it cannot say this.)
 */
export async function settled(jsm: JetStreamManager, durable: string) {
  let last = "";
  return waitFor(
    async () => {
      const ci = await jsm.consumers.info(EVENTS_STREAM, durable);
      const newest = await jsm.streams
        .getMessage(EVENTS_STREAM, { last_by_subj: ci.config.filter_subject ?? ">" })
        .then((m) => m?.seq ?? 0)
        .catch(() => 0);
      last = JSON.stringify({ newest, ackFloor: ci.ack_floor, pending: ci.num_ack_pending });
      return ci.ack_floor.stream_seq >= newest && ci.num_ack_pending === 0 && ci;
    },
    { timeoutMs: 30_000, intervalMs: 100, message: () => `${durable} did not catch up: ${last}` },
  );
}
