// The upgrade of docs/DEPLOY.md, "Upgrading from a deployment with passwords ($G)", on a real
// nats-server: a deployment in the old layout (users with passwords, everything in the global
// account `$G`) with data written by a real handler and, as the agents and the gateway would
// have written it, by hand. Exported with the old handler's credentials, the server switched to
// the accounts of `fleetheal nats-auth`, imported with the new handler's: everything is then read
// in FLEET (raw, through the KV read path and through the real gateway), the hosts bucket
// refuses rollups, and a real handler resumes its durable consumers where the old ones stopped.
// Also the single-server shortcut: the store moved from `$G` to FLEET. The 3-node cluster is in
// nats-migrate-cluster.test.ts.

import { mkdir, mkdtemp, rename, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { headers, type NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { describe, expect, it } from "vitest";
import { AUTH_FILE, envFile, writeFleetCredentials } from "../common/fleet-credentials.js";
import { DEFAULT_STREAM_LIMITS, openFleetJetStream } from "../common/jetstream-resources.js";
import {
  type ContainerEvent,
  DLQ_STREAM,
  EVENTS_STREAM,
  encode,
  eventSubject,
  HOSTS_BUCKET,
  LEDGER_BUCKET,
  type LedgerEntry,
} from "../contracts/index.js";
import { readEnvFile } from "./support/fleet-nats.js";
import { gatewayUrl, runCommand, startRole } from "./support/fleetheal.js";
import {
  CIDS,
  connectAs,
  content,
  event,
  HOST,
  type LegacyAuth,
  lastValues,
  publishEvents,
  settled,
  snapshotStreams,
  writeBuckets,
  writeLegacyAuth,
} from "./support/legacy-deployment.js";
import { type NatsServerHandle, startNatsServer } from "./support/nats-server.js";
import { type RawMessage, readRaw } from "./support/stream.js";
import { waitFor } from "./support/wait.js";

const HANDLER_DURABLES = ["fleetheal-heal", "fleetheal-auto-monitor", "fleetheal-dependents"];

/**
 * The old deployment's life: its hosts bucket as the old code created it (rollups allowed), older
 * events aged out (the stream starts at 4), a real handler with the old handler's credentials
 * that handles some events and dead-letters a malformed one, then events stored while no handler
 * ran, and the buckets. Returns the events no handler has handled.
 */
async function liveOldDeployment(
  server: NatsServerHandle,
  legacy: LegacyAuth,
  admin: NatsConnection,
): Promise<ContainerEvent[]> {
  await new Kvm(admin).create(HOSTS_BUCKET, {
    history: 1,
    description: "fleetheal host snapshots",
  });
  const jsm = await jetstreamManager(admin);
  // FLEETHEAL_EVENTS as the old code created it: capturing the hosts' events itself.
  await openFleetJetStream(admin, DEFAULT_STREAM_LIMITS, 1, { captureHostEvents: true });
  await publishEvents(admin, [event("create", 0), event("create", 1), event("create", 2)]);
  await jsm.streams.purge(EVENTS_STREAM, { seq: 4 });
  {
    const env = { FLEETHEAL_NATS_URL: server.url, ...legacy.handlerEnv };
    await using oldHandler = await startRole("handler", "old-handler", env);
    const handled = [event("create", 0), event("start", 0), event("stop", 1), event("start", 2)];
    // Not opted in: a `skipped` remediation record.
    await publishEvents(admin, [...handled, event("unhealthy", 1)]);
    await jetstream(admin).publish(eventSubject(HOST, CIDS[1] as string, "unhealthy"), "{not json");
    for (const durable of HANDLER_DURABLES) await settled(jsm, durable);
    await waitFor(async () => (await jsm.streams.info(DLQ_STREAM)).state.messages === 1, {
      timeoutMs: 10_000,
      message: "the malformed event was not dead-lettered",
    });
    await oldHandler.stop();
  }
  const unhandled = [event("create", 1), event("start", 1), event("stop", 2)];
  await publishEvents(admin, unhandled);
  await writeBuckets(admin);
  expect((await jsm.consumers.info(EVENTS_STREAM, "fleetheal-heal")).num_pending).toBe(
    unhandled.length,
  );
  return unhandled;
}

/** An old-layout server, its users, and the new credentials nats-auth would write for it. */
async function oldServer(dir: string) {
  const legacy = await writeLegacyAuth(dir);
  const configFile = path.join(dir, "nats-server.conf");
  await writeFile(configFile, `include "./${path.basename(legacy.file)}"\n`);
  const server = await startNatsServer({ configFile });
  const creds = writeFleetCredentials(path.join(dir, "nats-auth-accounts"), { addHosts: [HOST] });
  /** Points the server at the accounts; it reads them when it starts again. */
  const switchToAccounts = () =>
    writeFile(configFile, `include "./nats-auth-accounts/${AUTH_FILE}"\n`);
  const env = async (user: string) => ({
    FLEETHEAL_NATS_URL: server.url,
    ...(await readEnvFile(envFile(creds.dir, user))),
  });
  return { legacy, server, switchToAccounts, env };
}

/**
 * An old-layout server that has lived ({@link liveOldDeployment}), what its streams hold, and
 * the new credentials nats-auth would write for it.
 */
async function oldDeployment(dir: string) {
  const old = await oldServer(dir);
  try {
    const admin = await connect({ servers: old.server.url, ...old.legacy.admin });
    const unhandled = await liveOldDeployment(old.server, old.legacy, admin);
    const before = await snapshotStreams(admin);
    await admin.close();
    return { ...old, unhandled, before };
  } catch (error) {
    await old.server[Symbol.asyncDispose]();
    throw error;
  }
}

/** A hosts-bucket write that asks to roll up the whole bucket. */
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

/**
 * Starts a handler with the new credentials and checks that it resumes each durable consumer
 * where the old one had got to: it is delivered `unhandled`, and nothing before.
 */
async function expectResumed(
  env: Record<string, string>,
  nc: NatsConnection,
  unhandled: ContainerEvent[],
  lastSeq: number,
) {
  const jsm = await jetstreamManager(nc);
  const deliveredBefore = async (durable: string) =>
    (await jsm.consumers.info(EVENTS_STREAM, durable)).delivered.consumer_seq;
  const [heal, autoMonitor, dependents] = await Promise.all(HANDLER_DURABLES.map(deliveredBefore));
  await using handler = await startRole("handler", "new-handler", env);
  const healNow = await settled(jsm, "fleetheal-heal");
  expect(healNow.delivered.consumer_seq - (heal ?? 0)).toBe(unhandled.length);
  expect(healNow.ack_floor.stream_seq).toBe(lastSeq);
  const starts = unhandled.filter((e) => e.action === "start");
  const autoMonitorNow = await settled(jsm, "fleetheal-auto-monitor");
  expect(autoMonitorNow.delivered.consumer_seq - (autoMonitor ?? 0)).toBe(starts.length);
  const dependentsNow = await settled(jsm, "fleetheal-dependents");
  expect(dependentsNow.delivered.consumer_seq - (dependents ?? 0)).toBe(0);
  // A durable it could not keep would have been started over from the recent past.
  expect(handler.lines.join("\n")).not.toMatch(/recreating it/);
}

describe("fleetheal nats-migrate on one server", () => {
  it("carries everything from $G into FLEET, and the handlers resume where they were", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "fleetheal-migrate-"));
    try {
      const { legacy, server, switchToAccounts, env, unhandled, before } = await oldDeployment(dir);
      await using _server = server;

      const file = path.join(dir, "export.jsonl");
      const oldEnv = { FLEETHEAL_NATS_URL: server.url, ...legacy.handlerEnv };
      const exported = await runCommand(["nats-migrate", "export", "--out", file], oldEnv);
      expect(exported.code, exported.lines.join("\n")).toBe(0);
      expect((await stat(file)).mode & 0o777).toBe(0o600);

      await switchToAccounts();
      await server.restart();
      const handlerEnv = await env("handler");
      const imported = await runCommand(["nats-migrate", "import", "--in", file], handlerEnv);
      expect(imported.code, imported.lines.join("\n")).toBe(0);
      expect(imported.lines.join("\n")).toMatch(/FLEETHEAL_EVENTS +\d+ messages/);

      // The handler's user reads every stream; the gateway's reads through the real read paths.
      const gatewayEnv = await env("gateway");
      const asHandler = await connectAs(server.url, handlerEnv);
      const asGateway = await connectAs(server.url, gatewayEnv);
      const asAgent = await connectAs(server.url, await env(`agent-${HOST}`));
      try {
        for (const [name, old] of before) {
          const now = await readRaw(asHandler, name);
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
        expect(ids(await readRaw(asHandler, EVENTS_STREAM))).toEqual(
          ids(before.get(EVENTS_STREAM) ?? []),
        );
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
          ...gatewayEnv,
          FLEETHEAL_GATEWAY_PORT: "0",
        });
        const url = gatewayUrl(gateway);
        const page = (await (await fetch(`${url}/events?since=1h&limit=1000`)).json()) as {
          records: { subject: string; event?: { id: string }; remediation?: { id: string } }[];
        };
        const records = (before.get(EVENTS_STREAM) ?? []).filter((m) => m.data.startsWith('{"'));
        expect(page.records.map((r) => [r.subject, r.event?.id ?? r.remediation?.id])).toEqual(
          records.map((m) => [m.subject, (JSON.parse(m.data) as { id: string }).id]),
        );
        expect(page.records.filter((r) => r.remediation)).toHaveLength(1);
        const policy = (await (await fetch(`${url}/policy`)).json()) as { policy: object };
        expect(policy.policy).toMatchObject({ dryRun: true, startPeriodSeconds: 30 });

        // A real handler resumes each durable after what the old one had acknowledged.
        const events = before.get(EVENTS_STREAM) ?? [];
        await expectResumed(handlerEnv, asHandler, unhandled, events.length);

        // Importing again into a stream that has moved on: refused, nothing stored.
        await publishEvents(asAgent, [event("create", 2)]);
        const stored = (await jsm.streams.info(EVENTS_STREAM)).state.messages;
        const again = await runCommand(["nats-migrate", "import", "--in", file], handlerEnv);
        expect(again.code).toBe(1);
        expect(again.lines.join("\n")).toMatch(
          /import refused, nothing stored: FLEETHEAL_EVENTS holds \d+ messages that this export did not put there/,
        );
        expect((await jsm.streams.info(EVENTS_STREAM)).state.messages).toBe(stored);
      } finally {
        await Promise.all([asHandler.close(), asGateway.close(), asAgent.close()]);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("moves the store from $G to FLEET instead, leaving the hosts bucket behind", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "fleetheal-migrate-move-"));
    try {
      const { server, switchToAccounts, env, unhandled, before } = await oldDeployment(dir);
      await using _server = server;

      // docs/DEPLOY.md, "One server: move the store instead".
      await server.stop();
      const js = path.join(server.storeDir, "jetstream");
      await mkdir(path.join(js, "FLEET"), { mode: 0o750 });
      await rename(path.join(js, "$G", "streams"), path.join(js, "FLEET", "streams"));
      await rename(
        path.join(js, "FLEET", "streams", `KV_${HOSTS_BUCKET}`),
        path.join(server.storeDir, `KV_${HOSTS_BUCKET}.pre-accounts`),
      );
      await switchToAccounts();
      await server.restart();

      const handlerEnv = await env("handler");
      const asHandler = await connectAs(server.url, handlerEnv);
      try {
        await openFleetJetStream(asHandler);
        // Everything as it was, sequences included; the hosts bucket is new, without rollups.
        for (const [name, old] of before) {
          const now = await readRaw(asHandler, name);
          expect(now, name).toEqual(name === `KV_${HOSTS_BUCKET}` ? [] : old);
        }
        const jsm = await jetstreamManager(asHandler);
        expect((await jsm.streams.info(`KV_${HOSTS_BUCKET}`)).config.allow_rollup_hdrs).toBe(false);
        const events = before.get(EVENTS_STREAM) ?? [];
        await expectResumed(handlerEnv, asHandler, unhandled, events.at(-1)?.seq ?? 0);
      } finally {
        await asHandler.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
