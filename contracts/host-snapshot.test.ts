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
  },
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

  it.each([
    ["seq 0", { seq: 0 }],
    ["heartbeat 0", { heartbeatMs: 0 }],
    ["docker status unknown", { docker: { status: "sleeping" } }],
    ["dotted host", { host: "host.example" }],
  ])("rejects %s", (_why, patch) => {
    expect(HostSnapshot.safeParse({ ...valid, ...patch }).success).toBe(false);
  });

  it.each([
    ["unknown state", { state: "zombie" }],
    ["unknown health", { health: "sick" }],
    ["negative restartCount", { restartCount: -1 }],
    ["bad startedAt", { startedAt: "0" }],
  ])("rejects a container with %s", (_why, patch) => {
    const [first, ...rest] = valid.containers;
    const broken = { ...valid, containers: [{ ...first, ...patch }, ...rest] };
    const result = HostSnapshot.safeParse(broken);
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.path.slice(0, 2)).toEqual(["containers", 0]);
  });
});
