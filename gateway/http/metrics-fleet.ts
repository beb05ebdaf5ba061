import { Gauge, type Registry } from "prom-client";
import type { HealthCache } from "../view/health-cache.js";
import { NOT_HEALING_REASONS } from "../view/not-healing.js";

/** The fleet's statuses as /health reports them, each a value of `fleetheal_fleet_status`. */
export const FLEET_STATUSES = ["healthy", "degraded", "unhealthy"] as const;

/**
 * Registers the fleet gauges, read from the precomputed /health report at scrape time, so a
 * scrape costs the same as a /health request.
 */
export function registerFleetMetrics(
  registry: Registry,
  health: Pick<HealthCache, "get">,
  now: () => number,
): void {
  const registers = [registry];
  new Gauge({
    name: "fleetheal_hosts",
    help: "Hosts by status (up, stale, down).",
    labelNames: ["status"],
    registers,
    collect() {
      const { totals } = health.get(now());
      for (const status of ["up", "stale", "down"] as const) {
        this.set({ status }, totals.hosts[status]);
      }
    },
  });
  new Gauge({
    name: "fleetheal_containers",
    help: "Containers on hosts that are not down, by health.",
    labelNames: ["health"],
    registers,
    collect() {
      const { containers } = health.get(now()).totals;
      for (const h of ["healthy", "unhealthy", "starting", "none"] as const) {
        this.set({ health: h }, containers[h]);
      }
    },
  });
  new Gauge({
    name: "fleetheal_containers_quarantined",
    help: "Containers fleetheal will not restart until they are released.",
    registers,
    collect() {
      this.set(health.get(now()).totals.quarantined);
    },
  });
  new Gauge({
    name: "fleetheal_containers_not_healing",
    help: "Opted-in, running, unhealthy containers fleetheal is not healing now, on hosts that are not down, by reason: held (a policy hold: pause, maintenance, backoff, quarantine, storm cap, image breaker, switched off, excluded, dry-run) or stuck (the last attempt failed). The series alert rules build on.",
    labelNames: ["reason"],
    registers,
    collect() {
      const { byReason } = health.get(now()).notHealing;
      for (const reason of NOT_HEALING_REASONS) this.set({ reason }, byReason[reason]);
    },
  });
  new Gauge({
    name: "fleetheal_fleet_status",
    help: "1 for the fleet's status as /health reports it (healthy, degraded, unhealthy), 0 for the others.",
    labelNames: ["status"],
    registers,
    collect() {
      const current = health.get(now()).status;
      for (const status of FLEET_STATUSES) this.set({ status }, current === status ? 1 : 0);
    },
  });
  new Gauge({
    name: "fleetheal_fleet_healthy",
    help: 'Deprecated: use fleetheal_fleet_status{status="healthy"}. 1 when /health reports the fleet healthy, else 0.',
    registers,
    collect() {
      this.set(health.get(now()).status === "healthy" ? 1 : 0);
    },
  });
  new Gauge({
    name: "fleetheal_policy_invalid",
    help: "1 while the stored fleet policy is invalid (the last valid one, or a pause, stays in force), else 0.",
    registers,
    collect() {
      this.set(health.get(now()).policy.status === "invalid" ? 1 : 0);
    },
  });
  new Gauge({
    name: "fleetheal_policy_invalid_revision",
    help: "The revision of the stored fleet policy that was rejected; 0 while it is valid.",
    registers,
    collect() {
      this.set(health.get(now()).policy.invalid?.revision ?? 0);
    },
  });
  new Gauge({
    name: "fleetheal_policy_revision",
    help: "The revision of the fleet policy in force; 0 for the defaults or the pause.",
    registers,
    collect() {
      this.set(health.get(now()).policy.revision);
    },
  });
  new Gauge({
    name: "fleetheal_policy_in_force",
    help: "1 for where the policy in force comes from: stored, defaults, or paused (no valid policy known).",
    labelNames: ["origin"],
    registers,
    collect() {
      const { inForce } = health.get(now()).policy;
      for (const origin of ["stored", "defaults", "paused"] as const) {
        this.set({ origin }, inForce === origin ? 1 : 0);
      }
    },
  });
}
