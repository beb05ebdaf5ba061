import type { KV } from "@nats-io/kv";
import type { Logger } from "../../common/logger.js";
import { decode, type HealPolicy, ImageFailures } from "../../contracts/index.js";
import { storedBreakerVerdict } from "../../policy/image-breaker.js";
import { follow } from "./view-sync.js";

/** The image breakers' entries as the breakers bucket holds them now, by key. */
export interface BreakerEntries {
  values(): Iterable<ImageFailures>;
}

/**
 * Follows the breakers bucket (one entry per image with recent failures, written by the
 * handlers, each gone a day after its last write), for the gateway's
 * `fleetheal_image_breakers_open`. Whether a breaker is open is judged at scrape time, from the
 * entry and the policy in force, since failures leave the window with time, not with writes.
 */
export async function followBreakers(
  kv: KV,
  log: Logger,
  onRejected: () => void = () => {},
): Promise<{ entries: BreakerEntries; stop: () => Promise<void> }> {
  const entries = new Map<string, ImageFailures>();
  const stop = await follow(
    kv,
    () => {},
    (entry) => {
      if (entry.operation !== "PUT") {
        entries.delete(entry.key);
        return;
      }
      const decoded = decode(ImageFailures, entry.value);
      if (!decoded.ok) {
        entries.delete(entry.key);
        onRejected();
        log.warn({ key: entry.key, err: decoded.error.message }, "rejected image breaker entry");
        return;
      }
      entries.set(entry.key, decoded.value);
    },
  );
  return { entries: { values: () => entries.values() }, stop };
}

/**
 * How many of `entries` have their breaker open at `now` under `policy`, judged as the heal
 * handler judges them (policy/image-breaker.ts); `severalHosts`: the fleet has more than one host.
 */
export function countOpenBreakers(
  entries: Iterable<ImageFailures>,
  now: number,
  policy: HealPolicy,
  severalHosts: boolean,
): number {
  let open = 0;
  for (const entry of entries) {
    if (storedBreakerVerdict(entry, now, policy, { severalHosts }).open) open++;
  }
  return open;
}
