// The example subscriber (examples/subscriber.ts) against a real nats-server with the fleet's
// accounts, run exactly as examples/README.md says: as the `reader`, with its env file. The
// reader lives in the READER account and sees only the mirrors the handler created there; the
// agent of host-a publishes events and its snapshot through its account's service imports, the
// handler publishes records. Also checks what the reader's user cannot do (reach FLEET), and that
// the JetStream limits docs/asyncapi.yaml states are those fleetheal creates.

import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import {
  AckPolicy,
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
} from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { Msg, NatsConnection } from "@nats-io/nats-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import YAML from "yaml";
import { envFile } from "../common/fleet-credentials.js";
import { openFleetJetStream } from "../common/jetstream-resources.js";
import { createLogger } from "../common/logger.js";
import { FLEET_API_PREFIX, roleInboxPrefix } from "../common/nats-permissions.js";
import { ensureReaderMirrors } from "../common/reader-mirrors.js";
import {
  type ContainerAction,
  type ContainerEvent,
  commandSubject,
  EVENTS_STREAM,
  encode,
  eventSubject,
  HOSTS_BUCKET,
  type RemediationPhase,
  type RemediationRecord,
  remediationSubject,
} from "../contracts/index.js";
import { containerEvent, remediationRecord } from "./support/fixtures.js";
import { createHostEventStreams } from "./support/fleet.js";
import { type AccountsNats, startAccountsNats } from "./support/fleet-nats.js";
import { REPO } from "./support/fleetheal.js";
import { type ManagedProcess, startProcess } from "./support/process.js";
import { waitFor } from "./support/wait.js";

const HOST = "host-a";
const CID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const WAIT_MS = 30_000;
/** The handlers' durable consumer on FLEET's events stream. */
const HEAL_DURABLE = "fleetheal-heal";

let nats: AccountsNats;
let readerEnvFile: string;
/** As the handler (streams, mirrors, records), host-a's agent (its events) and the reader. */
let asHandler: NatsConnection;
let asAgent: NatsConnection;
let asReader: NatsConnection;
let handlerJs: JetStreamClient;
let handlerJsm: JetStreamManager;
let agentJs: JetStreamClient;
let readerJsm: JetStreamManager;
const cleanups: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  nats = await startAccountsNats([HOST]);
  cleanups.push(async () => nats[Symbol.asyncDispose]());
  readerEnvFile = envFile(nats.credentials.dir, "reader");

  // As the handler role does at start: the fleet's streams, host-a's events stream (its keeper
  // makes it once host-a writes its snapshot), then the readers' mirrors.
  asHandler = await nats.connect({ user: "handler" });
  await openFleetJetStream(asHandler);
  await createHostEventStreams(asHandler, [HOST]);
  const log = createLogger("test", { FLEETHEAL_LOG_LEVEL: "silent" });
  expect(await ensureReaderMirrors(asHandler, log)).toBe("created");
  handlerJs = jetstream(asHandler);
  handlerJsm = await jetstreamManager(asHandler);
  asAgent = await nats.connect({ user: `agent-${HOST}` });
  agentJs = jetstream(asAgent);
  asReader = await nats.connect({ user: "reader" });
  readerJsm = await jetstreamManager(asReader);
});

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
});

function record(n: number, phase: RemediationPhase, host = HOST): RemediationRecord {
  return remediationRecord({
    id: `test:${n}:${phase}`,
    remediationId: `test:${n}`,
    host,
    containerId: CID,
    containerName: "api",
    phase,
    code: `code-${n}`,
    message: `record ${n}`,
  });
}

function event(action: ContainerAction, timeNano: string, host = HOST): ContainerEvent {
  return containerEvent({ host, action, timeNano, container: { id: CID, name: "api" } });
}

async function publishRecord(r: RemediationRecord): Promise<{ duplicate: boolean }> {
  return handlerJs.publish(remediationSubject(r.host, r.containerId, r.phase), encode(r), {
    msgID: r.id,
  });
}

/** As host-a's agent does: a JetStream publish through its account's service import. */
async function publishEvent(e: ContainerEvent): Promise<void> {
  await agentJs.publish(eventSubject(e.host, CID, e.action), encode(e), { msgID: e.id });
}

/** Waits until READER's mirror holds everything FLEET's events stream holds now. */
async function mirrored(): Promise<void> {
  const { last_seq } = (await handlerJsm.streams.info(EVENTS_STREAM)).state;
  await waitFor(
    async () => (await readerJsm.streams.info(EVENTS_STREAM)).state.last_seq >= last_seq,
    { timeoutMs: WAIT_MS, message: `the mirror did not reach sequence ${last_seq}` },
  );
}

/** The server's log lines of permission violations by the reader's user. */
async function readerViolations(): Promise<string[]> {
  const log = await readFile(nats.server.logFile, "utf8");
  const key = nats.credentials.state.reader;
  return log.split("\n").filter((l) => /violation/i.test(l) && l.includes(key));
}

async function startSubscriber(env: Record<string, string> = {}): Promise<ManagedProcess> {
  const proc = await startProcess({
    name: "subscriber",
    command: process.execPath,
    // The command examples/README.md gives.
    args: ["--env-file", readerEnvFile, "--import", "tsx", "examples/subscriber.ts"],
    env: { FLEETHEAL_NATS_URL: nats.server.url, REPLAY_MINUTES: "5", ...env },
    cwd: REPO,
  });
  cleanups.push(async () => proc[Symbol.asyncDispose]());
  return proc;
}

const rejection = (p: Promise<unknown>) =>
  p.then(
    () => new Error("resolved"),
    (error: unknown) => error as Error,
  );

describe("examples/subscriber.ts", () => {
  it("replays stored remediation records, then follows events and records live, once each", async () => {
    // History: an event (not replayed: the replay is of records) and two records.
    await publishEvent(event("start", "1736935094000000000"));
    await publishRecord(record(1, "decided"));
    await publishRecord(record(1, "restarted"));
    await mirrored();

    const sub = await startSubscriber();
    await sub.waitForLine(
      (l) => l.startsWith("replayed 2 remediation records; following fleetheal.v1.>"),
      WAIT_MS,
      "the replay of both stored records",
    );
    expect(sub.lines.filter((l) => l.startsWith("[replay]"))).toEqual([
      expect.stringMatching(/ act host-a api 0123456789ab decided code-1: record 1$/),
      expect.stringMatching(/ act host-a api 0123456789ab restarted code-1: record 1$/),
    ]);

    // Live: an event from the agent, then a record published twice with one id, as a publisher
    // retrying after a lost ack does: the stream keeps one copy, and so shows the example.
    await publishEvent(event("unhealthy", "1736935094512000000"));
    const retried = record(2, "failed");
    expect((await publishRecord(retried)).duplicate).toBe(false);
    expect((await publishRecord(retried)).duplicate).toBe(true);
    // Malformed, and an event and a record that name another host than their subject's: all
    // reported and skipped.
    await agentJs.publish(eventSubject(HOST, CID, "start"), "{not json");
    await agentJs.publish(
      eventSubject(HOST, CID, "die"),
      encode(event("die", "1736935094600000000", "host-b")),
    );
    await handlerJs.publish(
      remediationSubject(HOST, CID, "failed"),
      encode(record(5, "failed", "host-b")),
    );
    // The last one: the consumer delivers in stream order.
    await publishRecord(record(3, "released"));

    await sub.waitForLine((l) => l.includes(" released code-3: record 3"), WAIT_MS, "the marker");
    for (const [subject, what] of [
      [eventSubject(HOST, CID, "start"), "message is not valid JSON"],
      [eventSubject(HOST, CID, "die"), "does not match the event"],
      [remediationSubject(HOST, CID, "failed"), "does not match the record"],
    ] as const) {
      await sub.waitForLine(
        (l) => l.startsWith(`skipped ${subject}: `) && l.includes(what),
        WAIT_MS,
        `skipped ${subject}`,
      );
    }
    expect(sub.lines.filter((l) => l.startsWith("[live]"))).toEqual([
      expect.stringMatching(/ evt host-a api 0123456789ab unhealthy source=docker$/),
      expect.stringMatching(/ act host-a api 0123456789ab failed code-2: record 2$/),
      expect.stringMatching(/ act host-a api 0123456789ab released code-3: record 3$/),
    ]);

    expect((await sub.stop()).code).toBe(0);
    // The reader's permissions were enough for everything the example did.
    expect(await readerViolations()).toEqual([]);
  });

  it("replays nothing with REPLAY_MINUTES=0, and follows one host with FILTER_HOST", async () => {
    const sub = await startSubscriber({ REPLAY_MINUTES: "0", FILTER_HOST: HOST });
    await sub.waitForLine(
      (l) => l.startsWith("replayed 0 remediation records; following fleetheal.v1.*.host-a.>"),
      WAIT_MS,
      "the start of the live feed",
    );
    // Another host's record first, then host-a's event and record.
    await publishRecord(record(6, "decided", "host-b"));
    await publishEvent(event("healthy", "1736935095000000000"));
    await publishRecord(record(4, "skipped"));
    await sub.waitForLine((l) => l.includes(" skipped code-4: record 4"), WAIT_MS, "a live record");
    expect(sub.lines.filter((l) => l.startsWith("[replay]"))).toEqual([]);
    expect(sub.lines.filter((l) => l.startsWith("[live]"))).toEqual([
      expect.stringMatching(/ evt host-a api 0123456789ab healthy source=docker$/),
      expect.stringMatching(/ act host-a api 0123456789ab skipped code-4: record 4$/),
    ]);
    expect((await sub.stop()).code).toBe(0);
    expect(await readerViolations()).toEqual([]);
  });

  it("refuses a bad setting or a file that holds no NKEY seed, with a message and exit code 1", async () => {
    const bad = await startSubscriber({ REPLAY_MINUTES: "soon" });
    expect((await bad.exited).code).toBe(1);
    expect(bad.lines).toContainEqual(expect.stringContaining("REPLAY_MINUTES must be a number"));

    const notASeed = path.join(nats.server.dir, "not-a-seed.nk");
    await writeFile(notASeed, `${nats.credentials.state.reader}\n`);
    const wrongKey = await startSubscriber({ FLEETHEAL_NATS_NKEY_FILE: notASeed });
    expect((await wrongKey.exited).code).toBe(1);
    expect(wrongKey.lines).toContainEqual(
      expect.stringContaining("must hold a user NKEY seed (SU…)"),
    );
  });
});

describe("the reader's mirror of the hosts bucket", () => {
  it("reads and watches the snapshot that host-a's agent puts", async () => {
    const hosts = await new Kvm(asReader).open(HOSTS_BUCKET);
    const watch = await hosts.watch({ key: HOST });
    cleanups.push(async () => watch.stop());
    const snapshot = JSON.stringify({ host: HOST, marker: "snapshot-from-host-a" });
    // As the agent does: a plain JetStream publish of its own key, through its service import.
    await agentJs.publish(`$KV.${HOSTS_BUCKET}.${HOST}`, snapshot);
    for await (const e of watch) {
      if (e.operation === "PUT" && e.string() === snapshot) break;
    }
    expect((await hosts.get(HOST))?.string()).toBe(snapshot);
  });
});

describe("the reader's user cannot reach FLEET", () => {
  it("cannot create a stream in READER or use FLEET's JetStream API", async () => {
    expect(
      (await rejection(readerJsm.streams.add({ name: "READER_OWN", subjects: ["reader.>"] })))
        .message,
    ).toMatch(/permissions violation/i);
    for (const subject of [
      `${FLEET_API_PREFIX}.STREAM.NAMES`,
      `${FLEET_API_PREFIX}.CONSUMER.CREATE.${EVENTS_STREAM}`,
    ]) {
      expect((await rejection(asReader.request(subject, "{}"))).message, subject).toMatch(
        /permissions violation/i,
      );
    }
    // The server logged them: the checks of the example's runs above would have seen one.
    expect(await readerViolations()).toEqual(
      expect.arrayContaining([
        expect.stringContaining("$JS.API.STREAM.CREATE.READER_OWN"),
        expect.stringContaining(`${FLEET_API_PREFIX}.STREAM.NAMES`),
      ]),
    );
  });

  it("cannot see, take from or reconfigure FLEET's durable consumers", async () => {
    await publishEvent(event("stop", "1736935096000000000"));
    await handlerJsm.consumers.add(EVENTS_STREAM, {
      durable_name: HEAL_DURABLE,
      ack_policy: AckPolicy.Explicit,
      filter_subject: "fleetheal.v1.evt.>",
    });
    const before = await handlerJsm.consumers.info(EVENTS_STREAM, HEAL_DURABLE);
    expect(before.num_pending).toBeGreaterThan(0);

    // READER's stream of that name is its mirror, which has no such consumer.
    expect((await rejection(readerJsm.consumers.info(EVENTS_STREAM, HEAL_DURABLE))).message).toBe(
      "consumer not found",
    );
    // A pull from it gets no answer: nothing in READER serves that durable.
    const next = `$JS.API.CONSUMER.MSG.NEXT.${EVENTS_STREAM}.${HEAL_DURABLE}`;
    const pull = asReader.request(next, JSON.stringify({ batch: 1 }), { timeout: 1_000 });
    expect((await rejection(pull)).message).toMatch(/timeout|no responders/i);
    expect((await rejection(readerJsm.consumers.list(EVENTS_STREAM).next())).message).toMatch(
      /permissions violation/i,
    );

    const after = await handlerJsm.consumers.info(EVENTS_STREAM, HEAL_DURABLE);
    expect(after.delivered).toEqual(before.delivered);
    expect(after.num_pending).toBe(before.num_pending);
    expect(after.config.max_ack_pending).toBe(before.config.max_ack_pending);
  });

  it("delivers nothing to an agent through a consumer whose deliver subject is a command", async () => {
    const restart = commandSubject(HOST, "restart");
    const received: Msg[] = [];
    // As host-a's agent serves its commands: a queue subscription in its own account.
    asAgent.subscribe(restart, {
      queue: `fleetheal-agent-${HOST}`,
      callback: (_error, m) => {
        received.push(m);
      },
    });
    await asAgent.flush();
    await publishRecord(record(7, "decided"));
    await mirrored();
    const { state } = await readerJsm.streams.info(EVENTS_STREAM);
    expect(state.messages).toBeGreaterThan(0);

    const push = {
      ack_policy: AckPolicy.None,
      deliver_policy: DeliverPolicy.All,
      filter_subject: "fleetheal.v1.>",
    };
    await readerJsm.consumers.add(EVENTS_STREAM, {
      ...push,
      name: "to-host-a-restart",
      deliver_subject: restart,
      deliver_group: `fleetheal-agent-${HOST}`,
    });
    // The control: the same consumer delivering to the reader's own inbox delivers everything.
    const inbox = `${roleInboxPrefix("reader")}.control`;
    let controlled = 0;
    asReader.subscribe(inbox, {
      callback: () => {
        controlled++;
      },
    });
    await asReader.flush();
    await readerJsm.consumers.add(EVENTS_STREAM, {
      ...push,
      name: "to-reader-inbox",
      deliver_subject: inbox,
    });
    await waitFor(() => controlled >= state.messages, {
      timeoutMs: WAIT_MS,
      message: () => `the control consumer delivered ${controlled} of ${state.messages}`,
    });

    // No one in READER listens on a command subject, and nothing carries it to host-a.
    const info = await readerJsm.consumers.info(EVENTS_STREAM, "to-host-a-restart");
    expect(info.push_bound ?? false).toBe(false);
    expect(info.delivered.stream_seq).toBe(0);
    await asAgent.flush();
    expect(received).toEqual([]);
  });
});

describe("docs/asyncapi.yaml x-fleetheal-jetstream", () => {
  it("states the limits of the streams and buckets that fleetheal creates", async () => {
    const doc = YAML.parse(await readFile(path.join(REPO, "docs", "asyncapi.yaml"), "utf8"));
    const documented = doc["x-fleetheal-jetstream"];
    const seconds = (ns: number) => Math.round(ns / 1e9);
    for (const [name, stream] of Object.entries<Record<string, unknown>>(documented.streams)) {
      const { config } = await handlerJsm.streams.info(name);
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
      const { config } = await handlerJsm.streams.info(kv.stream as string);
      expect(config.name, bucket).toBe(`KV_${bucket}`);
      expect(config.max_msgs_per_subject, `${bucket} history`).toBe(kv.history);
      expect(seconds(config.max_age), `${bucket} ttl`).toBe(kv.ttlSeconds ?? 0);
    }
  });
});
