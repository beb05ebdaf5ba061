// Reads what fleetheal stored in JetStream, the way an external tool replaying history would.

import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import type { z } from "zod";
import { decode, EVENTS_STREAM } from "../../contracts/index.js";

/** Every message currently stored under `subject` in the events stream, decoded with `schema`. */
export async function readStored<S extends z.ZodType>(
  nc: NatsConnection,
  subject: string,
  schema: S,
): Promise<z.infer<S>[]> {
  return (await readStoredTimed(nc, subject, schema)).map((m) => m.value);
}

/** One decoded message of the events stream, with the time JetStream stored it. */
export interface TimedMessage<T> {
  value: T;
  /** JetStream's timestamp of the stored message, in nanoseconds since the epoch. */
  storedNano: bigint;
}

/** Like {@link readStored}, with each message's storage time: to tell a late event from a lost one. */
export async function readStoredTimed<S extends z.ZodType>(
  nc: NatsConnection,
  subject: string,
  schema: S,
): Promise<TimedMessage<z.infer<S>>[]> {
  const consumer = await jetstream(nc).consumers.get(EVENTS_STREAM, { filter_subjects: subject });
  const { num_pending } = await consumer.info();
  const out: TimedMessage<z.infer<S>>[] = [];
  if (num_pending === 0) return out;
  const messages = await consumer.consume();
  for await (const m of messages) {
    const decoded = decode(schema, m.data);
    if (!decoded.ok)
      throw new Error(`stored message on ${m.subject} is invalid: ${decoded.error.message}`);
    out.push({ value: decoded.value, storedNano: BigInt(m.info.timestampNanos) });
    if (m.info.pending === 0) break;
  }
  await messages.close();
  return out;
}

/** One stored message with what a copy must keep: subject, headers and payload. */
export interface RawMessage {
  seq: number;
  subject: string;
  headers: [string, string][];
  data: string;
}

/** Every message of any stream (a KV bucket's included), in order, as stored. */
export async function readRaw(nc: NatsConnection, stream: string): Promise<RawMessage[]> {
  const { state } = await (await jetstreamManager(nc)).streams.info(stream);
  const out: RawMessage[] = [];
  if (state.messages === 0) return out;
  const messages = await (await jetstream(nc).consumers.get(stream)).consume();
  for await (const m of messages) {
    const headers: [string, string][] = [];
    for (const k of m.headers?.keys() ?? []) {
      for (const v of m.headers?.values(k) ?? []) headers.push([k, v]);
    }
    out.push({ seq: m.seq, subject: m.subject, headers, data: new TextDecoder().decode(m.data) });
    if (m.seq >= state.last_seq || m.info.pending === 0) break;
  }
  await messages.close();
  return out;
}
