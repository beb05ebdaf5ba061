import {
  AckPolicy,
  type ConsumerConfig,
  DeliverPolicy,
  type JetStreamManager,
} from "@nats-io/jetstream";
import { describeError } from "../../common/errors.js";
import type { Logger } from "../../common/logger.js";
import { EVENTS_STREAM } from "../../contracts/index.js";
import type { HandlerDefinition } from "../handler.js";

/** How long JetStream waits for an answer to a delivery before it delivers it again. */
const ACK_WAIT_MS = 30_000;
/**
 * Unacknowledged messages a consumer may have out. A deferral (a message nak'ed with a delay:
 * backoff, storm guard, image breaker) stays unacknowledged until it comes back, and JetStream
 * stops delivering anything new at this limit: with a lower one, a storm of deferred events
 * would hold back every other event behind it. What one replica holds in memory is bounded by
 * the pull size instead.
 */
const MAX_ACK_PENDING = 250_000;
const nanos = (ms: number) => ms * 1_000_000;

/** What of a handler's durable consumer the runtime sets on every bind. */
type DurableHandler = Pick<HandlerDefinition<unknown>, "subject" | "maxDeliver">;

/** The durable consumer of a handler, shared by every replica: `fleetheal-<name>`. */
export function durableName(handler: string): string {
  return `fleetheal-${handler}`;
}

/** The settings of a handler's durable that every bind applies again (its position is kept). */
export function durableSettings(def: DurableHandler) {
  return {
    filter_subject: def.subject,
    max_deliver: def.maxDeliver,
    ack_wait: nanos(ACK_WAIT_MS),
    max_ack_pending: MAX_ACK_PENDING,
  };
}

/**
 * The whole configuration of a handler's durable, starting at a time (a new durable: the recent
 * past) or at a stream sequence (one placed by `fleetheal nats-migrate import`).
 */
export function durableConfig(
  def: DurableHandler & { name: string },
  start: { startTime: Date } | { startSeq: number },
): Partial<ConsumerConfig> {
  return {
    ...durableSettings(def),
    durable_name: durableName(def.name),
    ack_policy: AckPolicy.Explicit,
    ...("startTime" in start
      ? { deliver_policy: DeliverPolicy.StartTime, opt_start_time: start.startTime.toISOString() }
      : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: start.startSeq }),
  };
}

/**
 * Creates the handler's durable consumer, or brings an existing one's settings up to date. A
 * new one starts `startBackMs` back in the stream, so that a handler started just after an
 * agent still sees its first events.
 */
export async function ensureDurable(
  jsm: JetStreamManager,
  def: HandlerDefinition<unknown>,
  startBackMs: number,
  log: Logger,
): Promise<void> {
  const durable = durableName(def.name);
  try {
    await jsm.consumers.info(EVENTS_STREAM, durable);
    try {
      // An existing durable keeps its position: one that `fleetheal nats-migrate import`
      // created, or another replica's, resumes where it is.
      await jsm.consumers.update(EVENTS_STREAM, durable, durableSettings(def));
    } catch (updateError) {
      // nats-server 2.9 cannot change a consumer's filter in place (an upgrade that changed a
      // handler's subject): start it over from the recent past.
      log.warn(
        { durable, err: describeError(updateError) },
        "consumer cannot be updated; recreating it",
      );
      await jsm.consumers.delete(EVENTS_STREAM, durable);
      throw new Error("consumer not found after delete");
    }
  } catch (error) {
    if (!/not found/i.test(describeError(error))) throw error;
    try {
      await jsm.consumers.add(
        EVENTS_STREAM,
        durableConfig(def, { startTime: new Date(Date.now() - startBackMs) }),
      );
    } catch (addError) {
      // Another replica created it first; that is the same consumer.
      if (!/already (exists|in use)/i.test(describeError(addError))) throw addError;
    }
  }
}
