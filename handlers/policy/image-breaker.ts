import { createHash } from "node:crypto";
import type { HealPolicy, ImageFailures } from "../../contracts/index.js";

/** One container's trouble, as the image breaker counts it. */
export interface ImageFailure {
  at: number;
  host: string;
  containerId: string;
  incident: string;
}

/** The breaker's verdict, and the entry to store. */
export interface BreakerState {
  entry: ImageFailures;
  /** Failures of the image within the window, this one included. */
  count: number;
  /** Open: too many containers of this image are failing; do not restart it now. */
  open: boolean;
}

/** KV key of an image: its name may hold characters KV keys cannot. */
export function imageKey(image: string): string {
  return `img-${createHash("sha256").update(image).digest("hex").slice(0, 32)}`;
}

/**
 * Adds a failure of `image` (once per incident) and prunes those outside the window. The
 * breaker is open when the failures of distinct containers in the window reach the threshold;
 * a threshold of 0 turns it off.
 */
export function recordImageFailure(
  current: ImageFailures | undefined,
  image: string,
  failure: ImageFailure,
  policy: HealPolicy,
): BreakerState {
  const { failures: threshold, windowSeconds } = policy.storm.imageBreaker;
  const since = failure.at - windowSeconds * 1000;
  const kept = (current?.failures ?? []).filter((f) => Date.parse(f.at) >= since);
  const seen = kept.some(
    (f) => f.containerId === failure.containerId && f.incident === failure.incident,
  );
  const failures = seen
    ? kept
    : [
        {
          at: new Date(failure.at).toISOString(),
          host: failure.host,
          containerId: failure.containerId,
          incident: failure.incident,
        },
        ...kept,
      ].slice(0, 10_000);
  const containers = new Set(failures.map((f) => `${f.host}/${f.containerId}`)).size;
  return {
    entry: { v: 1, image, failures },
    count: containers,
    open: threshold > 0 && containers >= threshold,
  };
}
