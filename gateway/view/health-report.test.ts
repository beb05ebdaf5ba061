import { describe, expect, it } from "vitest";
import type { ContainerSnapshot } from "../../contracts/index.js";
import { containerSnapshot, hostSnapshot } from "../../test/support/fixtures.js";
import { type HostRecord, toHostRecord } from "./fleet-view.js";
import {
  buildHealthReport,
  HealthReport,
  hostStatus,
  nextStatusChange,
  type PolicyHealth,
  policyHealth,
  type StalenessPolicy,
} from "./health-report.js";

const POLICY: StalenessPolicy = { staleAfterHeartbeats: 3, downAfterHeartbeats: 12 };
const NOW = Date.parse("2026-11-27T20:00:00.000Z");

let nextId = 0;
function container(health: ContainerSnapshot["health"]): ContainerSnapshot {
  nextId++;
  return containerSnapshot({
    id: nextId.toString(16).padStart(12, "0"),
    name: `c${nextId}`,
    health,
    healthSource: health === "none" ? "none" : "docker",
  });
}

function record(
  host: string,
  options: {
    silentMs?: number;
    heartbeatMs?: number;
    docker?: "up" | "down";
    health?: ContainerSnapshot["health"][];
  } = {},
): HostRecord {
  const snapshot = hostSnapshot({
    host,
    at: "2026-11-27T19:59:59.000Z",
    heartbeatMs: options.heartbeatMs ?? 1000,
    agent: { version: "0.1.0", startedAt: "2026-11-27T19:00:00.000Z", uptimeSeconds: 3599 },
    docker:
      options.docker === "down"
        ? { status: "down", error: "gone" }
        : { status: "up", version: "20.10.24" },
    containers: (options.health ?? []).map(container),
  });
  return toHostRecord(snapshot, NOW - (options.silentMs ?? 0));
}

describe("nextStatusChange", () => {
  it("is the first millisecond of the next status, then never once down", () => {
    const r = record("h");
    expect(nextStatusChange(r, NOW, POLICY)).toBe(NOW + 3_001);
    expect(hostStatus(r, NOW + 3_000, POLICY)).toBe("up");
    expect(hostStatus(r, NOW + 3_001, POLICY)).toBe("stale");
    expect(nextStatusChange(r, NOW + 3_001, POLICY)).toBe(NOW + 12_001);
    expect(hostStatus(r, NOW + 12_001, POLICY)).toBe("down");
    expect(nextStatusChange(r, NOW + 12_001, POLICY)).toBe(Number.POSITIVE_INFINITY);
  });
});

describe("hostStatus", () => {
  it.each([
    [0, "up"],
    [3000, "up"],
    [3001, "stale"],
    [12_000, "stale"],
    [12_001, "down"],
    [-5_000, "up"],
  ] as const)("silent %i ms with a 1 s heartbeat -> %s", (silentMs, status) => {
    expect(hostStatus(record("h", { silentMs }), NOW, POLICY)).toBe(status);
  });

  it("uses the host's own heartbeat", () => {
    // 20 s of silence is fine for a host that beats every 10 s...
    expect(hostStatus(record("slow", { silentMs: 20_000, heartbeatMs: 10_000 }), NOW, POLICY)).toBe(
      "up",
    );
    expect(hostStatus(record("slow", { silentMs: 30_001, heartbeatMs: 10_000 }), NOW, POLICY)).toBe(
      "stale",
    );
    expect(
      hostStatus(record("slow", { silentMs: 120_001, heartbeatMs: 10_000 }), NOW, POLICY),
    ).toBe("down");
    // ...but not for one that beats every 5 s.
    expect(hostStatus(record("fast", { silentMs: 20_000, heartbeatMs: 5_000 }), NOW, POLICY)).toBe(
      "stale",
    );
  });
});

describe("buildHealthReport", () => {
  it("counts per host and in total", () => {
    const report = buildHealthReport(
      [
        record("a", { health: ["healthy", "healthy", "none"] }),
        record("b", { health: ["healthy", "starting"], silentMs: 500 }),
      ],
      NOW,
      POLICY,
    );
    expect(HealthReport.parse(report)).toEqual(report);
    expect(report).toEqual({
      status: "healthy",
      hosts: [
        {
          id: "a",
          status: "up",
          lastSeen: "2026-11-27T20:00:00.000Z",
          docker: "up",
          containers: { total: 3, healthy: 2, unhealthy: 0, starting: 0, none: 1 },
          quarantined: 0,
        },
        {
          id: "b",
          status: "up",
          lastSeen: "2026-11-27T19:59:59.500Z",
          docker: "up",
          containers: { total: 2, healthy: 1, unhealthy: 0, starting: 1, none: 0 },
          quarantined: 0,
        },
      ],
      totals: {
        hosts: { total: 2, up: 2, stale: 0, down: 0 },
        containers: { total: 5, healthy: 3, unhealthy: 0, starting: 1, none: 1 },
        quarantined: 0,
      },
      notHealing: { total: 0, byReason: { held: 0, stuck: 0 }, containers: [] },
      policy: { status: "valid", inForce: "defaults", revision: 0 },
    });
  });

  it("leaves down hosts out of the container totals", () => {
    const report = buildHealthReport(
      [
        record("a", { health: ["healthy"] }),
        record("b", { health: ["unhealthy", "unhealthy"], silentMs: 60_000 }),
        record("c", { health: ["starting"], silentMs: 5_000 }),
      ],
      NOW,
      POLICY,
    );
    expect(report.hosts.map((h) => [h.id, h.status, h.containers.total])).toEqual([
      ["a", "up", 1],
      ["b", "down", 2],
      ["c", "stale", 1],
    ]);
    expect(report.totals).toEqual({
      hosts: { total: 3, up: 1, stale: 1, down: 1 },
      containers: { total: 2, healthy: 1, unhealthy: 0, starting: 1, none: 0 },
      quarantined: 0,
    });
    expect(report.status).toBe("degraded");
  });

  it.each([
    ["one stale host", [record("a"), record("b", { silentMs: 3_001 })]],
    ["one unhealthy container", [record("a", { health: ["healthy", "unhealthy"] }), record("b")]],
    ["Docker down on one host", [record("a"), record("b", { docker: "down" })]],
    ["one host down, one up", [record("a"), record("b", { silentMs: 12_001 })]],
    ["the only host is stale", [record("a", { silentMs: 3_001 })]],
  ])("degraded: %s", (_why, records) => {
    expect(buildHealthReport(records, NOW, POLICY).status).toBe("degraded");
  });

  it("an unhealthy container on a down host does not make the fleet degraded by itself", () => {
    // Still degraded, because a host is down; but the unhealthy count stays 0.
    const report = buildHealthReport(
      [record("a"), record("b", { health: ["unhealthy"], silentMs: 20_000 })],
      NOW,
      POLICY,
    );
    expect(report.totals.containers.unhealthy).toBe(0);
    expect(report.status).toBe("degraded");
  });

  it("unhealthy: no hosts", () => {
    expect(buildHealthReport([], NOW, POLICY)).toEqual({
      status: "unhealthy",
      hosts: [],
      totals: {
        hosts: { total: 0, up: 0, stale: 0, down: 0 },
        containers: { total: 0, healthy: 0, unhealthy: 0, starting: 0, none: 0 },
        quarantined: 0,
      },
      notHealing: { total: 0, byReason: { held: 0, stuck: 0 }, containers: [] },
      policy: { status: "valid", inForce: "defaults", revision: 0 },
    });
  });

  it("counts quarantined containers, except on down hosts", () => {
    const up = record("a", { health: ["healthy", "unhealthy"] });
    const down = record("b", { health: ["unhealthy"], silentMs: 20_000 });
    const report = buildHealthReport([up, down], NOW, POLICY, () => 1);
    expect(report.hosts.map((h) => h.quarantined)).toEqual([1, 1]);
    expect(report.totals.quarantined).toBe(1);
  });

  it("unhealthy: every host down", () => {
    const report = buildHealthReport(
      [record("a", { silentMs: 12_001 }), record("b", { silentMs: 999_999 })],
      NOW,
      POLICY,
    );
    expect(report.status).toBe("unhealthy");
    expect(report.totals.hosts).toEqual({ total: 2, up: 0, stale: 0, down: 2 });
  });
});

describe("the stored policy in the report", () => {
  const invalid: PolicyHealth = {
    status: "invalid",
    inForce: "stored",
    revision: 3,
    invalid: { revision: 4, error: "message does not match its schema" },
  };

  it("an invalid stored policy makes a healthy fleet degraded", () => {
    const report = buildHealthReport([record("a")], NOW, POLICY, () => 0, invalid);
    expect(report.status).toBe("degraded");
    expect(report.policy).toBe(invalid);
    expect(HealthReport.parse(report)).toEqual(report);
  });

  it("and leaves an unhealthy fleet unhealthy", () => {
    expect(buildHealthReport([], NOW, POLICY, () => 0, invalid).status).toBe("unhealthy");
  });

  it("a valid one changes nothing", () => {
    const valid = policyHealth({ origin: "stored", revision: 3 });
    expect(valid).toEqual({ status: "valid", inForce: "stored", revision: 3 });
    expect(buildHealthReport([record("a")], NOW, POLICY, () => 0, valid).status).toBe("healthy");
  });

  it("says what is in force and what was rejected", () => {
    expect(
      policyHealth({ origin: "paused", revision: 0, invalid: { revision: 9, error: "bad" } }),
    ).toEqual({
      status: "invalid",
      inForce: "paused",
      revision: 0,
      invalid: { revision: 9, error: "bad" },
    });
  });
});
