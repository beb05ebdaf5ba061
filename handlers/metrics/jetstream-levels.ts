import type { JetStreamManager } from "@nats-io/jetstream";
import { describeError } from "../../common/errors.js";
import type { Logger } from "../../common/logger.js";
import { RepeatLimiter } from "../../common/repeat-limiter.js";
import { DLQ_STREAM, EVENTS_STREAM } from "../../contracts/index.js";

/** One handler's durable consumer as JetStream reports it. */
export interface ConsumerLevel {
  /** The durable's name, `fleetheal-<handler>`. */
  consumer: string;
  /** Messages of the stream not yet delivered to it. */
  pending: number;
  /** Delivered and not yet acknowledged. */
  ackPending: number;
  /** Delivered more than once and not yet acknowledged. */
  redelivered: number;
}

/** What the metrics read from JetStream: the handlers' backlog and the dead letters. */
export interface JetStreamLevels {
  consumers: ConsumerLevel[];
  /** FLEETHEAL_DLQ's message count; undefined when it could not be read. */
  dlqMessages: number | undefined;
}

/** How fresh a reading must be to be served again: scrapes cost bounded NATS requests. */
export const LEVELS_CACHE_MS = 5_000;
/** A reading slower than this is given up: a scrape must answer even while NATS does not. */
export const LEVELS_TIMEOUT_MS = 2_000;

/** What {@link cachedLevels} works with. */
export interface CachedLevelsOptions {
  log: Logger;
  cacheMs?: number;
  timeoutMs?: number;
  now?: () => number;
}

/**
 * Reads the levels at most once per `cacheMs`, however many scrapes (and gauges) ask: callers
 * in the meantime share the last reading, or the one in progress. A reading that fails or takes
 * longer than `timeoutMs` gives undefined, logged at most once a minute.
 */
export function cachedLevels(
  read: () => Promise<JetStreamLevels>,
  {
    log,
    cacheMs = LEVELS_CACHE_MS,
    timeoutMs = LEVELS_TIMEOUT_MS,
    now = Date.now,
  }: CachedLevelsOptions,
): () => Promise<JetStreamLevels | undefined> {
  let last: { at: number; levels: Promise<JetStreamLevels | undefined> } | undefined;
  const failures = new RepeatLimiter(60_000, now);
  const attempt = async (): Promise<JetStreamLevels | undefined> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no answer from JetStream within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([read(), timeout]);
    } catch (error) {
      const held = failures.take();
      if (held !== undefined) {
        log.warn(
          { err: describeError(error), ...(held > 0 ? { alsoFailed: held } : {}) },
          "metrics: could not read the consumers and dead letters from JetStream",
        );
      }
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  };
  return () => {
    const t = now();
    if (!last || t - last.at >= cacheMs) last = { at: t, levels: attempt() };
    return last.levels;
  };
}

/**
 * The levels of the handlers' durable consumers (by name) and of the dead-letter stream: one
 * JetStream request each. A consumer that cannot be read (not created yet) is left out.
 */
export function jetStreamLevels(
  jsm: JetStreamManager,
  durables: () => readonly string[],
): () => Promise<JetStreamLevels> {
  return async () => {
    const [consumers, dlq] = await Promise.all([
      Promise.allSettled(durables().map((name) => jsm.consumers.info(EVENTS_STREAM, name))),
      jsm.streams.info(DLQ_STREAM).then(
        (info) => info.state.messages,
        () => undefined,
      ),
    ]);
    const read = consumers.flatMap((c) => (c.status === "fulfilled" ? [c.value] : []));
    if (read.length === 0 && consumers.length > 0 && dlq === undefined) {
      const first = consumers.find((c) => c.status === "rejected");
      throw first?.reason ?? new Error("JetStream did not answer");
    }
    return {
      consumers: read.map((info) => ({
        consumer: info.name,
        pending: info.num_pending,
        ackPending: info.num_ack_pending,
        redelivered: info.num_redelivered,
      })),
      dlqMessages: dlq,
    };
  };
}
