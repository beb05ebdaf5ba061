import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import { msFromTimeNano } from "../../common/nanosecond-time.js";
import { FAILURE_OUTCOMES, failureOutcome } from "../../common/restart-outcomes.js";
import { VERSION } from "../../common/version.js";
import type { RestartCounts } from "../nats/ports.js";
import type { FleetView } from "../view/fleet-view.js";
import type { HealthCache } from "../view/health-cache.js";
import type { StreamRecord } from "./api-schemas.js";
import { registerFleetMetrics } from "./metrics-fleet.js";
import { OTHER_LABEL, registerHostMetrics } from "./metrics-hosts.js";

/** Why a live stream was refused (`limit`, `client-limit`) or closed for a slow client. */
export const STREAM_SHED_REASONS = ["buffer", "drain", "client-limit", "limit"] as const;
export type StreamShedReason = (typeof STREAM_SHED_REASONS)[number];

/** What the gateway decodes from NATS: hosts' snapshots, ledger entries, events, breakers. */
export const REJECTED_SOURCES = ["snapshot", "ledger", "event", "breaker"] as const;
export type RejectedSource = (typeof REJECTED_SOURCES)[number];

/** The restarts a gateway counts are the ones it sends itself: by hand, through its API. */
const MANUAL = "manual";

/**
 * The gateway's Prometheus metrics (docs/METRICS.md). Fleet gauges are read from the precomputed
 * /health report and per-host series from the hosts' last snapshots, at scrape time; the
 * counters are this process's own (the restarts it sent, what it rejected or shed), and the lag
 * histogram is fed by the live events feed.
 */
export class GatewayMetrics implements RestartCounts {
  readonly registry = new Registry();
  private readonly restarts: Counter<"trigger" | "outcome">;
  private readonly restartFailures: Counter<"trigger" | "code">;
  private readonly lag: Histogram;
  private readonly rejected: Counter<"source">;
  private readonly shed: Counter<"reason">;
  private streamPending: () => number = () => 0;
  private breakersOpen: () => number = () => 0;

  /** `view`: the hosts' snapshots, for the series read from them; without it they are absent. */
  constructor(health: HealthCache, now: () => number = Date.now, view?: Pick<FleetView, "list">) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: "fleetheal_build_info",
      help: "1, with the role and version of this fleetheal process.",
      labelNames: ["role", "version"],
      registers,
    }).set({ role: "gateway", version: VERSION }, 1);
    registerFleetMetrics(this.registry, health, now);
    if (view) {
      registerHostMetrics(this.registry, {
        view,
        statusOf: (record, at) => health.statusOf(record, at),
        now,
      });
    }
    this.restarts = new Counter({
      name: "fleetheal_restarts_total",
      help: "Restarts this gateway sent to agents (trigger manual: the restart route), by outcome: restarted or failed.",
      labelNames: ["trigger", "outcome"],
      registers,
    });
    this.restartFailures = new Counter({
      name: "fleetheal_restart_failures_total",
      help: "Restarts this gateway sent that failed, by the failed record's code (unknown codes: other).",
      labelNames: ["trigger", "code"],
      registers,
    });
    // Every series from the start, at 0, so that rate() sees the first restart.
    for (const outcome of ["restarted", "failed"]) {
      this.restarts.inc({ trigger: MANUAL, outcome }, 0);
    }
    for (const code of [...FAILURE_OUTCOMES, OTHER_LABEL]) {
      this.restartFailures.inc({ trigger: MANUAL, code }, 0);
    }
    this.lag = new Histogram({
      name: "fleetheal_event_lag_seconds",
      help: "From Docker's event time to the gateway receiving it from JetStream.",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.rejected = new Counter({
      name: "fleetheal_gateway_rejected_messages_total",
      help: "NATS messages the gateway could not decode, by source (snapshot, ledger, event, breaker).",
      labelNames: ["source"],
      registers,
    });
    for (const source of REJECTED_SOURCES) this.rejected.inc({ source }, 0);
    this.shed = new Counter({
      name: "fleetheal_gateway_streams_shed_total",
      help: "Live event streams refused (limit: too many in all; client-limit: too many from one address) or closed because the client did not keep up (buffer: too many bytes queued; drain: its socket did not drain in time).",
      labelNames: ["reason"],
      registers,
    });
    for (const reason of STREAM_SHED_REASONS) this.shed.inc({ reason }, 0);
    const breakersOpen = () => this.breakersOpen();
    new Gauge({
      name: "fleetheal_image_breakers_open",
      help: "Images whose breaker is open now (too many of their containers failing on several hosts in the window), judged from the breakers bucket under the policy in force.",
      registers,
      collect() {
        this.set(breakersOpen());
      },
    });
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

  /**
   * Times one live record from the events stream. Restarts are not counted from the stream:
   * every gateway sees every record, so a fleet with two would count each restart twice.
   */
  observe(record: StreamRecord, receivedAt: number): void {
    if (record.kind !== "event") return;
    const lagMs = receivedAt - msFromTimeNano(record.event.timeNano);
    if (Number.isFinite(lagMs)) this.lag.observe(Math.max(0, lagMs) / 1000);
  }

  restarted(): void {
    this.restarts.inc({ trigger: MANUAL, outcome: "restarted" });
  }

  restartFailed(code: string): void {
    this.restarts.inc({ trigger: MANUAL, outcome: "failed" });
    this.restartFailures.inc({ trigger: MANUAL, code: failureOutcome(code) });
  }

  rejectedMessage(source: RejectedSource): void {
    this.rejected.inc({ source });
  }

  /** Counts one live stream refused or closed to protect the gateway. */
  streamShed(reason: StreamShedReason): void {
    this.shed.inc({ reason });
  }

  /** Where the number of open image breakers is read from at scrape time. */
  watchBreakers(open: () => number): void {
    this.breakersOpen = open;
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
