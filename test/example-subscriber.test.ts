// The example subscriber (examples/subscriber.ts) against a real nats-server with fleetheal's
// users, run exactly as examples/README.md says: as the read-only `reader`, with its env file.
// Also checks that the JetStream limits docs/asyncapi.yaml states are those fleetheal creates.

import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { type JetStreamClient, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import YAML from "yaml";
import { openFleetJetStream } from "../common/jetstream-resources.js";
import {
  type FleetNatsUser,
  fleetNatsUsers,
  renderAuthorization,
  renderEnvFile,
} from "../common/nats-permissions.js";
import {
  CONTAINER_EVENT_TYPE,
  type ContainerAction,
  type ContainerEvent,
  containerEventId,
  encode,
  eventSubject,
  REMEDIATION_TYPE,
  type RemediationPhase,
  type RemediationRecord,
  remediationSubject,
} from "../contracts/index.js";
import { REPO } from "./support/fleetheal.js";
import { type NatsServerHandle, startNatsServer } from "./support/nats-server.js";
import { type ManagedProcess, startProcess } from "./support/process.js";

const HOST = "host-a";
const CID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const WAIT_MS = 30_000;

let dir: string;
let nats: NatsServerHandle;
let users: FleetNatsUser[];
let readerEnvFile: string;
/** As the handler (may publish remediation records) and as host-a's agent (its events). */
let asHandler: NatsConnection;
let asAgent: NatsConnection;
let handlerJs: JetStreamClient;
let agentJs: JetStreamClient;
const cleanups: Array<() => Promise<unknown>> = [];

async function connectAs(name: string): Promise<NatsConnection> {
  const user = users.find((u) => u.user === name);
  if (!user) throw new Error(`no user ${name}`);
  const pass = (await readFile(path.join(dir, `${name}.password`), "utf8")).trim();
  const nc = await connect({
    servers: nats.url,
    name: `test-as-${name}`,
    user: name,
    pass,
    inboxPrefix: user.inboxPrefix,
  });
  cleanups.push(() => nc.close());
  return nc;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "fleetheal-subscriber-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  // The files `fleetheal nats-auth` writes, made with the same functions.
  users = fleetNatsUsers([HOST]);
  const passwords: Record<string, string> = {};
  for (const u of users) {
    passwords[u.user] = randomBytes(24).toString("base64url");
    await writeFile(path.join(dir, `${u.user}.password`), `${passwords[u.user]}\n`);
  }
  await writeFile(path.join(dir, "fleetheal-auth.conf"), renderAuthorization(users, passwords));
  const reader = users.find((u) => u.role === "reader") as FleetNatsUser;
  readerEnvFile = path.join(dir, "reader.env");
  await writeFile(readerEnvFile, renderEnvFile(reader, path.join(dir, "reader.password")));
  const conf = path.join(dir, "nats-server.conf");
  await writeFile(conf, 'include "./fleetheal-auth.conf"\n');
  nats = await startNatsServer({ configFile: conf });
  cleanups.push(async () => nats[Symbol.asyncDispose]());

  asHandler = await connectAs("handler");
  // The handler is the role that creates the streams and buckets.
  await openFleetJetStream(asHandler);
  handlerJs = jetstream(asHandler);
  asAgent = await connectAs(`agent-${HOST}`);
  agentJs = jetstream(asAgent);
});

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
});

function record(n: number, phase: RemediationPhase): RemediationRecord {
  return {
    type: REMEDIATION_TYPE,
    v: 1,
    id: `test:${n}:${phase}`,
    remediationId: `test:${n}`,
    host: HOST,
    containerId: CID,
    containerName: "api",
    phase,
    code: `code-${n}`,
    message: `record ${n}`,
    actor: "test",
    at: new Date().toISOString(),
    dryRun: false,
  };
}

function event(action: ContainerAction, timeNano: string, host = HOST): ContainerEvent {
  return {
    type: CONTAINER_EVENT_TYPE,
    v: 1,
    id: containerEventId(host, CID, timeNano, action),
    host,
    action,
    timeNano,
    time: new Date(Number(BigInt(timeNano) / 1_000_000n)).toISOString(),
    container: { id: CID, name: "api", image: "busybox", labels: {}, optedIn: true },
    source: "docker",
  };
}

async function publishRecord(r: RemediationRecord): Promise<{ duplicate: boolean }> {
  return handlerJs.publish(remediationSubject(r.host, r.containerId, r.phase), encode(r), {
    msgID: r.id,
  });
}

async function startSubscriber(env: Record<string, string> = {}): Promise<ManagedProcess> {
  const proc = await startProcess({
    name: "subscriber",
    command: process.execPath,
    // The command examples/README.md gives.
    args: ["--env-file", readerEnvFile, "--import", "tsx", "examples/subscriber.ts"],
    env: { FLEETHEAL_NATS_URL: nats.url, REPLAY_MINUTES: "5", ...env },
    cwd: REPO,
  });
  cleanups.push(async () => proc[Symbol.asyncDispose]());
  return proc;
}

describe("examples/subscriber.ts", () => {
  it("replays stored remediation records, then follows events and records live, once each", async () => {
    await publishRecord(record(1, "decided"));
    await publishRecord(record(1, "restarted"));

    const sub = await startSubscriber();
    await sub.waitForLine(
      (l) => l.startsWith("replayed 2 remediation records; following"),
      WAIT_MS,
      "the replay of both stored records",
    );
    const replayed = sub.lines.filter((l) => l.startsWith("[replay]"));
    expect(replayed).toHaveLength(2);
    expect(replayed[0]).toMatch(/ act host-a api 0123456789ab decided code-1: record 1$/);
    expect(replayed[1]).toMatch(/ act host-a api 0123456789ab restarted code-1: record 1$/);

    // Live: an event from the agent, then a record published twice with one id, as a publisher
    // retrying after a lost ack does: the stream keeps one, a live subscriber receives both.
    const unhealthy = event("unhealthy", "1736935094512000000");
    await agentJs.publish(eventSubject(HOST, CID, "unhealthy"), encode(unhealthy), {
      msgID: unhealthy.id,
    });
    const retried = record(2, "failed");
    expect((await publishRecord(retried)).duplicate).toBe(false);
    expect((await publishRecord(retried)).duplicate).toBe(true);
    // Malformed, and one that names another host than its subject's: both reported and skipped.
    asAgent.publish(eventSubject(HOST, CID, "start"), "{not json");
    asAgent.publish(
      eventSubject(HOST, CID, "die"),
      encode(event("die", "1736935094600000000", "host-b")),
    );
    // The last one, after the others on the same connection and subscription.
    const marker = record(3, "released");
    await publishRecord(marker);

    await sub.waitForLine((l) => l.includes(" released code-3: record 3"), WAIT_MS, "the marker");
    await sub.waitForLine(
      (l) => l.startsWith(`skipped ${eventSubject(HOST, CID, "die")}`),
      WAIT_MS,
      "the event that lies about its host",
    );
    const live = sub.lines.filter((l) => l.startsWith("[live]"));
    expect(live).toEqual([
      expect.stringMatching(/ evt host-a api 0123456789ab unhealthy source=docker$/),
      expect.stringMatching(/ act host-a api 0123456789ab failed code-2: record 2$/),
      expect.stringMatching(/ act host-a api 0123456789ab released code-3: record 3$/),
    ]);
    expect(sub.lines).toContainEqual(
      expect.stringMatching(
        /^skipped fleetheal\.v1\.evt\.host-a\.\w+\.start: message is not valid JSON/,
      ),
    );

    const exit = await sub.stop();
    expect(exit.code).toBe(0);
    // The reader's permissions were enough for everything the example did.
    const log = await readFile(nats.logFile, "utf8");
    expect(log.split("\n").filter((l) => /violation/i.test(l) && l.includes('"reader"'))).toEqual(
      [],
    );
  });

  it("replays nothing with REPLAY_MINUTES=0, and follows one host with FILTER_HOST", async () => {
    const sub = await startSubscriber({ REPLAY_MINUTES: "0", FILTER_HOST: HOST });
    await sub.waitForLine(
      (l) => l.startsWith("replayed 0 remediation records; following fleetheal.v1.evt.host-a.>"),
      WAIT_MS,
      "the start of the live feed",
    );
    const marker = record(4, "skipped");
    await publishRecord(marker);
    await sub.waitForLine((l) => l.includes(" skipped code-4: record 4"), WAIT_MS, "a live record");
    expect(sub.lines.filter((l) => l.startsWith("[replay]"))).toEqual([]);
    expect((await sub.stop()).code).toBe(0);
  });

  it("refuses a bad setting with a message and exit code 1", async () => {
    const sub = await startSubscriber({ REPLAY_MINUTES: "soon" });
    const status = await sub.exited;
    expect(status.code).toBe(1);
    expect(sub.lines).toContainEqual(expect.stringContaining("REPLAY_MINUTES must be a number"));
  });
});

describe("docs/asyncapi.yaml x-fleetheal-jetstream", () => {
  it("states the limits of the streams and buckets that fleetheal creates", async () => {
    const doc = YAML.parse(await readFile(path.join(REPO, "docs", "asyncapi.yaml"), "utf8"));
    const documented = doc["x-fleetheal-jetstream"];
    const jsm = await jetstreamManager(asHandler);
    const seconds = (ns: number) => Math.round(ns / 1e9);
    for (const [name, stream] of Object.entries<Record<string, unknown>>(documented.streams)) {
      const { config } = await jsm.streams.info(name);
      expect(
        {
          subjects: config.subjects,
          retention: config.retention,
          discard: config.discard,
          storage: config.storage,
          maxAgeSeconds: seconds(config.max_age),
          maxBytes: config.max_bytes,
          duplicateWindowSeconds: seconds(config.duplicate_window),
        },
        name,
      ).toEqual({
        subjects: stream.subjects,
        retention: stream.retention,
        discard: stream.discard,
        storage: stream.storage,
        maxAgeSeconds: stream.maxAgeSeconds,
        maxBytes: stream.maxBytes,
        duplicateWindowSeconds: stream.duplicateWindowSeconds,
      });
    }
    for (const [bucket, kv] of Object.entries<Record<string, unknown>>(documented.kv)) {
      const { config } = await jsm.streams.info(kv.stream as string);
      expect(config.name, bucket).toBe(`KV_${bucket}`);
      expect(config.max_msgs_per_subject, `${bucket} history`).toBe(kv.history);
      expect(seconds(config.max_age), `${bucket} ttl`).toBe(kv.ttlSeconds ?? 0);
    }
  });
});
