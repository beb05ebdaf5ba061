import { pino } from "pino";
import { describe, expect, it } from "vitest";
import type { ContainerAction, HealthStatus, HostSnapshot } from "../contracts/index.js";
import { MemoryDocker } from "../test/support/agent-memory-ports.js";
import type { ContainerDetails } from "./docker-engine.js";
import { HostState } from "./host-state.js";
import { Reconciler } from "./reconciler.js";
import { RefreshCoalescer } from "./refresh-coalescer.js";

const A = "a1".repeat(32);
const B = "b2".repeat(32);
const NOW = new Date("2026-11-27T20:00:00.000Z");
/** When the previous run took its last snapshot. */
const BASELINE_AT = "2026-11-27T19:30:00.000Z";
const BEFORE_BASELINE = "2026-11-27T19:00:00.000Z";
const AFTER_BASELINE = "2026-11-27T19:45:00.000Z";

const web: ContainerDetails = {
  id: A,
  name: "web",
  image: "nginx:1.27",
  state: "running",
  health: "healthy",
  labels: { autoheal: "true" },
  startedAt: BEFORE_BASELINE,
  restartCount: 0,
  failingStreak: 0,
  hasHealthcheck: true,
  ipAddresses: [],
};

/** The previous run's snapshot, as far as the reconciler reads it. */
function previousRun(containers: ContainerDetails[]): HostSnapshot {
  return {
    at: BASELINE_AT,
    containers: containers.map((c) => ({ ...c, optedIn: true, healthSource: "docker" })),
  } as unknown as HostSnapshot;
}

/**
 * A reconciler wired as the agent wires it, on the in-memory Docker: each synthetic event is
 * recorded and noted as forwarded, as the agent's publish does.
 */
function setup(containers: ContainerDetails[], previous?: ContainerDetails[]) {
  const docker = new MemoryDocker();
  docker.add(...containers);
  const log = pino({ level: "silent" });
  const state = new HostState({
    host: "host-a",
    version: "0.0.0",
    startedAt: NOW,
    heartbeatMs: 60_000,
    optIn: { label: "autoheal", watchAll: false },
    commandKeys: [],
    acceptsUnsignedCommands: false,
  });
  const synthesized: string[] = [];
  /** Per synthetic `unhealthy` (reconcile or resync), the unhealthySince it carried. */
  const since: (string | undefined)[] = [];
  const queued = new Set<string>();
  const stale = new Set<string>();
  const probeHealth = new Map<string, HealthStatus>();
  const budget = { value: 256 };
  let clock = NOW;
  const counts = { started: 0, finished: 0, forgotten: [] as string[] };
  const refresher = new RefreshCoalescer({
    docker,
    log,
    apply: (id, details) => {
      if (!details) state.remove(id);
      else {
        state.upsert(details);
        reconciler.inspected(details);
      }
    },
  });
  const reconciler: Reconciler = new Reconciler({
    docker,
    state,
    refresh: (id) => refresher.refresh(id),
    hasQueuedEventFor: (id) => queued.has(id),
    // As the translator does: the event's unhealthySince, then noted as forwarded.
    synthesize: (id: string, action: ContainerAction, source) => {
      synthesized.push(`${source === "resync" ? "resync " : ""}${action} ${id.slice(0, 2)}`);
      const known = state.get(id) ?? reconciler.told(id);
      const unhealthySince =
        action === "unhealthy"
          ? reconciler.unhealthySince(id, clock.toISOString(), source === "resync")
          : undefined;
      if (action === "unhealthy") since.push(unhealthySince);
      reconciler.note(
        id,
        action,
        {
          name: known?.name ?? "",
          image: known?.image ?? "",
          imageId: known?.imageId,
          labels: known?.labels ?? {},
          startedAt: known?.startedAt,
        },
        unhealthySince,
      );
    },
    healthOf: (details) => probeHealth.get(details.id) ?? details.health,
    current: (id) => !stale.has(id),
    resyncBudget: () => budget.value,
    forget: (id) => counts.forgotten.push(id.slice(0, 2)),
    changed: () => {},
    started: () => counts.started++,
    finished: () => counts.finished++,
    log,
    now: () => clock,
  });
  const at = (date: Date) => {
    clock = date;
  };
  if (previous) reconciler.resume(previousRun(previous));
  return {
    docker,
    state,
    reconciler,
    synthesized,
    since,
    queued,
    stale,
    probeHealth,
    budget,
    at,
    counts,
  };
}

describe("Reconciler", () => {
  it("without a baseline reports only what is unhealthy, then only re-asserts it", async () => {
    const r = setup([web, { ...web, id: B, name: "api", health: "unhealthy" }]);
    await r.reconciler.request();
    expect(r.synthesized).toEqual(["unhealthy b2"]);
    await r.reconciler.request();
    expect(r.synthesized).toEqual(["unhealthy b2", "resync unhealthy b2"]);
    expect(r.counts).toMatchObject({ started: 2, finished: 2 });
  });

  it("against the previous run's snapshot reports the transitions nobody heard of", async () => {
    const r = setup(
      [{ ...web, health: "unhealthy" }],
      [web, { ...web, id: B, name: "api", state: "exited", health: "none" }],
    );
    await r.reconciler.request();
    expect(r.synthesized).toEqual(["destroy b2", "unhealthy a1"]);
    expect(r.reconciler.told(B)).toBeUndefined();
    expect(r.reconciler.told(A)).toMatchObject({ running: true, health: "unhealthy" });
  });

  it("a restart while away is a start; a container new since the baseline starts only if it started after it", async () => {
    const r = setup(
      [
        { ...web, startedAt: AFTER_BASELINE },
        { ...web, id: B, name: "api", startedAt: BEFORE_BASELINE },
      ],
      [web],
    );
    await r.reconciler.request();
    expect(r.synthesized).toEqual(["start a1", "healthy a1"]);
    expect(r.reconciler.told(A)?.startedAt).toBe(AFTER_BASELINE);
  });

  it("leaves a container alone while Docker is reporting on it", async () => {
    const r = setup([
      { ...web, health: "unhealthy" },
      { ...web, id: B, health: "unhealthy" },
    ]);
    r.queued.add(B);
    const reconciled = r.reconciler.request();
    r.reconciler.touch(A);
    await reconciled;
    expect(r.synthesized).toEqual([]);
  });

  it("runs one reconcile at a time: requests during one coalesce into one more", async () => {
    const r = setup([web]);
    const first = r.reconciler.request();
    const second = r.reconciler.request();
    const third = r.reconciler.request();
    expect(second).toBe(third);
    await Promise.all([first, second, third]);
    expect(r.counts.started).toBe(2);
    expect(r.docker.calls.filter((c) => c === "list")).toHaveLength(2);
  });

  it("drops containers Docker no longer lists, and a failed reconcile still finishes", async () => {
    const r = setup([web, { ...web, id: B }]);
    await r.reconciler.request();
    r.docker.containers.delete(B);
    await r.reconciler.request();
    expect(r.state.ids()).toEqual([A]);
    expect(r.counts.forgotten).toEqual(["b2"]);
    r.docker.version = async () => {
      throw new Error("Docker is down");
    };
    await r.reconciler.request();
    expect(r.counts).toMatchObject({ started: 3, finished: 3 });
  });

  it("fills in a new run's StartedAt from its first inspect", async () => {
    const r = setup([web], [web]);
    r.reconciler.note(A, "start", {
      name: "web",
      image: "nginx:1.27",
      imageId: undefined,
      labels: {},
      startedAt: undefined,
    });
    r.reconciler.inspected({ ...web, startedAt: AFTER_BASELINE });
    expect(r.reconciler.told(A)).toMatchObject({ running: true, startedAt: AFTER_BASELINE });
  });

  describe("resync", () => {
    const C = "c3".repeat(32);
    const D = "d4".repeat(32);
    const E = "e5".repeat(32);
    const sick = (id: string, more: Partial<ContainerDetails> = {}): ContainerDetails => ({
      ...web,
      id,
      name: id.slice(0, 2),
      health: "unhealthy",
      ...more,
    });

    it("re-asserts only opted-in, running, current containers judged unhealthy", async () => {
      const r = setup([
        sick(A),
        sick(B, { labels: {} }),
        sick(C, { state: "paused" }),
        sick(D),
        { ...web, id: E, health: "none", hasHealthcheck: false },
      ]);
      await r.reconciler.request();
      // A reconcile reports every transition; only re-assertions look at who opted in.
      expect(r.synthesized).toEqual([
        "unhealthy a1",
        "unhealthy b2",
        "unhealthy c3",
        "unhealthy d4",
      ]);
      r.stale.add(D);
      // A label probe judges E, which has no HEALTHCHECK.
      r.probeHealth.set(E, "unhealthy");
      await r.reconciler.request();
      expect(r.synthesized.slice(4)).toEqual(["resync unhealthy a1", "resync unhealthy e5"]);
    });

    it("leaves alone what Docker is reporting on and what this reconcile reported", async () => {
      const r = setup([sick(A), sick(B)]);
      await r.reconciler.request();
      r.queued.add(A);
      const reconciled = r.reconciler.request();
      r.reconciler.touch(B);
      await reconciled;
      expect(r.synthesized).toEqual(["unhealthy a1", "unhealthy b2"]);
    });

    it("carries since when subscribers know it unhealthy, and forgets it once healthy", async () => {
      const r = setup([sick(A)]);
      await r.reconciler.request();
      const first = NOW.toISOString();
      r.at(new Date(NOW.getTime() + 60_000));
      await r.reconciler.request();
      expect(r.reconciler.told(A)?.unhealthySince).toBe(first);
      r.docker.add({ ...web, health: "healthy" });
      await r.reconciler.request();
      expect(r.reconciler.told(A)?.unhealthySince).toBeUndefined();
      r.at(new Date(NOW.getTime() + 120_000));
      r.docker.add(sick(A));
      await r.reconciler.request();
      await r.reconciler.request();
      const again = new Date(NOW.getTime() + 120_000).toISOString();
      expect(r.synthesized).toEqual([
        "unhealthy a1",
        "resync unhealthy a1",
        "healthy a1",
        "unhealthy a1",
        "resync unhealthy a1",
      ]);
      expect(r.since).toEqual([first, first, again, again]);
    });

    it("a new run starts a new since", async () => {
      const r = setup([sick(A)]);
      await r.reconciler.request();
      r.at(new Date(NOW.getTime() + 60_000));
      r.docker.add(sick(A, { startedAt: AFTER_BASELINE }));
      await r.reconciler.request();
      expect(r.synthesized).toEqual(["unhealthy a1", "start a1", "unhealthy a1"]);
      expect(r.since).toEqual([NOW.toISOString(), new Date(NOW.getTime() + 60_000).toISOString()]);
    });

    it("after an agent restart re-asserts without a since it cannot know", async () => {
      const r = setup([sick(A)], [sick(A)]);
      await r.reconciler.request();
      expect(r.synthesized).toEqual(["resync unhealthy a1"]);
      expect(r.since).toEqual([undefined]);
      expect(r.reconciler.told(A)?.unhealthySince).toBeUndefined();
    });

    it("stays within the budget and takes turns, so every container comes within a few passes", async () => {
      const ids = [A, B, C, D, E];
      const r = setup(ids.map((id) => sick(id)));
      await r.reconciler.request();
      r.synthesized.length = 0;
      r.budget.value = 2;
      const passes: string[][] = [];
      for (let i = 0; i < 3; i++) {
        await r.reconciler.request();
        passes.push(r.synthesized.splice(0).map((e) => e.slice(-2)));
      }
      expect(passes).toEqual([
        ["a1", "b2"],
        ["c3", "d4"],
        ["e5", "a1"],
      ]);
      r.budget.value = 0;
      await r.reconciler.request();
      expect(r.synthesized).toEqual([]);
    });
  });
});
