import { describe, expect, it } from "vitest";
import { HostSnapshot } from "../contracts/index.js";
import type { ContainerDetails } from "./docker-engine.js";
import { type AgentIdentity, HostState } from "./host-state.js";

const identity: AgentIdentity = {
  host: "host-a",
  version: "0.1.0",
  startedAt: "2026-11-27T18:00:00.000Z",
  heartbeatMs: 5000,
  optIn: { label: "autoheal", watchAll: false },
};

function details(
  id: string,
  name: string,
  patch: Partial<ContainerDetails> = {},
): ContainerDetails {
  return {
    id,
    name,
    image: "nginx:1.27",
    state: "running",
    health: "healthy",
    labels: { autoheal: "true" },
    startedAt: "2026-11-27T19:41:29.98123456Z",
    restartCount: 0,
    ...patch,
  };
}

const A = "aaaaaaaaaaaa";
const B = "bbbbbbbbbbbb";
const C = "cccccccccccc";
const NOW = new Date("2026-11-27T19:42:00.000Z");

describe("HostState.upsert", () => {
  it("reports new, unchanged and changed containers", () => {
    const state = new HostState(identity);
    expect(state.upsert(details(A, "web"))).toBe(true);
    expect(state.upsert(details(A, "web"))).toBe(false);
    expect(state.upsert(details(A, "web", { health: "unhealthy" }))).toBe(true);
    expect(state.upsert(details(A, "web", { health: "unhealthy" }))).toBe(false);
    expect(state.upsert(details(A, "web", { health: "unhealthy", labels: {} }))).toBe(true);
    expect(
      state.upsert(details(A, "web", { health: "unhealthy", labels: {}, restartCount: 1 })),
    ).toBe(true);
  });

  it("stores the opt-in judgement", () => {
    const state = new HostState(identity);
    state.upsert(details(A, "web"));
    state.upsert(details(B, "db", { labels: { autoheal: "false" } }));
    expect(state.get(A)?.optedIn).toBe(true);
    expect(state.get(B)?.optedIn).toBe(false);
    expect(state.get(C)).toBeUndefined();
  });

  it("remove and retainOnly report whether anything went", () => {
    const state = new HostState(identity);
    state.upsert(details(A, "a"));
    state.upsert(details(B, "b"));
    state.upsert(details(C, "c"));
    expect(state.remove(A)).toBe(true);
    expect(state.remove(A)).toBe(false);
    expect(state.retainOnly(new Set([B, C]))).toBe(false);
    expect(state.retainOnly(new Set([C]))).toBe(true);
    expect(state.snapshot(NOW).containers.map((c) => c.id)).toEqual([C]);
  });
});

describe("HostState.snapshot", () => {
  it("numbers snapshots, sorts containers by name and computes optedIn", () => {
    const state = new HostState(identity);
    state.setDockerUp("20.10.24");
    state.upsert(details(A, "web"));
    state.upsert(details(B, "api", { labels: {} }));
    state.upsert(details(C, "cache"));
    const first = state.snapshot(NOW);
    expect(HostSnapshot.parse(first)).toEqual(first);
    expect(first).toMatchObject({
      type: "fleetheal.snapshot.v1.host",
      v: 1,
      host: "host-a",
      seq: 1,
      at: "2026-11-27T19:42:00.000Z",
      heartbeatMs: 5000,
      agent: {
        version: "0.1.0",
        startedAt: "2026-11-27T18:00:00.000Z",
        label: "autoheal",
        watchAll: false,
      },
      docker: { status: "up", version: "20.10.24" },
    });
    expect(first.containers.map((c) => [c.name, c.optedIn])).toEqual([
      ["api", false],
      ["cache", true],
      ["web", true],
    ]);
    expect(state.snapshot(NOW).seq).toBe(2);
    expect(state.snapshot(NOW).seq).toBe(3);
  });

  it("with watchAll every container is opted in", () => {
    const state = new HostState({ ...identity, optIn: { label: "all", watchAll: true } });
    state.upsert(details(A, "web", { labels: {} }));
    const snap = state.snapshot(NOW);
    expect(snap.containers[0]?.optedIn).toBe(true);
    expect(snap.agent).toMatchObject({ label: "all", watchAll: true });
  });

  it("a snapshot is a copy: later changes do not alter it", () => {
    const state = new HostState(identity);
    state.setDockerUp("20.10.24");
    const snap = state.snapshot(NOW);
    state.setDockerDown("gone");
    state.upsert(details(A, "web"));
    expect(snap.docker).toEqual({ status: "up", version: "20.10.24" });
    expect(snap.containers).toEqual([]);
  });
});

describe("HostState docker status", () => {
  it("starts down, not connected yet", () => {
    const state = new HostState(identity);
    expect(state.dockerUp).toBe(false);
    expect(state.snapshot(NOW).docker).toEqual({ status: "down", error: "not connected yet" });
  });

  it("setDockerUp/Down report changes", () => {
    const state = new HostState(identity);
    expect(state.setDockerUp("20.10.24")).toBe(true);
    expect(state.dockerUp).toBe(true);
    expect(state.setDockerUp("20.10.24")).toBe(false);
    expect(state.setDockerUp("24.0.7")).toBe(true);
    expect(state.setDockerDown("connect ENOENT /var/run/docker.sock")).toBe(true);
    expect(state.dockerUp).toBe(false);
    // Keeps the last known version next to the error.
    expect(state.snapshot(NOW).docker).toEqual({
      status: "down",
      version: "24.0.7",
      error: "connect ENOENT /var/run/docker.sock",
    });
    // A new reason is news (the snapshot shows it); the same reason again is not.
    expect(state.setDockerDown("still down")).toBe(true);
    expect(state.setDockerDown("still down")).toBe(false);
    expect(state.setDockerUp("24.0.7")).toBe(true);
    expect(state.snapshot(NOW).docker).toEqual({ status: "up", version: "24.0.7" });
  });

  it("truncates a long error to fit the schema", () => {
    const state = new HostState(identity);
    state.setDockerDown("x".repeat(5000));
    const snap = state.snapshot(NOW);
    expect(snap.docker.error).toHaveLength(1024);
    expect(HostSnapshot.safeParse(snap).success).toBe(true);
  });
});
