import { z } from "zod";
import { Token } from "./tokens.js";

/*
 * A handler replica's counters, for monitoring: NATS requests to
 * `fleetheal.v1.handler.<replica>.stats` (an endpoint of the micro service `fleetheal-handler`,
 * so `$SRV.STATS.fleetheal-handler` reports the same counters for every replica at once).
 */

export const HANDLER_STATS_TYPE = "fleetheal.handler.v1.stats";

const Count = z.number().int().min(0);

/** What one handler (heal, auto-monitor, dependents, notify) of a replica did since it started. */
export const HandlerCounters = z
  .object({
    /** Messages it acted on and acknowledged. */
    handled: Count,
    /** Malformed messages (bad JSON, schema or subject) moved to the dead-letter stream. */
    rejected: Count,
    /** Deliveries that failed and were left to JetStream to redeliver after a backoff. */
    retried: Count,
    /** Deliveries deferred on purpose (backoff, storm guard, image breaker…) to come back later. */
    deferred: Count,
    /** Messages given up on after their last delivery (moved to the dead-letter stream). */
    failed: Count,
    /** Decisions taken again because another replica's compare-and-set won first. */
    conflicts: Count,
  })
  .describe("What one handler of a replica did since the replica started.");
export type HandlerCounters = z.infer<typeof HandlerCounters>;

/** The answer to a stats request: every handler bound in the replica, by name. */
export const HandlerStats = z
  .object({
    type: z.literal(HANDLER_STATS_TYPE),
    v: z.literal(1),
    /** The replica's name, as in its subject (the NATS connection name, as a token). */
    replica: Token,
    handlers: z.record(Token, HandlerCounters),
  })
  .describe("A handler replica's counters, per handler, since it started.");
export type HandlerStats = z.infer<typeof HandlerStats>;
