import { describe, expect, it } from "vitest";
import { HostSnapshot } from "./host-snapshot.js";

const valid = {
  type: "fleetheal.snapshot.v1.host",
  v: 1,
  host: "host-a",
  seq: 17,
  at: "2026-11-27T19:42:00.000Z",
  heartbeatMs: 5000,
  agent: {
    version: "0.1.0",
    startedAt: "2026-11-27T18:00:00.000Z",
    label: "autoheal",
    watchAll: false,
    uptimeSeconds: 6120,
  },
  outbox: { depth: 2, capacity: 10_000, published: 1234, dropped: 0 },
  lastEventTimeNano: "1795808494172958659",
  docker: { status: "up", version: "20.10.24+dfsg1" },
  containers: [
    {
      id: "4f1c2b3a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a",
      name: "web",
      image: "nginx:1.27",
      state: "running",
      health: "unhealthy",
      optedIn: true,
      labels: { autoheal: "true" },
      startedAt: "2026-11-27T19:41:29.98123456Z",
      restartCount: 0,
      failingStreak: 3,
      lastHealthOutput: "curl: (7) Failed to connect to localhost port 80",
      healthSource: "docker",
      networkMode: "shop_default",
      compose: { project: "shop", service: "web" },
    },
    {
      id: "89abcdef0123",
      name: "api",
      image: "registry.local/shop/api:1.0",
      state: "running",
      health: "healthy",
      optedIn: true,
      labels: { autoheal: "true", "autoheal.probe.http": ":8080/healthz" },
      startedAt: "2026-11-27T19:40:00Z",
      restartCount: 2,
      failingStreak: 0,
      lastHealthOutput: "HTTP 200",
      healthSource: "probe",
      probe: { kind: "http", target: ":8080/healthz" },
    },
    {
      id: "fedcba987654",
      name: "worker",
      image: "busybox",
      state: "exited",
      health: "none",
      optedIn: true,
      labels: { autoheal: "true", "autoheal.probe.tcp": "nope" },
      startedAt: "2026-11-27T19:00:00Z",
      exitCode: 137,
      restartCount: 0,
      failingStreak: 0,
      healthSource: "none",
      probe: { kind: "tcp", target: "nope", error: 'autoheal.probe.tcp: "nope" is not a port' },
      networkMode: "none",
    },
    {
      id: "0123456789ab",
      name: "batch",
      image: "busybox",
      state: "created",
      health: "none",
      optedIn: false,
      labels: {},
      restartCount: 0,
      failingStreak: 0,
      healthSource: "none",
    },
  ],
};

describe("HostSnapshot", () => {
  it("accepts a realistic snapshot", () => {
    expect(HostSnapshot.parse(valid)).toEqual(valid);
  });

  it("accepts Docker down with an error", () => {
    const down = {
      ...valid,
      docker: { status: "down", error: "connect ENOENT /var/run/docker.sock" },
    };
    expect(HostSnapshot.safeParse(down).success).toBe(true);
  });

  it("accepts a snapshot from an agent that has read no event yet", () => {
    const { lastEventTimeNano: _omit, ...fresh } = valid;
    expect(HostSnapshot.parse(fresh)).toEqual(fresh);
  });

  it.each([
    ["seq 0", { seq: 0 }],
    ["heartbeat 0", { heartbeatMs: 0 }],
    ["docker status unknown", { docker: { status: "sleeping" } }],
    ["dotted host", { host: "host.example" }],
    ["no outbox", { outbox: undefined }],
    ["outbox capacity 0", { outbox: { ...valid.outbox, capacity: 0 } }],
    ["negative outbox depth", { outbox: { ...valid.outbox, depth: -1 } }],
    ["fractional dropped count", { outbox: { ...valid.outbox, dropped: 0.5 } }],
    ["no uptime", { agent: { ...valid.agent, uptimeSeconds: undefined } }],
    ["negative uptime", { agent: { ...valid.agent, uptimeSeconds: -1 } }],
    ["lastEventTimeNano with a dot", { lastEventTimeNano: "1795808494.172958659" }],
    ["numeric lastEventTimeNano", { lastEventTimeNano: 1795808494172958 }],
  ])("rejects %s", (_why, patch) => {
    expect(HostSnapshot.safeParse({ ...valid, ...patch }).success).toBe(false);
  });

  it.each([
    ["unknown state", { state: "zombie" }],
    ["unknown health", { health: "sick" }],
    ["negative restartCount", { restartCount: -1 }],
    ["bad startedAt", { startedAt: "0" }],
    ["no failingStreak", { failingStreak: undefined }],
    ["negative failingStreak", { failingStreak: -1 }],
    ["no healthSource", { healthSource: undefined }],
    ["unknown healthSource", { healthSource: "gateway" }],
    ["fractional exit code", { exitCode: 1.5 }],
    ["health output too long", { lastHealthOutput: "x".repeat(1025) }],
    ["unknown probe kind", { probe: { kind: "grpc", target: ":9090" } }],
    ["probe error too long", { probe: { kind: "tcp", target: "x", error: "x".repeat(513) } }],
    ["compose without service", { compose: { project: "shop" } }],
  ])("rejects a container with %s", (_why, patch) => {
    const [first, ...rest] = valid.containers;
    const broken = { ...valid, containers: [{ ...first, ...patch }, ...rest] };
    const result = HostSnapshot.safeParse(broken);
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.path.slice(0, 2)).toEqual(["containers", 0]);
  });
});
