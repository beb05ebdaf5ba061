/**
 * Hosts whose snapshot, at the revision noted, has no container that depends on another: most
 * hosts. A `restarted` record of such a host needs no decoding of its snapshot, the costliest
 * part of the dependents handler in a burst of restarts, as long as the snapshot has not
 * changed. A revision stands for one content, so this never goes stale.
 *
 * It also remembers which snapshots named edges beyond the graph's caps and were reported, so
 * that a snapshot is reported once however many rounds read it.
 */
export class DependencyFreeHosts {
  private readonly free: RevisionPerHost;
  private readonly overflowReported: RevisionPerHost;

  constructor(max = 100_000) {
    this.free = new RevisionPerHost(max);
    this.overflowReported = new RevisionPerHost(max);
  }

  has(host: string, revision: number): boolean {
    return this.free.has(host, revision);
  }

  note(host: string, revision: number, dependencyFree: boolean): void {
    if (dependencyFree) this.free.set(host, revision);
    else this.free.delete(host);
  }

  /** True the first time it is asked about this revision of the host's snapshot. */
  firstOverflowReport(host: string, revision: number): boolean {
    if (this.overflowReported.has(host, revision)) return false;
    this.overflowReported.set(host, revision);
    return true;
  }
}

/** One revision per host, at most `max` hosts: the oldest noted makes room. */
class RevisionPerHost {
  private readonly revisions = new Map<string, number>();

  constructor(private readonly max: number) {}

  has(host: string, revision: number): boolean {
    return this.revisions.get(host) === revision;
  }

  set(host: string, revision: number): void {
    this.revisions.delete(host);
    // The Map keeps insertion order: its first key is the oldest noted host.
    if (this.revisions.size >= this.max) {
      const oldest = this.revisions.keys().next();
      if (!oldest.done) this.revisions.delete(oldest.value);
    }
    this.revisions.set(host, revision);
  }

  delete(host: string): void {
    this.revisions.delete(host);
  }
}
