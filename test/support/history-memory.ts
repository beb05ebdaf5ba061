// The gateway's HistoryCounter (gateway/nats/ports.ts) over the in-memory event log, counting
// with the same logic as the NATS scan (gateway/nats/history-buckets.ts), for route tests with
// inject(). The NATS scan itself is tested against a real server in test/dashboard-charts.test.ts.

import { encode } from "../../contracts/index.js";
import type { HistoryCounts, HistoryCountsQuery } from "../../gateway/http/api-schemas.js";
import { countedAs, HistoryTally } from "../../gateway/nats/history-buckets.js";
import type { HistoryCounter } from "../../gateway/nats/ports.js";
import type { MemoryEventLog } from "./gateway-fakes.js";

export class MemoryHistoryCounter implements HistoryCounter {
  /** Every count asked of it, in order. */
  readonly queries: HistoryCountsQuery[] = [];
  /** Holds each count until the test resolves it, when set. */
  gate: Promise<void> | undefined;

  constructor(private readonly log: MemoryEventLog) {}

  async count(query: HistoryCountsQuery, now: number): Promise<HistoryCounts> {
    this.queries.push(query);
    await this.gate;
    const tally = new HistoryTally(query.window, now);
    let scanned = 0;
    for (const r of this.log.records) {
      const payload = () => encode(r.kind === "event" ? r.event : r.remediation);
      const counted = countedAs(r.subject, payload);
      // The NATS scan reads only the host's subjects.
      if (query.host !== undefined && counted?.host !== query.host) continue;
      scanned++;
      if (counted) tally.add(counted.series, counted.host, Date.parse(r.storedAt));
    }
    return tally.result(query.host, { scanned });
  }
}
