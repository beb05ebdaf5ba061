import { createHash } from "node:crypto";
import type { HealPolicy, ImageFailures } from "../contracts/index.js";

/** The image a failure is counted against: by id, or by name when the event carries no id. */
export interface ImageRef {
  /** Docker's image id; absent from events of agents that predate it. */
  id?: string | undefined;
  name: string;
}

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
  /**
   * What is compared with the threshold: each host's distinct failing containers in the window,
   * at most its share ({@link hostShare}) when the fleet has several hosts.
   */
  count: number;
  /** Distinct failing containers of the image in the window, this one included. */
  containers: number;
  /** Hosts with a failing container of the image in the window. */
  hosts: number;
  /** Open: too many containers of this image are failing; do not restart it now. */
  open: boolean;
}

/** Most failures one entry keeps, whatever the threshold and the number of hosts. */
const MAX_FAILURES = 10_000;

/**
 * KV key of an image: a hash, since names and ids hold characters KV keys cannot. Ids and names
 * have keys of their own, so a name can never stand in for an id.
 */
export function imageKey(image: ImageRef): string {
  return image.id ? `imgid-${digest(image.id)}` : `img-${digest(image.name)}`;
}

/**
 * The most that one host's failures count for in a fleet of several hosts: half the threshold,
 * rounded up. Whatever one host reports (its own containers, or events it forges), it cannot
 * open the breaker that holds back the image on every host; failures on a second host must add
 * the rest.
 */
export function hostShare(threshold: number): number {
  return Math.ceil(threshold / 2);
}

/**
 * Adds a failure of `image` and prunes the entry: failures outside the window go, a container
 * is kept once (its latest incident), and a host keeps at most `threshold` containers, more
 * than it can ever count for, so that no host can fill the entry. The breaker is open when the
 * count (see {@link BreakerState.count}) reaches the threshold and, in a fleet of several hosts,
 * at least two hosts have failures; a threshold of 0 turns it off. On a one-host fleet that host
 * counts in full, as it is the whole fleet.
 */
export function recordImageFailure(
  current: ImageFailures | undefined,
  image: ImageRef,
  failure: ImageFailure,
  policy: HealPolicy,
  fleet: { severalHosts: boolean },
): BreakerState {
  const { failures: threshold, windowSeconds } = policy.storm.imageBreaker;
  const since = failure.at - windowSeconds * 1000;
  const kept = (current?.failures ?? []).filter((f) => Date.parse(f.at) >= since);
  const sameContainer = (f: ImageFailures["failures"][number]) =>
    f.host === failure.host && f.containerId === failure.containerId;
  // This incident, or a later one of the same container, is counted already: a redelivery, or
  // a copy of an older run's trigger.
  const seen = kept.some(
    (f) => sameContainer(f) && (f.incident === failure.incident || Date.parse(f.at) >= failure.at),
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
        ...kept.filter((f) => !sameContainer(f)),
      ];
  // A host's failures beyond the threshold can never count; the list stays bounded anyway.
  const { kept: bounded, perHost } = newestPerHost(
    failures.slice(0, MAX_FAILURES),
    Math.max(threshold, 1),
  );
  return {
    entry: {
      v: 1,
      image: image.name,
      ...(image.id ? { imageId: image.id } : {}),
      failures: bounded,
    },
    ...verdict(perHost, threshold, fleet),
  };
}

/**
 * The breaker's verdict on a stored entry at `now`, as {@link recordImageFailure} would give it
 * without a new failure: for readers that only watch the breakers (the gateway's metrics).
 */
export function storedBreakerVerdict(
  entry: ImageFailures,
  now: number,
  policy: HealPolicy,
  fleet: { severalHosts: boolean },
): Omit<BreakerState, "entry"> {
  const { failures: threshold, windowSeconds } = policy.storm.imageBreaker;
  const since = now - windowSeconds * 1000;
  const inWindow = entry.failures.filter((f) => Date.parse(f.at) >= since);
  const { perHost } = newestPerHost(inWindow.slice(0, MAX_FAILURES), Math.max(threshold, 1));
  return verdict(perHost, threshold, fleet);
}

/** What is compared with the threshold, and whether the breaker is open. */
function verdict(
  perHost: ReadonlyMap<string, ReadonlySet<string>>,
  threshold: number,
  fleet: { severalHosts: boolean },
): Omit<BreakerState, "entry"> {
  const share = fleet.severalHosts ? hostShare(threshold) : threshold;
  let count = 0;
  let containers = 0;
  for (const ids of perHost.values()) {
    containers += ids.size;
    count += Math.min(ids.size, share);
  }
  return {
    count,
    containers,
    hosts: perHost.size,
    open: threshold > 0 && count >= threshold && (!fleet.severalHosts || perHost.size >= 2),
  };
}

/**
 * The failures of each host's `limit` newest failing containers (the list is newest first), and
 * the containers kept per host.
 */
function newestPerHost(
  failures: ImageFailures["failures"],
  limit: number,
): { kept: ImageFailures["failures"]; perHost: Map<string, Set<string>> } {
  const perHost = new Map<string, Set<string>>();
  const kept = failures.filter((f) => {
    const ids = perHost.get(f.host) ?? new Set<string>();
    perHost.set(f.host, ids);
    if (ids.has(f.containerId)) return true;
    if (ids.size >= limit) return false;
    ids.add(f.containerId);
    return true;
  });
  return { kept, perHost };
}

function digest(text: string): string {
  return createHash("sha256").update(text).digest("hex").slice(0, 32);
}
