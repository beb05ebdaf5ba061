import type { ContainerEvent, HealPolicy, ImageFailures } from "../contracts/index.js";
import { type BreakerState, type ImageRef, imageKey, recordImageFailure } from "./image-breaker.js";

/*
 * The image breaker's bookkeeping for one trouble event: what to count, against which key, and
 * what the count says, on the entry as read and on whatever another replica stored since. The
 * heal handler turns it into store updates (handlers/heal-image-breaker.ts).
 */

/** The breaker's entry as read, with its revision. */
export interface StoredImageFailures {
  value: ImageFailures;
  revision: number;
}

/** What the breaker decides from: its entry, and whether the fleet has several hosts. */
export interface BreakerRead {
  current: StoredImageFailures | undefined;
  severalHosts: boolean;
}

/** One event's failure, counted against its image. */
export interface ImageFailureTally {
  /** The breaker's KV key. */
  key: string;
  /** The verdict on the entry as read, this failure counted. */
  state: BreakerState;
  /** Counting changed the entry as read, so it must be written. */
  changed: boolean;
  /**
   * Counts this failure on `latest`, an entry that another replica may have stored since the
   * read: pure, so that a store update may run it again on each conflict.
   */
  count(latest: ImageFailures | undefined): BreakerState;
}

/** The image a failure counts against: its id, or its name from an agent that sends no id. */
export function imageRef(event: ContainerEvent): ImageRef {
  return { id: event.container.imageId, name: event.container.image };
}

/** The image as records name it. */
export function imageName(event: ContainerEvent): string {
  const { image, imageId } = event.container;
  return imageId ? `${image} (${imageId})` : image;
}

/** Whether the policy turns the breaker on. */
export function imageBreakerOn(policy: HealPolicy): boolean {
  return policy.storm.imageBreaker.failures > 0;
}

/**
 * Counts this trouble (the container's run `incident`, at `at`) against its image, unless the
 * breaker is off. Failures age out of the window as time passes (docs/POLICY.md), not only as
 * newer ones come: a trigger held back by the breaker comes back with its own old time, and
 * counted from that time the failures it was held back for would never leave the window.
 */
export function tallyImageFailure(
  read: BreakerRead,
  event: ContainerEvent,
  incident: string,
  at: number,
  now: Date,
  policy: HealPolicy,
): ImageFailureTally | undefined {
  if (!imageBreakerOn(policy)) return undefined;
  const { current, severalHosts } = read;
  const image = imageRef(event);
  const failure = { at, host: event.host, containerId: event.container.id, incident };
  const since = now.getTime() - policy.storm.imageBreaker.windowSeconds * 1000;
  const count = (failures: ImageFailures | undefined) =>
    recordImageFailure(
      failures && {
        ...failures,
        failures: failures.failures.filter((f) => Date.parse(f.at) >= since),
      },
      image,
      failure,
      policy,
      { severalHosts },
    );
  const state = count(current?.value);
  return {
    key: imageKey(image),
    state,
    changed: !current || !sameFailures(current.value, state.entry),
    count,
  };
}

function sameFailures(a: ImageFailures, b: ImageFailures): boolean {
  return (
    a.failures.length === b.failures.length &&
    a.failures.every((f, i) => {
      const g = b.failures[i];
      return (
        g !== undefined &&
        f.at === g.at &&
        f.host === g.host &&
        f.containerId === g.containerId &&
        f.incident === g.incident
      );
    })
  );
}
