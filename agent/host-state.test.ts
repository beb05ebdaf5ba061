import { describe, expect, it } from "vitest";
import { ContainerSnapshot, HostSnapshot } from "../contracts/index.js";
import type { ContainerDetails } from "./docker-engine.js";
import { type AgentIdentity, HostState, type SnapshotExtras } from "./host-state.js";
import type { ProbeView } from "./probes/prober.js";

const identity: AgentIdentity = {
  host: "host-a",
  version: "0.1.0",
  startedAt: new Date("2026-11-27T18:00:00.000Z"),
  heartbeatMs: 5000,
  optIn: { label: "autoheal", watchAll: false },
  commandKeys: ["OKEYAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"],
  acceptsUnsignedCommands: false,
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
    failingStreak: 0,
    hasHealthcheck: true,
    ipAddresses: ["172.17.0.2"],
    ...patch,
  };
}

const A = "aaaaaaaaaaaa";
const B = "bbbbbbbbbbbb";
const C = "cccccccccccc";
const NOW = new Date("2026-11-27T19:42:00.000Z");

const OUTBOX = { depth: 0, capacity: 10_000, published: 0, dropped: 0 };
const REFUSALS = {
  refused: { unsigned: 2, expired: 1 },
  malformed: { restart: 1 },
  last: "expired: expired at 2026-11-27T19:00:00.000Z",
};

const COUNTERS = { reconciles: 3, probeResults: { pass: 5, fail: 1, error: 0, refused: 2 } };

/** Extras with nothing to add: an empty outbox, no event yet, no probes. */
function extras(patch: Partial<SnapshotExtras> = {}): SnapshotExtras {
  return {
    outbox: OUTBOX,
    lastEventTimeNano: undefined,
    probe: () => undefined,
    commandRefusals: REFUSALS,
    counters: COUNTERS,
    ...patch,
  };
}

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

  it("stores the details and judges opt-in from their labels", () => {
    const state = new HostState(identity);
    state.upsert(details(A, "web"));
    state.upsert(details(B, "db", { labels: { autoheal: "false" } }));
    const a = state.get(A);
    const b = state.get(B);
    expect(a).toEqual(details(A, "web"));
    expect(a && state.optedIn(a)).toBe(true);
    expect(b && state.optedIn(b)).toBe(false);
    expect(state.optedIn({ labels: { autoheal: "TRUE" } })).toBe(true);
    expect(state.optedIn({ labels: { autoheal: "yes" } })).toBe(false);
    expect(state.get(C)).toBeUndefined();
    expect(state.ids().sort()).toEqual([A, B]);
  });

  it("remove reports whether anything went; retainOnly returns the ids dropped", () => {
    const state = new HostState(identity);
    state.upsert(details(A, "a"));
    state.upsert(details(B, "b"));
    state.upsert(details(C, "c"));
    expect(state.remove(A)).toBe(true);
    expect(state.remove(A)).toBe(false);
    expect(state.retainOnly(new Set([B, C]))).toEqual([]);
    expect(state.retainOnly(new Set([C, A]))).toEqual([B]);
    expect(state.snapshot(NOW, extras()).containers.map((c) => c.id)).toEqual([C]);
  });
});

describe("HostState.snapshot", () => {
  it("numbers snapshots, sorts containers by name and computes optedIn", () => {
    const state = new HostState(identity);
    state.setDockerUp("20.10.24");
    state.upsert(details(A, "web"));
    state.upsert(details(B, "api", { labels: {} }));
    state.upsert(details(C, "cache"));
    const first = state.snapshot(NOW, extras());
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
        uptimeSeconds: 6120,
        commandKeys: identity.commandKeys,
        acceptsUnsignedCommands: false,
        commandRefusals: REFUSALS,
        counters: COUNTERS,
      },
      outbox: OUTBOX,
      docker: { status: "up", version: "20.10.24" },
    });
    expect(first).not.toHaveProperty("lastEventTimeNano");
    expect(first.containers.map((c) => [c.name, c.optedIn])).toEqual([
      ["api", false],
      ["cache", true],
      ["web", true],
    ]);
    expect(state.snapshot(NOW, extras()).seq).toBe(2);
    expect(state.snapshot(NOW, extras()).seq).toBe(3);
  });

  it("with watchAll every container is opted in", () => {
    const state = new HostState({ ...identity, optIn: { label: "all", watchAll: true } });
    state.upsert(details(A, "web", { labels: {} }));
    const snap = state.snapshot(NOW, extras());
    expect(snap.containers[0]?.optedIn).toBe(true);
    expect(snap.agent).toMatchObject({ label: "all", watchAll: true });
  });

  it("with watchAll a container labelled autoheal=False is left out, and shows why", () => {
    const state = new HostState({ ...identity, optIn: { label: "all", watchAll: true } });
    state.upsert(details(A, "web", { labels: { autoheal: "False", secret: "x" } }));
    state.upsert(details(B, "db", { labels: {} }));
    const snap = state.snapshot(NOW, extras());
    expect(snap.containers.map((c) => [c.name, c.optedIn, c.labels])).toEqual([
      ["db", true, {}],
      ["web", false, { autoheal: "False" }],
    ]);
  });

  it("a snapshot is a copy: later changes do not alter it", () => {
    const state = new HostState(identity);
    state.setDockerUp("20.10.24");
    const snap = state.snapshot(NOW, extras());
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
    expect(state.snapshot(NOW, extras()).docker).toEqual({
      status: "down",
      error: "not connected yet",
    });
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
    expect(state.snapshot(NOW, extras()).docker).toEqual({
      status: "down",
      version: "24.0.7",
      error: "connect ENOENT /var/run/docker.sock",
    });
    // A new reason is news (the snapshot shows it); the same reason again is not.
    expect(state.setDockerDown("still down")).toBe(true);
    expect(state.setDockerDown("still down")).toBe(false);
    expect(state.setDockerUp("24.0.7")).toBe(true);
    expect(state.snapshot(NOW, extras()).docker).toEqual({ status: "up", version: "24.0.7" });
  });

  it("truncates a long error to fit the schema", () => {
    const state = new HostState(identity);
    state.setDockerDown("x".repeat(5000));
    const snap = state.snapshot(NOW, extras());
    expect(snap.docker.error).toHaveLength(1024);
    expect(HostSnapshot.safeParse(snap).success).toBe(true);
  });
});

describe("HostState.snapshot extras", () => {
  it("copies the outbox figures and the last event's timeNano", () => {
    const state = new HostState(identity);
    const outbox = { depth: 3, capacity: 500, published: 41, dropped: 2 };
    const snap = state.snapshot(NOW, extras({ outbox, lastEventTimeNano: "1795808489981234567" }));
    expect(HostSnapshot.parse(snap)).toEqual(snap);
    expect(snap.outbox).toEqual(outbox);
    expect(snap.lastEventTimeNano).toBe("1795808489981234567");
  });

  it("uptime is whole seconds since the agent started, never negative", () => {
    const state = new HostState(identity);
    const at = (iso: string) => state.snapshot(new Date(iso), extras()).agent.uptimeSeconds;
    expect(at("2026-11-27T18:00:00.000Z")).toBe(0);
    expect(at("2026-11-27T18:00:01.999Z")).toBe(1);
    // A clock that stepped back must not produce an invalid snapshot.
    expect(at("2026-11-27T17:59:00.000Z")).toBe(0);
  });

  it("asks the probe view of each container by id", () => {
    const state = new HostState(identity);
    state.upsert(details(A, "web"));
    state.upsert(details(B, "db"));
    const asked: string[] = [];
    state.snapshot(
      NOW,
      extras({
        probe: (id) => {
          asked.push(id);
          return undefined;
        },
      }),
    );
    expect(asked.sort()).toEqual([A, B]);
  });
});

describe("HostState.containerSnapshot", () => {
  const state = new HostState(identity);

  it("publishes only relevant labels and leaves out the engine-only fields", () => {
    const snap = state.containerSnapshot(
      details(A, "web", {
        labels: {
          autoheal: "true",
          "autoheal.stop.timeout": "20",
          "com.docker.compose.project": "shop",
          "com.docker.compose.service": "web",
          DB_PASSWORD: "hunter2",
          "org.opencontainers.image.source": "https://git.internal/web",
        },
        compose: { project: "shop", service: "web" },
        networkMode: "shop_default",
        lastHealthOutput: "ok",
        failingStreak: 0,
      }),
      undefined,
    );
    expect(ContainerSnapshot.parse(snap)).toEqual(snap);
    expect(snap).toEqual({
      id: A,
      name: "web",
      image: "nginx:1.27",
      state: "running",
      health: "healthy",
      optedIn: true,
      labels: {
        autoheal: "true",
        "autoheal.stop.timeout": "20",
        "com.docker.compose.project": "shop",
        "com.docker.compose.service": "web",
      },
      startedAt: "2026-11-27T19:41:29.98123456Z",
      restartCount: 0,
      failingStreak: 0,
      lastHealthOutput: "ok",
      healthSource: "docker",
      networkMode: "shop_default",
      compose: { project: "shop", service: "web" },
    });
  });

  it("the opt-in judgement uses every label, even though few are published", () => {
    const custom = new HostState({
      ...identity,
      optIn: { label: "com.example.heal", watchAll: false },
    });
    const snap = custom.containerSnapshot(
      details(A, "web", { labels: { "com.example.heal": "true", secret: "x" } }),
      undefined,
    );
    expect(snap.optedIn).toBe(true);
    expect(snap.labels).toEqual({ "com.example.heal": "true" });
  });

  it("healthSource is none without a Docker healthcheck or probe", () => {
    const snap = state.containerSnapshot(
      details(A, "web", { hasHealthcheck: false, health: "none" }),
      undefined,
    );
    expect(snap.healthSource).toBe("none");
    expect(snap.health).toBe("none");
    expect(snap).not.toHaveProperty("probe");
  });

  it("a stopped container keeps its exit code", () => {
    const snap = state.containerSnapshot(
      details(A, "web", { state: "exited", health: "none", exitCode: 137 }),
      undefined,
    );
    expect(snap).toMatchObject({ state: "exited", health: "none", exitCode: 137 });
    expect(ContainerSnapshot.safeParse(snap).success).toBe(true);
  });
});

describe("HostState probe overlay", () => {
  const state = new HostState(identity);
  const view: ProbeView = {
    probe: { kind: "http", target: ":8080/healthz" },
    health: "unhealthy",
    failingStreak: 4,
    lastOutput: "HTTP 503",
  };
  const noHealthcheck = (patch: Partial<ContainerDetails> = {}) =>
    details(A, "web", { hasHealthcheck: false, health: "none", ...patch });

  it("a running container without a Docker healthcheck takes health from the probe", () => {
    const snap = state.containerSnapshot(noHealthcheck(), view);
    expect(ContainerSnapshot.parse(snap)).toEqual(snap);
    expect(snap).toMatchObject({
      health: "unhealthy",
      healthSource: "probe",
      failingStreak: 4,
      lastHealthOutput: "HTTP 503",
      probe: { kind: "http", target: ":8080/healthz" },
    });
  });

  it("keeps no stale output when the probe has none", () => {
    const { lastOutput: _, ...withoutOutput } = view;
    const snap = state.containerSnapshot(noHealthcheck(), { ...withoutOutput, health: "starting" });
    expect(snap).toMatchObject({ health: "starting", healthSource: "probe", failingStreak: 4 });
    expect(snap).not.toHaveProperty("lastHealthOutput");
  });

  it("a Docker healthcheck wins: the probe view is ignored entirely", () => {
    const snap = state.containerSnapshot(
      details(A, "web", { health: "healthy", failingStreak: 0 }),
      view,
    );
    expect(snap).toMatchObject({ health: "healthy", healthSource: "docker", failingStreak: 0 });
    expect(snap).not.toHaveProperty("probe");
    expect(snap).not.toHaveProperty("lastHealthOutput");
  });

  it("a stopped container shows the probe but not its health", () => {
    const snap = state.containerSnapshot(noHealthcheck({ state: "exited", exitCode: 0 }), view);
    expect(snap).toMatchObject({
      state: "exited",
      health: "none",
      healthSource: "none",
      failingStreak: 0,
      probe: view.probe,
    });
    expect(ContainerSnapshot.safeParse(snap).success).toBe(true);
  });

  it("a probe that is not probing (bad labels) shows its error and no health", () => {
    const broken: ProbeView = {
      probe: { kind: "tcp", target: "abc", error: "autoheal.probe.tcp: not a port" },
      failingStreak: 0,
    };
    const snap = state.containerSnapshot(noHealthcheck(), broken);
    expect(snap).toMatchObject({ health: "none", healthSource: "none", probe: broken.probe });
    expect(ContainerSnapshot.safeParse(snap).success).toBe(true);
  });

  it("host snapshots overlay each container's probe view", () => {
    const host = new HostState(identity);
    host.upsert(noHealthcheck());
    host.upsert(details(B, "db"));
    const snap = host.snapshot(NOW, extras({ probe: (id) => (id === A ? view : undefined) }));
    expect(HostSnapshot.parse(snap)).toEqual(snap);
    expect(snap.containers.map((c) => [c.name, c.health, c.healthSource])).toEqual([
      ["db", "healthy", "docker"],
      ["web", "unhealthy", "probe"],
    ]);
  });
});

describe("HostState label limits", () => {
  const hostile = (): Record<string, string> => {
    const labels: Record<string, string> = { autoheal: "true", DB_PASSWORD: "hunter2" };
    for (let n = 0; n < 100; n++) labels[`autoheal.pad.${n}`] = "p".repeat(10_000);
    return labels;
  };

  it("publishes a container's labels within the limits, says what it cut, and stays valid", () => {
    const state = new HostState(identity);
    state.upsert(details(A, "huge", { labels: hostile() }));
    state.upsert(details(B, "plain"));
    const snap = HostSnapshot.parse(state.snapshot(NOW, extras()));
    const [huge, plain] = snap.containers;
    expect(huge?.labels.autoheal).toBe("true");
    expect(huge?.labels.DB_PASSWORD).toBeUndefined();
    // 16,384 characters hold the opt-in label and three 4,096-character pads.
    expect(huge?.labelsCut).toEqual({ truncated: 100, dropped: 97 });
    expect(plain?.labelsCut).toBeUndefined();
    // The opt-in judgement reads the full labels, not the published ones.
    expect(huge?.optedIn).toBe(true);
  });

  it("without labels, every container's published labels are counted as dropped", () => {
    const state = new HostState(identity);
    state.upsert(details(A, "huge", { labels: hostile() }));
    state.upsert(details(B, "plain"));
    const snap = HostSnapshot.parse(state.snapshot(NOW, extras(), true));
    expect(snap.containers.map((c) => [c.name, c.labels, c.labelsCut])).toEqual([
      ["huge", {}, { truncated: 0, dropped: 101 }],
      ["plain", {}, { truncated: 0, dropped: 1 }],
    ]);
    expect(snap.containers.every((c) => c.optedIn)).toBe(true);
  });
});
