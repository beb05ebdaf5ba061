import type { ContainerSnapshot, HealPolicy } from "../../contracts/index.js";
import { backoffUntil, restartsWithin } from "../../policy/heal-policy.js";
import { effectivePolicy } from "../../policy/policy-labels.js";
import type { ContainerSummary, Healing, HostSummary } from "../http/api-schemas.js";
import type { ContainerPageRows, ContainerRow } from "./container-query.js";
import type { FleetView, HostRecord } from "./fleet-view.js";
import { type HostStatus, hostStatus, type StalenessPolicy } from "./health-report.js";
import { type JsonPart, jsonArrayBody } from "./json-body.js";
import { notHealingOf } from "./not-healing.js";

export function summarizeContainer(
  view: FleetView,
  row: ContainerRow,
  now: number,
  policy: StalenessPolicy,
): ContainerSummary {
  const c = row.container;
  const host = row.host.snapshot.host;
  const entry = view.ledgerEntry(host, c.id);
  const notHealing = notHealingOf(c, entry);
  return {
    host,
    hostStatus: hostStatus(row.host, now, policy),
    id: c.id,
    name: c.name,
    image: c.image,
    state: c.state,
    health: c.health,
    healthSource: c.healthSource,
    optedIn: c.optedIn,
    ...(c.startedAt ? { startedAt: c.startedAt } : {}),
    restartCount: c.restartCount,
    failingStreak: c.failingStreak,
    quarantined: entry?.quarantine !== undefined,
    restarts: entry?.restarts.length ?? 0,
    ...(entry?.lastRestartAt ? { lastRestartAt: entry.lastRestartAt } : {}),
    ...(notHealing ? { notHealing } : {}),
  };
}

/**
 * The healing state of a container, judged by the same rules the heal handler applies: its
 * ledger entry, and the fleet policy with the container's labels on top.
 */
export function healingOf(
  view: FleetView,
  host: string,
  container: ContainerSnapshot,
  fleetPolicy: HealPolicy,
  now: number,
): Healing {
  const entry = view.ledgerEntry(host, container.id);
  const { policy, labelErrors } = effectivePolicy(fleetPolicy, container.labels);
  const windowMs = policy.budget.windowSeconds * 1000;
  const until = backoffUntil(entry, policy);
  const notHealing = notHealingOf(container, entry);
  const switchedOff = fleetPolicy.disabled.find(
    (d) => d.host === host && d.name === container.name,
  );
  return {
    quarantined: entry?.quarantine !== undefined,
    ...(entry?.quarantine ? { quarantine: entry.quarantine } : {}),
    consecutiveRestarts: entry?.consecutiveRestarts ?? 0,
    ...(entry?.lastRestartAt ? { lastRestartAt: entry.lastRestartAt } : {}),
    restarts: entry?.restarts ?? [],
    ...(entry?.releasedAt ? { releasedAt: entry.releasedAt } : {}),
    ...(entry?.healthySince ? { healthySince: entry.healthySince } : {}),
    ...(until !== undefined && until > now ? { backoffUntil: new Date(until).toISOString() } : {}),
    budget: {
      used: restartsWithin(entry, now - windowMs),
      allowed: policy.budget.restarts,
      windowSeconds: policy.budget.windowSeconds,
    },
    policy,
    labelErrors,
    ...(notHealing ? { notHealing } : {}),
    ...(switchedOff ? { switchedOff } : {}),
  };
}

export function summarizeHost(
  view: FleetView,
  record: HostRecord,
  now: number,
  policy: StalenessPolicy,
): HostSummary {
  const s = record.snapshot;
  return {
    id: s.host,
    status: hostStatus(record, now, policy),
    lastSeen: new Date(record.receivedAt).toISOString(),
    heartbeatMs: s.heartbeatMs,
    docker: s.docker,
    agent: {
      version: s.agent.version,
      startedAt: s.agent.startedAt,
      uptimeSeconds: s.agent.uptimeSeconds,
      label: s.agent.label,
      watchAll: s.agent.watchAll,
    },
    outbox: s.outbox,
    containers: record.counts,
    quarantined: view.quarantinedOn(record),
  };
}

interface SummaryJson extends JsonPart {
  hostStatus: HostStatus;
  entry: unknown;
}

/**
 * Renders pages of `GET /containers` as JSON bytes, keeping each container's summary serialised
 * until its snapshot, its ledger entry or its host's status changes. A page then costs a lookup
 * per row and one copy of the rows into the body, not a summary and its serialisation, nor a
 * joined string that would be garbage as soon as it is encoded.
 *
 * The cache is keyed by the container object, which the view keeps across heartbeats that do
 * not change the container (see FleetView), so a serialised row survives them.
 */
export class ContainerPageRenderer {
  private readonly cache = new WeakMap<ContainerSnapshot, SummaryJson>();

  constructor(
    private readonly view: FleetView,
    private readonly policy: StalenessPolicy,
  ) {}

  render(page: ContainerPageRows, now: number): Buffer {
    const statuses = new Map<HostRecord, HostStatus>();
    const lines = page.rows.map((row) => {
      let status = statuses.get(row.host);
      if (status === undefined) {
        status = hostStatus(row.host, now, this.policy);
        statuses.set(row.host, status);
      }
      return this.line(row, status, now);
    });
    const head = '{"containers":[';
    const next = page.next === undefined ? "" : `,"next":${JSON.stringify(page.next)}`;
    const tail = `],"total":${page.total}${next}}`;
    return jsonArrayBody(head, lines, tail);
  }

  private line(row: ContainerRow, status: HostStatus, now: number): SummaryJson {
    const entry = this.view.ledgerEntry(row.host.snapshot.host, row.container.id);
    const known = this.cache.get(row.container);
    if (known && known.hostStatus === status && known.entry === entry) return known;
    const json = JSON.stringify(summarizeContainer(this.view, row, now, this.policy));
    const line = { hostStatus: status, entry, json, bytes: Buffer.byteLength(json) };
    this.cache.set(row.container, line);
    return line;
  }
}
