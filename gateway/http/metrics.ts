import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import { msFromTimeNano } from "../../common/nanosecond-time.js";
import { failureOutcome } from "../../common/restart-outcomes.js";
import type { FleetView } from "../view/fleet-view.js";
import type { HealthCache } from "../view/health-cache.js";
import { NOT_HEALING_REASONS } from "../view/not-healing.js";
import type { StreamRecord } from "./api-schemas.js";

/** Why a live stream was refused (`limit`, `client-limit`) or closed for a slow client. */
export const STREAM_SHED_REASONS = ["buffer", "drain", "client-limit", "limit"] as const;
export type StreamShedReason = (typeof STREAM_SHED_REASONS)[number];

/**
 * The gateway's Prometheus metrics. Fleet gauges are read from the precomputed /health report
 * at scrape time, so a scrape costs the same as a /health request; counters and the lag
 * histogram are fed by the live events feed.
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly restarts: Counter<"host" | "outcome">;
  private readonly lag: Histogram;
  private readonly rejected: Counter<"source">;
  private readonly shed: Counter<"reason">;
  private streamPending: () => number = () => 0;

  /** `view`: the hosts' snapshots, for the series read from them; without it they are absent. */
  constructor(health: HealthCache, now: () => number = Date.now, view?: Pick<FleetView, "list">) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    if (view) {
      new Gauge({
        name: "fleetheal_agent_unpublishable_events",
        help: "Events an agent dropped since it started because NATS refuses them for good (over a message size limit), by host, from its last snapshot.",
        labelNames: ["host"],
        registers,
        collect() {
          this.reset();
          for (const { snapshot } of view.list()) {
            this.set({ host: snapshot.host }, snapshot.outbox.unpublishable ?? 0);
          }
        },
      });
    }
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
      name: "fleetheal_fleet_healthy",
      help: "1 when /health reports the fleet healthy, else 0.",
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
    this.restarts = new Counter({
      name: "fleetheal_restarts_total",
      help: "Restarts seen on the events stream since the gateway started, by host and outcome.",
      labelNames: ["host", "outcome"],
      registers,
    });
    this.lag = new Histogram({
      name: "fleetheal_event_lag_seconds",
      help: "From Docker's event time to the gateway receiving it from JetStream.",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.rejected = new Counter({
      name: "fleetheal_gateway_rejected_messages_total",
      help: "NATS messages the gateway could not decode, by source.",
      labelNames: ["source"],
      registers,
    });
    this.shed = new Counter({
      name: "fleetheal_gateway_streams_shed_total",
      help: "Live event streams refused (limit: too many in all; client-limit: too many from one address) or closed because the client did not keep up (buffer: too many bytes queued; drain: its socket did not drain in time).",
      labelNames: ["reason"],
      registers,
    });
    for (const reason of STREAM_SHED_REASONS) this.shed.inc({ reason }, 0);
    const pending = () => this.streamPending();
    new Gauge({
      name: "fleetheal_gateway_stream_pending_bytes",
      help: "Bytes written to live event streams that their clients have not taken yet, in all.",
      registers,
      collect() {
        this.set(pending());
      },
    });
  }

  /** Counts one live record from the events stream. */
  observe(record: StreamRecord, receivedAt: number): void {
    if (record.kind === "event") {
      const lagMs = receivedAt - msFromTimeNano(record.event.timeNano);
      if (Number.isFinite(lagMs)) this.lag.observe(Math.max(0, lagMs) / 1000);
      return;
    }
    const r = record.remediation;
    if (r.phase === "restarted" || r.phase === "failed") {
      const outcome = r.phase === "restarted" ? "restarted" : failureOutcome(r.code);
      this.restarts.inc({ host: r.host, outcome });
    }
  }

  rejectedMessage(source: string): void {
    this.rejected.inc({ source });
  }

  /** Counts one live stream refused or closed to protect the gateway. */
  streamShed(reason: StreamShedReason): void {
    this.shed.inc({ reason });
  }

  /** Where the pending bytes of the live streams are read from at scrape time. */
  watchStreamPending(pendingBytes: () => number): void {
    this.streamPending = pendingBytes;
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
