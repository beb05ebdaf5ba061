import type { ContainerSnapshot } from "../../contracts/index.js";
import { ApiError } from "../http/api-errors.js";
import type { ContainersQuery } from "../http/api-schemas.js";
import { compareStrings, type FleetView, type HostRecord } from "./fleet-view.js";

/** One container with its host. */
export interface ContainerRow {
  host: HostRecord;
  container: ContainerSnapshot;
}

/** A page of containers, in the view's order (host, then name, then id). */
export interface ContainerPageRows {
  rows: ContainerRow[];
  /** Every container that matches, across all pages. */
  total: number;
  /** The cursor of the next page, when there is one. */
  next?: string;
}

/**
 * Filters and pages the fleet's containers. The cursor is the sort key of the last row
 * returned, not an offset, so a page does not repeat or skip rows when hosts change in between.
 *
 * The work is bounded by what the filters select, not by the fleet: a host filter reads one
 * host, a health filter reads each host's list for that health, and rows before the cursor are
 * only counted.
 */
export function findContainers(view: FleetView, query: ContainersQuery): ContainerPageRows {
  const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
  const label = query.label === undefined ? undefined : splitLabel(query.label);
  const name = query.name?.toLowerCase();
  // With no filter on the container itself beyond health, every candidate matches.
  const everyCandidate =
    label === undefined &&
    name === undefined &&
    query.state === undefined &&
    query.optedIn === undefined &&
    query.quarantined === undefined;
  const page: ContainerRow[] = [];
  let total = 0;
  let more = false;
  const one = query.host === undefined ? undefined : view.get(query.host);
  const hosts = query.host === undefined ? view.list() : one ? [one] : [];
  for (const host of hosts) {
    const candidates = query.health === undefined ? host.sorted : host.byHealth[query.health];
    const id = host.snapshot.host;
    const hostOrder = after ? compareStrings(id, after[0]) : 1;
    if (everyCandidate && (hostOrder < 0 || (page.length === query.limit && more))) {
      // Before the cursor's host, or past a full page: only the count matters.
      total += candidates.length;
      continue;
    }
    for (const container of candidates) {
      if (!everyCandidate && !matches(view, id, container, query, label, name)) continue;
      total++;
      if (hostOrder < 0) continue;
      if (hostOrder === 0 && after && compareRowKey(container, after) <= 0) continue;
      if (page.length < query.limit) page.push({ host, container });
      else more = true;
    }
  }
  const last = page.at(-1);
  return {
    rows: page,
    total,
    ...(more && last ? { next: encodeCursor(rowKey(last)) } : {}),
  };
}

function matches(
  view: FleetView,
  host: string,
  c: ContainerSnapshot,
  query: ContainersQuery,
  label: [string, string | undefined] | undefined,
  name: string | undefined,
): boolean {
  return (
    (query.state === undefined || c.state === query.state) &&
    (query.optedIn === undefined || c.optedIn === query.optedIn) &&
    (name === undefined || c.name.toLowerCase().includes(name)) &&
    (label === undefined || hasLabel(c, label)) &&
    (query.quarantined === undefined || view.isQuarantined(host, c.id) === query.quarantined)
  );
}

type RowKey = [host: string, name: string, id: string];

function rowKey(row: ContainerRow): RowKey {
  return [row.host.snapshot.host, row.container.name, row.container.id];
}

/** Orders a container of the cursor's host against the cursor. */
function compareRowKey(c: ContainerSnapshot, key: RowKey): number {
  return compareStrings(c.name, key[1]) || compareStrings(c.id, key[2]);
}

function encodeCursor(key: RowKey): string {
  return Buffer.from(JSON.stringify(key)).toString("base64url");
}

function decodeCursor(cursor: string): RowKey {
  try {
    const key: unknown = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
    if (Array.isArray(key) && key.length === 3 && key.every((k) => typeof k === "string")) {
      return key as RowKey;
    }
  } catch {
    // Falls through to the error below.
  }
  throw new ApiError("FLEETHEAL_ERR_BAD_REQUEST", "cursor is not one returned by this API", {
    field: "cursor",
  });
}

function splitLabel(filter: string): [string, string | undefined] {
  const eq = filter.indexOf("=");
  return eq < 0 ? [filter, undefined] : [filter.slice(0, eq), filter.slice(eq + 1)];
}

function hasLabel(c: ContainerSnapshot, [key, value]: [string, string | undefined]): boolean {
  const actual = c.labels[key];
  return actual !== undefined && (value === undefined || actual === value);
}

/** The host's latest record, or a 404 `ApiError` when the host has never reported. */
export function findHost(view: FleetView, host: string): HostRecord {
  const record = view.get(host);
  if (!record) throw new ApiError("FLEETHEAL_ERR_NOT_FOUND", `no host ${host} has reported`);
  return record;
}

/**
 * Finds a container on a host by full id, unique id prefix (4+ characters) or name, the way
 * `docker` accepts them.
 */
export function findContainer(record: HostRecord, ref: string): ContainerSnapshot {
  const containers = record.snapshot.containers;
  const exact = containers.find((c) => c.id === ref) ?? containers.find((c) => c.name === ref);
  if (exact) return exact;
  const byPrefix = ref.length >= 4 ? containers.filter((c) => c.id.startsWith(ref)) : [];
  if (byPrefix.length === 1 && byPrefix[0]) return byPrefix[0];
  if (byPrefix.length > 1) {
    throw new ApiError(
      "FLEETHEAL_ERR_CONFLICT",
      `${ref} matches ${byPrefix.length} containers on ${record.snapshot.host}; use more of the id`,
    );
  }
  throw new ApiError("FLEETHEAL_ERR_NOT_FOUND", `no container ${ref} on ${record.snapshot.host}`);
}
