import { describeError } from "../../common/errors.js";
import type { Logger } from "../../common/logger.js";
import { decode } from "../../contracts/index.js";
import type { HandlerDefinition } from "../handler.js";
import type { DecisionRunner } from "./decision-runner.js";
import type { HandlerIo } from "./handler-io.js";

/**
 * One delivery of a message from a handler's consumer, and the answers JetStream takes for it.
 * A JetStream `JsMsg` is one.
 */
export interface Delivery {
  readonly subject: string;
  readonly data: Uint8Array;
  /** Its sequence in the stream. */
  readonly seq: number;
  readonly info: { readonly deliveryCount: number };
  /** Done: never deliver it again. */
  ack(): void;
  /** Not done: deliver it again after `delayMs`. */
  nak(delayMs?: number): void;
  /** Given up on: never deliver it again. */
  term(): void;
  /** Still at it: restart the ack wait. */
  working(): void;
}

/** Counters per handler, for the stats service and the metrics (handlers/metrics). */
export interface HandlerStats {
  handled: number;
  /** Malformed, or on a subject that is not their own: dead-lettered at once. */
  rejected: number;
  /** Failed, and left to be delivered again. */
  retried: number;
  /** Ended by a `retry` decision. */
  deferred: number;
  /** Failed on their last delivery: dead-lettered. */
  failed: number;
  /** Claims lost to another replica (each one decided again). */
  conflicts: number;
}

/** One handler's counters before its first delivery. */
export function emptyHandlerStats(): HandlerStats {
  return { handled: 0, rejected: 0, retried: 0, deferred: 0, failed: 0, conflicts: 0 };
}

/** What handling a delivery works with. */
export interface DeliveryDeps {
  runner: DecisionRunner;
  io: HandlerIo;
  log: Logger;
  /** The handler's counters (handlers/metrics keeps them). */
  stats: HandlerStats;
  /** Told of each message stored in the dead-letter stream (handlers/metrics). */
  deadLetters?: { deadLettered(handler: string): void };
}

/** Tell JetStream we are still working well before the consumer's ack wait (30 s) runs out. */
const WORKING_INTERVAL_MS = 10_000;

/**
 * Handles one delivery to the end: validates the message, lets the handler decide and the
 * runner apply, then acknowledges it; or leaves it to be delivered again later (a failure, a
 * `retry` decision); or moves it to the dead-letter stream (malformed, or its last delivery
 * failed). Never rejects.
 */
export async function handleDelivery(
  def: HandlerDefinition<unknown>,
  msg: Delivery,
  deps: DeliveryDeps,
): Promise<void> {
  const { runner, log: parent, stats } = deps;
  const log = parent.child({ handler: def.name, subject: msg.subject, seq: msg.seq });
  const decoded = decode(def.schema, msg.data);
  const problem = !decoded.ok
    ? { code: decoded.error.code, err: decoded.error.message }
    : subjectProblem(def, msg.subject, decoded.value);
  if (problem || !decoded.ok) {
    const { code, err } = problem ?? { code: "FLEETHEAL_ERR_SCHEMA", err: "invalid" };
    stats.rejected++;
    log.warn({ code, err }, "rejected malformed message; moved to the dead-letter stream");
    await deadLetter(def, msg, `${code}: ${err}`, { ...deps, log });
    return;
  }
  const working = setInterval(() => msg.working(), WORKING_INTERVAL_MS);
  const { deliveryCount } = msg.info;
  const lastDelivery = deliveryCount >= def.maxDeliver;
  try {
    const outcome = await runner.run((ctx) => def.handle(decoded.value, ctx), {
      handler: def.name,
      log,
      deliveryCount,
      lastDelivery,
      onLostClaim: () => stats.conflicts++,
    });
    if (outcome.kind === "applied") {
      stats.handled++;
      msg.ack();
    } else if (lastDelivery) {
      await giveUp(def, msg, outcome.reason, { ...deps, log });
    } else {
      stats.deferred++;
      // Routine, and recorded already (a skipped record, the counters): in a storm this
      // would be a line per waiting container per retry.
      log.debug(
        { reason: outcome.reason, delayMs: outcome.delayMs },
        "deferred; JetStream will redeliver",
      );
      msg.nak(outcome.delayMs);
    }
  } catch (error) {
    if (lastDelivery) {
      await giveUp(def, msg, describeError(error), { ...deps, log });
    } else {
      const delayMs = backoff(deliveryCount);
      stats.retried++;
      log.warn({ err: describeError(error), delayMs }, "handling failed; will retry");
      msg.nak(delayMs);
    }
  } finally {
    clearInterval(working);
  }
}

async function giveUp(
  def: HandlerDefinition<unknown>,
  msg: Delivery,
  reason: string,
  deps: Omit<DeliveryDeps, "runner">,
): Promise<void> {
  const { log, stats } = deps;
  stats.failed++;
  log.error(
    { err: reason, deliveries: msg.info.deliveryCount },
    "giving up on message after its last delivery; moved to the dead-letter stream",
  );
  await deadLetter(def, msg, reason, deps);
}

/**
 * Moves a message to `fleetheal.v1.dlq.<handler>` (stream FLEETHEAL_DLQ) with why, then
 * terminates it. If the dead letter cannot be stored, the message is left to be redelivered:
 * nothing is dropped silently.
 */
async function deadLetter(
  def: HandlerDefinition<unknown>,
  msg: Delivery,
  reason: string,
  { io, log, deadLetters }: Omit<DeliveryDeps, "runner">,
): Promise<void> {
  try {
    await io.deadLetter({
      handler: def.name,
      subject: msg.subject,
      data: msg.data,
      reason,
      deliveries: msg.info.deliveryCount,
      streamSeq: msg.seq,
    });
    // A bare +TERM: nats-server 2.9 takes `+TERM <reason>` for no acknowledgement at all and
    // redelivers the message after the ack wait. The reason is in the dead letter's headers.
    msg.term();
    deadLetters?.deadLettered(def.name);
  } catch (error) {
    log.error({ err: describeError(error) }, "could not store the dead letter; will retry");
    msg.nak(backoff(msg.info.deliveryCount));
  }
}

/** A valid message on a subject that is not its own: treated as malformed. */
function subjectProblem(
  def: HandlerDefinition<unknown>,
  subject: string,
  message: unknown,
): { code: string; err: string } | undefined {
  const mismatch = def.subjectMismatch?.(subject, message);
  return mismatch === undefined ? undefined : { code: "FLEETHEAL_ERR_SUBJECT", err: mismatch };
}

/** Redelivery delay after a failure: 1 s doubling to 60 s. */
function backoff(deliveryCount: number): number {
  return Math.min(1_000 * 2 ** Math.max(0, deliveryCount - 1), 60_000);
}
