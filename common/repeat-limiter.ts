/**
 * Lets a recurring failure through at most once per interval, and says how many occurrences it
 * held back in between: a failure met at every retry of every message in flight (a NATS server
 * that refuses a host's events while it is over its share, for hours) is logged once a minute
 * with a count, not once per attempt.
 */
export class RepeatLimiter {
  private lastMs = Number.NEGATIVE_INFINITY;
  private held = 0;

  constructor(
    private readonly everyMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Whether this occurrence is to be reported: undefined when it is held back, else how many
   * were held back since the last one reported.
   */
  take(): number | undefined {
    const t = this.now();
    if (t - this.lastMs < this.everyMs) {
      this.held++;
      return undefined;
    }
    this.lastMs = t;
    const held = this.held;
    this.held = 0;
    return held;
  }
}
