import type { ContainerSnapshot, HostSnapshot, LedgerEntry } from "../../contracts/index.js";
import { type ContainerCounts, countByHealth } from "./container-counts.js";
import { type NotHealing, notHealingOf } from "./not-healing.js";
import { StringPool, shareUnchanged } from "./snapshot-sharing.js";

type Health = ContainerSnapshot["health"];

/** A host's latest snapshot and when the gateway learned of it. */
export interface HostRecord {
  snapshot: HostSnapshot;
  /** Milliseconds since the epoch, by the NATS server's or the gateway's clock, never the agent's. */
  receivedAt: number;
  /** The snapshot's containers counted by health, computed once when it arrives. */
  counts: ContainerCounts;
  /** The snapshot's containers by name and id, sorted once when it arrives. */
  sorted: readonly ContainerSnapshot[];
  /** `sorted`, split by health: a health filter reads only its own list. */
  byHealth: Readonly<Record<Health, readonly ContainerSnapshot[]>>;
}

/**
 * The gateway's materialised view of the fleet: the latest snapshot of every host and the
 * ledger entry of every container fleetheal has acted on. Readers get it without any I/O.
 *
 * Everything a read needs is derived once when a snapshot arrives (counts, sorted containers,
 * health indexes), so that a heartbeat from one host costs the work of that host only, and a
 * request costs no sorting. Every change bumps `version`, which cached answers check.
 *
 * Memory: a snapshot is kept with every part that equals the host's previous snapshot replaced
 * by the previous one's (see `shareUnchanged`), and the strings of containers that are new to
 * the view are interned across the fleet (`StringPool`). A heartbeat that changes nothing then
 * leaves its decoded copy to die young instead of replacing the host's containers in the old
 * generation, and the labels, images and paths that compose projects repeat on every host are
 * held once.
 */
export class FleetView {
  private readonly hosts = new Map<string, HostRecord>();
  private readonly ledger = new Map<string, LedgerEntry>();
  /** host -> ids of its quarantined containers. */
  private readonly quarantined = new Map<string, Set<string>>();
  /** host -> ids of its containers whose ledger entry says why they are not being healed. */
  private readonly notHealing = new Map<string, Set<string>>();
  private readonly listeners = new Set<() => void>();
  private loadedFlag = false;
  private versionCounter = 0;
  /** Hosts by id; rebuilt only when a host appears or goes, updated in place otherwise. */
  private sortedHosts: HostRecord[] | undefined;
  private readonly strings = new StringPool();

  /**
   * Makes `snapshot` the host's latest. The view owns it from then on: parts of it may be
   * replaced by equal parts of the host's previous snapshot, and it must not be changed after.
   */
  apply(snapshot: HostSnapshot, receivedAt: number): void {
    const previous = this.hosts.get(snapshot.host);
    const record = toHostRecord(snapshot, receivedAt, previous, this.strings);
    const known = previous !== undefined;
    this.hosts.set(snapshot.host, record);
    if (!known) this.sortedHosts = undefined;
    else if (this.sortedHosts) {
      const i = indexOfHost(this.sortedHosts, snapshot.host);
      if (i >= 0) this.sortedHosts[i] = record;
      else this.sortedHosts = undefined;
    }
    this.changed();
  }

  remove(host: string): void {
    if (this.hosts.delete(host)) {
      this.sortedHosts = undefined;
      this.changed();
    }
  }

  /** Records a container's ledger entry; `undefined` when it was deleted. */
  applyLedger(host: string, containerId: string, entry: LedgerEntry | undefined): void {
    const key = `${host}.${containerId}`;
    if (entry) this.ledger.set(key, entry);
    else this.ledger.delete(key);
    index(this.quarantined, host, containerId, entry?.quarantine !== undefined);
    index(this.notHealing, host, containerId, entry?.notHealing !== undefined);
    this.changed();
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

  /**
   * The containers of the host's latest snapshot that are not being healed (see
   * `notHealingOf`), by name then id. Reads the host's containers only when one of its ledger
   * entries gives a reason.
   */
  notHealingOn(record: HostRecord): [ContainerSnapshot, NotHealing][] {
    const host = record.snapshot.host;
    const set = this.notHealing.get(host);
    if (!set) return [];
    const found: [ContainerSnapshot, NotHealing][] = [];
    for (const c of record.sorted) {
      if (!set.has(c.id)) continue;
      const reason = notHealingOf(c, this.ledger.get(`${host}.${c.id}`));
      if (reason) found.push([c, reason]);
    }
    return found;
  }

  /** Every host, sorted by id. The array is the view's own: do not change it. */
  list(): readonly HostRecord[] {
    this.sortedHosts ??= [...this.hosts.values()].sort((a, b) =>
      compareStrings(a.snapshot.host, b.snapshot.host),
    );
    return this.sortedHosts;
  }

  get(host: string): HostRecord | undefined {
    return this.hosts.get(host);
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
    this.changed();
  }

  private changed(): void {
    this.versionCounter++;
    for (const listener of this.listeners) listener();
  }
}

/**
 * Derives everything reads need from a snapshot, once. With the host's previous record, the
 * snapshot first shares what has not changed with it (see `shareUnchanged`), and when no
 * container changed the derived lists are the previous record's too.
 */
export function toHostRecord(
  snapshot: HostSnapshot,
  receivedAt: number,
  previous?: HostRecord,
  strings?: StringPool,
): HostRecord {
  // The same object again is taken as it is now: nothing derived from it before is reused.
  if (previous?.snapshot !== snapshot) {
    if (previous) {
      shareUnchanged(previous.snapshot, snapshot, strings);
      if (snapshot.containers === previous.snapshot.containers) {
        const { counts, sorted, byHealth } = previous;
        return { snapshot, receivedAt, counts, sorted, byHealth };
      }
    } else if (strings) {
      for (const c of snapshot.containers) strings.internAll(c);
    }
  }
  const sorted = [...snapshot.containers].sort(compareContainers);
  const byHealth: Record<Health, ContainerSnapshot[]> = {
    healthy: [],
    unhealthy: [],
    starting: [],
    none: [],
  };
  for (const c of sorted) byHealth[c.health].push(c);
  return { snapshot, receivedAt, counts: countByHealth(snapshot), sorted, byHealth };
}

/** Orders containers by name, then id, so pages are stable across requests. */
export function compareContainers(a: ContainerSnapshot, b: ContainerSnapshot): number {
  return compareStrings(a.name, b.name) || compareStrings(a.id, b.id);
}

/** Code-unit order, the same in every locale. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Adds the container to its host's set in `sets`, or removes it; empty sets are dropped. */
function index(
  sets: Map<string, Set<string>>,
  host: string,
  containerId: string,
  present: boolean,
): void {
  let set = sets.get(host);
  if (present) {
    if (!set) {
      set = new Set();
      sets.set(host, set);
    }
    set.add(containerId);
  } else if (set?.delete(containerId) && set.size === 0) {
    sets.delete(host);
  }
}

function indexOfHost(sorted: readonly HostRecord[], host: string): number {
  let lo = 0;
  let hi = sorted.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const c = compareStrings((sorted[mid] as HostRecord).snapshot.host, host);
    if (c === 0) return mid;
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}
