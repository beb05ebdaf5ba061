import type { Consumer, JetStreamClient, JetStreamManager, JsMsg } from "@nats-io/jetstream";
import { EVENTS_STREAM } from "../../contracts/index.js";
import type { EventsPage, EventsQuery, StreamRecord } from "../http/api-schemas.js";

/** nats.js refuses shorter pull expiries. */
const MIN_FETCH_EXPIRES_MS = 1_000;
/**
 * A history read deletes its consumer when done; this only reaps the consumers of a gateway
 * that died mid-read.
 */
const READ_CONSUMER_INACTIVE_MS = 60_000;

/** What a history read needs besides the query. */
export interface HistoryRead {
  js: JetStreamClient;
  jsm: JetStreamManager;
  /** The server-side filter subjects, one ordered consumer each (see filterSubjects). */
  filters: (string | undefined)[];
  /** Where to start when the query has no `after`: epoch ms. */
  since: number | undefined;
  /** The longest the read may take; it returns what it has by then. */
  deadlineMs: number;
  /** The record stored in a message, or undefined to skip it. */
  toRecord: (m: JsMsg) => StreamRecord | undefined;
}

/**
 * Up to `query.limit` stored records that match the filters, oldest first, read with a
 * short-lived ordered consumer per filter subject and merged by stream sequence. `next` is set
 * when the page is full, when more matching records are stored already, or when the deadline
 * cut the read short.
 */
export async function readHistory(query: EventsQuery, read: HistoryRead): Promise<EventsPage> {
  const { js, jsm, filters, since, deadlineMs, toRecord } = read;
  const deadline = Date.now() + deadlineMs;
  const start: ReadStart = since === undefined ? { seq: query.after ?? 0 } : { time: since };
  const sources = await Promise.all(
    filters.map((filter) => HistorySource.open(js, jsm, filter, start)),
  );
  const records: StreamRecord[] = [];
  let lastSeq: number | undefined;
  let cutShort = false;
  try {
    // A merge by stream sequence: each source is in order, and a message is taken only when
    // every source's next message is known, so nothing at or below `lastSeq` is left behind.
    while (records.length < query.limit) {
      const heads = await Promise.all(
        sources.map((source) => source.peek(deadline, query.limit - records.length)),
      );
      if (heads.includes("cut")) {
        cutShort = true;
        break;
      }
      let from: HistorySource | undefined;
      let head: JsMsg | undefined;
      for (const [i, h] of heads.entries()) {
        if (h && h !== "cut" && (!head || h.seq < head.seq)) {
          head = h;
          from = sources[i];
        }
      }
      if (!from || !head) break;
      from.shift();
      lastSeq = head.seq;
      // An ordered consumer that is recreated mid-read (after a reconnect) restarts from a
      // sequence, not a time, so it may go back before `since`.
      if (since !== undefined && head.time.getTime() < since) continue;
      const record = toRecord(head);
      if (record) records.push(record);
    }
  } finally {
    for (const source of sources) source.close();
  }
  // A full page always gets a `next` (as docs/API.md promises), even if it happens to end
  // at the last record: the page after it is then empty and has none.
  const more =
    cutShort || records.length >= query.limit || sources.some((source) => source.hasMore());
  const next = more ? (lastSeq ?? query.after) : undefined;
  return next === undefined ? { records } : { records, next };
}

/** Where a history read starts: after a sequence, or at a time (epoch ms). */
export type ReadStart = { seq: number } | { time: number };

/**
 * One ordered consumer of a history read, with the messages fetched but not yet merged.
 *
 * It reads up to the last matching message at the time it opens, found with a direct lookup.
 * The consumer's pending count cannot mark the end: nats-server 2.9 overcounts it for wildcard
 * filters that start mid-stream, and a fetch that waits for a message that never comes would
 * hold the request until it expires. Counting reads it too (history-counts.ts), some sources
 * with `headersOnly`: the server then sends no payloads.
 */
export class HistorySource {
  private readonly buffer: JsMsg[] = [];
  /** The last sequence delivered. */
  private cursor = 0;

  private constructor(
    private readonly consumer: Consumer | undefined,
    /** The last matching sequence when the read began; 0 when nothing matches. */
    private readonly end: number,
  ) {}

  static async open(
    js: JetStreamClient,
    jsm: JetStreamManager,
    filter: string | undefined,
    start: ReadStart,
    headersOnly = false,
  ): Promise<HistorySource> {
    const last = await lastMatching(jsm, filter);
    // Nothing to read: answered without creating a consumer, which is the common case of a
    // quiet container and of a client polling with `after`.
    if (!last || ("seq" in start ? last.seq <= start.seq : last.time < start.time)) {
      return new HistorySource(undefined, 0);
    }
    const consumer = await js.consumers.get(EVENTS_STREAM, {
      ...(filter === undefined ? {} : { filter_subjects: filter }),
      inactive_threshold: READ_CONSUMER_INACTIVE_MS,
      ...(headersOnly ? { headers_only: true } : {}),
      ...("seq" in start
        ? { opt_start_seq: start.seq + 1 }
        : { opt_start_time: new Date(start.time).toISOString() }),
    });
    return new HistorySource(consumer, last.seq);
  }

  /**
   * The next message, fetching up to `want` more if none is buffered; undefined when the
   * source is exhausted, `cut` when the deadline passed first.
   */
  async peek(deadline: number, want: number): Promise<JsMsg | undefined | "cut"> {
    const buffered = this.buffer[0];
    if (buffered) return buffered;
    if (this.exhausted()) return undefined;
    const left = deadline - Date.now();
    if (left <= 0) return "cut";
    const messages = await this.consumer?.fetch({
      max_messages: want,
      expires: Math.max(MIN_FETCH_EXPIRES_MS, left),
    });
    for await (const m of messages ?? []) {
      this.cursor = m.seq;
      if (m.seq <= this.end) this.buffer.push(m);
      // Stored already, so they arrive at once; what comes after is for the next page.
      if (m.seq >= this.end) break;
    }
    // Nothing came: the last message aged out meanwhile, or the server is slow.
    return this.buffer[0] ?? (this.exhausted() ? undefined : "cut");
  }

  shift(): void {
    this.buffer.shift();
  }

  hasMore(): boolean {
    return this.buffer.length > 0 || !this.exhausted();
  }

  close(): void {
    this.consumer?.delete().catch(() => {});
  }

  private exhausted(): boolean {
    return !this.consumer || this.cursor >= this.end;
  }
}

/** The sequence and time of the last stored message that matches `filter`. */
async function lastMatching(
  jsm: JetStreamManager,
  filter: string | undefined,
): Promise<{ seq: number; time: number } | undefined> {
  if (filter === undefined) {
    const { state } = await jsm.streams.info(EVENTS_STREAM);
    return state.messages === 0
      ? undefined
      : { seq: state.last_seq, time: Date.parse(state.last_ts) };
  }
  const last = await jsm.streams.getMessage(EVENTS_STREAM, { last_by_subj: filter });
  return last ? { seq: last.seq, time: last.time.getTime() } : undefined;
}
