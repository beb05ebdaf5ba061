// The upgrade of docs/DEPLOY.md, "Upgrading from a deployment with passwords ($G)", on real
// nats-servers: a deployment in the old layout (users with passwords, everything in the global
// account `$G`) with data written by a real handler and, as the agents and the gateway would
// have, by hand; exported with the old handler's credentials; the server switched to the
// accounts of `fleetheal nats-auth`; imported with the new handler's. Then everything is read in
// FLEET (raw, through the KV read path and through the real gateway), the hosts bucket refuses
// rollups, and a real handler resumes its durable consumers where the old ones had stopped. The
// same on a 3-node cluster, DEPLOY.md's topology, which must start again from empty stores.

import { copyFile, mkdtemp, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { headers, type NatsConnection, nkeyAuthenticator } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { describe, expect, it } from "vitest";
import { AUTH_FILE, envFile, writeFleetCredentials } from "../common/fleet-credentials.js";
import { DEFAULT_STREAM_LIMITS, openFleetJetStream } from "../common/jetstream-resources.js";
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
} from "../contracts/index.js";
import { healHandler } from "../handlers/heal.js";
import { durableConfig } from "../handlers/runtime.js";
import { readEnvFile } from "./support/fleet.js";
import { gatewayUrl, runCommand, startRole } from "./support/fleetheal.js";
import { writeLegacyAuth } from "./support/legacy-nats-auth.js";
import { startNatsCluster } from "./support/nats-cluster.js";
import { startNatsServer } from "./support/nats-server.js";
import { type RawMessage, readRaw } from "./support/stream.js";
import { waitFor } from "./support/wait.js";

const HOST = "host-a";
const CIDS = ["a1".repeat(6), "b2".repeat(6), "c3".repeat(6)];
const MIGRATED = [
  EVENTS_STREAM,
  DLQ_STREAM,
  `KV_${HOSTS_BUCKET}`,
  `KV_${LEDGER_BUCKET}`,
  `KV_${MONITORED_BUCKET}`,
  `KV_${CONFIG_BUCKET}`,
];
let nano = 0;

function event(action: ContainerAction, n: number, optedIn = false): ContainerEvent {
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
async function publishEvents(nc: NatsConnection, events: ContainerEvent[]): Promise<void> {
  const js = jetstream(nc);
  for (const e of events) {
    await js.publish(eventSubject(e.host, e.container.id, e.action), encode(e), { msgID: e.id });
  }
}

function ledgerEntry(consecutiveRestarts: number): LedgerEntry {
  return {
    v: 1,
    host: HOST,
    containerId: CIDS[0] as string,
    restarts: [],
    consecutiveRestarts,
    healthySince: new Date(Date.now() - consecutiveRestarts * 1000).toISOString(),
  };
}

/** A ledger entry with a history, the policy twice, snapshots, a monitored container. */
async function writeBuckets(nc: NatsConnection): Promise<void> {
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

/** Subject and payload: what a copy must keep to the byte. */
const content = (messages: RawMessage[]) => messages.map((m) => [m.subject, m.data]);
/** What the hosts bucket keeps after the import: each key's last value, deleted keys left out. */
function lastValues(messages: RawMessage[]): RawMessage[] {
  const last = new Map<string, RawMessage>();
  for (const m of messages) {
    last.delete(m.subject);
    last.set(m.subject, m);
  }
  return [...last.values()].filter((m) => !m.headers.some(([k]) => k === "KV-Operation"));
}

async function snapshotStreams(nc: NatsConnection): Promise<Map<string, RawMessage[]>> {
  const all = new Map<string, RawMessage[]>();
  for (const name of MIGRATED) all.set(name, await readRaw(nc, name));
  return all;
}

/** Every migrated stream holds in FLEET what it held in `$G` (the hosts bucket: last values). */
async function expectSameContent(nc: NatsConnection, before: Map<string, RawMessage[]>) {
  for (const [name, old] of before) {
    const now = await readRaw(nc, name);
    const expected = name === `KV_${HOSTS_BUCKET}` ? lastValues(old) : old;
    expect(content(now), name).toEqual(content(expected));
    expect(
      now.map((m) => m.seq),
      name,
    ).toEqual(now.map((_, i) => i + 1));
  }
  // The agents' message ids came along (a resent event is still recognised).
  const ids = (ms: RawMessage[]) =>
    ms.map((m) => m.headers.find(([k]) => k === "Nats-Msg-Id")?.[1]);
  const events = before.get(EVENTS_STREAM) ?? [];
  expect(ids(await readRaw(nc, EVENTS_STREAM))).toEqual(ids(events));
}

/** A connection as the user of an env file that nats-auth wrote. */
async function connectAs(url: string, env: Record<string, string>): Promise<NatsConnection> {
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
async function settled(jsm: JetStreamManager, durable: string) {
  let last = "";
  return waitFor(
    async () => {
      const ci = await jsm.consumers.info(EVENTS_STREAM, durable);
      const filter = ci.config.filter_subject ?? ">";
      const newest = await jsm.streams
        .getMessage(EVENTS_STREAM, { last_by_subj: filter })
        .then((m) => m?.seq ?? 0)
        .catch(() => 0);
      last = JSON.stringify({ newest, ackFloor: ci.ack_floor, pending: ci.num_ack_pending });
      return ci.ack_floor.stream_seq >= newest && ci.num_ack_pending === 0 && ci;
    },
    { timeoutMs: 30_000, intervalMs: 100, message: () => `${durable} did not catch up: ${last}` },
  );
}

/** A hosts-bucket write that asks to roll up the whole bucket; the accounts layout refuses it. */
async function tryRollup(nc: NatsConnection): Promise<unknown> {
  const h = headers();
  h.set("Nats-Rollup", "all");
  return jetstream(nc)
    .publish(`$KV.${HOSTS_BUCKET}.${HOST}`, encode({ rollup: true }), { headers: h })
    .then(
      () => "stored",
      (error: unknown) => error,
    );
}

describe("fleetheal nats-migrate", () => {
  it("carries a single server's data from $G into FLEET, and the handlers resume where they were", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "fleetheal-migrate-"));
    try {
      const legacy = await writeLegacyAuth(dir);
      const configFile = path.join(dir, "nats-server.conf");
      await writeFile(configFile, `include "./${path.basename(legacy.file)}"\n`);
      await using server = await startNatsServer({ configFile });
      const oldEnv = { FLEETHEAL_NATS_URL: server.url, ...legacy.handlerEnv };

      // The old deployment: its hosts bucket as the old code created it (rollups allowed).
      const admin = await connect({ servers: server.url, ...legacy.admin });
      await new Kvm(admin).create(HOSTS_BUCKET, {
        history: 1,
        description: "fleetheal host snapshots",
      });
      const adminJsm = await jetstreamManager(admin);
      await openFleetJetStream(admin);
      // Older events have aged out: the old stream starts at 4, the new one will at 1.
      await publishEvents(admin, [event("create", 0), event("create", 1), event("create", 2)]);
      await adminJsm.streams.purge(EVENTS_STREAM, { seq: 4 });
      const handled = [event("create", 0), event("start", 0), event("stop", 1), event("start", 2)];
      {
        await using oldHandler = await startRole("handler", "old-handler", oldEnv);
        await publishEvents(admin, [...handled, event("unhealthy", 1)]);
        // Malformed: the old heal handler dead-letters it.
        await jetstream(admin).publish(
          eventSubject(HOST, CIDS[1] as string, "unhealthy"),
          "{not json",
        );
        for (const d of ["fleetheal-heal", "fleetheal-auto-monitor", "fleetheal-dependents"]) {
          await settled(adminJsm, d);
        }
        await waitFor(async () => (await adminJsm.streams.info(DLQ_STREAM)).state.messages === 1, {
          timeoutMs: 10_000,
          message: "the malformed event was not dead-lettered",
        });
        await oldHandler.stop();
      }
      // Stored while no handler ran: the new handlers must handle these, and only these.
      const unhandled = [event("create", 1), event("start", 1), event("stop", 2)];
      await publishEvents(admin, unhandled);
      await writeBuckets(admin);
      const before = await snapshotStreams(admin);
      const oldHeal = await adminJsm.consumers.info(EVENTS_STREAM, "fleetheal-heal");
      expect(oldHeal.num_pending).toBe(unhandled.length);
      await admin.close();

      const file = path.join(dir, "export.jsonl");
      const exported = await runCommand(["nats-migrate", "export", "--out", file], oldEnv);
      expect(exported.code, exported.lines.join("\n")).toBe(0);
      expect((await stat(file)).mode & 0o777).toBe(0o600);

      // The switch: new credentials in a new directory, the include pointed at them, a restart.
      const creds = writeFleetCredentials(path.join(dir, "nats-auth-accounts"), {
        addHosts: [HOST],
      });
      await writeFile(configFile, `include "./nats-auth-accounts/${AUTH_FILE}"\n`);
      await server.restart();
      const newEnv = {
        FLEETHEAL_NATS_URL: server.url,
        ...(await readEnvFile(envFile(creds.dir, "handler"))),
      };
      const imported = await runCommand(["nats-migrate", "import", "--in", file], newEnv);
      expect(imported.code, imported.lines.join("\n")).toBe(0);
      expect(imported.lines.join("\n")).toMatch(/FLEETHEAL_EVENTS +\d+ messages/);

      // The handler's user reads every stream; the gateway's reads through the real read paths.
      const gatewayEnv = await readEnvFile(envFile(creds.dir, "gateway"));
      const asHandler = await connectAs(server.url, newEnv);
      const asGateway = await connectAs(server.url, gatewayEnv);
      const asAgent = await connectAs(
        server.url,
        await readEnvFile(envFile(creds.dir, `agent-${HOST}`)),
      );
      try {
        await expectSameContent(asHandler, before);
        // Every ledger revision, through the KV read path.
        const history = await (await new Kvm(asGateway).open(LEDGER_BUCKET)).history({
          key: `${HOST}.${CIDS[0]}`,
        });
        const revisions: LedgerEntry[] = [];
        for await (const e of history) revisions.push(e.json<LedgerEntry>());
        expect(revisions.map((r) => r.consecutiveRestarts)).toEqual([1, 2, 3]);
        // The hosts bucket refuses rollups now; host-a's snapshot is still its own.
        const jsm = await jetstreamManager(asGateway);
        expect((await jsm.streams.info(`KV_${HOSTS_BUCKET}`)).config.allow_rollup_hdrs).toBe(false);
        expect(String(await tryRollup(asAgent))).toMatch(/rollup not permitted/);
        const hostA = await (await new Kvm(asGateway).open(HOSTS_BUCKET)).get(HOST);
        expect(hostA?.json()).toEqual({ snapshot: 2 });

        // The real gateway serves the history and the policy.
        await using gateway = await startRole("gateway", "gateway", {
          FLEETHEAL_NATS_URL: server.url,
          FLEETHEAL_GATEWAY_PORT: "0",
          ...gatewayEnv,
        });
        const url = gatewayUrl(gateway);
        const page = (await (await fetch(`${url}/events?since=1h&limit=1000`)).json()) as {
          records: {
            subject: string;
            kind: string;
            event?: { id: string };
            remediation?: { id: string };
          }[];
        };
        const stored = (before.get(EVENTS_STREAM) ?? []).filter((m) => m.data.startsWith('{"'));
        expect(page.records.map((r) => r.subject)).toEqual(stored.map((m) => m.subject));
        expect(page.records.map((r) => r.event?.id ?? r.remediation?.id)).toEqual(
          stored.map((m) => (JSON.parse(m.data) as { id: string }).id),
        );
        expect(page.records.filter((r) => r.kind === "remediation")).toHaveLength(1);
        const policy = (await (await fetch(`${url}/policy`)).json()) as {
          policy: { dryRun: boolean; startPeriodSeconds: number };
        };
        expect(policy.policy).toMatchObject({ dryRun: true, startPeriodSeconds: 30 });

        // A real handler resumes each durable after what the old one had acknowledged.
        await using handler = await startRole("handler", "new-handler", newEnv);
        const heal = await settled(jsm, "fleetheal-heal");
        expect(heal.delivered.consumer_seq).toBe(unhandled.length);
        expect(heal.ack_floor.stream_seq).toBe(before.get(EVENTS_STREAM)?.length);
        const autoMonitor = await settled(jsm, "fleetheal-auto-monitor");
        expect(autoMonitor.delivered.consumer_seq).toBe(
          unhandled.filter((e) => e.action === "start").length,
        );
        expect((await settled(jsm, "fleetheal-dependents")).delivered.consumer_seq).toBe(0);
        expect(handler.lines.join("\n")).not.toMatch(/recreating it/);

        // Another import would mix new data into the history: refused, nothing stored.
        await publishEvents(asAgent, [event("create", 2)]);
        const eventsNow = (await jsm.streams.info(EVENTS_STREAM)).state.messages;
        const again = await runCommand(["nats-migrate", "import", "--in", file], newEnv);
        expect(again.code).toBe(1);
        expect(again.lines.join("\n")).toMatch(
          /import refused, nothing stored: FLEETHEAL_EVENTS holds \d+ messages that this export did not put there/,
        );
        expect((await jsm.streams.info(EVENTS_STREAM)).state.messages).toBe(eventsNow);
      } finally {
        await Promise.all([asHandler.close(), asGateway.close(), asAgent.close()]);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("carries a 3-node cluster's data, starting the cluster again from empty stores", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "fleetheal-migrate-cluster-"));
    try {
      const legacy = await writeLegacyAuth(dir);
      const nodeDirs: string[] = [];
      await using cluster = await startNatsCluster(3, "fleetheal-upgrade", {
        async configure(plan) {
          nodeDirs[plan.index] = plan.dir;
          await copyFile(legacy.file, path.join(plan.dir, "fleetheal-auth.conf"));
          const configFile = path.join(plan.dir, "nats-server.conf");
          const storeDir = path.join(plan.dir, "js");
          await writeFile(
            configFile,
            [
              `server_name: n${plan.index + 1}`,
              `listen: "127.0.0.1:${plan.port}"`,
              `http: "127.0.0.1:${plan.monitorPort}"`,
              `jetstream { store_dir: "${storeDir}" }`,
              "cluster {",
              "  name: fleetheal-upgrade",
              `  listen: "127.0.0.1:${plan.clusterPort}"`,
              `  routes: [${plan.clusterPorts.map((p) => `"nats-route://127.0.0.1:${p}"`).join(", ")}]`,
              "}",
              `include "./fleetheal-auth.conf"`,
              "",
            ].join("\n"),
          );
          return { serverName: `n${plan.index + 1}`, configFile, storeDir };
        },
      });
      const oldEnv = { FLEETHEAL_NATS_URL: cluster.urls, ...legacy.handlerEnv };

      const admin = await connect({ servers: cluster.urls.split(","), ...legacy.admin });
      await new Kvm(admin).create(HOSTS_BUCKET, { history: 1, replicas: 3 });
      await openFleetJetStream(admin, DEFAULT_STREAM_LIMITS, 3);
      const events = Array.from({ length: 8 }, (_, i) => event(i % 2 ? "start" : "create", i));
      await publishEvents(admin, events);
      // The old heal handler's durable, which had acknowledged the first five events.
      const heal = healHandler({ maxEventAgeMs: 300_000, retryDelayMs: 0 });
      const adminJsm = await jetstreamManager(admin);
      await adminJsm.consumers.add(
        EVENTS_STREAM,
        durableConfig(heal, { startTime: new Date(Date.now() - 300_000) }),
      );
      const batch = await (
        await jetstream(admin).consumers.get(EVENTS_STREAM, "fleetheal-heal")
      ).fetch({
        max_messages: 5,
      });
      for await (const m of batch) await m.ackAck();
      await writeBuckets(admin);
      const before = await snapshotStreams(admin);
      await admin.close();

      const file = path.join(dir, "export.jsonl");
      const exported = await runCommand(["nats-migrate", "export", "--out", file], oldEnv);
      expect(exported.code, exported.lines.join("\n")).toBe(0);

      // Every node stops; each store is kept aside (for a rollback) and each starts empty with
      // the accounts. Otherwise the cluster's meta group would keep the `$G` streams, which no
      // account can serve any more, and /healthz would fail on every node.
      const creds = writeFleetCredentials(path.join(dir, "nats-auth-accounts"), {
        addHosts: [HOST],
      });
      await Promise.all([0, 1, 2].map((i) => cluster.stop(i)));
      for (const [i, node] of cluster.nodes.entries()) {
        await rename(node.storeDir, `${node.storeDir}.pre-accounts`);
        await copyFile(
          path.join(creds.dir, AUTH_FILE),
          path.join(nodeDirs[i] as string, "fleetheal-auth.conf"),
        );
      }
      await Promise.all([0, 1, 2].map((i) => cluster.start(i)));

      const newEnv = {
        FLEETHEAL_NATS_URL: cluster.urls,
        FLEETHEAL_JS_REPLICAS: "3",
        ...(await readEnvFile(envFile(creds.dir, "handler"))),
      };
      const imported = await runCommand(["nats-migrate", "import", "--in", file], newEnv);
      expect(imported.code, imported.lines.join("\n")).toBe(0);

      const asHandler = await connectAs(cluster.urls, newEnv);
      try {
        await expectSameContent(asHandler, before);
        const jsm = await jetstreamManager(asHandler);
        for (const name of MIGRATED) {
          expect((await jsm.streams.info(name)).config.num_replicas, name).toBe(3);
        }
        expect((await jsm.streams.info(`KV_${HOSTS_BUCKET}`)).config.allow_rollup_hdrs).toBe(false);
        const placed = await jsm.consumers.info(EVENTS_STREAM, "fleetheal-heal");
        expect(placed.config.opt_start_seq).toBe(6);
        // What it delivers first: the events after the five it had acknowledged.
        const delivered = await (
          await jetstream(asHandler).consumers.get(EVENTS_STREAM, "fleetheal-heal")
        ).fetch({ max_messages: events.length, expires: 2_000 });
        const ids: string[] = [];
        for await (const m of delivered) ids.push(m.json<ContainerEvent>().id);
        expect(ids).toEqual(events.slice(5).map((e) => e.id));
        for (const node of cluster.nodes) {
          const health = await fetch(`${node.monitorUrl}/healthz`);
          expect(health.status, `${node.name}: ${await health.text()}`).toBe(200);
        }
      } finally {
        await asHandler.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
