import type { FleetView, HostRecord } from "./fleet-view.js";
import {
  type HealthReport,
  type HostHealth,
  hostHealth,
  hostStatus,
  nextStatusChange,
  type StalenessPolicy,
  summarize,
} from "./health-report.js";

/** The /health answer, built once and served until something changes. */
export interface CachedHealth extends Pick<HealthReport, "status" | "totals"> {
  /** The report as JSON text (for SSE). */
  json: string;
  /** The same bytes, ready to send: no per-request serialisation or encoding. */
  body: Buffer;
}

interface Fragment {
  status: HostHealth["status"];
  quarantined: number;
  entry: HostHealth;
  json: string;
}

/**
 * Precomputes `GET /health`. The report depends only on the view and on time (hosts turn stale
 * and down as their heartbeats are missed), so it is rebuilt when the view changes or when the
 * earliest host status change comes due, and is otherwise a constant: O(1) per request.
 *
 * A rebuild re-serialises only the hosts whose line changed (a new snapshot, status or
 * quarantine count) and joins the rest from cache, so a heartbeat from one host among a
 * thousand does not cost a thousand hosts' worth of JSON.
 */
export class HealthCache {
  private cached: (CachedHealth & { version: number; from: number; until: number }) | undefined;
  private readonly fragments = new WeakMap<HostRecord, Fragment>();

  constructor(
    private readonly view: FleetView,
    private readonly policy: StalenessPolicy,
  ) {}

  get(now: number): CachedHealth {
    const c = this.cached;
    if (c && c.version === this.view.version && now >= c.from && now < c.until) return c;
    const entries: HostHealth[] = [];
    const lines: string[] = [];
    let until = Number.POSITIVE_INFINITY;
    for (const record of this.view.list()) {
      const fragment = this.fragment(record, now);
      entries.push(fragment.entry);
      lines.push(fragment.json);
      until = Math.min(until, nextStatusChange(record, now, this.policy));
    }
    const { status, totals } = summarize(entries);
    // Key order as in HealthReport, so the text equals JSON.stringify of the report.
    const json = `{"status":${JSON.stringify(status)},"hosts":[${lines.join(",")}],"totals":${JSON.stringify(totals)}}`;
    this.cached = {
      status,
      totals,
      json,
      body: Buffer.from(json, "utf8"),
      version: this.view.version,
      from: now,
      until,
    };
    return this.cached;
  }

  private fragment(record: HostRecord, now: number): Fragment {
    const status = hostStatus(record, now, this.policy);
    const quarantined = this.view.quarantinedOn(record);
    const known = this.fragments.get(record);
    if (known && known.status === status && known.quarantined === quarantined) return known;
    const entry = hostHealth(record, status, quarantined);
    const fragment = { status, quarantined, entry, json: JSON.stringify(entry) };
    this.fragments.set(record, fragment);
    return fragment;
  }
}
