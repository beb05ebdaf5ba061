import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import type { Logger } from "../../common/logger.js";
import type { EventsPage, EventsQuery, StreamRecord } from "../http/api-schemas.js";
import { readHistory } from "./event-history.js";
import { LiveEventFeed } from "./live-event-feed.js";
import { unavailableOnNatsError } from "./nats-unavailable.js";
import type { EventLog, LiveFeed, StreamFilter } from "./ports.js";
import { filterSubjects, sinceTime } from "./stream-filter.js";
import { StreamRecordDecoder } from "./stream-records.js";

export interface NatsEventLogOptions {
  js: JetStreamClient;
  jsm: JetStreamManager;
  log: Logger;
  /** Called for every stored message that does not match its contract (it is skipped). */
  onRejected?: (reason: string) => void;
  /** The longest a history read may take; it returns what it has by then. Default 2 s. */
  readDeadlineMs?: number;
}

const DEFAULT_READ_DEADLINE_MS = 2_000;

/**
 * {@link EventLog} and {@link LiveFeed} on the events stream.
 *
 * History is read with a short-lived ordered consumer per request, filtered on the server by
 * subject (event-history.ts, within the limits of nats-server 2.9 explained at
 * {@link filterSubjects}). The live feed is one ordered consumer for the whole gateway
 * (live-event-feed.ts). Both decode stored messages the same way (stream-records.ts).
 */
export class NatsEventLog implements EventLog, LiveFeed {
  private readonly js: JetStreamClient;
  private readonly jsm: JetStreamManager;
  private readonly log: Logger;
  private readonly readDeadlineMs: number;
  private readonly decoder: StreamRecordDecoder;
  private readonly feed: LiveEventFeed;

  constructor(options: NatsEventLogOptions) {
    this.js = options.js;
    this.jsm = options.jsm;
    this.log = options.log;
    this.readDeadlineMs = options.readDeadlineMs ?? DEFAULT_READ_DEADLINE_MS;
    this.decoder = new StreamRecordDecoder(options.log, options.onRejected ?? (() => {}));
    this.feed = new LiveEventFeed({
      js: options.js,
      jsm: options.jsm,
      log: options.log,
      toRecord: (m) => this.decoder.decode(m),
    });
  }

  /**
   * Up to `query.limit` stored records that match the query, oldest first. Starts after
   * `query.after` if given, else at `query.since` (default an hour before `now`). `next` is set
   * when the page is full, when more matching records are stored already, or when the deadline
   * cut the read short.
   */
  async read(query: EventsQuery, now: number): Promise<EventsPage> {
    const filters = filterSubjects(query);
    const since = query.after === undefined ? sinceTime(query.since, now) : undefined;
    return unavailableOnNatsError(this.log, "read the events stream", () =>
      readHistory(query, {
        js: this.js,
        jsm: this.jsm,
        filters,
        since,
        deadlineMs: this.readDeadlineMs,
        toRecord: (m) => this.decoder.decode(m),
      }),
    );
  }

  /**
   * Calls `listener` for every record stored from now on that passes `filter`. Starts the live
   * consumer if it is not running yet. A listener that throws is logged and does not disturb
   * the others.
   */
  subscribe(filter: StreamFilter, listener: (record: StreamRecord) => void): () => void {
    return this.feed.subscribe(filter, listener);
  }

  /**
   * Starts the live consumer, if it is not running yet, and resolves once it receives. It keeps
   * retrying in the background while the stream cannot be reached; the promise then resolves
   * only when it finally is (or when the feed is stopped).
   */
  start(): Promise<void> {
    return this.feed.start();
  }

  /** Ends the live feed (gateway shutdown). Subscribers get no more records. */
  stop(): Promise<void> {
    return this.feed.stop();
  }
}
