import { describe, expect, it } from "vitest";
import type { ContainerSnapshot, LedgerEntry } from "../../contracts/index.js";
import { containerSnapshot, hostSnapshot, ledgerEntry } from "../../test/support/fixtures.js";
import { GatewayMetrics } from "../http/metrics.js";
import { FleetView } from "./fleet-view.js";
import { HealthCache } from "./health-cache.js";
import { buildHealthReport, HealthReport } from "./health-report.js";
import { MAX_NOT_HEALING_LISTED, notHealingOf } from "./not-healing.js";

const NOW = Date.parse("2026-11-27T20:00:00.000Z");
const STALENESS = { staleAfterHeartbeats: 3, downAfterHeartbeats: 12 };
// Docker's StartedAt to the nanosecond, and the same instant as a Date would write it.
const STARTED_NANOS = "2026-11-27T19:50:00.123456789Z";
const STARTED_MILLIS = "2026-11-27T19:50:00.123Z";

const held: NonNullable<LedgerEntry["notHealing"]> = {
  reason: "held",
  code: "backoff",
  message: "in backoff after 2 restarts",
  since: "2026-11-27T19:55:00.000Z",
  until: "2026-11-27T20:02:00.000Z",
  incident: STARTED_MILLIS,
};

const unhealthy = (init: Partial<ContainerSnapshot> = {}) =>
  containerSnapshot({ health: "unhealthy", startedAt: STARTED_NANOS, ...init });

describe("notHealingOf", () => {
  const entry = ledgerEntry({ notHealing: held });

  it("shows the reason of an opted-in, running, unhealthy container's current run", () => {
    const { incident: _, ...shown } = held;
    expect(notHealingOf(unhealthy(), entry)).toEqual(shown);
    // Without an incident the reason is taken as current.
    const { incident: _i, ...noIncident } = held;
    expect(notHealingOf(unhealthy(), ledgerEntry({ notHealing: noIncident }))).toEqual(shown);
  });

  it.each<[string, Partial<ContainerSnapshot>]>([
    ["healthy", { health: "healthy" }],
    ["not opted in", { optedIn: false }],
    ["not running", { state: "exited" }],
    ["a later run", { startedAt: "2026-11-27T19:58:00.000000001Z" }],
    ["a run by another nanosecond", { startedAt: "2026-11-27T19:50:00.123456790Z" }],
  ])("shows nothing when the container is %s", (_why, init) => {
    const nanos = ledgerEntry({ notHealing: { ...held, incident: STARTED_NANOS } });
    expect(notHealingOf(unhealthy(init), nanos)).toBeUndefined();
  });

  it("shows a container stuck after an attempt that left it down, but not one merely held", () => {
    const stuck = { ...held, reason: "stuck" as const, code: "docker-error", message: "no mount" };
    const down = unhealthy({ state: "exited", health: "none" });
    expect(notHealingOf(down, ledgerEntry({ notHealing: stuck }))).toMatchObject({
      reason: "stuck",
      code: "docker-error",
    });
    expect(notHealingOf(down, entry)).toBeUndefined();
    const leaving = unhealthy({ state: "removing", health: "none" });
    expect(notHealingOf(leaving, ledgerEntry({ notHealing: stuck }))).toBeUndefined();
  });

  it("shows nothing without a reason, or for an incident the container has no run for", () => {
    expect(notHealingOf(unhealthy(), ledgerEntry())).toBeUndefined();
    expect(notHealingOf(unhealthy(), undefined)).toBeUndefined();
    const noStart = containerSnapshot({ health: "unhealthy" });
    expect(notHealingOf(noStart, entry)).toBeUndefined();
  });
});

function fleet(): FleetView {
  const view = new FleetView();
  for (const host of ["b", "a", "gone"]) {
    view.apply(
      hostSnapshot({
        host,
        at: "2026-11-27T19:59:59.000Z",
        heartbeatMs: 1000,
        containers: ["web", "db", "cache"].map((name, i) =>
          unhealthy({ id: `${host === "gone" ? "c" : host}${i}`.padEnd(64, "0"), name }),
        ),
      }),
      host === "gone" ? NOW - 60_000 : NOW,
    );
  }
  return view;
}

function mark(view: FleetView, host: string, index: number, notHealing = held): void {
  const c = view.get(host)?.snapshot.containers[index];
  if (!c) throw new Error(`no container ${index} on ${host}`);
  view.applyLedger(host, c.id, ledgerEntry({ host, containerId: c.id, notHealing }));
}

describe("the notHealing part of /health", () => {
  it("counts by reason and lists by host then name, leaving down hosts out", () => {
    const view = fleet();
    mark(view, "b", 0);
    mark(view, "a", 0, { ...held, reason: "stuck", code: "docker-error", message: "boom" });
    mark(view, "a", 1);
    mark(view, "gone", 0);
    const cache = new HealthCache(view, STALENESS);
    const served = cache.get(NOW);
    const report = HealthReport.parse(JSON.parse(served.json));
    expect(report.notHealing.total).toBe(3);
    expect(report.notHealing.byReason).toEqual({ held: 2, stuck: 1 });
    expect(report.notHealing.containers.map((c) => `${c.host}/${c.name} ${c.reason}`)).toEqual([
      "a/db held",
      "a/web stuck",
      "b/web held",
    ]);
    expect(report.notHealing.containers[0]).toMatchObject({
      code: "backoff",
      until: "2026-11-27T20:02:00.000Z",
      since: "2026-11-27T19:55:00.000Z",
    });
    expect(report.notHealing.containers[0]).not.toHaveProperty("incident");
    expect(report).toEqual(
      buildHealthReport(view.list(), NOW, STALENESS, undefined, undefined, (r) =>
        view.notHealingOn(r),
      ),
    );
  });

  it("is rebuilt when a ledger entry changes, and bounded at 100 listed", () => {
    const view = new FleetView();
    const containers = Array.from({ length: MAX_NOT_HEALING_LISTED + 5 }, (_, i) =>
      unhealthy({ id: i.toString(16).padStart(64, "0"), name: `c${String(i).padStart(3, "0")}` }),
    );
    view.apply(hostSnapshot({ host: "h", heartbeatMs: 1000, containers }), NOW);
    const cache = new HealthCache(view, STALENESS);
    expect(cache.get(NOW).notHealing.total).toBe(0);
    for (let i = 0; i < containers.length; i++) mark(view, "h", i);
    const report = cache.get(NOW).notHealing;
    expect(report.total).toBe(MAX_NOT_HEALING_LISTED + 5);
    expect(report.containers).toHaveLength(MAX_NOT_HEALING_LISTED);
    expect(report.containers.at(-1)?.name).toBe("c099");
    // The handler clears the reason: the next answer no longer lists the container.
    const first = view.get("h")?.snapshot.containers[0];
    if (!first) throw new Error("no container");
    view.applyLedger("h", first.id, ledgerEntry({ host: "h", containerId: first.id }));
    expect(cache.get(NOW).notHealing.total).toBe(MAX_NOT_HEALING_LISTED + 4);
  });

  it("is the fleetheal_containers_not_healing gauge, by reason", async () => {
    const view = fleet();
    mark(view, "a", 0, { ...held, reason: "stuck" });
    mark(view, "a", 1);
    mark(view, "b", 2);
    const metrics = new GatewayMetrics(new HealthCache(view, STALENESS), () => NOW);
    const text = await metrics.render();
    expect(text).toContain("# HELP fleetheal_containers_not_healing ");
    expect(text).toContain("# TYPE fleetheal_containers_not_healing gauge");
    expect(text).toContain('fleetheal_containers_not_healing{reason="held"} 2');
    expect(text).toContain('fleetheal_containers_not_healing{reason="stuck"} 1');
  });
});
