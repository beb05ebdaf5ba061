import { z } from "zod";
import type { ContainerSnapshot } from "../../contracts/index.js";
import type { PolicyState } from "../../policy/policy-state.js";
import { ContainerCounts, emptyCounts } from "./container-counts.js";
import type { HostRecord } from "./fleet-view.js";
import {
  addNotHealing,
  emptyNotHealing,
  type NotHealing,
  NotHealingReport,
} from "./not-healing.js";

export const HostStatus = z.enum(["up", "stale", "down"]);
export type HostStatus = z.infer<typeof HostStatus>;

/**
 * The stored fleet policy as the gateway holds it, by the same rules as the handlers
 * (docs/POLICY.md): while the stored policy is invalid the fleet is at best `degraded`.
 */
export const PolicyHealth = z.object({
  /** `invalid` while the latest stored policy does not validate. */
  status: z.enum(["valid", "invalid"]),
  /**
   * `stored`: a stored revision; `defaults`: no policy is stored; `paused`: healing is paused
   * because the stored policy was invalid when the process started and no valid one followed.
   */
  inForce: z.enum(["stored", "defaults", "paused"]),
  /** The revision in force; 0 unless `inForce` is `stored`. */
  revision: z.number().int(),
  /** The rejected revision and why, while `status` is `invalid`. */
  invalid: z.object({ revision: z.number().int(), error: z.string() }).optional(),
});
export type PolicyHealth = z.infer<typeof PolicyHealth>;

/** What a gateway with no policy source reports: nothing stored, the defaults in force. */
export const DEFAULTS_IN_FORCE: PolicyHealth = {
  status: "valid",
  inForce: "defaults",
  revision: 0,
};

/** The /health view of a process's policy state. */
export function policyHealth(
  state: Pick<PolicyState, "origin" | "revision" | "invalid">,
): PolicyHealth {
  const { origin, revision, invalid } = state;
  return invalid
    ? {
        status: "invalid",
        inForce: origin,
        revision,
        invalid: { revision: invalid.revision, error: invalid.error },
      }
    : { status: "valid", inForce: origin, revision };
}

/** The body of `GET /health`. */
export const HealthReport = z.object({
  status: z.enum(["healthy", "degraded", "unhealthy"]),
  hosts: z.array(
    z.object({
      id: z.string(),
      status: HostStatus,
      /** When the host's agent was last heard from (ISO-8601). */
      lastSeen: z.string(),
      docker: z.enum(["up", "down"]),
      containers: ContainerCounts,
      /** Containers on the host that fleetheal has stopped restarting until released. */
      quarantined: z.number().int(),
    }),
  ),
  totals: z.object({
    hosts: z.object({
      total: z.number().int(),
      up: z.number().int(),
      stale: z.number().int(),
      down: z.number().int(),
    }),
    /** Containers on hosts that are not down: a dead host's last report is not current health. */
    containers: ContainerCounts,
    quarantined: z.number().int(),
  }),
  /**
   * Opted-in, running, unhealthy containers that fleetheal is not healing now, and why (held by
   * the policy, or stuck after a failed attempt), on hosts that are not down. Every one is
   * unhealthy, so the fleet is already `degraded` while there is one.
   */
  notHealing: NotHealingReport,
  policy: PolicyHealth,
});
export type HealthReport = z.infer<typeof HealthReport>;

/** When a host stops being `up`, counted in its own heartbeats. */
export interface StalenessPolicy {
  staleAfterHeartbeats: number;
  downAfterHeartbeats: number;
}

/** A host is stale after a few missed heartbeats and down after more. */
export function hostStatus(record: HostRecord, now: number, policy: StalenessPolicy): HostStatus {
  const silentFor = now - record.receivedAt;
  const heartbeat = record.snapshot.heartbeatMs;
  if (silentFor > heartbeat * policy.downAfterHeartbeats) return "down";
  if (silentFor > heartbeat * policy.staleAfterHeartbeats) return "stale";
  return "up";
}

/**
 * When the host's status will next change if nothing is heard from it, or `Infinity` once it
 * is down. A cached report stays true until the earliest of these across the fleet.
 */
export function nextStatusChange(record: HostRecord, now: number, policy: StalenessPolicy): number {
  const heartbeat = record.snapshot.heartbeatMs;
  const stale = record.receivedAt + heartbeat * policy.staleAfterHeartbeats;
  const down = record.receivedAt + heartbeat * policy.downAfterHeartbeats;
  // hostStatus uses strict comparisons, so the status changes one millisecond after the bound.
  if (now <= stale) return stale + 1;
  if (now <= down) return down + 1;
  return Number.POSITIVE_INFINITY;
}

/** One host's line in the report. */
export type HostHealth = HealthReport["hosts"][number];

export function hostHealth(
  record: HostRecord,
  status: HostStatus,
  quarantined: number,
): HostHealth {
  return {
    id: record.snapshot.host,
    status,
    lastSeen: new Date(record.receivedAt).toISOString(),
    docker: record.snapshot.docker.status,
    containers: { ...record.counts },
    quarantined,
  };
}

/**
 * Aggregates the hosts' lines. `healthy`: every host is up with Docker reachable, no container
 * is unhealthy and the stored policy is valid. `unhealthy`: no host is reachable at all (or none
 * has ever reported). Anything in between is `degraded`. Down hosts' containers are left out of
 * the totals.
 */
export function summarize(
  hosts: readonly HostHealth[],
  policy: PolicyHealth = DEFAULTS_IN_FORCE,
): Pick<HealthReport, "status" | "totals"> {
  const totals = {
    hosts: { total: 0, up: 0, stale: 0, down: 0 },
    containers: emptyCounts(),
    quarantined: 0,
  };
  let allDockerUp = true;
  for (const h of hosts) {
    totals.hosts.total++;
    totals.hosts[h.status]++;
    if (h.docker !== "up") allDockerUp = false;
    if (h.status === "down") continue;
    for (const key of Object.keys(h.containers) as (keyof ContainerCounts)[]) {
      totals.containers[key] += h.containers[key];
    }
    totals.quarantined += h.quarantined;
  }
  let status: HealthReport["status"];
  if (totals.hosts.up + totals.hosts.stale === 0) status = "unhealthy";
  else if (
    totals.hosts.up === totals.hosts.total &&
    allDockerUp &&
    totals.containers.unhealthy === 0 &&
    policy.status === "valid"
  )
    status = "healthy";
  else status = "degraded";
  return { status, totals };
}

/** The containers of a host, as FleetView.notHealingOn finds them. */
export type NotHealingOn = (record: HostRecord) => readonly [ContainerSnapshot, NotHealing][];

/**
 * The `notHealing` part: the containers of every host that is not down, in the hosts' order
 * (`records` and `hosts` are the same hosts in the same order).
 */
export function notHealingReport(
  records: readonly HostRecord[],
  hosts: readonly Pick<HostHealth, "status">[],
  notHealingOn: NotHealingOn,
): NotHealingReport {
  const report = emptyNotHealing();
  records.forEach((record, i) => {
    if (hosts[i]?.status === "down") return;
    for (const [container, reason] of notHealingOn(record)) {
      addNotHealing(report, record.snapshot.host, container, reason);
    }
  });
  return report;
}

/** The whole report at `now`. The gateway serves it through HealthCache, which builds the same. */
export function buildHealthReport(
  records: readonly HostRecord[],
  now: number,
  staleness: StalenessPolicy,
  quarantinedOn: (record: HostRecord) => number = () => 0,
  policy: PolicyHealth = DEFAULTS_IN_FORCE,
  notHealingOn: NotHealingOn = () => [],
): HealthReport {
  const hosts = records.map((r) => hostHealth(r, hostStatus(r, now, staleness), quarantinedOn(r)));
  const { status, totals } = summarize(hosts, policy);
  const notHealing = notHealingReport(records, hosts, notHealingOn);
  return { status, hosts, totals, notHealing, policy };
}
