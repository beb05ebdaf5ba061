/** Live streams the gateway serves at once, unless told otherwise. */
export const DEFAULT_MAX_STREAMS = 100;
/** Live streams one client address may hold at once, unless told otherwise. */
export const DEFAULT_MAX_STREAMS_PER_CLIENT = 10;

/** Why a stream was not given a slot, and whether this is the first such refusal in a row. */
export interface StreamRefusal {
  reason: "limit" | "client-limit";
  /**
   * True for the first refusal since the limit was reached (per address for `client-limit`), so
   * that a client retrying in a loop is logged once, not once per try.
   */
  first: boolean;
}

/**
 * Slots for live streams, in all and per client address, so that one client cannot take every
 * stream. Memory is bounded: an address is remembered only while it holds a stream, so there are
 * never more entries than streams.
 */
export class StreamSlots {
  private total = 0;
  private readonly byAddress = new Map<string, number>();
  /** Addresses refused since they reached their limit; only ones that hold streams. */
  private readonly refusedClients = new Set<string>();
  private refusedAtLimit = false;

  constructor(
    readonly max = DEFAULT_MAX_STREAMS,
    readonly maxPerClient = DEFAULT_MAX_STREAMS_PER_CLIENT,
  ) {}

  /**
   * Takes a slot for `address`: a function that gives it back (once, however often called), or
   * why there is none.
   */
  take(address: string): (() => void) | StreamRefusal {
    const held = this.byAddress.get(address) ?? 0;
    if (held >= this.maxPerClient) {
      const first = !this.refusedClients.has(address);
      this.refusedClients.add(address);
      return { reason: "client-limit", first };
    }
    if (this.total >= this.max) {
      const first = !this.refusedAtLimit;
      this.refusedAtLimit = true;
      return { reason: "limit", first };
    }
    this.total++;
    this.byAddress.set(address, held + 1);
    let given = false;
    return () => {
      if (given) return;
      given = true;
      this.total--;
      this.refusedAtLimit = false;
      this.refusedClients.delete(address);
      const left = (this.byAddress.get(address) ?? 1) - 1;
      if (left > 0) this.byAddress.set(address, left);
      else this.byAddress.delete(address);
    };
  }

  /** Streams `address` holds now. */
  heldBy(address: string): number {
    return this.byAddress.get(address) ?? 0;
  }

  /** Streams open now. */
  get inUse(): number {
    return this.total;
  }
}
