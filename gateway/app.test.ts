import type { FastifyInstance } from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import { VERSION } from "../common/version.js";
import type { HostSnapshot } from "../contracts/index.js";
import { buildApp } from "./app.js";
import { FleetView } from "./fleet-view.js";
import { HealthReport } from "./health-report.js";

const T0 = Date.parse("2026-11-27T20:00:00.000Z");

function snapshot(
  host: string,
  health: ("healthy" | "unhealthy" | "starting" | "none")[],
): HostSnapshot {
  return {
    type: "fleetheal.snapshot.v1.host",
    v: 1,
    host,
    seq: 3,
    at: "2026-11-27T19:59:59.000Z",
    heartbeatMs: 1000,
    agent: {
      version: "0.1.0",
      startedAt: "2026-11-27T19:00:00.000Z",
      label: "autoheal",
      watchAll: false,
      uptimeSeconds: 3599,
    },
    outbox: { depth: 0, capacity: 10_000, published: 0, dropped: 0 },
    docker: { status: "up", version: "20.10.24" },
    containers: health.map((h, i) => ({
      id: `${host.charCodeAt(0).toString(16)}${i}`.padEnd(12, "0"),
      name: `${host}-${i}`,
      image: "busybox",
      state: "running" as const,
      health: h,
      optedIn: true,
      labels: {},
      restartCount: 0,
      failingStreak: 0,
      healthSource: h === "none" ? ("none" as const) : ("docker" as const),
    })),
  };
}

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

function start(view: FleetView, options: { nats?: boolean } = {}) {
  let clock = T0;
  app = buildApp({
    view,
    staleness: { staleAfterHeartbeats: 3, downAfterHeartbeats: 12 },
    natsConnected: () => options.nats ?? true,
    now: () => clock,
    logger: false,
  });
  return {
    app,
    advance: (ms: number) => {
      clock += ms;
    },
  };
}

describe("GET /health", () => {
  it("reports the fleet from the view", async () => {
    const view = new FleetView();
    view.apply(snapshot("b-host", ["healthy", "unhealthy"]), T0 - 500);
    view.apply(snapshot("a-host", ["healthy", "starting", "none"]), T0 - 4_000);
    view.apply(snapshot("c-host", ["unhealthy"]), T0 - 60_000);
    const { app } = start(view);
    const res = await app.inject({ method: "GET", url: "/health" });
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^application\/json/);
    const body = HealthReport.parse(res.json());
    expect(body.status).toBe("degraded");
    expect(
      body.hosts.map((h) => [h.id, h.status, h.containers.total, h.containers.unhealthy]),
    ).toEqual([
      ["a-host", "stale", 3, 0],
      ["b-host", "up", 2, 1],
      ["c-host", "down", 1, 1],
    ]);
    expect(body.totals).toEqual({
      hosts: { total: 3, up: 1, stale: 1, down: 1 },
      containers: { total: 5, healthy: 2, unhealthy: 1, starting: 1, none: 1 },
    });
  });

  it("an empty fleet is unhealthy (still 200)", async () => {
    const { app } = start(new FleetView());
    const res = await app.inject({ method: "GET", url: "/health" });
    expect(res.statusCode).toBe(200);
    expect(HealthReport.parse(res.json()).status).toBe("unhealthy");
  });

  it("judges staleness by the time of the request", async () => {
    const view = new FleetView();
    view.apply(snapshot("a-host", ["healthy"]), T0);
    const { app, advance } = start(view);
    expect((await app.inject({ method: "GET", url: "/health" })).json().status).toBe("healthy");
    advance(3_001);
    const later = HealthReport.parse((await app.inject({ method: "GET", url: "/health" })).json());
    expect(later.hosts[0]?.status).toBe("stale");
    expect(later.status).toBe("degraded");
  });
});

describe("GET /livez", () => {
  it("reports version, uptime, NATS and view state", async () => {
    const view = new FleetView();
    const { app, advance } = start(view, { nats: false });
    advance(42_400);
    const res = await app.inject({ method: "GET", url: "/livez" });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      status: "ok",
      version: VERSION,
      uptimeSeconds: 42,
      nats: "disconnected",
      viewLoaded: false,
    });
    view.markLoaded();
    const again = await app.inject({ method: "GET", url: "/livez" });
    expect(again.json()).toMatchObject({ viewLoaded: true, nats: "disconnected" });
  });

  it("says connected when NATS is up", async () => {
    const { app } = start(new FleetView(), { nats: true });
    const res = await app.inject({ method: "GET", url: "/livez" });
    expect(res.json().nats).toBe("connected");
  });
});

describe("unknown routes", () => {
  it("404", async () => {
    const { app } = start(new FleetView());
    expect((await app.inject({ method: "GET", url: "/nope" })).statusCode).toBe(404);
  });
});
