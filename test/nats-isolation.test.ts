// One compromised host must not command the fleet: each attack that once worked from host-b's
// agent credentials (or the reader's) is tried again on real parts, a fleet started the way
// docs/DEPLOY.md deploys one (nats-server with the accounts `fleetheal nats-auth` writes, one
// dockerd per host, agents, a handler and the gateway under their own users). Docker's own event
// stream is the witness that nothing was stopped or restarted, the stored state that nothing was
// written, and a heal on each host afterwards that healing still works.

import { readFile } from "node:fs/promises";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { type NatsConnection, headers as natsHeaders } from "@nats-io/nats-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FleetJetStream } from "../common/jetstream-resources.js";
import { openFleetJetStream } from "../common/jetstream-resources.js";
import type { Logger } from "../common/logger.js";
import {
  CONFIG_BUCKET,
  containerKey,
  DEFAULT_HEAL_POLICY,
  decode,
  EVENTS_STREAM,
  encode,
  HOSTS_BUCKET,
  HostSnapshot,
  POLICY_KEY,
} from "../contracts/index.js";
import { healedOnce, runTestContainer, waitForHealth } from "./support/containers.js";
import { ledgerEntry, stopDraft } from "./support/fixtures.js";
import { type Fleet, startFleet } from "./support/fleet.js";
import { startAccountsNats } from "./support/fleet-nats.js";
import { waitFor } from "./support/wait.js";

const ADMIN = "isolation-test-admin-token";
const admin = { authorization: `Bearer ${ADMIN}` };
let fleet: Fleet;
let asB: NatsConnection;
let asReader: NatsConnection;
let fjs: FleetJetStream;
/** host-a's opted-in container that the attacks aim at. */
let victim: { id: string; name: string };

beforeAll(async () => {
  fleet = await startFleet({ hosts: ["host-a", "host-b"], gateway: { adminToken: ADMIN } });
  asB = await fleet.nats.connect({ user: "agent-host-b" });
  asReader = await fleet.nats.connect({ user: "reader" });
  fjs = await openFleetJetStream(await fleet.nats.connect({ user: "handler" }));
  victim = await runTestContainer(fleet.host("host-a").engine, {
    name: "victim",
    labels: { autoheal: "true", "autoheal.backoff.initial": "0" },
  });
  await waitForHealth(fleet.host("host-a").engine, victim.id, "healthy", 20_000);
  // A policy that an attack would undo, and host-a's snapshot, as they are before any attack.
  await fjs.config.put(POLICY_KEY, encode(DEFAULT_HEAL_POLICY));
  await waitFor(async () => (await fjs.hosts.get("host-a"))?.operation === "PUT", {
    timeoutMs: 15_000,
    message: "host-a's agent never stored its snapshot",
  });
}, 180_000);

afterAll(async () => {
  await fleet?.[Symbol.asyncDispose]();
});

/** The subject the attacks forge; the victim never turns unhealthy by itself here. */
const forged = () => `fleetheal.v1.evt.host-a.${victim.id}.unhealthy`;

/** What an attack must leave as it is. */
async function protectedState() {
  const policy = await fjs.config.get(POLICY_KEY);
  const hostA = await fjs.hosts.get("host-a");
  const heal = await fjs.jsm.consumers.info(EVENTS_STREAM, "fleetheal-heal");
  return {
    policy: policy && { revision: policy.revision, value: policy.string() },
    hostA: hostA?.operation,
    heal: { config: heal.config },
    forgedA: (await fjs.jsm.streams.info(EVENTS_STREAM, { subjects_filter: forged() })).state
      .subjects?.[forged()],
  };
}

/** The events host-a's Docker reported for the victim from now on. */
function victimActions(since: number): string[] {
  return fleet
    .host("host-a")
    .docker.events.slice(since)
    .filter((e) => e.id === victim.id)
    .map((e) => e.action);
}

/**
 * Proves that a command sent before now did not reach host-a's agent: the agent serves commands in
 * the order they reach it, so a restart by hand through the gateway (the legitimate path) that
 * completes means everything sent before it was either executed already or never arrived.
 */
async function commandsDrained(): Promise<void> {
  const docker = fleet.host("host-a").docker;
  const from = docker.events.length;
  const other = await runTestContainer(fleet.host("host-a").engine, {
    name: `marker-${from}`,
    labels: { autoheal: "true" },
  });
  // The gateway knows a container once host-a's agent has reported it.
  const url = `${fleet.gateway.url}/containers/host-a/${other.id}`;
  await waitFor(async () => (await fetch(url, { headers: admin })).status === 200, {
    timeoutMs: 15_000,
    message: "the gateway never listed the marker container",
  });
  const res = await fetch(`${url}/restart`, { method: "POST", headers: admin });
  expect(res.status, await res.clone().text()).toBe(200);
  await docker.waitFor(
    (e) => e.id === other.id && e.action === "restart",
    20_000,
    "the gateway's restart did not reach host-a's agent",
  );
}

/** A stop of the victim as a command would carry it. */
const stopVictim = () =>
  encode(
    stopDraft({
      commandId: `attack-${Date.now()}`,
      host: "host-a",
      containerId: victim.id,
      reason: "maintenance",
      requestedBy: "handler",
    }),
  );

describe("host-b's credentials against host-a and the fleet", () => {
  it("a JetStream read echoed to another host's command subject reaches nothing", async () => {
    const before = await protectedState();
    const from = fleet.host("host-a").docker.events.length;
    // Store a command-shaped value under its own key, then ask JetStream to send it to host-a's
    // command subject, to the policy key, to host-a's key and as one of host-a's events.
    await jetstream(asB).publish(`$KV.${HOSTS_BUCKET}.host-b`, stopVictim());
    const directGet = `$JS.API.DIRECT.GET.KV_${HOSTS_BUCKET}.$KV.${HOSTS_BUCKET}.host-b`;
    for (const reply of [
      "fleetheal.v1.cmd.host-a.stop",
      `$KV.${CONFIG_BUCKET}.${POLICY_KEY}`,
      `$KV.${HOSTS_BUCKET}.host-a`,
      `fleetheal.v1.evt.host-a.${victim.id}.unhealthy`,
    ]) {
      asB.publish(directGet, undefined, { reply });
      // Its own events and key, with the same replies: JetStream's acks go back to host-b.
      asB.publish(`fleetheal.v1.evt.host-b.${"b".repeat(64)}.start`, stopVictim(), { reply });
      asB.publish(`$KV.${HOSTS_BUCKET}.host-b`, stopVictim(), { reply });
    }
    // Nothing of FLEET's JetStream API is in host-b's account: no answer at all.
    await expect(asB.request(directGet, undefined, { timeout: 2_000 })).rejects.toThrow(
      /no responders|timeout|permissions/i,
    );
    await asB.flush();
    await commandsDrained();
    expect(victimActions(from)).not.toContain("stop");
    expect(victimActions(from)).not.toContain("kill");
    expect(await protectedState()).toEqual(before);
  });

  it("cannot publish host-a's events or snapshot, nor command host-a directly", async () => {
    const before = await protectedState();
    const from = fleet.host("host-a").docker.events.length;
    const js = jetstream(asB);
    await expect(
      js.publish(`fleetheal.v1.evt.host-a.${victim.id}.unhealthy`, "{}", { timeout: 2_000 }),
    ).rejects.toThrow(/permissions violation/i);
    await expect(
      js.publish(`$KV.${HOSTS_BUCKET}.host-a`, "{}", { timeout: 2_000 }),
    ).rejects.toThrow(/permissions violation/i);
    asB.publish("fleetheal.v1.host.host-a.snapshot", "{}");
    asB.publish("fleetheal.v1.cmd.host-a.stop", stopVictim());
    await asB.flush();
    await commandsDrained();
    expect(victimActions(from)).not.toContain("stop");
    expect(await protectedState()).toEqual(before);
  });

  it("cannot delete the other hosts' snapshots with a rollup", async () => {
    for (const rollup of ["all", "sub"]) {
      const h = natsHeaders();
      h.set("Nats-Rollup", rollup);
      await expect(
        jetstream(asB).publish(`$KV.${HOSTS_BUCKET}.host-b`, "{}", { headers: h, timeout: 2_000 }),
      ).rejects.toThrow(/rollup/i);
    }
    const hostA = await fjs.hosts.get("host-a");
    expect(hostA?.operation).toBe("PUT");
    expect(decode(HostSnapshot, hostA?.value ?? new Uint8Array()).ok).toBe(true);
  });

  it("a pre-published record id does not suppress the real record", async () => {
    // A quarantined container of host-a, released by hand: its record id is deterministic.
    const key = containerKey("host-a", victim.id);
    const revision = await fjs.ledger.put(
      key,
      encode(
        ledgerEntry({
          host: "host-a",
          containerId: victim.id,
          quarantine: { since: new Date().toISOString(), reason: "budget" },
        }),
      ),
    );
    // host-b publishes, on its own subject, every message id that record could be given.
    const plainId = `release:${key}:${revision}`;
    const h = natsHeaders();
    h.set("Nats-Msg-Id", plainId);
    await jetstream(asB).publish(`fleetheal.v1.evt.host-b.${"b".repeat(64)}.start`, "{}", {
      headers: h,
    });
    const res = await fetch(`${fleet.gateway.url}/containers/host-a/${victim.id}/release`, {
      method: "POST",
      headers: admin,
    });
    expect(res.status).toBe(200);
    const stored = await fjs.jsm.streams.getMessage(EVENTS_STREAM, {
      last_by_subj: `fleetheal.v1.act.host-a.${victim.id}.released`,
    });
    expect(stored?.json<{ id: string }>().id).toBe(plainId);
  });
});

describe("message ids", () => {
  it("of host-a's events cannot be computed from what the events say", async () => {
    // Host-b could otherwise publish host-a's next event id first and have the event dropped as
    // a duplicate: the id of an event is its host, container, Docker's time and action.
    const stored = await fjs.jsm.streams.getMessage(EVENTS_STREAM, {
      last_by_subj: `fleetheal.v1.evt.host-a.${victim.id}.start`,
    });
    const id = stored?.json<{ id: string }>().id;
    expect(id).toMatch(/^host-a:/);
    expect(stored?.header.get("Nats-Msg-Id")).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(stored?.header.get("Nats-Msg-Id")).not.toContain(id);
  });
});

describe("the reader's credentials", () => {
  it("cannot take, acknowledge or reconfigure the handlers' durable, nor feed a command subject", async () => {
    const before = await protectedState();
    const from = fleet.host("host-a").docker.events.length;
    const jsm = await jetstreamManager(asReader);
    // What it names is its own account's mirror: the handlers' durable is not in its reach.
    await expect(jsm.consumers.info(EVENTS_STREAM, "fleetheal-heal")).rejects.toThrow(/not found/i);
    await expect(
      jetstream(asReader)
        .consumers.get(EVENTS_STREAM, "fleetheal-heal")
        .then((c) => c.next({ expires: 1_000 })),
    ).rejects.toThrow(/not found/i);
    // A durable of the same name, and a push consumer delivering into host-a's command subject
    // with its agent's queue group: both live in READER, where no agent listens.
    await jsm.consumers.add(EVENTS_STREAM, {
      durable_name: "fleetheal-heal",
      ack_policy: "explicit" as never,
      max_ack_pending: 1,
    });
    await jsm.consumers.add(EVENTS_STREAM, {
      durable_name: "attack-push",
      deliver_subject: "fleetheal.v1.cmd.host-a.restart",
      deliver_group: "fleetheal-agent-host-a",
      ack_policy: "none" as never,
    });
    await expect(
      asReader.request(`$JS.fleet.API.CONSUMER.CREATE.${EVENTS_STREAM}`, "{}", { timeout: 2_000 }),
    ).rejects.toThrow(/permissions violation/i);
    await expect(jsm.streams.add({ name: "EVIL", subjects: ["evil.>"] })).rejects.toThrow(
      /permissions violation/i,
    );
    await commandsDrained();
    expect(victimActions(from)).not.toContain("restart");
    expect(await protectedState()).toEqual(before);
  });

  it("follows the fleet through its mirrors", async () => {
    const hosts = await new Kvm(asReader).open(HOSTS_BUCKET);
    await waitFor(async () => (await hosts.get("host-a"))?.operation === "PUT", {
      timeoutMs: 10_000,
      message: "the reader's mirror never had host-a's snapshot",
    });
    const events = await jetstream(asReader).consumers.get(EVENTS_STREAM, {
      filter_subjects: `fleetheal.v1.act.host-a.${victim.id}.released`,
    });
    expect((await events.next({ expires: 5_000 }))?.subject).toMatch(/released$/);
  });
});

describe("healing after every attack", () => {
  it("heals an unhealthy container once on each host, and the durable delivered everything", async () => {
    for (const id of ["host-a", "host-b"]) {
      const host = fleet.host(id);
      const c = await runTestContainer(host.engine, {
        name: `heal-after-${id}`,
        labels: { autoheal: "true", "autoheal.backoff.initial": "0" },
      });
      const from = host.docker.events.length;
      await healedOnce(host.engine, host.docker, c.id, `${id}'s agent`, 30_000);
      expect(
        host.docker.events.slice(from).filter((e) => e.id === c.id && e.action === "restart"),
      ).toHaveLength(1);
    }
    const heal = await fjs.jsm.consumers.info(EVENTS_STREAM, "fleetheal-heal");
    await waitFor(
      async () => (await fjs.jsm.consumers.info(EVENTS_STREAM, "fleetheal-heal")).num_pending === 0,
      {
        timeoutMs: 15_000,
        message: () => `the durable kept messages pending: ${JSON.stringify(heal)}`,
      },
    );
  });
});

describe("the roles' own permissions", () => {
  it("were never refused anything: only the test's own connections were", async () => {
    const log = await readFile(fleet.nats.server.logFile, "utf8");
    const violations = log.split("\n").filter((l) => /violation/i.test(l));
    // The attacks above provoked some, on their own connections.
    expect(violations.some((l) => l.includes("test-as-"))).toBe(true);
    expect(violations.filter((l) => !l.includes("test-as-"))).toEqual([]);
  });
});

describe("opening the fleet's streams as a user that may not create them", () => {
  it("waits, saying so, until the handler's user has created them", async () => {
    await using nats = await startAccountsNats(["host-a"]);
    const lines: string[] = [];
    const record = (_fields: unknown, msg: string) => {
      lines.push(msg);
    };
    const log = { warn: record, info: record } as unknown as Logger;
    let opened = false;
    const opening = openFleetJetStream(await nats.connect({ user: "gateway" }), undefined, 1, {
      log,
      retryMs: 100,
    }).then((fjs) => {
      opened = true;
      return fjs;
    });
    await waitFor(() => lines.some((l) => /may not create it; waiting/.test(l)), {
      timeoutMs: 10_000,
      message: () => `the gateway's user did not say it waits: ${JSON.stringify(lines)}`,
    });
    expect(opened).toBe(false);
    await openFleetJetStream(await nats.connect({ user: "handler" }));
    const gatewayFjs = await opening;
    expect(lines.some((l) => /exists now; opening it/.test(l))).toBe(true);
    // What it opened works, within its permissions.
    await gatewayFjs.ledger.put(containerKey("host-a", "c".repeat(64)), encode({ probe: true }));
  });
});
