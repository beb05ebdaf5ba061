import type { ContainerSnapshot, HostSnapshot, LedgerEntry } from "../contracts/index.js";
import type { ContainerCounts } from "./health-report.js";

/** A host's latest snapshot and when the gateway learned of it. */
export interface HostRecord {
  snapshot: HostSnapshot;
  /** Milliseconds since the epoch, by the NATS server's or the gateway's clock, never the agent's. */
  receivedAt: number;
  /** The snapshot's containers counted by health, computed once when it arrives. */
  counts: ContainerCounts;
  /** The snapshot's containers by name and id, sorted once when it arrives. */
  sorted: readonly ContainerSnapshot[];
}

/** One container with its host, in the view's stable order (host, then name, then id). */
export interface ContainerRow {
  host: HostRecord;
  container: ContainerSnapshot;
}

/**
 * The gateway's materialised view of the fleet: the latest snapshot of every host and the
 * ledger entry of every container fleetheal has acted on. Readers get it without any I/O.
 * Every change bumps `version`, which is what derived data (the /health body, the sorted
 * container list) is cached against.
 */
export class FleetView {
  private readonly hosts = new Map<string, HostRecord>();
  private readonly ledger = new Map<string, LedgerEntry>();
  /** host -> ids of its quarantined containers. */
  private readonly quarantined = new Map<string, Set<string>>();
  private readonly listeners = new Set<() => void>();
  private loadedFlag = false;
  private versionCounter = 0;
  private sortedHosts: HostRecord[] | undefined;
  private rows: ContainerRow[] | undefined;

  apply(snapshot: HostSnapshot, receivedAt: number): void {
    this.hosts.set(snapshot.host, {
      snapshot,
      receivedAt,
      counts: countByHealth(snapshot),
      sorted: [...snapshot.containers].sort(compareContainers),
    });
    this.changed(true);
  }

  remove(host: string): void {
    if (this.hosts.delete(host)) this.changed(true);
  }

  /** Records a container's ledger entry; `undefined` when it was deleted. */
  applyLedger(host: string, containerId: string, entry: LedgerEntry | undefined): void {
    const key = `${host}.${containerId}`;
    if (entry) this.ledger.set(key, entry);
    else this.ledger.delete(key);
    let set = this.quarantined.get(host);
    if (entry?.quarantine) {
      if (!set) {
        set = new Set();
        this.quarantined.set(host, set);
      }
      set.add(containerId);
    } else if (set?.delete(containerId) && set.size === 0) {
      this.quarantined.delete(host);
    }
    this.changed(false);
  }

  ledgerEntry(host: string, containerId: string): LedgerEntry | undefined {
    return this.ledger.get(`${host}.${containerId}`);
  }

  isQuarantined(host: string, containerId: string): boolean {
    return this.quarantined.get(host)?.has(containerId) ?? false;
  }

  /** Quarantined containers that the host's latest snapshot still lists. */
  quarantinedOn(record: HostRecord): number {
    const set = this.quarantined.get(record.snapshot.host);
    if (!set) return 0;
    let n = 0;
    for (const c of record.snapshot.containers) if (set.has(c.id)) n++;
    return n;
  }

  /** Every host, sorted by id. */
  list(): HostRecord[] {
    this.sortedHosts ??= [...this.hosts.values()].sort((a, b) =>
      a.snapshot.host < b.snapshot.host ? -1 : a.snapshot.host > b.snapshot.host ? 1 : 0,
    );
    return this.sortedHosts;
  }

  get(host: string): HostRecord | undefined {
    return this.hosts.get(host);
  }

  /** Every container of every host, sorted by host, name and id. Rebuilt only after a change. */
  containers(): ContainerRow[] {
    if (!this.rows) {
      const rows: ContainerRow[] = [];
      for (const host of this.list()) {
        for (const container of host.sorted) rows.push({ host, container });
      }
      this.rows = rows;
    }
    return this.rows;
  }

  /** Increases with every change; derived data is cached against it. */
  get version(): number {
    return this.versionCounter;
  }

  /** Calls `listener` after every change; returns an unsubscribe. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** True once the stored snapshots have all been read. */
  get loaded(): boolean {
    return this.loadedFlag;
  }

  markLoaded(): void {
    this.loadedFlag = true;
    this.changed(false);
  }

  private changed(hostsChanged: boolean): void {
    this.versionCounter++;
    if (hostsChanged) {
      this.sortedHosts = undefined;
      this.rows = undefined;
    }
    for (const listener of this.listeners) listener();
  }
}

/** Orders containers by name, then id, so pages are stable across requests. */
export function compareContainers(a: ContainerSnapshot, b: ContainerSnapshot): number {
  if (a.name !== b.name) return a.name < b.name ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

export function countByHealth(snapshot: HostSnapshot): ContainerCounts {
  const counts = { total: 0, healthy: 0, unhealthy: 0, starting: 0, none: 0 };
  for (const c of snapshot.containers) {
    counts.total++;
    counts[c.health]++;
  }
  return counts;
}
