import { ApiError } from "./api-errors.js";

/** History reads the gateway runs at once, unless told otherwise. */
export const DEFAULT_CONCURRENT_READS = 8;

/**
 * A fixed number of slots for work that costs the server a resource per call: each history read
 * opens a JetStream consumer, so clients asking at once must not open any number of them. A call
 * that finds every slot taken is answered 503 at once (the client retries), rather than queued
 * where waiting callers would pile up without bound.
 */
export class ReadSlots {
  private taken = 0;

  constructor(
    private readonly max = DEFAULT_CONCURRENT_READS,
    private readonly what = "history reads",
  ) {}

  /** Runs `work` in a slot, or throws a 503 `ApiError` when none is free. */
  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.taken >= this.max) {
      throw new ApiError(
        "FLEETHEAL_ERR_UNAVAILABLE",
        `too many ${this.what} at once (at most ${this.max}); retry in a moment`,
      );
    }
    this.taken++;
    try {
      return await work();
    } finally {
      this.taken--;
    }
  }

  /** Slots in use now. */
  get inUse(): number {
    return this.taken;
  }
}
