/** Lists the keys of the hosts bucket; `stop()` ends a listing early. */
export type ListHostKeys = () => Promise<AsyncIterable<string> & { stop(): void }>;

/** How often {@link FleetHosts} lists the hosts again; the defaults are the deployed ones. */
export interface FleetHostsOptions {
  /** How long "one host" stands before it is checked again. */
  oneHostMaxAgeMs?: number;
  /** How long "several hosts" stands before it is checked again. */
  severalHostsMaxAgeMs?: number;
  /** How long after a failed check the next one is tried. */
  retryMs?: number;
  /** The clock the listing's age is measured by; the system's by default. */
  now?: () => number;
  /** Told of every failed listing; the last answer stands meanwhile. */
  onError?: (error: unknown) => void;
}

/**
 * Whether the fleet has more than one host, for the image breaker: on a one-host fleet that host
 * may open it alone, in a bigger fleet it may not (docs/POLICY.md, "Image breaker").
 *
 * A host counts while it has a key in KV `fleetheal_hosts`, the fleet's own list of its hosts.
 * Nothing cheaper tells: a breaker entry knows only the hosts that fail, a snapshot only its own
 * host, and the handlers' stores nothing of hosts. It is also a list one host cannot shrink: an
 * agent may write only its own key, and the bucket refuses rollups, so a compromised host cannot
 * make the fleet look like itself alone. A host whose agent is down still counts, as it should:
 * it is still part of the fleet (an operator deletes the key of a host that is gone for good).
 *
 * Listing the keys takes a consumer on the bucket, a few round trips, and the consumer lingers
 * on the server for minutes after; so it is not done per event. A replica lists them lazily,
 * when the breaker asks, stopping at the second key, and answers from the last listing until it
 * is old; the heal path waits only for a replica's very first listing. How old depends on the
 * answer: "one host" is checked again after 30 s, as a host that joins is to count soon (it
 * could be the compromised one); "several hosts" after 10 minutes, as a fleet rarely shrinks and
 * a stale "several" only keeps the lone host from opening the breaker by itself. When no listing
 * has worked yet, the answer is "several hosts": the breaker then needs failures from two hosts,
 * and healing goes on.
 */
export class FleetHosts {
  private answer: boolean | undefined;
  private nextCheckAt = Number.NEGATIVE_INFINITY;
  private pending: Promise<boolean> | undefined;
  private readonly oneHostMaxAgeMs: number;
  private readonly severalHostsMaxAgeMs: number;
  private readonly retryMs: number;
  private readonly now: () => number;

  constructor(
    private readonly listKeys: ListHostKeys,
    private readonly options: FleetHostsOptions = {},
  ) {
    this.oneHostMaxAgeMs = options.oneHostMaxAgeMs ?? 30_000;
    this.severalHostsMaxAgeMs = options.severalHostsMaxAgeMs ?? 600_000;
    this.retryMs = options.retryMs ?? 5_000;
    this.now = options.now ?? Date.now;
  }

  /** More than one host in the fleet, as last counted; never rejects. */
  severalHosts(): Promise<boolean> {
    if (!this.pending && this.now() >= this.nextCheckAt) this.pending = this.check();
    if (this.answer !== undefined) return Promise.resolve(this.answer);
    return this.pending ?? Promise.resolve(true);
  }

  private async check(): Promise<boolean> {
    try {
      const several = await this.countBeyondOne();
      this.answer = several;
      this.nextCheckAt = this.now() + (several ? this.severalHostsMaxAgeMs : this.oneHostMaxAgeMs);
    } catch (error) {
      this.options.onError?.(error);
      this.nextCheckAt = this.now() + this.retryMs;
    } finally {
      this.pending = undefined;
    }
    return this.answer ?? true;
  }

  private async countBeyondOne(): Promise<boolean> {
    const keys = await this.listKeys();
    let seen = 0;
    try {
      for await (const _key of keys) {
        if (++seen > 1) break;
      }
    } finally {
      keys.stop();
    }
    return seen > 1;
  }
}
