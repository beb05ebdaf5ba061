import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import type { HistoryCounter } from "../../nats/ports.js";
import { ApiErrorBody, HistoryCounts, HistoryCountsQuery } from "../api-schemas.js";
import { ReadSlots } from "../read-slots.js";
import type { RouteContext } from "../route-context.js";

/** How long an answer is reused: dashboards poll, and each count scans the stream. */
export const HISTORY_COUNTS_CACHE_MS = 5_000;
/** Counts that scan at once; each opens a consumer per series. */
export const CONCURRENT_HISTORY_COUNTS = 2;
/** Answers kept: two windows for the fleet and for the hosts looked at most recently. */
const MAX_CACHED = 64;

/**
 * Answers by query, each reused for a few seconds; a query asked while its count runs waits
 * for that count instead of starting another. A failed count is not kept.
 */
export class CountsCache {
  private readonly entries = new Map<string, { at: number; value: Promise<HistoryCounts> }>();

  constructor(
    private readonly now: () => number,
    private readonly ttlMs = HISTORY_COUNTS_CACHE_MS,
    private readonly maxEntries = MAX_CACHED,
  ) {}

  get(key: string, load: () => Promise<HistoryCounts>): Promise<HistoryCounts> {
    const hit = this.entries.get(key);
    const now = this.now();
    if (hit && now >= hit.at && now - hit.at < this.ttlMs) return hit.value;
    const entry = { at: now, value: load() };
    this.entries.delete(key);
    this.entries.set(key, entry);
    entry.value.catch(() => {
      if (this.entries.get(key) === entry) this.entries.delete(key);
    });
    // Oldest first in a Map: odd queries cannot grow it.
    for (const old of this.entries.keys()) {
      if (this.entries.size <= this.maxEntries) break;
      this.entries.delete(old);
    }
    return entry.value;
  }
}

/** `GET /history/counts`: restarts and unhealthy transitions over time, from the events stream. */
export const historyRoutes: FastifyPluginAsyncZod<
  RouteContext & { history: HistoryCounter }
> = async (app, ctx) => {
  const slots = new ReadSlots(CONCURRENT_HISTORY_COUNTS, "history counts");
  const cache = new CountsCache(ctx.now);
  app.get(
    "/history/counts",
    {
      schema: {
        summary: "Restarts and unhealthy transitions over time",
        description:
          "Counts of `restarted` and `failed` remediation records and of unhealthy transitions (`unhealthy` events, not the agents' resync re-assertions) in fixed buckets: `1h` is 60 of a minute, `24h` 96 of 15 minutes, aligned to their size. Fleet-wide with totals by host, or for one `host`. Answers are reused for 5 s; a count reads a bounded number of records, and `truncated` says when it stopped short.",
        tags: ["events"],
        querystring: HistoryCountsQuery,
        response: { 200: HistoryCounts, 400: ApiErrorBody, 401: ApiErrorBody, 503: ApiErrorBody },
      },
    },
    (request) => {
      const { window, host } = request.query;
      return cache.get(`${window}|${host ?? ""}`, () =>
        slots.run(() => ctx.history.count(request.query, ctx.now())),
      );
    },
  );
};
