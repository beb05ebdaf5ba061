// `fleetheal nats-migrate export`: every message of every fleetheal stream that the connection's
// account holds, in stream order, with subject, headers and payload, and the position of each
// handler's durable consumer, into one file. Run with the old handler's credentials: that user
// may read every stream and bucket, list the durable consumers, and nothing else is needed.

import { createWriteStream, renameSync, rmSync } from "node:fs";
import { type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { describeError } from "../common/errors.js";
import { EVENTS_STREAM } from "../contracts/index.js";
import { EXPORT_FORMAT, type ExportedConsumer, ExportWriter } from "./nats-migrate-file.js";
import { MIGRATED_STREAMS } from "./nats-migrate-plan.js";

/** Where a command writes its lines. */
export interface MigrateIo {
  out(line: string): void;
  err(line: string): void;
}

/** The export cannot be done as asked (exit code 2: nothing was written). */
export class ExportRefused extends Error {
  override readonly name = "ExportRefused";
}

/** What an export wrote, per stream. */
export interface ExportCounts {
  streams: { name: string; messages: number; expected: number }[];
  consumers: ExportedConsumer[];
}

/** Handler durables are named `fleetheal-<handler>` (handlers/runtime/durable-consumer.ts). */
const HANDLER_DURABLE = /^fleetheal-/;

/**
 * Writes the export to `file` (mode 0600: it holds everything, snapshots and the ledger
 * included), through `<file>.partial`, renamed once complete, so that an interrupted export never
 * looks like a finished one. Returns the counts; the caller says
 * whether they match (a stream that changed while it was read: roles still running).
 */
export async function exportStreams(
  nc: NatsConnection,
  file: string,
  io: MigrateIo,
): Promise<ExportCounts> {
  const jsm = await jetstreamManager(nc);
  const present: { name: string; messages: number; firstSeq: number; lastSeq: number }[] = [];
  for (const { name } of MIGRATED_STREAMS) {
    const state = await streamState(jsm, name);
    if (state) present.push({ name, ...state });
  }
  if (!present.some((s) => s.name === EVENTS_STREAM)) {
    throw new ExportRefused(
      `${EVENTS_STREAM} does not exist in this NATS account: give the old handler's credentials (FLEETHEAL_NATS_USER, FLEETHEAL_NATS_PASSWORD_FILE) and FLEETHEAL_NATS_URL of the old deployment`,
    );
  }
  const consumers = await handlerDurables(jsm);

  const partial = `${file}.partial`;
  rmSync(partial, { force: true });
  const writer = new ExportWriter(createWriteStream(partial, { mode: 0o600, flags: "wx" }));
  const counts: ExportCounts = { streams: [], consumers };
  try {
    await writer.write({
      t: "header",
      format: EXPORT_FORMAT,
      v: 1,
      exportedAt: new Date().toISOString(),
    });
    for (const c of consumers) await writer.write(c);
    let total = 0;
    for (const s of present) {
      await writer.write({ t: "stream", ...s });
      const written = await writeMessages(nc, s, writer);
      await writer.write({ t: "end", name: s.name, messages: written });
      counts.streams.push({ name: s.name, messages: written, expected: s.messages });
      total += written;
    }
    await writer.write({ t: "done", streams: present.length, messages: total });
    await writer.end();
  } catch (error) {
    await writer.end().catch(() => {});
    rmSync(partial, { force: true });
    throw error;
  }
  renameSync(partial, file);
  for (const s of counts.streams) io.out(`  ${s.name.padEnd(24)} ${s.messages} messages`);
  for (const c of consumers) {
    io.out(
      `  ${c.name.padEnd(24)} acknowledged up to sequence ${c.ackFloor}${c.ackPending > 0 ? ` (${c.ackPending} delivered, not acknowledged: they are handled again after the import)` : ""}`,
    );
  }
  return counts;
}

async function streamState(
  jsm: JetStreamManager,
  name: string,
): Promise<{ messages: number; firstSeq: number; lastSeq: number } | undefined> {
  try {
    const { state } = await jsm.streams.info(name);
    return { messages: state.messages, firstSeq: state.first_seq, lastSeq: state.last_seq };
  } catch (error) {
    if (/not found/i.test(describeError(error))) return undefined;
    throw error;
  }
}

/** The handlers' durable consumers on the events stream, with how far each had got. */
async function handlerDurables(jsm: JetStreamManager): Promise<ExportedConsumer[]> {
  const found: ExportedConsumer[] = [];
  for await (const ci of jsm.consumers.list(EVENTS_STREAM)) {
    if (!ci.config.durable_name || !HANDLER_DURABLE.test(ci.name)) continue;
    found.push({
      t: "consumer",
      stream: EVENTS_STREAM,
      name: ci.name,
      filter: ci.config.filter_subject ?? "",
      ackFloor: ci.ack_floor.stream_seq,
      delivered: ci.delivered.stream_seq,
      ackPending: ci.num_ack_pending,
    });
  }
  return found;
}

/**
 * Every message of the stream up to its last sequence when the export began, through an ordered
 * consumer, at most a batch of them in memory at a time.
 */
async function writeMessages(
  nc: NatsConnection,
  stream: { name: string; messages: number; lastSeq: number },
  writer: ExportWriter,
): Promise<number> {
  if (stream.messages === 0) return 0;
  const consumer = await jetstream(nc).consumers.get(stream.name);
  const messages = await consumer.consume({ max_messages: 512 });
  let written = 0;
  try {
    for await (const m of messages) {
      if (m.seq > stream.lastSeq) break;
      const headers: [string, string][] = [];
      for (const name of m.headers?.keys() ?? []) {
        for (const value of m.headers?.values(name) ?? []) headers.push([name, value]);
      }
      await writer.write({
        t: "msg",
        seq: m.seq,
        time: m.time.toISOString(),
        subject: m.subject,
        headers,
        data: Buffer.from(m.data).toString("base64"),
      });
      written++;
      if (m.seq >= stream.lastSeq || m.info.pending === 0) break;
    }
  } finally {
    await messages.close();
  }
  return written;
}
