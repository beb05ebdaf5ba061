/**
 * Hosts whose snapshot, at the revision noted, has no container that depends on another: most
 * hosts. A `restarted` record of such a host needs no decoding of its snapshot, the costliest
 * part of the dependents handler in a burst of restarts, as long as the snapshot has not
 * changed. A revision stands for one content, so this never goes stale.
 */
export class DependencyFreeHosts {
  private readonly revisions = new Map<string, number>();

  constructor(private readonly max = 100_000) {}

  has(host: string, revision: number): boolean {
    return this.revisions.get(host) === revision;
  }

  note(host: string, revision: number, dependencyFree: boolean): void {
    this.revisions.delete(host);
    if (!dependencyFree) return;
    // The oldest noted host makes room: the Map keeps insertion order.
    if (this.revisions.size >= this.max) {
      const oldest = this.revisions.keys().next();
      if (!oldest.done) this.revisions.delete(oldest.value);
    }
    this.revisions.set(host, revision);
  }
}
