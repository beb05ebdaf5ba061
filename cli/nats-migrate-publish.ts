// Stores a stream's messages again, in their order, as fast as acknowledgements allow. Every
// message is published with the stream sequence it must follow (`Nats-Expected-Last-Sequence`),
// so the stream can only ever hold a prefix of the plan, in order, each message once: a
// publish that fails, times out or is answered as a duplicate stops everything after it, and the
// stream itself then says where to go on. JetStream keeps that header with the stored message,
// as it keeps every header; readers ignore it.

import { isPermissionViolation } from "../common/jetstream-resources.js";

/** One message to store, and which connection may publish it. */
export interface Outgoing {
  subject: string;
  headers: [string, string][];
  data: Uint8Array;
  /** Messages of one connection are pipelined; another connection waits for them to be stored. */
  via: string;
}

/** JetStream's answer to a publish. */
export interface Stored {
  seq: number;
  duplicate: boolean;
}

/** Publishes `m`, expecting the stream's last sequence to be `expectLastSeq`. */
export type Send = (m: Outgoing, expectLastSeq: number, withoutMsgId: boolean) => Promise<Stored>;

export interface PublishInOrderOptions {
  send: Send;
  /** The stream's last sequence, asked after a failure. */
  lastSeq: () => Promise<number>;
  /**
   * The stored message at `seq`, undefined when it is gone (a bucket keeps a limited history per
   * key): after a failure, the messages the stream gained are checked to be the ones sent.
   */
  messageAt: (seq: number) => Promise<{ subject: string; data: Uint8Array } | undefined>;
  /** The stream's last sequence before the first message of `source`. */
  after: number;
  /** Publishes awaiting their acknowledgement at once. Default 256. */
  window?: number;
  /** Rounds without progress before the last error is thrown. Default 8 (about 20 s). */
  maxStalls?: number;
  /** Waits between rounds without progress. */
  pause?: (ms: number) => Promise<void>;
}

/** What {@link publishInOrder} did. */
export interface PublishOutcome {
  stored: number;
  /** Stored without their `Nats-Msg-Id`: the id had been used within the duplicate window. */
  withoutMsgId: number;
}

type Settled = { ok: true; value: Stored } | { ok: false; error: unknown };

const settle = (p: Promise<Stored>): Promise<Settled> =>
  p.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );

const STALL_PAUSE_MS = { initial: 250, max: 5_000 };

/**
 * Stores every message of `source` after sequence `after`, in order. A message answered as a
 * duplicate (its `Nats-Msg-Id` was used by an earlier message less than the duplicate window
 * before, which the import compresses into moments) is stored again without the id, so nothing is
 * dropped. Throws when the stream makes no progress for `maxStalls` rounds, on a permissions
 * violation at once, and when the stream holds a message this did not expect (another writer).
 */
export async function publishInOrder(
  source: AsyncIterable<Outgoing> | Iterable<Outgoing>,
  options: PublishInOrderOptions,
): Promise<PublishOutcome> {
  const window = options.window ?? 256;
  const maxStalls = options.maxStalls ?? 8;
  const pause =
    options.pause ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const iterator =
    Symbol.asyncIterator in source
      ? source[Symbol.asyncIterator]()
      : (source as Iterable<Outgoing>)[Symbol.iterator]();
  const again: Outgoing[] = [];
  const withoutId = new Set<Outgoing>();
  let exhausted = false;
  const next = async (): Promise<Outgoing | undefined> => {
    const retry = again.shift();
    if (retry || exhausted) return retry;
    const r = await iterator.next();
    if (r.done) exhausted = true;
    return r.done ? undefined : r.value;
  };

  let stored = 0;
  let stalls = 0;
  let inFlight: { m: Outgoing; answer: Promise<Settled> }[] = [];
  let held: Outgoing | undefined;
  for (;;) {
    while (inFlight.length < window) {
      const m = held ?? (await next());
      held = undefined;
      if (!m) break;
      if (inFlight.length > 0 && inFlight[0]?.m.via !== m.via) {
        held = m;
        break;
      }
      const expect = options.after + stored + inFlight.length;
      inFlight.push({ m, answer: settle(options.send(m, expect, withoutId.has(m))) });
    }
    const head = inFlight[0];
    if (!head) break;
    const answer = await head.answer;
    if (answer.ok && !answer.value.duplicate) {
      const expected = options.after + stored + 1;
      if (answer.value.seq !== expected) {
        throw new Error(
          `the stream stored a message at sequence ${answer.value.seq} where ${expected} was expected: something else writes to it; stop every role`,
        );
      }
      stored++;
      stalls = 0;
      inFlight.shift();
      continue;
    }
    // Everything sent after the head expected it to be stored, so none of it was: collect their
    // answers, then ask the stream how far it really got (a timed-out publish may have landed).
    const sent = inFlight.map((f) => f.m);
    await Promise.all(inFlight.map((f) => f.answer));
    inFlight = [];
    if (!answer.ok && isPermissionViolation(answer.error)) throw answer.error;
    const landed = (await options.lastSeq()) - options.after - stored;
    if (landed < 0 || landed > sent.length) {
      throw new Error(
        `the stream's last sequence moved by ${landed} while ${sent.length} messages were on their way: something else writes to it; stop every role`,
      );
    }
    for (let i = 0; i < landed; i++) {
      const seq = options.after + stored + i + 1;
      const found = await options.messageAt(seq);
      const mine = sent[i] as Outgoing;
      if (found && (found.subject !== mine.subject || !sameBytes(found.data, mine.data))) {
        throw new Error(
          `the stream holds ${found.subject} at sequence ${seq} where ${mine.subject} was sent: something else writes to it; stop every role`,
        );
      }
    }
    stored += landed;
    const duplicate = answer.ok && landed === 0;
    if (duplicate) withoutId.add(sent[0] as Outgoing);
    again.unshift(...sent.slice(landed), ...(held ? [held] : []));
    held = undefined;
    if (landed > 0 || duplicate) {
      stalls = 0;
      continue;
    }
    if (++stalls > maxStalls) throw answer.ok ? new Error("no progress") : answer.error;
    await pause(Math.min(STALL_PAUSE_MS.initial * 2 ** (stalls - 1), STALL_PAUSE_MS.max));
  }
  return { stored, withoutMsgId: withoutId.size };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a).equals(Buffer.from(b));
}
