import { FleethealError } from "../common/errors.js";
import { earliestTimeNano } from "../common/nanosecond-time.js";

/**
 * A publish that the server refuses for good: the same bytes will be refused again (a message
 * larger than NATS's or the stream's size limit). The publish port throws it, with the server's
 * error as the cause, so that the outbox drops the message instead of retrying it forever.
 */
export class UnpublishableError extends FleethealError {
  override readonly name = "UnpublishableError";
  constructor(message: string, options?: { cause?: unknown }) {
    super("FLEETHEAL_ERR_UNPUBLISHABLE", message, options);
  }
}

/** One message waiting for JetStream's acknowledgement. */
export interface OutboxMessage {
  subject: string;
  payload: Uint8Array;
  /** JetStream `Nats-Msg-Id`: a retry after a lost ack is dropped by the server as a duplicate. */
  msgId: string;
  /** Docker's time of the event, for events read from Docker's stream (see oldestTimeNano). */
  timeNano?: string;
}

/**
 * Publishes one message and resolves once the server has stored it. Rejects with an
 * {@link UnpublishableError} when retrying cannot help, with anything else when it may.
 */
export type AckedPublish = (message: OutboxMessage) => Promise<void>;

export interface OutboxOptions {
  publish: AckedPublish;
  /** Most messages held; when full, the oldest is dropped (and counted). */
  capacity: number;
  /** Messages published concurrently while waiting for acks. */
  window?: number;
  /** First retry delay after a failed publish; doubles up to `maxRetryDelayMs`. */
  retryDelayMs?: number;
  maxRetryDelayMs?: number;
  /** Called once per failed attempt, for logging. */
  onPublishError?: (error: unknown, message: OutboxMessage) => void;
  /** Called when a message is dropped because the outbox is full. */
  onDrop?: (message: OutboxMessage) => void;
  /** Called once for each message dropped because the server refuses it for good. */
  onUnpublishable?: (error: UnpublishableError, message: OutboxMessage) => void;
}

/** Counters an operator needs to judge whether events are being lost. */
export interface OutboxStats {
  depth: number;
  published: number;
  dropped: number;
  /** Messages dropped because the server refused them for good (never retried). */
  unpublishable: number;
  failedAttempts: number;
}

/**
 * A bounded, ordered buffer of events that are not yet stored in JetStream.
 *
 * nats.js drops core publishes made while disconnected, so every event is held here until its
 * JetStream ack arrives, and retried (with the same message id, so the server dedups) until it
 * does. Enqueueing never blocks, which keeps the Docker event pump reading. When the outbox is
 * full the oldest message is dropped, counted and reported; the agent then reconciles from
 * Docker's state, because its state is what the dropped events described. A message the server
 * refuses for good ({@link UnpublishableError}) is dropped at once, counted and reported too:
 * retried, it would take a place in the window forever and hold up the messages behind it.
 */
export class Outbox {
  private readonly queue: OutboxMessage[] = [];
  private inFlight = 0;
  private retryDelayMs: number;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  readonly stats: OutboxStats = {
    depth: 0,
    published: 0,
    dropped: 0,
    unpublishable: 0,
    failedAttempts: 0,
  };

  constructor(private readonly options: OutboxOptions) {
    this.retryDelayMs = options.retryDelayMs ?? 100;
  }

  /** Adds a message; returns false when an older message had to be dropped to make room. */
  enqueue(message: OutboxMessage): boolean {
    let kept = true;
    if (this.queue.length >= this.options.capacity) {
      // The oldest message may be in flight; dropping it from the queue only means we stop
      // retrying it.
      const dropped = this.queue.shift();
      if (dropped) {
        this.stats.dropped++;
        this.options.onDrop?.(dropped);
      }
      kept = false;
    }
    this.queue.push(message);
    this.stats.depth = this.queue.length;
    this.pump();
    return kept;
  }

  /**
   * Docker's time of the oldest Docker event not yet acked. A restarted agent must replay from
   * there, not from the last event read, or what was read but never stored would be lost. The
   * queue is in Docker's order per container only (a health event waits for its inspect:
   * agent/inspect-first.ts), so the oldest is looked for, not taken from the front.
   */
  oldestTimeNano(): string | undefined {
    let oldest: string | undefined;
    for (const m of this.queue) oldest = earliestTimeNano(oldest, m.timeNano);
    return oldest;
  }

  /** Resolves when every queued message has been acked (or immediately if none is queued). */
  async drained(): Promise<void> {
    if (this.queue.length === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * The connection is back: retry now instead of when the backoff grown during the outage says
   * (up to maxRetryDelayMs), and start the backoff over. Messages already in flight are left to
   * their own ack or timeout; a copy of them is never sent, so the window still holds.
   */
  kick(): void {
    if (this.closed) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.retryDelayMs = this.options.retryDelayMs ?? 100;
    this.pump();
  }

  /** Stops publishing; messages still queued are returned so the caller can report them. */
  close(): OutboxMessage[] {
    this.closed = true;
    clearTimeout(this.retryTimer);
    return [...this.queue];
  }

  private readonly inFlightSet = new Set<OutboxMessage>();

  private pump(): void {
    if (this.closed || this.retryTimer) return;
    const window = this.options.window ?? 64;
    for (const message of this.queue) {
      if (this.inFlight >= window) break;
      if (this.inFlightSet.has(message)) continue;
      this.send(message);
    }
  }

  private send(message: OutboxMessage): void {
    this.inFlight++;
    this.inFlightSet.add(message);
    this.options.publish(message).then(
      () => this.settle(message, true),
      (error: unknown) => {
        this.stats.failedAttempts++;
        if (error instanceof UnpublishableError) {
          this.refused(message, error);
          return;
        }
        this.options.onPublishError?.(error, message);
        this.settle(message, false);
      },
    );
  }

  private settle(message: OutboxMessage, acked: boolean): void {
    this.inFlight--;
    this.inFlightSet.delete(message);
    if (acked) {
      const index = this.queue.indexOf(message);
      // A message dropped for capacity while in flight was already counted as dropped.
      if (index < 0) {
        this.pump();
        return;
      }
      this.queue.splice(index, 1);
      this.stats.published++;
      this.stats.depth = this.queue.length;
      this.retryDelayMs = this.options.retryDelayMs ?? 100;
      if (this.queue.length === 0) this.notifyIdle();
      this.pump();
      return;
    }
    this.scheduleRetry();
  }

  /** The server will never store `message`: drop it and go on with the next ones, no backoff. */
  private refused(message: OutboxMessage, error: UnpublishableError): void {
    this.inFlight--;
    this.inFlightSet.delete(message);
    const index = this.queue.indexOf(message);
    // A message dropped for capacity while in flight was already counted as dropped.
    if (index >= 0) {
      this.queue.splice(index, 1);
      this.stats.unpublishable++;
      this.stats.depth = this.queue.length;
      this.options.onUnpublishable?.(error, message);
      if (this.queue.length === 0) this.notifyIdle();
    }
    this.pump();
  }

  private scheduleRetry(): void {
    if (this.closed || this.retryTimer) return;
    const delay = this.retryDelayMs;
    this.retryDelayMs = Math.min(delay * 2, this.options.maxRetryDelayMs ?? 5_000);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.pump();
    }, delay);
    this.retryTimer.unref();
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
