import {
  ContainerEvent,
  decode,
  parseEventSubject,
  parseRemediationSubject,
  SUBJECT_ROOT,
} from "../../contracts/index.js";
import type { HistoryCounts, HistoryWindow } from "../http/api-schemas.js";

/*
 * What `GET /history/counts` counts, and into which bucket: pure, so that the NATS scan
 * (history-counts.ts) and the tests' in-memory history count the same way.
 */

/** Each window's buckets: 60 of a minute, or 96 of a quarter of an hour. */
export const HISTORY_WINDOWS: Record<HistoryWindow, { buckets: number; bucketMs: number }> = {
  "1h": { buckets: 60, bucketMs: 60_000 },
  "24h": { buckets: 96, bucketMs: 15 * 60_000 },
};

/** The series counted: `restarted` and `failed` records, and unhealthy transitions. */
export const HISTORY_SERIES = ["restarts", "failed", "unhealthy"] as const;
export type HistorySeries = (typeof HISTORY_SERIES)[number];

/** Hosts listed by name in an answer; the rest are only in the totals. */
export const MAX_HOSTS_LISTED = 100;

/**
 * The filter subject of one series, for one host or all. Each is a subset of one of the
 * stream's subjects, as nats-server 2.9 requires of a consumer filter.
 */
export function seriesSubject(series: HistorySeries, host: string | undefined): string {
  const h = host ?? "*";
  switch (series) {
    case "restarts":
      return `${SUBJECT_ROOT}.act.${h}.*.restarted`;
    case "failed":
      return `${SUBJECT_ROOT}.act.${h}.*.failed`;
    case "unhealthy":
      return `${SUBJECT_ROOT}.evt.${h}.*.unhealthy`;
  }
}

/** Whether counting a series needs the message's payload (the others count by subject). */
export const NEEDS_PAYLOAD: Record<HistorySeries, boolean> = {
  restarts: false,
  failed: false,
  unhealthy: true,
};

/**
 * The series and host a stored message counts in, or undefined. Records count by their
 * subject: NATS permissions bind it to its writer (a host's agent, or the control plane). An
 * `unhealthy` event is a transition unless the agent's resync sent it, which only re-asserts
 * that a container is still unhealthy; one that does not match its contract is not counted, as
 * `GET /events` skips it.
 */
export function countedAs(
  subject: string,
  payload: () => Uint8Array,
): { series: HistorySeries; host: string } | undefined {
  const act = parseRemediationSubject(subject);
  if (act?.phase === "restarted") return { series: "restarts", host: act.host };
  if (act?.phase === "failed") return { series: "failed", host: act.host };
  const evt = parseEventSubject(subject);
  if (evt?.action !== "unhealthy") return undefined;
  const decoded = decode(ContainerEvent, payload());
  if (!decoded.ok || decoded.value.source === "resync" || decoded.value.host !== evt.host) {
    return undefined;
  }
  return { series: "unhealthy", host: evt.host };
}

type Totals = Record<HistorySeries, number>;
const zero = (): Totals => ({ restarts: 0, failed: 0, unhealthy: 0 });

/**
 * Counts records into a window's buckets without keeping them. The buckets are aligned to their
 * size and the last one holds `now`, so the same window asked a little later has the same
 * bucket edges.
 */
export class HistoryTally {
  /** The first bucket's start, epoch ms. */
  readonly from: number;
  /** The last bucket's end, epoch ms. */
  readonly end: number;
  readonly bucketMs: number;
  private readonly buckets: Totals[];
  private readonly hosts = new Map<string, Totals>();
  private readonly totals = zero();

  constructor(
    readonly window: HistoryWindow,
    readonly now: number,
  ) {
    const { buckets, bucketMs } = HISTORY_WINDOWS[window];
    this.bucketMs = bucketMs;
    this.end = Math.floor(now / bucketMs) * bucketMs + bucketMs;
    this.from = this.end - buckets * bucketMs;
    this.buckets = Array.from({ length: buckets }, zero);
  }

  /** Counts one record stored at `atMs`; false when that is outside the window. */
  add(series: HistorySeries, host: string, atMs: number): boolean {
    if (!(atMs >= this.from && atMs < this.end)) return false;
    const bucket = this.buckets[Math.floor((atMs - this.from) / this.bucketMs)];
    if (!bucket) return false;
    bucket[series]++;
    this.totals[series]++;
    // Bounded by the records scanned, which the caller caps.
    let byHost = this.hosts.get(host);
    if (!byHost) {
      byHost = zero();
      this.hosts.set(host, byHost);
    }
    byHost[series]++;
    return true;
  }

  /** The answer, for one host or the whole fleet. */
  result(
    host: string | undefined,
    scan: Pick<HistoryCounts, "scanned" | "truncated">,
  ): HistoryCounts {
    const sum = (t: Totals) => t.restarts + t.failed + t.unhealthy;
    const hosts = [...this.hosts]
      .map(([id, t]) => ({ host: id, ...t }))
      .sort((a, b) => sum(b) - sum(a) || a.host.localeCompare(b.host));
    return {
      window: this.window,
      ...(host === undefined ? {} : { host }),
      from: new Date(this.from).toISOString(),
      to: new Date(this.now).toISOString(),
      bucketSeconds: this.bucketMs / 1000,
      buckets: this.buckets.map((t, i) => ({
        start: new Date(this.from + i * this.bucketMs).toISOString(),
        ...t,
      })),
      totals: { ...this.totals },
      hosts: hosts.slice(0, MAX_HOSTS_LISTED),
      hostsOmitted: Math.max(0, hosts.length - MAX_HOSTS_LISTED),
      scanned: scan.scanned,
      ...(scan.truncated ? { truncated: scan.truncated } : {}),
    };
  }
}
