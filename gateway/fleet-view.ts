import type { HostSnapshot } from "../contracts/index.js";

/** A host's latest snapshot and when the gateway learned of it. */
export interface HostRecord {
  snapshot: HostSnapshot;
  /** Milliseconds since the epoch, by the NATS server's or the gateway's clock, never the agent's. */
  receivedAt: number;
}

/**
 * The gateway's materialised view of the fleet: the latest snapshot of every host. Readers get
 * it without any I/O.
 */
export class FleetView {
  private readonly hosts = new Map<string, HostRecord>();
  private loadedFlag = false;

  apply(snapshot: HostSnapshot, receivedAt: number): void {
    this.hosts.set(snapshot.host, { snapshot, receivedAt });
  }

  remove(host: string): void {
    this.hosts.delete(host);
  }

  /** Every host, sorted by id. */
  list(): HostRecord[] {
    return [...this.hosts.values()].sort((a, b) => a.snapshot.host.localeCompare(b.snapshot.host));
  }

  get(host: string): HostRecord | undefined {
    return this.hosts.get(host);
  }

  /** True once the stored snapshots have all been read. */
  get loaded(): boolean {
    return this.loadedFlag;
  }

  markLoaded(): void {
    this.loadedFlag = true;
  }
}
