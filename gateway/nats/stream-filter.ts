import { z } from "zod";
import { isToken, parseDuration, SUBJECT_ROOT } from "../../contracts/index.js";
import { ApiError } from "../http/api-errors.js";
import type { StreamRecord } from "../http/api-schemas.js";
import type { StreamFilter } from "./ports.js";

/*
 * What a query of the events stream selects: the server-side filter subjects of a history read,
 * where it starts, and the same filter applied to live records.
 */

/** History goes this far back when the query gives no `since`. */
const DEFAULT_SINCE_MS = 60 * 60 * 1000;

const IsoTime = z.union([z.iso.datetime({ offset: true }), z.iso.date()]);

/**
 * The filter subjects of a history read, one ordered consumer each; `undefined` reads the whole
 * stream. nats-server 2.9 accepts a consumer filter only if it is a subset of one of the stream's
 * subjects (`fleetheal.v1.evt.>` or `fleetheal.v1.act.>`), so `fleetheal.v1.*.<host>.…` is
 * refused, and multiple filter subjects need 2.10: records of both kinds for one host or
 * container take two consumers, merged by sequence.
 */
export function filterSubjects(filter: StreamFilter): (string | undefined)[] {
  for (const [part, value] of [
    ["host", filter.host],
    ["container", filter.container],
  ] as const) {
    if (value !== undefined && !isToken(value)) {
      throw new ApiError(
        "FLEETHEAL_ERR_BAD_REQUEST",
        `${part} may contain only letters, digits, '_' and '-'`,
        { [part]: value },
      );
    }
  }
  if (!filter.kind && filter.host === undefined && filter.container === undefined) {
    return [undefined];
  }
  const tail = `${filter.host ?? "*"}.${filter.container ?? "*"}.*`;
  const kinds = filter.kind ? [filter.kind] : (["event", "remediation"] as const);
  return kinds.map((kind) => `${SUBJECT_ROOT}.${kind === "event" ? "evt" : "act"}.${tail}`);
}

/**
 * Whether a live record passes `filter`. History filters on the subject, and a record is only
 * decoded when its subject names its own host and container, so its payload's are the same.
 */
export function matchesFilter(filter: StreamFilter, record: StreamRecord): boolean {
  if (filter.kind !== undefined && filter.kind !== record.kind) return false;
  const [host, container] =
    record.kind === "event"
      ? [record.event.host, record.event.container.id]
      : [record.remediation.host, record.remediation.containerId];
  if (filter.host !== undefined && filter.host !== host) return false;
  if (filter.container !== undefined && filter.container !== container) return false;
  return true;
}

/**
 * `since` as epoch milliseconds: a duration back from `now` (`30s`, `15m`, `2h`, `1h30m`, or
 * bare seconds), or an ISO-8601 time or date.
 */
export function sinceTime(since: string | undefined, now: number): number {
  if (since === undefined) return now - DEFAULT_SINCE_MS;
  const back = parseDuration(since);
  if (back !== undefined) return Math.max(0, now - back);
  if (IsoTime.safeParse(since).success) {
    const at = Date.parse(since);
    if (Number.isFinite(at)) return Math.max(0, at);
  }
  throw new ApiError(
    "FLEETHEAL_ERR_BAD_REQUEST",
    "since must be a duration back from now (such as 30s, 15m, 2h or 1h30m) or an ISO-8601 time (such as 2024-05-01T12:00:00Z)",
    { since },
  );
}
