import { createHash } from "node:crypto";
import type { HealPolicy } from "../contracts/index.js";
import { MAX_DEFER_MS } from "../policy/heal-policy.js";
import type { LeaseDenial, LeaseRequest } from "./decisions.js";

/*
 * The storm guard's slots as the heal and dependents handlers take them, and when a restart
 * held back (by a full cap, or by the image breaker) is looked at again.
 */

/** The least spread of the looks again at held-back restarts; doubles with each delivery. */
const HELD_BACK_RETRY_MS = 1_000;

/** The storm guard's caps for one restart on `host` (see HealPolicy.storm). */
export function stormLeases(host: string, policy: HealPolicy): LeaseRequest[] {
  const { storm } = policy;
  return [
    {
      bucket: "inflight",
      prefix: `host.${host}`,
      cap: storm.maxConcurrentPerHost,
      label: `at most ${storm.maxConcurrentPerHost} restarts at once on host ${host}`,
    },
    {
      bucket: "inflight",
      prefix: "fleet",
      cap: storm.maxConcurrentFleet,
      label: `at most ${storm.maxConcurrentFleet} restarts at once in the fleet`,
    },
    {
      bucket: "rate",
      prefix: `host.${host}`,
      cap: storm.maxPerMinutePerHost,
      label: `at most ${storm.maxPerMinutePerHost} restarts a minute on host ${host}`,
    },
    {
      bucket: "rate",
      prefix: "fleet",
      cap: storm.maxPerMinuteFleet,
      label: `at most ${storm.maxPerMinuteFleet} restarts a minute in the fleet`,
    },
  ];
}

/**
 * When to look again at a restart the storm guard held back: not before a slot of the full cap
 * can free (known for a rate cap), then a wait that doubles with each delivery. A storm of
 * thousands of held-back restarts thus comes back less and less often instead of every second,
 * while the first few retries of a small queue stay quick. Exported for unit tests.
 */
export function stormRetryDelayMs(
  eventId: string,
  deliveryCount: number,
  denial: LeaseDenial,
): number {
  return heldBackRetryMs(eventId, deliveryCount, denial.freeInMs ?? 0);
}

/**
 * `earliestMs`, then a spread that starts at a quarter of it (at least 1 s), doubles with each
 * delivery up to MAX_DEFER_MS and is scaled by 0.5–1.5 per event and delivery: restarts held
 * back together come back spread over a time that grows with how long they waited, not all at
 * once when the slot frees. With the heal handler's maxDeliver of 10,000, a restart held back
 * this way reaches its last delivery (and the dead-letter stream) only after weeks.
 */
export function heldBackRetryMs(
  eventId: string,
  deliveryCount: number,
  earliestMs: number,
): number {
  const base = Math.max(HELD_BACK_RETRY_MS, earliestMs / 4);
  const doubling = 2 ** Math.min(Math.max(0, deliveryCount - 1), 20);
  const backoff = Math.min(base * doubling, MAX_DEFER_MS);
  const spread =
    0.5 +
    createHash("sha256").update(`${eventId}:${deliveryCount}`).digest().readUInt16BE(0) / 65_536;
  return Math.round(earliestMs + backoff * spread);
}
