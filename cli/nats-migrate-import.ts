// `fleetheal nats-migrate import`: stores an export again in the accounts layout. The streams
// and buckets are created as the handler creates them; every message is stored again in its
// order; each handler's durable consumer is created as the runtime would create it, but starting
// right after the events it had acknowledged. The file is read twice: once to check it whole and
// plan, once to publish, so a file cut short or a stream that cannot take it stores nothing.

import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { type NatsConnection, headers as natsHeaders } from "@nats-io/nats-core";
import { describeError } from "../common/errors.js";
import { DEFAULT_STREAM_LIMITS, openFleetJetStream } from "../common/jetstream-resources.js";
import type { Logger } from "../common/logger.js";
import { EVENTS_STREAM } from "../contracts/index.js";
import { autoMonitorHandler } from "../handlers/auto-monitor.js";
import { dependentsHandler } from "../handlers/dependents.js";
import { dependentsRecreatedHandler } from "../handlers/dependents-recreated.js";
import { dependentsStartHandler } from "../handlers/dependents-start.js";
import { healHandler } from "../handlers/heal.js";
import { notifyHandler } from "../handlers/notify/notify.js";
import { durableConfig, durableName } from "../handlers/runtime/durable-consumer.js";
import type { MigrateIo } from "./nats-migrate-export.js";
import {
  type ExportedConsumer,
  type ExportedMessage,
  ExportFileError,
  type ExportLine,
  keptHeaders,
  readExportFile,
} from "./nats-migrate-file.js";
import {
  DurablePositions,
  LastValues,
  MIGRATED_STREAMS,
  type MigratedStream,
  type PlannedMessage,
  publisherKey,
  publisherOf,
  resumePoint,
  type TargetState,
} from "./nats-migrate-plan.js";
import { type Outgoing, publishInOrder, type Send } from "./nats-migrate-publish.js";

/** The import was refused before anything was stored; `exitCode` 2 for configuration. */
export class ImportRefused extends Error {
  override readonly name = "ImportRefused";
  constructor(
    message: string,
    readonly exitCode: 1 | 2 = 1,
  ) {
    super(message);
  }
}

/** The agents' users, which alone may store their host's events and snapshot in FLEET. */
export interface AgentPublishers {
  /** Where their keys are looked for (for messages). */
  dir: string;
  has(host: string): boolean;
  js(host: string): Promise<JetStreamClient>;
}

export interface ImportOptions {
  file: string;
  /** The new handler's connection. */
  handler: NatsConnection;
  /** Undefined without accounts: then the handler's connection stores everything. */
  agents?: AgentPublishers;
  /** FLEETHEAL_JS_REPLICAS, for the streams and buckets created. */
  replicas: number;
  io: MigrateIo;
  log: Logger;
}

/** The built-in handlers, for the name, filter and redelivery limit of their durables. */
function knownHandlers() {
  const defs = [
    healHandler({ maxEventAgeMs: 0, retryDelayMs: 0 }),
    autoMonitorHandler(),
    dependentsHandler({ retryDelayMs: 0 }),
    dependentsStartHandler({ retryDelayMs: 0 }),
    dependentsRecreatedHandler({ retryDelayMs: 0 }),
    notifyHandler({ targets: [], events: [], maxAgeMs: 0 }),
  ];
  return new Map(defs.map((def) => [durableName(def.name), def]));
}

interface StreamPlan {
  stream: MigratedStream;
  target: TargetState;
  exported: number;
  planned: number;
  /** Messages whose subject names no valid host: no user may store them. */
  skipped: number;
  last?: LastValues;
  /** The target's last message, to confirm that it is this export's. */
  targetLast?: { subject: string; data: string };
  /** The planned message at the target's last sequence. */
  atTargetLast?: PlannedMessage;
  from: number;
}

/** Imports the file; true when every count checks out afterwards. */
export async function importStreams(o: ImportOptions): Promise<boolean> {
  // The events go into FLEETHEAL_EVENTS itself, in their order among the records; the handlers
  // give each host its own stream when they start (docs/SECURITY.md, "History per host").
  const fjs = await openFleetJetStream(o.handler, DEFAULT_STREAM_LIMITS, o.replicas, {
    log: o.log,
    captureHostEvents: true,
  });
  const jsm = fjs.jsm;
  const plans = new Map<string, StreamPlan>();
  for (const stream of MIGRATED_STREAMS) {
    const { state } = await jsm.streams.info(stream.name);
    const target = { messages: state.messages, lastSeq: state.last_seq };
    const plan: StreamPlan = { stream, target, exported: 0, planned: 0, skipped: 0, from: 0 };
    if (stream.lastValueOnly) plan.last = new LastValues();
    if (target.lastSeq > 0) {
      const m = await jsm.streams.getMessage(stream.name, { seq: target.lastSeq });
      if (m) plan.targetLast = { subject: m.subject, data: Buffer.from(m.data).toString("base64") };
    }
    plans.set(stream.name, plan);
  }
  const { consumers, positions, hosts } = await planImport(o.file, plans);
  checkPlans(plans, o.agents, hosts);
  // Every agent user logs in before anything is stored: a key the server does not know fails now.
  for (const host of o.agents ? hosts : []) await o.agents?.js(host);
  const eventsDone = plans.get(EVENTS_STREAM) as StreamPlan;
  const eventsCompleteBefore = eventsDone.from >= eventsDone.planned && eventsDone.planned > 0;
  const known = knownHandlers();
  await refuseRunningHandlers(jsm, [...known.keys()]);

  const send = sender(fjs.js, o.agents);
  const lines = readExportFile(o.file)[Symbol.asyncIterator]();
  let withoutMsgId = 0;
  for (let r = await lines.next(); !r.done; r = await lines.next()) {
    if (r.value.t !== "stream") continue;
    const plan = plans.get(r.value.name) as StreamPlan;
    const section = messagesOf(lines, plan);
    // The hosts bucket comes from the first pass; its section of the file is only passed over.
    if (plan.last) for await (const m of section) throw new Error(`unexpected ${m.subject}`);
    const source = plan.last ? plan.last.values().slice(plan.from).map(outgoing) : section;
    const outcome = await publishInOrder(source, {
      send,
      after: plan.from,
      lastSeq: async () => (await jsm.streams.info(plan.stream.name)).state.last_seq,
      messageAt: (seq) =>
        jsm.streams.getMessage(plan.stream.name, { seq }).then(
          (m) => (m ? { subject: m.subject, data: m.data } : undefined),
          (error: unknown) => {
            if (/not found/i.test(describeError(error))) return undefined;
            throw error;
          },
        ),
    });
    withoutMsgId += outcome.withoutMsgId;
  }

  const placed = await placeDurables(jsm, positions, known, eventsCompleteBefore, o.io);
  return report(jsm, plans, consumers, placed, withoutMsgId, o.io);
}

/** First pass: checks the file whole, counts what each stream will hold, places the durables. */
async function planImport(file: string, plans: Map<string, StreamPlan>) {
  const consumers: ExportedConsumer[] = [];
  let positions = new DurablePositions([]);
  const hosts = new Set<string>();
  let current: StreamPlan | undefined;
  for await (const line of readExportFile(file)) {
    if (line.t === "consumer") {
      if (line.stream === EVENTS_STREAM) consumers.push(line);
    } else if (line.t === "stream") {
      current = plans.get(line.name);
      if (!current) throw new ExportFileError(`${file}: unknown stream ${line.name}`);
      if (line.name === EVENTS_STREAM) positions = new DurablePositions(consumers);
    } else if (line.t === "msg") {
      if (!current) throw new ExportFileError(`${file}: a message outside a stream`);
      current.exported++;
      const planned = plannedMessage(current.stream, line);
      if (!planned) {
        current.skipped++;
        continue;
      }
      if (current.last) {
        current.last.add(planned);
        continue;
      }
      const publisher = publisherOf(line.subject);
      if (publisher?.role === "agent") hosts.add(publisher.host);
      if (++current.planned === current.target.lastSeq) current.atTargetLast = planned;
      if (current.stream.name === EVENTS_STREAM) positions.observe(line.seq, line.subject);
    } else if (line.t === "end") {
      if (current?.stream.name !== line.name || current.exported !== line.messages) {
        throw new ExportFileError(`${file}: the count of ${line.name} does not match its messages`);
      }
      if (current.last) {
        const values = current.last.values();
        current.planned = values.length;
        current.atTargetLast = values[current.target.lastSeq - 1];
        for (const m of values) {
          const p = publisherOf(m.subject);
          if (p?.role === "agent") hosts.add(p.host);
        }
      }
      current = undefined;
    }
  }
  return { consumers, positions: positions.result, hosts };
}

function plannedMessage(stream: MigratedStream, m: ExportedMessage): PlannedMessage | undefined {
  if (!publisherOf(m.subject)) return undefined;
  const headers = keptHeaders(stream.deadLetters === true, m.headers);
  return { oldSeq: m.seq, subject: m.subject, headers, data: m.data };
}

/** Refuses before anything is stored: streams that hold other data, hosts without keys. */
function checkPlans(
  plans: Map<string, StreamPlan>,
  agents: AgentPublishers | undefined,
  hosts: Set<string>,
): void {
  for (const plan of plans.values()) {
    const confirmed =
      plan.targetLast !== undefined &&
      plan.atTargetLast?.subject === plan.targetLast.subject &&
      plan.atTargetLast.data === plan.targetLast.data;
    const point = resumePoint(plan.stream, plan.planned, plan.target, confirmed);
    if ("refuse" in point) throw new ImportRefused(point.refuse);
    plan.from = point.from;
  }
  const missing = agents ? [...hosts].filter((h) => !agents.has(h)).sort() : [];
  if (agents && missing.length > 0) {
    throw new ImportRefused(
      `no agent keys for host${missing.length > 1 ? "s" : ""} ${missing.join(", ")} in ${agents.dir}: a host's events and snapshot can be stored only by its own agent's user. Add them (fleetheal nats-auth --hosts ${missing.join(",")} --out ${agents.dir} keeps every other key), reload nats-server, and import again; remove the hosts that have left afterwards (--remove)`,
      2,
    );
  }
}

/** A handler that pulls from its durable would take messages while they are being placed. */
async function refuseRunningHandlers(jsm: JetStreamManager, durables: string[]): Promise<void> {
  for (const name of durables) {
    const info = await jsm.consumers.info(EVENTS_STREAM, name).catch(() => undefined);
    if (info && info.num_waiting > 0) {
      throw new ImportRefused(
        `a handler is running (it pulls from ${name}): stop every role before the import`,
      );
    }
  }
}

/** The messages of the stream whose `stream` line was just read, up to its `end` line. */
async function* messagesOf(
  lines: AsyncIterator<ExportLine>,
  plan: StreamPlan,
): AsyncGenerator<Outgoing> {
  let index = 0;
  for (let r = await lines.next(); !r.done; r = await lines.next()) {
    const line = r.value;
    if (line.t === "end") return;
    if (line.t !== "msg") continue;
    const planned = plannedMessage(plan.stream, line);
    if (!planned || plan.last) continue;
    if (index++ < plan.from) continue;
    yield outgoing(planned);
  }
}

function outgoing(m: PlannedMessage): Outgoing {
  return {
    subject: m.subject,
    headers: m.headers,
    data: Buffer.from(m.data, "base64"),
    via: publisherKey(publisherOf(m.subject) ?? { role: "handler" }),
  };
}

/** Publishes through the handler's connection, or a host's agent for that host's subjects. */
function sender(handler: JetStreamClient, agents: AgentPublishers | undefined): Send {
  return async (m, expectLastSeq, withoutMsgId) => {
    const host = m.via.startsWith("agent:") ? m.via.slice("agent:".length) : undefined;
    const js = agents && host !== undefined ? await agents.js(host) : handler;
    const h = natsHeaders();
    for (const [name, value] of m.headers) {
      if (!(withoutMsgId && name.toLowerCase() === "nats-msg-id")) h.append(name, value);
    }
    const ack = await js.publish(m.subject, m.data, {
      headers: h,
      expect: { lastSequence: expectLastSeq },
    });
    return { seq: ack.seq, duplicate: ack.duplicate };
  };
}

interface PlacedDurable {
  name: string;
  startSeq: number;
  toHandle: number;
  state: "created" | "replaced" | "kept";
}

/**
 * Creates each exported durable of a built-in handler, as the runtime would, starting after the
 * events it had acknowledged. One that exists already is kept when the events stream held the
 * whole export before this run (a repeated import), and replaced otherwise: it was created by a
 * handler started before the import, at a time, and would take the imported events as new.
 */
async function placeDurables(
  jsm: JetStreamManager,
  positions: readonly { consumer: ExportedConsumer; passed: number; toHandle: number }[],
  known: ReturnType<typeof knownHandlers>,
  keepExisting: boolean,
  io: MigrateIo,
): Promise<PlacedDurable[]> {
  const placed: PlacedDurable[] = [];
  for (const { consumer, passed, toHandle } of positions) {
    const def = known.get(consumer.name);
    if (!def) {
      io.err(`${consumer.name} is not a durable of a built-in handler; not created`);
      continue;
    }
    const startSeq = passed + 1;
    const exists = await jsm.consumers.info(EVENTS_STREAM, consumer.name).catch((error) => {
      if (/not found/i.test(describeError(error))) return undefined;
      throw error;
    });
    if (exists && keepExisting) {
      placed.push({ name: consumer.name, startSeq, toHandle, state: "kept" });
      continue;
    }
    if (exists) await jsm.consumers.delete(EVENTS_STREAM, consumer.name);
    await jsm.consumers.add(EVENTS_STREAM, durableConfig(def, { startSeq }));
    placed.push({
      name: consumer.name,
      startSeq,
      toHandle,
      state: exists ? "replaced" : "created",
    });
  }
  for (const name of known.keys()) {
    if (!positions.some((p) => p.consumer.name === name)) {
      io.out(
        `  ${name.padEnd(24)} not in the export: the handler creates it when it first binds, FLEETHEAL_MAX_EVENT_AGE_MS back in time, which takes in the imported records stored since then`,
      );
    }
  }
  return placed;
}

/** Prints what each stream holds against what was planned, and each durable's start. */
async function report(
  jsm: JetStreamManager,
  plans: Map<string, StreamPlan>,
  consumers: readonly ExportedConsumer[],
  placed: readonly PlacedDurable[],
  withoutMsgId: number,
  io: MigrateIo,
): Promise<boolean> {
  let ok = true;
  for (const plan of plans.values()) {
    const { state } = await jsm.streams.info(plan.stream.name);
    const good = state.last_seq === plan.planned && state.messages === plan.planned;
    ok &&= good;
    const notes = [
      plan.exported !== plan.planned && plan.last ? "each key's last value" : "",
      plan.skipped > 0 ? `${plan.skipped} skipped: their subject names no valid host` : "",
      plan.from > 0 ? `${plan.from} stored by an earlier run` : "",
    ].filter((n) => n !== "");
    io[good ? "out" : "err"](
      `  ${plan.stream.name.padEnd(24)} ${state.messages} messages, ${plan.exported} exported${notes.length > 0 ? ` (${notes.join("; ")})` : ""}${good ? "" : `: MISMATCH, ${plan.planned} expected`}`,
    );
  }
  for (const p of placed) {
    const info = await jsm.consumers.info(EVENTS_STREAM, p.name);
    const good = p.state === "kept" || info.config.opt_start_seq === p.startSeq;
    ok &&= good;
    const old = consumers.find((c) => c.name === p.name);
    io[good ? "out" : "err"](
      `  ${p.name.padEnd(24)} ${p.state}: starts at sequence ${p.startSeq} (after sequence ${old?.ackFloor} of the old stream), ${p.toHandle} events to handle${good ? "" : ": MISMATCH"}`,
    );
  }
  if (withoutMsgId > 0) {
    io.out(
      `  ${withoutMsgId} messages stored without their Nats-Msg-Id: an earlier message used the same id, and the import stores them closer together than the duplicate window`,
    );
  }
  return ok;
}
