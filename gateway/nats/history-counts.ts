import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import type { Logger } from "../../common/logger.js";
import type { HistoryCounts, HistoryCountsQuery } from "../http/api-schemas.js";
import { HistorySource } from "./event-history.js";
import {
  countedAs,
  HISTORY_SERIES,
  type HistorySeries,
  HistoryTally,
  NEEDS_PAYLOAD,
  seriesSubject,
} from "./history-buckets.js";
import { unavailableOnNatsError } from "./nats-unavailable.js";
import type { HistoryCounter } from "./ports.js";

export interface NatsHistoryCountsOptions {
  js: JetStreamClient;
  jsm: JetStreamManager;
  log: Logger;
  /** Records read per series and request at most; the answer says when it stopped there. */
  maxScannedPerSeries?: number;
  /** The longest a count may take; it answers with what it has by then. Default 5 s. */
  deadlineMs?: number;
}

/** Enough for a restart every few seconds all day long. */
export const DEFAULT_MAX_SCANNED_PER_SERIES = 20_000;
const DEFAULT_DEADLINE_MS = 5_000;
/** Messages fetched at once: what one source buffers at most. */
const FETCH_BATCH = 256;

/**
 * {@link HistoryCounter} on the events stream: one short-lived ordered consumer per series,
 * filtered on the server by subject and started at the window's first bucket, read to the last
 * matching message and counted as it goes (history-buckets.ts), nothing kept. Restarts and
 * failures count by subject, so their consumers carry headers only.
 */
export class NatsHistoryCounts implements HistoryCounter {
  private readonly maxScanned: number;
  private readonly deadlineMs: number;

  constructor(private readonly options: NatsHistoryCountsOptions) {
    this.maxScanned = options.maxScannedPerSeries ?? DEFAULT_MAX_SCANNED_PER_SERIES;
    this.deadlineMs = options.deadlineMs ?? DEFAULT_DEADLINE_MS;
  }

  async count(query: HistoryCountsQuery, now: number): Promise<HistoryCounts> {
    const tally = new HistoryTally(query.window, now);
    const deadline = Date.now() + this.deadlineMs;
    const scans = await unavailableOnNatsError(this.options.log, "count the events stream", () =>
      Promise.all(HISTORY_SERIES.map((series) => this.scan(series, query.host, tally, deadline))),
    );
    const truncated =
      scans.find((s) => s.truncated === "deadline")?.truncated ??
      scans.find((s) => s.truncated)?.truncated;
    return tally.result(query.host, {
      scanned: scans.reduce((n, s) => n + s.scanned, 0),
      ...(truncated ? { truncated } : {}),
    });
  }

  private async scan(
    series: HistorySeries,
    host: string | undefined,
    tally: HistoryTally,
    deadline: number,
  ): Promise<{ scanned: number; truncated?: "scan-limit" | "deadline" }> {
    const { js, jsm } = this.options;
    const source = await HistorySource.open(
      js,
      jsm,
      seriesSubject(series, host),
      { time: tally.from },
      !NEEDS_PAYLOAD[series],
    );
    let scanned = 0;
    try {
      for (;;) {
        if (scanned >= this.maxScanned) {
          return source.hasMore() ? { scanned, truncated: "scan-limit" } : { scanned };
        }
        const m = await source.peek(deadline, Math.min(FETCH_BATCH, this.maxScanned - scanned));
        if (m === "cut") return { scanned, truncated: "deadline" };
        if (!m) return { scanned };
        source.shift();
        scanned++;
        const counted = countedAs(m.subject, () => m.data);
        if (counted) tally.add(counted.series, counted.host, m.time.getTime());
      }
    } finally {
      source.close();
    }
  }
}
