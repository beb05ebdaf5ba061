import { setTimeout as delay } from "node:timers/promises";
import type {
  Consumer,
  ConsumerMessages,
  JetStreamClient,
  JetStreamManager,
  JsMsg,
} from "@nats-io/jetstream";
import { z } from "zod";
import { describeError } from "../../common/errors.js";
import type { Logger } from "../../common/logger.js";
import {
  ContainerEvent,
  decode,
  EVENTS_STREAM,
  eventSubjectMismatch,
  isToken,
  parseDuration,
  RemediationRecord,
  remediationSubjectMismatch,
  SUBJECT_ROOT,
} from "../../contracts/index.js";
import { ApiError } from "../http/api-errors.js";
import type { EventsPage, EventsQuery, StreamRecord } from "../http/api-schemas.js";
import { unavailableOnNatsError } from "./nats-fleet-control.js";
import type { EventLog, LiveFeed, StreamFilter } from "./ports.js";

export interface NatsEventLogOptions {
  js: JetStreamClient;
  jsm: JetStreamManager;
  log: Logger;
  /** Called for every stored message that does not match its contract (it is skipped). */
  onRejected?: (reason: string) => void;
  /** The longest a history read may take; it returns what it has by then. Default 2 s. */
  readDeadlineMs?: number;
}

/** History goes this far back when the query gives no `since`. */
const DEFAULT_SINCE_MS = 60 * 60 * 1000;
const DEFAULT_READ_DEADLINE_MS = 2_000;
/** nats.js refuses shorter pull expiries. */
const MIN_FETCH_EXPIRES_MS = 1_000;
/** Pull size of the live feed. */
const LIVE_BATCH = 256;
/**
 * Expiry of the live feed's pulls; heartbeats come every half of it, and two missed ones make
 * nats.js check the consumer, so this bounds how long a broken pull can stall the feed.
 */
const LIVE_PULL_EXPIRES_MS = 10_000;
/** Retry delays of the live consumer when it cannot be created. */
const LIVE_RETRY_MS = [500, 1_000, 2_000, 5_000];
/**
 * A history read deletes its consumer when done; this only reaps the consumers of a gateway
 * that died mid-read.
 */
const READ_CONSUMER_INACTIVE_MS = 60_000;

const IsoTime = z.union([z.iso.datetime({ offset: true }), z.iso.date()]);

type Listener = (record: StreamRecord) => void;
type Page = z.infer<typeof EventsPage>;

interface Subscriber {
  filter: StreamFilter;
  listener: Listener;
  /** A throwing listener is logged once, not once per record. */
  failed: boolean;
}

/**
 * {@link EventLog} and {@link LiveFeed} on the events stream.
 *
 * History is read with a short-lived ordered consumer per request, filtered on the server by
 * subject. The live feed is one ordered consumer for the whole gateway, however many SSE clients
 * listen: records are fanned out in-process, each subscriber with its own filter.
 *
 * The server filters by subject, within the limits of nats-server 2.9 (see
 * {@link filterSubjects}).
 */
export class NatsEventLog implements EventLog, LiveFeed {
  private readonly js: JetStreamClient;
  private readonly jsm: JetStreamManager;
  private readonly log: Logger;
  private readonly onRejected: (reason: string) => void;
  private readonly readDeadlineMs: number;
  private loggedRejection = false;

  private readonly subscribers = new Set<Subscriber>();
  private live: Promise<void> | undefined;
  private liveReady: Promise<void> | undefined;
  private messages: ConsumerMessages | undefined;
  private liveConsumer: Consumer | undefined;
  /** The next sequence the live feed is to deliver, once it has started. */
  private resumeSeq: number | undefined;
  private readonly stopping = new AbortController();

  constructor(options: NatsEventLogOptions) {
    this.js = options.js;
    this.jsm = options.jsm;
    this.log = options.log;
    this.onRejected = options.onRejected ?? (() => {});
    this.readDeadlineMs = options.readDeadlineMs ?? DEFAULT_READ_DEADLINE_MS;
  }

  /**
   * Up to `query.limit` stored records that match the query, oldest first. Starts after
   * `query.after` if given, else at `query.since` (default an hour before `now`). `next` is set
   * when the page is full, when more matching records are stored already, or when the deadline
   * cut the read short.
   */
  async read(query: EventsQuery, now: number): Promise<Page> {
    const filters = filterSubjects(query);
    const since = query.after === undefined ? sinceTime(query.since, now) : undefined;
    return unavailableOnNatsError(this.log, "read the events stream", () =>
      this.readFrom(query, filters, since),
    );
  }

  private async readFrom(
    query: EventsQuery,
    filters: (string | undefined)[],
    since: number | undefined,
  ): Promise<Page> {
    const deadline = Date.now() + this.readDeadlineMs;
    const start: ReadStart = since === undefined ? { seq: query.after ?? 0 } : { time: since };
    const sources = await Promise.all(
      filters.map((filter) => HistorySource.open(this.js, this.jsm, filter, start)),
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
        const record = this.toRecord(head);
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

  /**
   * Calls `listener` for every record stored from now on that passes `filter`. Starts the live
   * consumer if it is not running yet. A listener that throws is logged and does not disturb
   * the others.
   */
  subscribe(filter: StreamFilter, listener: Listener): () => void {
    const subscriber: Subscriber = { filter, listener, failed: false };
    this.subscribers.add(subscriber);
    void this.start();
    return () => {
      this.subscribers.delete(subscriber);
    };
  }

  /**
   * Starts the live consumer, if it is not running yet, and resolves once it receives. It keeps
   * retrying in the background while the stream cannot be reached; the promise then resolves
   * only when it finally is (or when the feed is stopped).
   */
  start(): Promise<void> {
    if (!this.liveReady) {
      let ready: () => void = () => {};
      this.liveReady = new Promise((resolve) => {
        ready = resolve;
      });
      this.live = this.runLive(ready);
    }
    return this.liveReady;
  }

  /** Ends the live feed (gateway shutdown). Subscribers get no more records. */
  async stop(): Promise<void> {
    this.stopping.abort();
    this.messages?.stop();
    await this.live;
    await this.liveConsumer?.delete().catch(() => {});
    this.subscribers.clear();
  }

  private async runLive(ready: () => void): Promise<void> {
    const signal = this.stopping.signal;
    let failures = 0;
    while (!signal.aborted) {
      let consumer: Consumer | undefined;
      try {
        // An explicit start sequence rather than DeliverPolicy.New: when nats.js recreates an
        // ordered consumer it resumes after the last sequence delivered, which for a New
        // consumer that has delivered nothing is sequence 1, replaying the whole stream to every
        // live client. A feed started again resumes where it stopped, so listeners miss nothing.
        const startSeq =
          this.resumeSeq ?? (await this.jsm.streams.info(EVENTS_STREAM)).state.last_seq + 1;
        // The whole stream: a wildcard filter across `evt` and `act` is refused by 2.9 (see
        // filterSubjects), and the subscribers' filters are applied here anyway.
        consumer = await this.js.consumers.get(EVENTS_STREAM, { opt_start_seq: startSeq });
        this.resumeSeq = startSeq;
        const messages = await consumer.consume({
          max_messages: LIVE_BATCH,
          expires: LIVE_PULL_EXPIRES_MS,
        });
        this.liveConsumer = consumer;
        this.messages = messages;
        if (signal.aborted) messages.stop();
        failures = 0;
        this.log.debug({ startSeq }, "live event feed started");
        void this.watchStatus(messages);
        ready();
        for await (const m of messages) this.dispatch(m);
        const closed = await messages.closed();
        if (signal.aborted) break;
        this.log.info(
          { err: closed ? describeError(closed) : undefined, resumeSeq: this.resumeSeq },
          "live event feed interrupted; starting it again",
        );
      } catch (error) {
        if (signal.aborted) break;
        this.log.warn({ err: describeError(error) }, "live event feed is not available; retrying");
      }
      consumer?.delete().catch(() => {});
      const wait = LIVE_RETRY_MS[Math.min(failures++, LIVE_RETRY_MS.length - 1)] ?? 5_000;
      await delay(wait, undefined, { signal }).catch(() => {});
    }
    ready();
  }

  /**
   * nats.js recreates a lost ordered consumer by itself, but after a server restart its new
   * consumer is not pulled from until heartbeats are missed (v3.4 keeps counting the pulls
   * that went to the lost one). Starting over at `resumeSeq` is immediate and exact.
   */
  private async watchStatus(messages: ConsumerMessages): Promise<void> {
    for await (const status of messages.status()) {
      if (status.type === "next" || status.type === "heartbeat") continue;
      this.log.debug({ status }, "live event feed status");
      if (status.type === "consumer_not_found" || status.type === "stream_not_found") {
        messages.stop();
        return;
      }
    }
  }

  private dispatch(m: JsMsg): void {
    this.resumeSeq = m.seq + 1;
    const record = this.toRecord(m);
    if (!record) return;
    for (const subscriber of this.subscribers) {
      if (!matches(subscriber.filter, record)) continue;
      try {
        subscriber.listener(record);
      } catch (error) {
        if (!subscriber.failed) {
          subscriber.failed = true;
          this.log.warn({ err: describeError(error) }, "a live feed listener failed");
        }
      }
    }
  }

  private toRecord(m: JsMsg): StreamRecord | undefined {
    const base = { seq: m.seq, subject: m.subject, storedAt: m.time.toISOString() };
    const kind = m.subject.split(".")[2];
    if (kind === "evt") {
      const decoded = decode(ContainerEvent, m.data);
      const mismatch = decoded.ok ? eventSubjectMismatch(m.subject, decoded.value) : undefined;
      if (decoded.ok && !mismatch) return { kind: "event", ...base, event: decoded.value };
      this.reject(m, mismatch ?? (decoded.ok ? "" : decoded.error.message));
    } else if (kind === "act") {
      const decoded = decode(RemediationRecord, m.data);
      const mismatch = decoded.ok
        ? remediationSubjectMismatch(m.subject, decoded.value)
        : undefined;
      if (decoded.ok && !mismatch) {
        return { kind: "remediation", ...base, remediation: decoded.value };
      }
      this.reject(m, mismatch ?? (decoded.ok ? "" : decoded.error.message));
    } else {
      this.reject(m, "not an event or remediation subject");
    }
    return undefined;
  }

  // Counted every time, logged in full once: one bad publisher would otherwise flood the log
  // on every page and every live message.
  private reject(m: JsMsg, reason: string): void {
    this.onRejected(reason);
    const fields = { subject: m.subject, seq: m.seq, err: reason };
    if (this.loggedRejection) {
      this.log.debug(fields, "skipped a stored record that does not match its contract");
    } else {
      this.loggedRejection = true;
      this.log.warn(fields, "skipped a stored record that does not match its contract");
    }
  }
}

/**
 * The filter subjects of a history read, one ordered consumer each; `undefined` reads the whole
 * stream. nats-server 2.9 accepts a consumer filter only if it is a subset of one of the stream's
 * subjects (`fleetheal.v1.evt.>` or `fleetheal.v1.act.>`), so `fleetheal.v1.*.<host>.…` is
 * refused, and multiple filter subjects need 2.10: records of both kinds for one host or
 * container take two consumers, merged by sequence.
 */
export function filterSubjects(filter: StreamFilter): (string | undefined)[] {
  for (const [part, value] of [
    ["host", filter.host],
    ["container", filter.container],
  ] as const) {
    if (value !== undefined && !isToken(value)) {
      throw new ApiError(
        "FLEETHEAL_ERR_BAD_REQUEST",
        `${part} may contain only letters, digits, '_' and '-'`,
        { [part]: value },
      );
    }
  }
  if (!filter.kind && filter.host === undefined && filter.container === undefined) {
    return [undefined];
  }
  const tail = `${filter.host ?? "*"}.${filter.container ?? "*"}.*`;
  const kinds = filter.kind ? [filter.kind] : (["event", "remediation"] as const);
  return kinds.map((kind) => `${SUBJECT_ROOT}.${kind === "event" ? "evt" : "act"}.${tail}`);
}

/** Where a history read starts: after a sequence, or at a time (epoch ms). */
type ReadStart = { seq: number } | { time: number };

/**
 * One ordered consumer of a history read, with the messages fetched but not yet merged.
 *
 * It reads up to the last matching message at the time it opens, found with a direct lookup.
 * The consumer's pending count cannot mark the end: nats-server 2.9 overcounts it for wildcard
 * filters that start mid-stream, and a fetch that waits for a message that never comes would
 * hold the request until it expires.
 */
class HistorySource {
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

function matches(filter: StreamFilter, record: StreamRecord): boolean {
  if (filter.kind !== undefined && filter.kind !== record.kind) return false;
  // The subject is what history filters on, so live filtering uses it too.
  const [, , , host, container] = record.subject.split(".");
  if (filter.host !== undefined && filter.host !== host) return false;
  if (filter.container !== undefined && filter.container !== container) return false;
  return true;
}

/**
 * `since` as epoch milliseconds: a duration back from `now` (`30s`, `15m`, `2h`, `1h30m`, or
 * bare seconds), or an ISO-8601 time or date.
 */
export function sinceTime(since: string | undefined, now: number): number {
  if (since === undefined) return now - DEFAULT_SINCE_MS;
  const back = parseDuration(since);
  if (back !== undefined) return Math.max(0, now - back);
  if (IsoTime.safeParse(since).success) {
    const at = Date.parse(since);
    if (Number.isFinite(at)) return Math.max(0, at);
  }
  throw new ApiError(
    "FLEETHEAL_ERR_BAD_REQUEST",
    "since must be a duration back from now (such as 30s, 15m, 2h or 1h30m) or an ISO-8601 time (such as 2024-05-01T12:00:00Z)",
    { since },
  );
}
