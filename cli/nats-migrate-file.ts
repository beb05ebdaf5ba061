// The file that `fleetheal nats-migrate export` writes and `import` reads: JSON Lines, one record
// per line, so that a stream of any size goes through in constant memory, and a file cut short
// (a full disk, an interrupted export) is told apart from a complete one by its last line.

import { once } from "node:events";
import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import type { Writable } from "node:stream";
import { z } from "zod";

/** The `format` of the header line. */
export const EXPORT_FORMAT = "fleetheal-nats-export";

const Count = z.number().int().nonnegative();

/** First line: what the file is. */
const HeaderLine = z.strictObject({
  t: z.literal("header"),
  format: z.literal(EXPORT_FORMAT),
  v: z.literal(1),
  exportedAt: z.iso.datetime(),
});

/** A handler's durable consumer on the events stream, and how far it had got. */
const ConsumerLine = z.strictObject({
  t: z.literal("consumer"),
  stream: z.string().min(1),
  name: z.string().min(1),
  /** Its filter subject; empty when it had none. */
  filter: z.string(),
  /** Every message at or below this stream sequence was acknowledged. */
  ackFloor: Count,
  /** The last stream sequence delivered (acknowledged or not). */
  delivered: Count,
  /** Messages delivered and not yet acknowledged (above the ack floor). */
  ackPending: Count,
});

/** Start of a stream's messages, with its state when the export began. */
const StreamLine = z.strictObject({
  t: z.literal("stream"),
  name: z.string().min(1),
  messages: Count,
  firstSeq: Count,
  lastSeq: Count,
});

/** One stored message, as JetStream kept it. */
const MessageLine = z.strictObject({
  t: z.literal("msg"),
  seq: z.number().int().positive(),
  /** When the old stream stored it (the new stream stores it at import time). */
  time: z.string(),
  subject: z.string().min(1),
  /** Every header value, in order; a name may repeat. */
  headers: z.array(z.tuple([z.string(), z.string()])),
  /** The payload, base64. */
  data: z.base64(),
});

/** End of a stream's messages: how many were written. */
const EndLine = z.strictObject({ t: z.literal("end"), name: z.string().min(1), messages: Count });

/** Last line: the file is complete. */
const DoneLine = z.strictObject({ t: z.literal("done"), streams: Count, messages: Count });

export const ExportLine = z.discriminatedUnion("t", [
  HeaderLine,
  ConsumerLine,
  StreamLine,
  MessageLine,
  EndLine,
  DoneLine,
]);
export type ExportLine = z.infer<typeof ExportLine>;
export type ExportedConsumer = z.infer<typeof ConsumerLine>;
export type ExportedMessage = z.infer<typeof MessageLine>;

/** The export file cannot be read as one. */
export class ExportFileError extends Error {
  override readonly name = "ExportFileError";
}

/** Writes lines to a stream, waiting whenever it asks to (a slow disk never fills memory). */
export class ExportWriter {
  constructor(private readonly out: Writable) {}

  async write(line: ExportLine): Promise<void> {
    if (!this.out.write(`${JSON.stringify(line)}\n`)) await once(this.out, "drain");
  }

  /** Flushes and closes the stream. */
  async end(): Promise<void> {
    const finished = once(this.out, "finish");
    this.out.end();
    await finished;
  }
}

/**
 * Every line of an export file, checked, in order. Throws {@link ExportFileError} naming the line
 * that is not a valid record, and when the file does not end with its `done` line or does not
 * begin with its header.
 */
export async function* readExportFile(file: string): AsyncGenerator<ExportLine> {
  const lines = createInterface({
    input: createReadStream(file),
    crlfDelay: Number.POSITIVE_INFINITY,
  });
  let n = 0;
  let last: ExportLine | undefined;
  for await (const text of lines) {
    n++;
    let parsed: ReturnType<typeof ExportLine.safeParse>;
    try {
      parsed = ExportLine.safeParse(JSON.parse(text));
    } catch {
      throw new ExportFileError(`${file}:${n}: not JSON`);
    }
    if (!parsed.success) {
      throw new ExportFileError(
        `${file}:${n}: not an export record (${parsed.error.issues[0]?.message})`,
      );
    }
    if (n === 1 && parsed.data.t !== "header") {
      throw new ExportFileError(`${file} is not a fleetheal nats-migrate export`);
    }
    last = parsed.data;
    yield parsed.data;
  }
  if (last?.t !== "done") {
    throw new ExportFileError(
      `${file} ends after line ${n} without its last record: the export did not finish; export again`,
    );
  }
}

/** Header name and value pairs, as the file keeps them. */
export type HeaderPairs = [string, string][];

/**
 * The headers a message is stored again with. Dropped:
 * - `Nats-Expected-*`: conditions that held when the message was first stored, against the old
 *   stream's sequences (a KV update names the revision it replaced);
 * - `Nats-Rollup`: the old stream holds the outcome of every rollup already, so storing the
 *   messages again in order gives the same content without it, and the hosts bucket refuses it;
 * - on dead letters, `Nats-Msg-Id`: it is `<handler>:<stream sequence>`, an old sequence that may
 *   name another message after the import, so a new dead letter with that id would be dropped as
 *   a duplicate within the stream's duplicate window.
 * Kept: everything else, `Nats-Msg-Id` (redeliveries and agents' retries stay deduplicated) and
 * `KV-Operation` (delete and purge markers) included.
 */
export function keptHeaders(deadLetters: boolean, pairs: HeaderPairs): HeaderPairs {
  return pairs.filter(([name]) => {
    const n = name.toLowerCase();
    if (n.startsWith("nats-expected-") || n === "nats-rollup") return false;
    // Where a sourced copy came from (a host's events stream and its sequence there) names
    // nothing in the new deployment, and nats-server would read it as how far it has sourced
    // that stream, skipping the first events of the host's new stream.
    if (n === "nats-stream-source") return false;
    return !(deadLetters && n === "nats-msg-id");
  });
}

/** Whether the pairs mark a KV delete or purge (the key's value is gone). */
export function isKvRemoval(pairs: HeaderPairs): boolean {
  return pairs.some(
    ([name, value]) => name.toLowerCase() === "kv-operation" && /^(DEL|PURGE)$/i.test(value),
  );
}
