// Least privilege on NATS, on real parts: a nats-server running the authorization that
// `fleetheal nats-auth` generates, a real agent (host-a, one dockerd), a handler and the gateway
// started through the CLI with the generated env files. It heals under those users; host-a's user
// cannot act as host-b, and the read-only reader cannot command anyone. Docker's own event stream
// and the stream's content are the witnesses, not only the errors the clients see.

import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { Msg, NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AUTH_FILE, natsAuthCommand } from "../cli/nats-auth.js";
import { openFleetJetStream } from "../common/jetstream-resources.js";
import type { Logger } from "../common/logger.js";
import {
  ContainerEvent,
  commandSubject,
  decode,
  EVENTS_STREAM,
  encode,
  HOSTS_BUCKET,
  parseEventSubject,
  RESTART_COMMAND_TYPE,
} from "../contracts/index.js";
import { HealthReport } from "../gateway/health-report.js";
import { signedCommand } from "./support/command-signing.js";
import {
  type DockerEventRecorder,
  makeUnhealthy,
  recordDockerEvents,
  runTestContainer,
  waitForHealth,
} from "./support/containers.js";
import { type DockerEngine, startDockerEngines } from "./support/dockerd.js";
import { type FleetProcess, gatewayUrl, startRole } from "./support/fleetheal.js";
import { type NatsServerHandle, startNatsServer } from "./support/nats-server.js";
import { waitFor } from "./support/wait.js";

const cleanups: (() => Promise<void>)[] = [];
let authDir: string;
let confPath: string;
let nats: NatsServerHandle;
let engine: DockerEngine;
let recorder: DockerEventRecorder;
let gateway: FleetProcess;
/** Connections as the generated users. */
let asHostA: NatsConnection;
let asHandler: NatsConnection;
let asReader: NatsConnection;
let adminJsm: JetStreamManager;
const readerSeen: Msg[] = [];

/** The variables of `<user>.env`. */
async function envOf(user: string): Promise<Record<string, string>> {
  const text = await readFile(path.join(authDir, `${user}.env`), "utf8");
  const env: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line);
    if (m) env[m[1] as string] = m[2] as string;
  }
  return env;
}

/** Connects as a generated user, exactly as its env file says. */
async function connectAs(user: string, server = nats): Promise<NatsConnection> {
  const env = await envOf(user);
  const password = (await readFile(env.FLEETHEAL_NATS_PASSWORD_FILE as string, "utf8")).trim();
  const nc = await connect({
    servers: server.url,
    name: `test-as-${user}`,
    user: env.FLEETHEAL_NATS_USER as string,
    pass: password,
    inboxPrefix: env.FLEETHEAL_NATS_INBOX_PREFIX as string,
  });
  cleanups.push(() => nc.close());
  return nc;
}

/**
 * A restart for host-a as the control plane signs it: only NATS permissions can stop one, so a
 * test that it is stopped tests the permissions, not the signature.
 */
function restartCommand(containerId: string, commandId: string, host = "host-a") {
  return signedCommand({
    type: RESTART_COMMAND_TYPE,
    v: 1,
    commandId,
    host,
    containerId,
    reason: "permissions test",
    requestedBy: "test",
  });
}

/** Resolves with the error a promise rejected with, or fails when it resolved. */
async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected a rejection");
}

const ADMIN_TOKEN = "permissions-test-admin-token";
const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

beforeAll(async () => {
  authDir = await mkdtemp(path.join(os.tmpdir(), "fleetheal-nats-auth-"));
  cleanups.push(() => rm(authDir, { recursive: true, force: true }));
  const errors: string[] = [];
  const code = natsAuthCommand(["--hosts", "host-a,host-b", "--out", authDir], {
    out: () => {},
    err: (line) => errors.push(line),
  });
  expect(errors).toEqual([]);
  expect(code).toBe(0);
  confPath = path.join(authDir, "nats-server.conf");
  await writeFile(confPath, `include "${AUTH_FILE}"\n`);
  nats = await startNatsServer({ configFile: confPath });
  cleanups.push(async () => nats[Symbol.asyncDispose]());

  const engines = await startDockerEngines(1, { namePrefix: "perm" });
  cleanups.push(async () => engines[Symbol.asyncDispose]());
  engine = engines.engines[0] as DockerEngine;
  recorder = await recordDockerEvents(engine);
  cleanups.push(async () => recorder.close());

  const roles: FleetProcess[] = [];
  cleanups.push(async () => {
    await Promise.all(roles.map((r) => r[Symbol.asyncDispose]()));
  });
  const url = { FLEETHEAL_NATS_URL: nats.url };
  // The handler first: it is the role that may create the streams and buckets (the agent and
  // gateway would wait for it; "waits for a stream it may not create" below covers that).
  roles.push(await startRole("handler", "handler", { ...url, ...(await envOf("handler")) }));
  gateway = await startRole("gateway", "gateway", {
    ...url,
    ...(await envOf("gateway")),
    FLEETHEAL_GATEWAY_PORT: "0",
    FLEETHEAL_GATEWAY_ADMIN_TOKEN: ADMIN_TOKEN,
  });
  roles.push(gateway);
  roles.push(
    await startRole("agent", "agent-host-a", {
      ...url,
      ...(await envOf("agent-host-a")),
      DOCKER_HOST: engine.dockerHost,
      FLEETHEAL_HEARTBEAT_MS: "500",
    }),
  );

  asHostA = await connectAs("agent-host-a");
  asHandler = await connectAs("handler");
  asReader = await connectAs("reader");
  adminJsm = await jetstreamManager(asHandler);
  asReader.subscribe("fleetheal.v1.evt.>", {
    callback: (_e, m) => {
      readerSeen.push(m);
    },
  });
  await asReader.flush();
}, 120_000);

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch((e) => console.error(e));
});

describe("per-user NATS permissions generated by `fleetheal nats-auth`", () => {
  it("heals an unhealthy opted-in container with every role under its own user", async () => {
    const c = await runTestContainer(engine, {
      name: "heal-me",
      labels: { autoheal: "true", "autoheal.backoff.initial": "0" },
    });
    await waitForHealth(engine, c.id, "healthy", 20_000);
    const before = recorder.events.length;
    await makeUnhealthy(engine, c.id);
    const unhealthy = await recorder.waitFor(
      (e) =>
        e.id === c.id &&
        e.action === "health_status: unhealthy" &&
        recorder.events.indexOf(e) >= before,
      20_000,
      "container never turned unhealthy",
    );
    await recorder.waitFor(
      (e) => e.id === c.id && e.action === "kill" && e.timeNano > unhealthy.timeNano,
      20_000,
      "fleetheal did not restart the container under the generated users",
    );
    await waitForHealth(engine, c.id, "healthy", 20_000);
    expect(recorder.count((e) => e.id === c.id && e.action === "restart")).toBe(1);

    // The gateway, under its user, sees host-a up.
    await waitFor(
      async () => {
        const res = await fetch(`${gatewayUrl(gateway)}/health`);
        const report = HealthReport.parse(await res.json());
        return report.hosts.find((h) => h.id === "host-a" && h.status === "up");
      },
      { timeoutMs: 20_000, message: "the gateway never reported host-a up" },
    );

    // The reader followed it live, and can replay it from the stream with an ordered consumer.
    const live = await waitFor(
      () =>
        readerSeen.find((m) => {
          const parts = parseEventSubject(m.subject);
          return parts?.containerId === c.id && parts.action === "unhealthy";
        }),
      { timeoutMs: 10_000, message: "the reader did not see the unhealthy event live" },
    );
    const event = decode(ContainerEvent, live.data);
    expect(event.ok).toBe(true);
    const consumer = await jetstream(asReader).consumers.get(EVENTS_STREAM, {
      // A string, not an array: nats-server 2.9 takes one filter subject.
      filter_subjects: `fleetheal.v1.evt.host-a.${c.id}.unhealthy`,
    });
    const replayed = await consumer.next({ expires: 5_000 });
    expect(replayed?.subject).toBe(`fleetheal.v1.evt.host-a.${c.id}.unhealthy`);
  });

  it("host-a's user cannot publish events or a snapshot as host-b", async () => {
    const fakeId = "b".repeat(64);
    const subject = `fleetheal.v1.evt.host-b.${fakeId}.unhealthy`;
    const err = await rejection(
      jetstream(asHostA).publish(subject, "{}", { msgID: "fake", timeout: 3_000 }),
    );
    expect(err.message).toMatch(/permissions violation/i);
    // A plain publish is dropped by the server too.
    asHostA.publish(subject, "{}");
    asHostA.publish("fleetheal.v1.host.host-b.snapshot", "{}");
    // The server checks publish permissions on receipt: once the flush's round trip is done,
    // both were dropped or stored.
    await asHostA.flush();
    const found = await adminJsm.streams
      .getMessage(EVENTS_STREAM, { last_by_subj: subject })
      .catch(() => null);
    expect(found).toBeNull();
    const { state } = await adminJsm.streams.info(EVENTS_STREAM, {
      subjects_filter: "fleetheal.v1.evt.host-b.>",
    });
    expect(state.subjects ?? {}).toEqual({});
  });

  it("host-a's user cannot put host-b's snapshot in KV", async () => {
    const hostsOfA = await new Kvm(asHostA).open(HOSTS_BUCKET);
    const err = await rejection(hostsOfA.put("host-b", "{}"));
    expect(err.message).toMatch(/permissions violation/i);
    const hosts = await new Kvm(asHandler).open(HOSTS_BUCKET);
    expect(await hosts.get("host-b")).toBeNull();
    // Its own key, the one its agent writes, is there.
    expect((await hosts.get("host-a"))?.operation).toBe("PUT");
  });

  it("host-a's user cannot receive host-b's commands", async () => {
    const received: Msg[] = [];
    const sub = asHostA.subscribe("fleetheal.v1.cmd.host-b.>", {
      callback: (error, m) => {
        if (!error) received.push(m);
      },
    });
    await asHostA.flush();
    // No agent of host-b runs, and host-a's subscription was refused: nobody answers.
    const toB = restartCommand("c".repeat(64), "perm-test-b-1", "host-b");
    const err = await rejection(
      asHandler.request(commandSubject("host-b", "restart"), toB.payload, {
        timeout: 2_000,
        headers: toB.headers,
      }),
    );
    // "No responders": the server delivered the command to no subscriber, host-a's included.
    expect(err.message).toMatch(/no responders|timeout/i);
    expect(received).toEqual([]);
    sub.unsubscribe();
  });

  it("host-a's user cannot create or delete a stream", async () => {
    const jsm = await jetstreamManager(asHostA);
    const del = await rejection(jsm.streams.delete(EVENTS_STREAM));
    expect(del.message).toMatch(/permissions violation/i);
    const add = await rejection(jsm.streams.add({ name: "EVIL", subjects: ["evil.>"] }));
    expect(add.message).toMatch(/permissions violation/i);
    expect((await adminJsm.streams.info(EVENTS_STREAM)).config.name).toBe(EVENTS_STREAM);
    const jsz = await (await fetch(`${nats.monitorUrl}/jsz?accounts=true&streams=true`)).text();
    expect(jsz).toContain(EVENTS_STREAM);
    expect(jsz).not.toContain("EVIL");
  });

  it("the reader cannot command an agent; a restart through the gateway still works", async () => {
    const c = await runTestContainer(engine, { name: "leave-me", labels: { autoheal: "true" } });
    await waitForHealth(engine, c.id, "healthy", 20_000);
    const restarts = () =>
      recorder.count((e) => e.id === c.id && (e.action === "kill" || e.action === "restart"));

    const first = restartCommand(c.id, "perm-test-reader-1");
    const err = await rejection(
      asReader.request(commandSubject("host-a", "restart"), first.payload, {
        timeout: 3_000,
        headers: first.headers,
      }),
    );
    expect(err.message).toMatch(/permissions violation/i);
    const second = restartCommand(c.id, "perm-test-reader-2");
    asReader.publish(commandSubject("host-a", "restart"), second.payload, {
      headers: second.headers,
    });
    await asReader.flush();
    expect(restarts()).toBe(0);

    // The control: a restart through the gateway, under the gateway's user, works.
    const res = await fetch(`${gatewayUrl(gateway)}/containers/host-a/${c.id}/restart`, {
      method: "POST",
      headers: admin,
    });
    expect(res.status).toBe(200);
    await recorder.waitFor(
      (e) => e.id === c.id && e.action === "restart",
      20_000,
      "the gateway's command did not restart the container",
    );
    // The agent serves commands in the order they reach it: had either of the reader's got
    // through, it would have restarted the container before the gateway's did.
    await waitForHealth(engine, c.id, "healthy", 20_000);
    expect(recorder.count((e) => e.id === c.id && e.action === "restart")).toBe(1);
  });

  it("lets the gateway read history, pause and resume under its user", async () => {
    const base = gatewayUrl(gateway);
    const events = await fetch(`${base}/events?host=host-a&kind=event&since=10m`, {
      headers: admin,
    });
    expect(events.status).toBe(200);
    const body = (await events.json()) as { records: unknown[] };
    expect(body.records.length).toBeGreaterThan(0);
    for (const action of ["pause", "resume"]) {
      const res = await fetch(`${base}/${action}`, { method: "POST", headers: admin });
      expect(res.status).toBe(200);
    }
    const policy = await fetch(`${base}/policy`, { headers: admin });
    expect(policy.status).toBe(200);
  });

  it("never refused anything to the roles themselves (only to the test's own connections)", async () => {
    const log = await readFile(nats.logFile, "utf8");
    const violations = log.split("\n").filter((l) => /violation/i.test(l));
    // The tests above provoked some, on their own connections.
    expect(violations.some((l) => l.includes("test-as-"))).toBe(true);
    expect(violations.filter((l) => !l.includes("test-as-"))).toEqual([]);
  });

  it("the reader cannot delete or write to the streams", async () => {
    const jsm = await jetstreamManager(asReader);
    expect((await rejection(jsm.streams.delete(EVENTS_STREAM))).message).toMatch(
      /permissions violation/i,
    );
    expect((await rejection(jsm.streams.purge(EVENTS_STREAM))).message).toMatch(
      /permissions violation/i,
    );
    // Nor the handlers' durable consumer, which would stop healing.
    expect(
      (await rejection(jsm.consumers.delete(EVENTS_STREAM, "fleetheal-heal"))).message,
    ).toMatch(/permissions violation/i);
    expect((await adminJsm.consumers.info(EVENTS_STREAM, "fleetheal-heal")).name).toBe(
      "fleetheal-heal",
    );
    const hosts = await new Kvm(asReader).open(HOSTS_BUCKET);
    expect((await hosts.get("host-a"))?.operation).toBe("PUT");
    expect((await rejection(hosts.put("host-a", "{}"))).message).toMatch(/permissions violation/i);
  });
});

describe("opening fleetheal's streams as a user that may not create them", () => {
  it("waits, saying so, until the handler's user has created them", async () => {
    const server = await startNatsServer({ configFile: confPath });
    try {
      const lines: string[] = [];
      const record = (_fields: unknown, msg: string) => {
        lines.push(msg);
      };
      const log = { warn: record, info: record } as unknown as Logger;
      const agentNc = await connectAs("agent-host-a", server);
      let opened = false;
      const opening = openFleetJetStream(agentNc, undefined, 1, { log, retryMs: 100 }).then(
        (fjs) => {
          opened = true;
          return fjs;
        },
      );
      await waitFor(() => lines.some((l) => /may not create it; waiting/.test(l)), {
        timeoutMs: 10_000,
        message: () => `the agent's user did not say it waits: ${JSON.stringify(lines)}`,
      });
      expect(opened).toBe(false);

      await openFleetJetStream(await connectAs("handler", server));
      const fjs = await opening;
      expect(lines.some((l) => /exists now; opening it/.test(l))).toBe(true);
      // What it opened works, within its permissions.
      await fjs.hosts.put("host-a", encode({ probe: true }));
      expect((await fjs.hosts.get("host-a"))?.operation).toBe("PUT");
    } finally {
      await server[Symbol.asyncDispose]();
    }
  });
});
