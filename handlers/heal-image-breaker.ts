import type { ContainerEvent, HealPolicy, ImageFailures } from "../contracts/index.js";
import { type BreakerState, imageKey } from "../policy/image-breaker.js";
import {
  type BreakerRead,
  imageBreakerOn,
  imageRef,
  tallyImageFailure,
} from "../policy/image-breaker-tally.js";
import type { Decision, UpdateDecision } from "./decisions.js";
import type { HandlerContext } from "./handler.js";

/** One trouble event's count against its image, as the store updates that write it. */
export interface ImageBreakerCount {
  /** The verdict on the entry as read, this failure counted. */
  state: BreakerState;
  /** Counting changed the entry as read: `tally` has something to write. */
  changed: boolean;
  /** Stores the count, for a decision that stands whatever the others counted. */
  tally: UpdateDecision;
  /**
   * Stores the count, then applies `heldBack` if the count as stored (with every other
   * replica's before it) opened the breaker.
   */
  countThen(heldBack: (state: BreakerState) => Decision[]): UpdateDecision;
}

/**
 * Starts reading the image's breaker, unless the breaker is off. Whether the fleet has several
 * hosts comes from the runtime's count, which it refreshes now and then rather than per event
 * (see HandlerContext.severalHosts), so it costs no round trip here; when it cannot be counted,
 * the fleet is taken for several hosts, where one host cannot open the breaker alone.
 */
export function readImageBreaker(
  event: ContainerEvent,
  policy: HealPolicy,
  ctx: HandlerContext,
): Promise<BreakerRead> | undefined {
  if (!imageBreakerOn(policy)) return undefined;
  const read = Promise.all([
    ctx.read("breakers", imageKey(imageRef(event))),
    ctx.severalHosts().catch(() => true),
  ]).then(([current, severalHosts]) => ({ current, severalHosts }));
  // Not awaited when the verdict is not a restart; its failure then matters to nobody.
  read.catch(() => {});
  return read;
}

/**
 * Counts this trouble against its image (policy/image-breaker-tally.ts), unless the breaker is
 * off. Both ways to store the count are read-modify-writes that another message's count cannot
 * undo, and neither re-decides the whole message when another one counted first: in a storm
 * every container of a failing image counts against one key.
 */
export function countImageFailure(
  read: BreakerRead | undefined,
  event: ContainerEvent,
  incident: string,
  at: number,
  now: Date,
  policy: HealPolicy,
): ImageBreakerCount | undefined {
  const counted = read && tallyImageFailure(read, event, incident, at, now, policy);
  if (!read || !counted) return undefined;
  const tally: UpdateDecision = {
    kind: "update",
    store: "breakers",
    key: counted.key,
    // Read with the ledger: absent means absent, and the first count creates the key.
    read: read.current ?? null,
    update: (latest) => counted.count(latest as ImageFailures | undefined).entry,
  };
  return {
    state: counted.state,
    changed: counted.changed,
    tally,
    countThen: (heldBack) => ({
      ...tally,
      // The stored entry holds this failure already; counting it again changes nothing.
      onStored: (stored) => {
        const state = counted.count(stored as ImageFailures);
        return state.open ? heldBack(state) : [];
      },
    }),
  };
}
