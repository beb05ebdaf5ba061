import { setTimeout as delay } from "node:timers/promises";
import type {
  Consumer,
  ConsumerMessages,
  JetStreamClient,
  JetStreamManager,
  JsMsg,
} from "@nats-io/jetstream";
import { describeError } from "../../common/errors.js";
import type { Logger } from "../../common/logger.js";
import { EVENTS_STREAM } from "../../contracts/index.js";
import type { StreamRecord } from "../http/api-schemas.js";
import type { LiveFeed, StreamFilter } from "./ports.js";
import { matchesFilter } from "./stream-filter.js";

/** Pull size of the live feed. */
const LIVE_BATCH = 256;
/**
 * Expiry of the live feed's pulls; heartbeats come every half of it, and two missed ones make
 * nats.js check the consumer, so this bounds how long a broken pull can stall the feed.
 */
const LIVE_PULL_EXPIRES_MS = 10_000;
/** Retry delays of the live consumer when it cannot be created. */
const LIVE_RETRY_MS = [500, 1_000, 2_000, 5_000];

type Listener = (record: StreamRecord) => void;

interface Subscriber {
  filter: StreamFilter;
  listener: Listener;
  /** A throwing listener is logged once, not once per record. */
  failed: boolean;
}

/** What the live feed reads from and how it decodes what it reads. */
export interface LiveEventFeedOptions {
  js: JetStreamClient;
  jsm: JetStreamManager;
  log: Logger;
  /** The record stored in a message, or undefined to skip it. */
  toRecord: (m: JsMsg) => StreamRecord | undefined;
}

/**
 * {@link LiveFeed} on the events stream: one ordered consumer for the whole gateway, however
 * many SSE clients listen. Records are fanned out in-process, each subscriber with its own
 * filter.
 */
export class LiveEventFeed implements LiveFeed {
  private readonly js: JetStreamClient;
  private readonly jsm: JetStreamManager;
  private readonly log: Logger;
  private readonly toRecord: (m: JsMsg) => StreamRecord | undefined;

  private readonly subscribers = new Set<Subscriber>();
  private live: Promise<void> | undefined;
  private liveReady: Promise<void> | undefined;
  private messages: ConsumerMessages | undefined;
  private liveConsumer: Consumer | undefined;
  /** The next sequence the live feed is to deliver, once it has started. */
  private resumeSeq: number | undefined;
  private readonly stopping = new AbortController();

  constructor(options: LiveEventFeedOptions) {
    this.js = options.js;
    this.jsm = options.jsm;
    this.log = options.log;
    this.toRecord = options.toRecord;
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
      if (!matchesFilter(subscriber.filter, record)) continue;
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
}
