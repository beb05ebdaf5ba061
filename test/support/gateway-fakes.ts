// In-memory implementations of the gateway's ports (gateway/nats/ports.ts), for route tests
// with inject(). They stand in for fleetheal's own interfaces, not for NATS: the NATS
// implementations are tested against a real server in test/gateway-control.test.ts.

import {
  DEFAULT_HEAL_POLICY,
  type HealPolicy,
  type HostSnapshot,
  type RemediationRecord,
} from "../../contracts/index.js";
import { ApiError } from "../../gateway/http/api-errors.js";
import type {
  EventsPage,
  EventsQuery,
  HealingSwitchResult,
  PolicyDocument,
  RestartResult,
  StreamRecord,
} from "../../gateway/http/api-schemas.js";
import { switchedPolicy, switchRecord, switchState } from "../../gateway/nats/healing-switch.js";
import type {
  EventLog,
  FleetControl,
  LiveFeed,
  ManualHealingSwitch,
  ManualRelease,
  ManualRestart,
  StreamFilter,
} from "../../gateway/nats/ports.js";
import { matchesFilter } from "../../gateway/nats/stream-filter.js";
import { hostSnapshot as fixtureHostSnapshot } from "./fixtures.js";

/** Records every action and answers from a script the test sets. */
export class FakeFleetControl implements FleetControl {
  readonly restarts: ManualRestart[] = [];
  readonly releases: ManualRelease[] = [];
  restartAnswer: (r: ManualRestart) => RestartResult | Promise<RestartResult> = (r) => ({
    remediationId: `manual:${r.idempotencyKey ?? "x"}`,
    commandId: `manual-${r.idempotencyKey ?? "x"}`,
    outcome: "restarted",
    code: "restarted",
    message: `restarted ${r.container.name}`,
    duplicate: false,
    durationMs: 12,
  });
  quarantined = new Set<string>();
  private policy: PolicyDocument = { policy: DEFAULT_HEAL_POLICY, revision: 0 };

  async restart(request: ManualRestart): Promise<RestartResult> {
    this.restarts.push(request);
    return this.restartAnswer(request);
  }

  async release(request: ManualRelease): Promise<{ releasedAt: string }> {
    this.releases.push(request);
    const key = `${request.host}.${request.container.id}`;
    if (!this.quarantined.delete(key)) {
      throw new ApiError(
        "FLEETHEAL_ERR_CONFLICT",
        `${request.container.name} on ${request.host} is not quarantined`,
      );
    }
    return { releasedAt: "2026-11-27T20:00:00.000Z" };
  }

  async getPolicy(): Promise<PolicyDocument> {
    return this.policy;
  }

  async putPolicy(policy: HealPolicy, expectedRevision?: number): Promise<PolicyDocument> {
    if (expectedRevision !== undefined && expectedRevision !== this.policy.revision) {
      throw new ApiError("FLEETHEAL_ERR_PRECONDITION_FAILED", "the policy changed", {
        currentRevision: this.policy.revision,
      });
    }
    this.policy = { policy, revision: this.policy.revision + 1 };
    return this.policy;
  }

  async setPaused(paused: boolean): Promise<PolicyDocument> {
    return this.putPolicy({ ...this.policy.policy, paused });
  }

  /** The audit records of healing switches, in order. */
  readonly switchRecords: RemediationRecord[] = [];

  /** The real switch logic (gateway/nats/healing-switch.ts) on the in-memory policy. */
  async setHealing(request: ManualHealingSwitch): Promise<HealingSwitchResult> {
    const at = new Date("2026-11-27T20:00:00.000Z");
    const next = switchedPolicy(this.policy.policy, request, at);
    if (next === undefined) return switchState(request, this.policy, false);
    this.policy = { policy: next, revision: this.policy.revision + 1 };
    this.switchRecords.push(switchRecord(request, this.policy.revision, at));
    return switchState(request, this.policy, true);
  }
}

/** Records in memory; `push` delivers one to live subscribers and keeps it for history. */
export class MemoryEventLog implements EventLog, LiveFeed {
  readonly records: StreamRecord[] = [];
  readonly queries: EventsQuery[] = [];
  private readonly subscribers = new Set<{
    filter: StreamFilter;
    listener: (r: StreamRecord) => void;
  }>();

  async read(query: EventsQuery): Promise<EventsPage> {
    this.queries.push(query);
    const matching = this.records.filter(
      (r) => matchesFilter(query, r) && (query.after === undefined || r.seq > query.after),
    );
    const records = matching.slice(0, query.limit);
    const last = records.at(-1);
    return {
      records,
      ...(matching.length > records.length && last ? { next: last.seq } : {}),
    };
  }

  subscribe(filter: StreamFilter, listener: (record: StreamRecord) => void): () => void {
    const sub = { filter, listener };
    this.subscribers.add(sub);
    return () => this.subscribers.delete(sub);
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  push(record: StreamRecord): void {
    this.records.push(record);
    for (const s of this.subscribers) if (matchesFilter(s.filter, record)) s.listener(record);
  }
}

/**
 * A host snapshot with one container per entry of `health` (fixtures.ts's, at a fixed time);
 * `overrides` replace whole fields, as on the wire.
 */
export function hostSnapshot(
  host: string,
  health: ("healthy" | "unhealthy" | "starting" | "none")[],
  overrides: Partial<HostSnapshot> = {},
): HostSnapshot {
  return fixtureHostSnapshot({
    host,
    seq: 3,
    at: "2026-11-27T19:59:59.000Z",
    heartbeatMs: 1000,
    agent: { version: "0.1.0", startedAt: "2026-11-27T19:00:00.000Z", uptimeSeconds: 3599 },
    docker: { status: "up", version: "20.10.24" },
    containers: health.map((h, i) => ({
      id: `${Buffer.from(host).toString("hex").slice(0, 8)}${i.toString(16).padStart(4, "0")}`.padEnd(
        64,
        "0",
      ),
      name: `${host}-${i}`,
      health: h,
      labels: { autoheal: "true", tier: i % 2 === 0 ? "web" : "db" },
      failingStreak: h === "unhealthy" ? 3 : 0,
      healthSource: h === "none" ? "none" : "docker",
      ...(h === "unhealthy" ? { lastHealthOutput: "connection refused" } : {}),
    })),
    ...overrides,
  });
}

/** A gateway app on fakes, with a clock the test moves. */
export interface TestGateway {
  app: import("fastify").FastifyInstance;
  view: import("../../gateway/view/fleet-view.js").FleetView;
  control: FakeFleetControl;
  events: MemoryEventLog;
  metrics: import("../../gateway/http/metrics.js").GatewayMetrics;
  advance(ms: number): void;
  now(): number;
}

export const T0 = Date.parse("2026-11-27T20:00:00.000Z");

export async function startTestGateway(
  options: Partial<import("../../gateway/http/route-context.js").GatewayDeps> & {
    nats?: boolean;
  } = {},
): Promise<TestGateway> {
  const { buildApp } = await import("../../gateway/http/app.js");
  const { FleetView } = await import("../../gateway/view/fleet-view.js");
  const { HealthCache } = await import("../../gateway/view/health-cache.js");
  const { GatewayMetrics } = await import("../../gateway/http/metrics.js");
  let clock = T0;
  const now = () => clock;
  const view = options.view ?? new FleetView();
  const staleness = options.staleness ?? { staleAfterHeartbeats: 3, downAfterHeartbeats: 12 };
  const health = new HealthCache(view, staleness, options.policy);
  const metrics = new GatewayMetrics(health, now, view);
  const control = new FakeFleetControl();
  const events = new MemoryEventLog();
  const app = await buildApp({
    control,
    events,
    feed: events,
    natsConnected: () => options.nats ?? true,
    logger: false,
    ...options,
    view,
    staleness,
    health,
    metrics,
    now,
  });
  return {
    app,
    view,
    control,
    events,
    metrics,
    now,
    advance: (ms) => {
      clock += ms;
    },
  };
}
