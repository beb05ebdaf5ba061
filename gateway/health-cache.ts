import type { FleetView } from "./fleet-view.js";
import {
  buildHealthReport,
  type HealthReport,
  nextStatusChange,
  type StalenessPolicy,
} from "./health-report.js";

/** The /health body, built and serialised once and served until something changes. */
export interface CachedHealth {
  report: HealthReport;
  json: string;
}

/**
 * Precomputes `GET /health`. The report depends only on the view and on time (hosts turn stale
 * and down as their heartbeats are missed), so it is rebuilt when the view changes or when the
 * earliest host status change comes due, and is otherwise a constant: O(1) per request.
 */
export class HealthCache {
  private cached: (CachedHealth & { version: number; from: number; until: number }) | undefined;

  constructor(
    private readonly view: FleetView,
    private readonly policy: StalenessPolicy,
  ) {}

  get(now: number): CachedHealth {
    const c = this.cached;
    if (c && c.version === this.view.version && now >= c.from && now < c.until) return c;
    const records = this.view.list();
    const report = buildHealthReport(records, now, this.policy, (r) => this.view.quarantinedOn(r));
    let until = Number.POSITIVE_INFINITY;
    for (const record of records)
      until = Math.min(until, nextStatusChange(record, now, this.policy));
    this.cached = {
      report,
      json: JSON.stringify(report),
      version: this.view.version,
      from: now,
      until,
    };
    return this.cached;
  }
}
