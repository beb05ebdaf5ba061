// Property-based fuzzing of the NATS inputs that agents and handlers accept, on real parts: a
// nats-server, one dockerd engine, a real agent and a real handler started through the CLI.
// Payloads are generated from the zod contracts (valid messages with one field replaced by
// anything), plus malformed JSON, random bytes, unicode and payloads near NATS's size limit.
// Nothing may crash; every rejection must be answered or dead-lettered, counted and logged once
// with its reason; and no opted-in container may be touched by any of it.

import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { type MsgHdrs, type NatsConnection, headers as natsHeaders } from "@nats-io/nats-core";
import { Svcm } from "@nats-io/services";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isNoResponders } from "../common/nats-errors.js";
import {
  COMMAND_SIGNATURE_HEADERS,
  COMMAND_VERBS,
  CONTAINER_COMMAND_VERBS,
  CommandReply,
  type CommandVerb,
  ContainerEvent,
  commandSubject,
  DEAD_LETTER_HEADERS,
  DLQ_STREAM,
  decode,
  encode,
  eventSubject,
  eventSubjectMismatch,
  HostSnapshot,
  RESTART_COMMAND_TYPE,
} from "../contracts/index.js";
import { testSigningKey } from "./support/command-signing.js";
import {
  type DockerEventRecorder,
  makeUnhealthy,
  runTestContainer,
  waitForHealth,
} from "./support/containers.js";
import type { DockerEngine } from "./support/dockerd.js";
import {
  containerEvent,
  inspectRequest,
  recreateCommand,
  restartCommand,
  snapshotRequest,
  stopCommand,
} from "./support/fixtures.js";
import { createHostEventStreams, type Fleet, startFleet } from "./support/fleet.js";
import type { FleetProcess } from "./support/fleetheal.js";
import { waitFor } from "./support/wait.js";

const HOST = "fz";
/** The hosts other than its own that the fuzzer's subjects name (see oddSubject). */
const OTHER_HOSTS = ["intruder", "victim"];
let fleet: Fleet;
let engine: DockerEngine;
let recorder: DockerEventRecorder;
let client: NatsConnection;
let agent: FleetProcess;
let handler: FleetProcess;
let witness: string;
/** Set when a role exits: nothing sent here may end a process. */
const exited: string[] = [];

beforeAll(async () => {
  fleet = await startFleet({ nats: "plain", hosts: [HOST], heartbeatMs: 5_000 });
  const host = fleet.host(HOST);
  ({ engine, docker: recorder, agent } = host);
  handler = fleet.handlers[0] as FleetProcess;
  for (const role of [handler, agent]) void role.exited.then(() => exited.push(role.name));
  client = await fleet.nats.connect({ name: "fuzzer" });
  // The hosts the fuzzer names besides its own get events streams, so that what it publishes
  // on their subjects is stored and reaches the handler; a host with no stream stores nothing.
  await createHostEventStreams(client, [HOST, ...OTHER_HOSTS]);
  // Touched by nothing but the test: a healthcheck that merely timed out under load would get
  // it healed, which the fuzzing would be blamed for.
  const c = await runTestContainer(engine, {
    name: "witness",
    labels: { autoheal: "true" },
    healthTimeoutMs: 60_000,
  });
  witness = c.id;
  await waitForHealth(engine, witness, "healthy", 20_000);
});

/** Messages the handler replica rejected as malformed, summed over its handlers ($SRV.STATS). */
async function handlerRejections(): Promise<number> {
  const stats = await new Svcm(client).client().stats("fleetheal-handler");
  let rejected = 0;
  for await (const s of stats) {
    const data = s.endpoints?.[0]?.data as Record<string, { rejected: number }> | undefined;
    for (const handler of Object.values(data ?? {})) rejected += handler.rejected;
  }
  return rejected;
}

/** Dead letters stored after `fromCount`, with their reason and original stream sequence. */
async function readDeadLetters(
  jsm: Awaited<ReturnType<typeof jetstreamManager>>,
  fromCount: number,
): Promise<{ reason: string; streamSeq: string }[]> {
  const info = await jsm.streams.info(DLQ_STREAM);
  const out: { reason: string; streamSeq: string }[] = [];
  for (let seq = info.state.first_seq + fromCount; seq <= info.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(DLQ_STREAM, { seq });
    if (!m) continue;
    out.push({
      reason: m.header.get(DEAD_LETTER_HEADERS.reason),
      streamSeq: m.header.get(DEAD_LETTER_HEADERS.streamSeq),
    });
  }
  return out;
}

afterAll(async () => {
  await fleet?.[Symbol.asyncDispose]();
});

/** The signature headers of the test process's key over `payload`. */
function signatureHeaders(payload: Uint8Array): MsgHdrs {
  const { key } = testSigningKey();
  const h = natsHeaders();
  h.set(COMMAND_SIGNATURE_HEADERS.key, key.publicKey);
  h.set(COMMAND_SIGNATURE_HEADERS.signature, key.sign(payload));
  return h;
}

/** The verbs that change a container: signed, and answered with a CommandReply. */
function isContainerCommand(verb: CommandVerb): boolean {
  return (CONTAINER_COMMAND_VERBS as readonly string[]).includes(verb);
}

/** Containers ids that exist nowhere: fuzzed commands must never reach a real container. */
const ghostId = fc.stringMatching(/^[0-9a-f]{64}$/);

const anything = fc.oneof(
  fc.jsonValue(),
  fc.string({ unit: "grapheme", maxLength: 200 }),
  fc.constantFrom(null, -1, 1e308, "", "../../etc", "\u0000", "𝕱𝖑𝖊𝖊𝖙", " ".repeat(600)),
);

/** A valid command of each verb, for a container that does not exist. */
function validCommand(verb: (typeof COMMAND_VERBS)[number], id: string): Record<string, unknown> {
  const fields = {
    commandId: `fuzz-${id.slice(0, 16)}`,
    host: HOST,
    containerId: id,
    reason: "fuzz",
    requestedBy: "fuzzer",
  };
  switch (verb) {
    case "restart":
      return restartCommand(fields);
    case "stop":
      return stopCommand(fields);
    case "recreate":
      return recreateCommand(fields);
    case "inspect":
      return inspectRequest({ host: HOST, containerId: id });
    case "snapshot":
      return snapshotRequest(HOST);
  }
}

/** Bytes to send: a valid message with one field replaced, or something that is not one. */
function payloadFor(valid: fc.Arbitrary<Record<string, unknown>>): fc.Arbitrary<Uint8Array> {
  const mutated = fc
    .tuple(valid, fc.string({ maxLength: 12 }), anything, fc.boolean())
    .map(([message, extraKey, value, replace]) => {
      const keys = Object.keys(message);
      const key = replace ? (keys[extraKey.length % keys.length] as string) : extraKey;
      return encode({ ...message, [key]: value });
    });
  return fc.oneof(
    { weight: 4, arbitrary: mutated },
    { weight: 1, arbitrary: valid.map((m) => encode(m)) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }) },
    {
      weight: 1,
      arbitrary: fc
        .string({ unit: "grapheme", maxLength: 300 })
        .map((s) => new TextEncoder().encode(s)),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        new TextEncoder().encode("{not json"),
        new TextEncoder().encode("null"),
        new Uint8Array(0),
        // Close to the server's default 1 MB payload limit.
        new TextEncoder().encode(
          JSON.stringify({ type: RESTART_COMMAND_TYPE, pad: "x".repeat(900_000) }),
        ),
      ),
    },
  );
}

/** Requests the agent refused as malformed, as its micro service reports them ($SRV.STATS). */
/** Where a valid event is published: mostly its own subject, sometimes one that lies. */
const subjectVariant = fc.constantFrom(
  "own",
  "own",
  "own",
  "other-host",
  "other-container",
  "other-action",
  "extra-token",
  "unicode-host",
);

function oddSubject(e: ContainerEvent, variant: string): string {
  const root = "fleetheal.v1.evt";
  const own = `${root}.${e.host}.${e.container.id}.${e.action}`;
  switch (variant) {
    case "other-host":
      return `${root}.${e.host === "intruder" ? "victim" : "intruder"}.${e.container.id}.${e.action}`;
    case "other-container":
      return `${root}.${e.host}.${"0".repeat(64)}.${e.action}`;
    case "other-action":
      return `${root}.${e.host}.${e.container.id}.${e.action === "die" ? "oom" : "die"}`;
    case "extra-token":
      return `${own}.extra`;
    case "unicode-host":
      return `${root}.hôst-ünïcødé.${e.container.id}.${e.action}`;
    default:
      return own;
  }
}

/** The same, as the agent's host snapshot reports them (what crosses NATS accounts). */
async function snapshotRejections(): Promise<number> {
  const reply = await client.request(
    commandSubject(HOST, "snapshot"),
    encode(snapshotRequest(HOST)),
    { timeout: 10_000 },
  );
  const snapshot = decode(HostSnapshot, reply.data);
  if (!snapshot.ok) throw snapshot.error;
  const malformed = snapshot.value.agent.commandRefusals?.malformed ?? {};
  return Object.values(malformed).reduce((sum: number, n) => sum + (n ?? 0), 0);
}

async function agentRejections(): Promise<number> {
  const stats = await new Svcm(client).client().stats("fleetheal-agent");
  let rejected = 0;
  for await (const s of stats) {
    for (const e of s.endpoints ?? []) rejected += (e.data as { rejected?: number }).rejected ?? 0;
  }
  return rejected;
}

describe("fuzzing the NATS inputs", () => {
  it("agent commands: every request is answered, bad ones with a 400 that is counted", async () => {
    const before = await agentRejections();
    const snapshotBefore = await snapshotRejections();
    const logsBefore = agent.json.filter((l) => l.msg === "bad command rejected").length;
    let rejected = 0;
    let answered = 0;
    await fc.assert(
      fc.asyncProperty(
        fc
          .constantFrom(...COMMAND_VERBS)
          .chain((verb) =>
            fc.tuple(fc.constant(verb), payloadFor(ghostId.map((id) => validCommand(verb, id)))),
          ),
        async ([verb, payload]) => {
          // Signed as the control plane signs, so that what is judged is the content: the
          // signature is over these exact bytes, malformed or not.
          const signed = isContainerCommand(verb);
          const reply = await client.request(commandSubject(HOST, verb), payload, {
            timeout: 10_000,
            ...(signed ? { headers: signatureHeaders(payload) } : {}),
          });
          answered++;
          const error = reply.headers?.get("Nats-Service-Error-Code");
          if (error) {
            expect(["400", "404"]).toContain(error);
            expect(reply.headers?.get("Nats-Service-Error")).not.toBe("");
            if (error === "400") rejected++;
            return;
          }
          if (isContainerCommand(verb)) {
            const decoded = decode(CommandReply, reply.data);
            expect(decoded.ok).toBe(true);
            if (decoded.ok) expect(["refused", "skipped"]).toContain(decoded.value.outcome);
          } else if (verb === "snapshot") {
            expect(decode(HostSnapshot, reply.data).ok).toBe(true);
          }
        },
      ),
      { numRuns: 300 },
    );
    console.info(`agent commands: ${answered} requests answered, ${rejected} rejected with 400`);
    expect(rejected).toBeGreaterThan(0);
    // Every 400 is counted in the service's stats ($SRV.STATS) and logged once with its reason.
    expect((await agentRejections()) - before).toBe(rejected);
    expect((await snapshotRejections()) - snapshotBefore).toBe(rejected);
    await waitFor(
      () =>
        agent.json.filter((l) => l.msg === "bad command rejected").length - logsBefore >= rejected,
      { timeoutMs: 5_000, message: "not every rejected command was logged" },
    );
    const logged = agent.json.filter((l) => l.msg === "bad command rejected").slice(logsBefore);
    expect(logged).toHaveLength(rejected);
    expect(logged.every((l) => typeof l.reason === "string" && l.reason !== "")).toBe(true);
    // The agent lives, and no real container was touched.
    expect(exited).toEqual([]);
    expect(
      recorder.count((e) => e.id === witness && ["kill", "stop", "restart"].includes(e.action)),
    ).toBe(0);
  });

  it("handler events: every malformed event is dead-lettered once with its reason, and healing goes on", async () => {
    const js = jetstream(client);
    const jsm = await jetstreamManager(client);
    const dlqBefore = (await jsm.streams.info(DLQ_STREAM)).state.messages;
    const rejectedLogsBefore = handler.json.filter((l) =>
      String(l.msg).startsWith("rejected malformed message"),
    ).length;
    const handlerRejectedBefore = await handlerRejections();
    let malformed = 0;
    let unstored = 0;
    const actions = ["unhealthy", "healthy", "die", "stop", "kill", "restart", "oom"] as const;
    const validEvent = fc.tuple(ghostId, fc.constantFrom(...actions)).map(([id, action]) => {
      const timeNano = `${Date.now()}000000`;
      return containerEvent({
        id: `${HOST}:${id}:${timeNano}:${action}`,
        host: HOST,
        action,
        timeNano,
        time: new Date().toISOString(),
        container: { id, name: "ghost", optedIn: false },
      }) as Record<string, unknown>;
    });
    await fc.assert(
      fc.asyncProperty(
        fc.tuple(ghostId, fc.constantFrom(...actions), payloadFor(validEvent), subjectVariant),
        async ([id, action, payload, variant]) => {
          const decoded = decode(ContainerEvent, payload);
          const subject = decoded.ok
            ? oddSubject(decoded.value, variant)
            : eventSubject(HOST, id, action);
          // The contracts decide what the handler must reject: a payload that is not an event,
          // or an event on a subject that is not its own (another host's, say).
          // A subject of a host with no events stream (a mutated host id, the unicode one) is
          // stored by nothing: JetStream answers no one, and the handler never sees it.
          const stored = await js.publish(subject, payload).then(
            () => true,
            (error: unknown) => {
              // nats.js reports it as "jetstream is not enabled", caused by the no responders.
              if (!isNoResponders(error) && !isNoResponders((error as Error).cause)) throw error;
              return false;
            },
          );
          if (!stored) {
            expect([HOST, ...OTHER_HOSTS]).not.toContain(subject.split(".")[3]);
            unstored++;
            return;
          }
          if (!decoded.ok || eventSubjectMismatch(subject, decoded.value)) malformed++;
        },
      ),
      { numRuns: 150 },
    );
    console.info(
      `handler events: 150 published, ${malformed} malformed or on a subject not their own, ${unstored} on a host with no stream`,
    );
    expect(malformed).toBeGreaterThan(0);
    // Each malformed event is dead-lettered once, with the contract's reason; the stream
    // sequence of the original says which message it was.
    const rejectedLetters = async () => {
      const letters = await readDeadLetters(jsm, dlqBefore);
      return letters.filter((l) => /^FLEETHEAL_ERR_(BAD_JSON|SCHEMA|SUBJECT)/.test(l.reason));
    };
    const letters = await waitFor(
      async () => {
        const got = await rejectedLetters();
        return got.length >= malformed ? got : undefined;
      },
      { timeoutMs: 30_000, message: "not every malformed event reached the dead-letter stream" },
    );
    expect(letters).toHaveLength(malformed);
    expect(new Set(letters.map((l) => l.streamSeq)).size).toBe(malformed);
    await waitFor(
      () =>
        handler.json.filter((l) => String(l.msg).startsWith("rejected malformed message")).length -
          rejectedLogsBefore >=
        malformed,
      { timeoutMs: 5_000, message: "not every rejection was logged" },
    );
    expect(
      handler.json.filter((l) => String(l.msg).startsWith("rejected malformed message")).length -
        rejectedLogsBefore,
    ).toBe(malformed);
    // Counted: the replica's `rejected` counter ($SRV.STATS of fleetheal-handler) grew by as many.
    expect((await handlerRejections()) - handlerRejectedBefore).toBe(malformed);
    expect(exited).toEqual([]);

    // Still healing: the witness, made unhealthy now, is restarted once.
    await makeUnhealthy(engine, witness);
    await recorder.waitFor(
      (e) => e.id === witness && e.action === "restart",
      30_000,
      "the handler stopped healing after the fuzzing",
    );
  });
});
