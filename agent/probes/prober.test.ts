import { type AddressInfo, createServer } from "node:net";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Logger } from "../../common/logger.js";
import type { ContainerDetails, ExecResult } from "../docker-engine.js";
import type { ProbeAccess } from "./probe-access.js";
import { parseProbeAllow } from "./probe-allow.js";
import { HEALTHCHECK_WINS_ERROR, Prober, type ProbeView } from "./prober.js";

const P = "autoheal.probe.";

function probeLabels(values: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [P + k, v]));
}

function details(over: Partial<ContainerDetails> = {}): ContainerDetails {
  return {
    id: "c1",
    name: "web",
    image: "busybox",
    state: "running",
    health: "none",
    labels: { autoheal: "true", ...probeLabels({ exec: "check", interval: "1s", retries: "2" }) },
    startedAt: new Date(Date.now()).toISOString(),
    restartCount: 0,
    failingStreak: 0,
    hasHealthcheck: false,
    ipAddresses: [],
    networkMode: "none",
    ...over,
  };
}

/**
 * A Docker engine whose exec answers from `health` (per container): exit 0 when healthy, 1
 * otherwise; with `hold`, execs wait until released.
 */
function fakeDocker() {
  const calls: { id: string; cmd: string[]; timeoutMs: number; at: number }[] = [];
  const healthy = new Map<string, boolean>();
  const held: (() => void)[] = [];
  let hold = false;
  let broken = false;
  return {
    calls,
    healthy,
    hold: (on: boolean) => {
      hold = on;
    },
    /** Exec itself fails, as when dockerd goes away. */
    break: (on: boolean) => {
      broken = on;
    },
    release: () => {
      for (const r of held.splice(0)) r();
    },
    inFlight: () => held.length,
    exec: async (id: string, cmd: string[], timeoutMs: number): Promise<ExecResult> => {
      calls.push({ id, cmd, timeoutMs, at: Date.now() });
      if (hold) await new Promise<void>((resolve) => held.push(resolve));
      if (broken) throw new Error("dockerd went away");
      const ok = healthy.get(id) ?? true;
      return { exitCode: ok ? 0 : 1, output: ok ? "ok" : "not ok" };
    },
  };
}

function fakeLog() {
  const log = {
    error: vi.fn(),
    warn: vi.fn(),
    info: vi.fn(),
    debug: vi.fn(),
    trace: vi.fn(),
    fatal: vi.fn(),
  };
  return log;
}

function harness() {
  const docker = fakeDocker();
  const log = fakeLog();
  const transitions: [string, string, ProbeView][] = [];
  const changes: string[] = [];
  const prober = new Prober({
    docker,
    log: log as unknown as Logger,
    onTransition: (id, health, view) => transitions.push([id, health, view]),
    onChange: (id) => changes.push(id),
  });
  const health = (id = "c1") => prober.view(id)?.health;
  return { docker, log, transitions, changes, prober, health };
}

/** Lets timers up to `ms` from now fire, with the probes they start finishing in between. */
const advance = (ms: number) => vi.advanceTimersByTimeAsync(ms);

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(new Date("2026-11-27T10:00:00.000Z"));
});
afterEach(() => {
  vi.useRealTimers();
});

describe("Prober", () => {
  it("starts as starting and turns healthy on the first success, one interval in", async () => {
    const h = harness();
    h.prober.sync(details());
    expect(h.prober.view("c1")).toEqual({
      probe: { kind: "exec", target: "check" },
      health: "starting",
      failingStreak: 0,
    });
    expect(vi.getTimerCount()).toBe(1);
    await advance(999);
    expect(h.docker.calls).toHaveLength(0);
    await advance(1);
    expect(h.docker.calls).toEqual([
      { id: "c1", cmd: ["sh", "-c", "check"], timeoutMs: 10_000, at: Date.now() },
    ]);
    expect(h.prober.view("c1")).toEqual({
      probe: { kind: "exec", target: "check" },
      health: "healthy",
      failingStreak: 0,
      lastOutput: "ok",
    });
    expect(h.transitions.map(([id, health]) => [id, health])).toEqual([["c1", "healthy"]]);
    expect(h.transitions[0]?.[2]).toMatchObject({ health: "healthy", failingStreak: 0 });
    await h.prober.stop();
  });

  it("turns unhealthy after `retries` consecutive failures, and healthy again on a success", async () => {
    const h = harness();
    h.prober.sync(details());
    await advance(1_000);
    expect(h.health()).toBe("healthy");

    h.docker.healthy.set("c1", false);
    await advance(1_000);
    expect(h.prober.view("c1")).toMatchObject({
      health: "healthy",
      failingStreak: 1,
      lastOutput: "not ok",
    });
    await advance(1_000);
    expect(h.prober.view("c1")).toMatchObject({ health: "unhealthy", failingStreak: 2 });
    await advance(3_000);
    expect(h.prober.view("c1")).toMatchObject({ health: "unhealthy", failingStreak: 5 });

    h.docker.healthy.set("c1", true);
    await advance(1_000);
    expect(h.prober.view("c1")).toMatchObject({ health: "healthy", failingStreak: 0 });
    // Callbacks only on actual changes.
    expect(h.transitions.map(([, health]) => health)).toEqual(["healthy", "unhealthy", "healthy"]);
    expect(h.transitions[1]?.[2]).toMatchObject({ health: "unhealthy", failingStreak: 2 });
    await h.prober.stop();
  });

  it("can go from starting straight to unhealthy", async () => {
    const h = harness();
    h.docker.healthy.set("c1", false);
    h.prober.sync(details());
    await advance(1_000);
    expect(h.prober.view("c1")).toMatchObject({ health: "starting", failingStreak: 1 });
    await advance(1_000);
    expect(h.health()).toBe("unhealthy");
    expect(h.transitions.map(([, health]) => health)).toEqual(["unhealthy"]);
    await h.prober.stop();
  });

  it("ignores failures during the start period until the first success", async () => {
    const h = harness();
    h.docker.healthy.set("c1", false);
    const labels = probeLabels({ exec: "check", interval: "1s", retries: "1", start_period: "5s" });
    h.prober.sync(details({ labels }));
    await advance(4_000);
    expect(h.docker.calls).toHaveLength(4);
    expect(h.prober.view("c1")).toMatchObject({ health: "starting", failingStreak: 0 });
    // The probe started at 5s is past the start period: it counts.
    await advance(1_000);
    expect(h.prober.view("c1")).toMatchObject({ health: "unhealthy", failingStreak: 1 });
    expect(h.transitions.map(([, health]) => health)).toEqual(["unhealthy"]);
    await h.prober.stop();
  });

  it("counts failures in the start period once the container has been healthy", async () => {
    const h = harness();
    const labels = probeLabels({ exec: "check", interval: "1s", retries: "1", start_period: "1m" });
    h.prober.sync(details({ labels }));
    await advance(1_000);
    expect(h.health()).toBe("healthy");
    h.docker.healthy.set("c1", false);
    await advance(1_000);
    expect(h.health()).toBe("unhealthy");
    expect(h.transitions.map(([, health]) => health)).toEqual(["healthy", "unhealthy"]);
    await h.prober.stop();
  });

  it("measures the start period from the container's start, not from the first sync", async () => {
    const h = harness();
    h.docker.healthy.set("c1", false);
    const labels = probeLabels({ exec: "check", interval: "1s", retries: "1", start_period: "1m" });
    const startedAt = new Date(Date.now() - 120_000).toISOString();
    h.prober.sync(details({ labels, startedAt }));
    await advance(1_000);
    expect(h.health()).toBe("unhealthy");
    await h.prober.stop();
  });

  it("runs one probe at a time, the next one interval after the previous finished", async () => {
    const h = harness();
    h.docker.hold(true);
    h.prober.sync(details());
    await advance(1_000);
    expect(h.docker.calls).toHaveLength(1);
    // A slow probe: nothing else starts while it runs, and no timer is pending.
    await advance(5_000);
    expect(h.docker.calls).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(0);
    h.docker.release();
    await advance(0);
    expect(h.health()).toBe("healthy");
    await advance(999);
    expect(h.docker.calls).toHaveLength(1);
    await advance(1);
    expect(h.docker.calls.map((c) => c.at - Date.parse("2026-11-27T10:00:00.000Z"))).toEqual([
      1_000, 7_000,
    ]);
    h.docker.release();
    await h.prober.stop();
  });

  it("resets to starting on a new run (new startedAt), without a transition callback", async () => {
    const h = harness();
    h.docker.healthy.set("c1", false);
    h.prober.sync(details());
    await advance(2_000);
    expect(h.health()).toBe("unhealthy");

    h.docker.healthy.set("c1", true);
    h.prober.sync(details({ startedAt: new Date(Date.now()).toISOString() }));
    expect(h.prober.view("c1")).toEqual({
      probe: { kind: "exec", target: "check" },
      health: "starting",
      failingStreak: 0,
    });
    expect(h.transitions.map(([, health]) => health)).toEqual(["unhealthy"]);
    await advance(1_000);
    expect(h.health()).toBe("healthy");
    expect(h.transitions.map(([, health]) => health)).toEqual(["unhealthy", "healthy"]);
    await h.prober.stop();
  });

  it("drops the result of a probe still in flight when a new run starts", async () => {
    const h = harness();
    const labels = probeLabels({ exec: "check", interval: "1s", retries: "1" });
    h.prober.sync(details({ labels }));
    h.docker.hold(true);
    await advance(1_000);
    expect(h.docker.inFlight()).toBe(1);

    h.prober.sync(details({ labels, startedAt: new Date(Date.now()).toISOString() }));
    // The old probe is aborted; its "aborted" failure must not count for the new run.
    await advance(0);
    expect(h.prober.view("c1")).toMatchObject({ health: "starting", failingStreak: 0 });
    expect(h.transitions).toEqual([]);
    // Exactly one loop: the new run's.
    expect(vi.getTimerCount()).toBe(1);
    h.docker.hold(false);
    h.docker.release();
    await advance(1_000);
    expect(h.health()).toBe("healthy");
    expect(h.docker.calls).toHaveLength(2);
    // The aborted run is not counted.
    expect(h.prober.resultCounts()).toEqual({ pass: 1, fail: 0, error: 0, refused: 0 });
    await h.prober.stop();
  });

  it("counts each run by how it ended: pass, fail, or error when the probe could not run", async () => {
    const h = harness();
    h.prober.sync(details());
    await advance(1_000);
    h.docker.healthy.set("c1", false);
    await advance(1_000);
    h.docker.break(true);
    await advance(1_000);
    expect(h.prober.view("c1")?.lastOutput).toBe("exec failed: dockerd went away");
    expect(h.prober.resultCounts()).toEqual({ pass: 1, fail: 1, error: 1, refused: 0 });
    await h.prober.stop();
  });

  it("does nothing when synced again with the same details", async () => {
    const h = harness();
    const d = details();
    h.prober.sync(d);
    await advance(500);
    h.prober.sync(d);
    h.prober.sync({ ...d, restartCount: 3 });
    await advance(500);
    expect(h.docker.calls).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(1);
    await h.prober.stop();
  });

  it("reconfigures when the labels change, keeping the health of the run", async () => {
    const h = harness();
    const d = details();
    h.prober.sync(d);
    await advance(1_000);
    expect(h.health()).toBe("healthy");

    h.prober.sync({
      ...d,
      labels: probeLabels({ exec: "other-check", interval: "10s", timeout: "3s" }),
    });
    expect(h.prober.view("c1")).toMatchObject({
      probe: { kind: "exec", target: "other-check" },
      health: "healthy",
    });
    await advance(9_999);
    expect(h.docker.calls).toHaveLength(1);
    await advance(1);
    expect(h.docker.calls[1]).toMatchObject({ cmd: ["sh", "-c", "other-check"], timeoutMs: 3_000 });
    expect(h.transitions.map(([, health]) => health)).toEqual(["healthy"]);
    await h.prober.stop();
  });

  it("stops probing a paused or stopped container and resumes the same run after unpause", async () => {
    const h = harness();
    const d = details();
    h.prober.sync(d);
    await advance(1_000);
    expect(h.health()).toBe("healthy");

    h.prober.sync({ ...d, state: "paused" });
    expect(vi.getTimerCount()).toBe(0);
    expect(h.prober.view("c1")).toEqual({
      probe: { kind: "exec", target: "check" },
      failingStreak: 0,
      lastOutput: "ok",
    });
    await advance(10_000);
    expect(h.docker.calls).toHaveLength(1);

    h.prober.sync(d);
    expect(h.health()).toBe("healthy");
    await advance(1_000);
    expect(h.docker.calls).toHaveLength(2);

    h.prober.sync({ ...d, state: "exited" });
    expect(vi.getTimerCount()).toBe(0);
    expect(h.health()).toBeUndefined();
    expect(h.transitions.map(([, health]) => health)).toEqual(["healthy"]);
    await h.prober.stop();
  });

  it("does not probe a container that never ran or is restarting", async () => {
    const h = harness();
    const { startedAt: _, ...created } = details({ state: "created" });
    h.prober.sync(created);
    h.prober.sync(details({ id: "c2", state: "restarting" }));
    expect(vi.getTimerCount()).toBe(0);
    expect(h.prober.view("c1")).toEqual({
      probe: { kind: "exec", target: "check" },
      failingStreak: 0,
    });
    expect(h.prober.view("c2")?.health).toBeUndefined();
    await h.prober.stop();
  });

  it("leaves a container with a Docker HEALTHCHECK to Docker, warning once", async () => {
    const h = harness();
    const d = details({ hasHealthcheck: true });
    h.prober.sync(d);
    h.prober.sync(d);
    h.prober.sync({ ...d, state: "paused" });
    h.prober.sync(d);
    expect(vi.getTimerCount()).toBe(0);
    expect(h.log.warn).toHaveBeenCalledTimes(1);
    expect(h.log.warn.mock.calls[0]?.[1]).toContain("HEALTHCHECK");
    expect(h.prober.view("c1")).toEqual({
      probe: { kind: "exec", target: "check", error: HEALTHCHECK_WINS_ERROR },
      failingStreak: 0,
    });
    await advance(10_000);
    expect(h.docker.calls).toHaveLength(0);
    await h.prober.stop();
  });

  it("reports invalid labels once per distinct values, does not probe, and spares the others", async () => {
    const h = harness();
    const bad = details({
      id: "bad",
      name: "bad",
      labels: probeLabels({ tcp: ":99999", interval: "soon" }),
    });
    const good = details({ id: "good", name: "good" });
    h.prober.sync(bad);
    h.prober.sync(good);
    h.prober.sync(bad);
    h.prober.sync({ ...bad, state: "exited" });
    h.prober.sync(bad);
    expect(h.log.error).toHaveBeenCalledTimes(1);
    const [fields, message] = h.log.error.mock.calls[0] ?? [];
    expect(fields).toMatchObject({ containerId: "bad", name: "bad" });
    expect(message).toContain('autoheal.probe.tcp=":99999"');
    expect(message).toContain('autoheal.probe.interval="soon"');
    const view = h.prober.view("bad");
    expect(view).toMatchObject({ probe: { kind: "tcp", target: ":99999" }, failingStreak: 0 });
    expect(view?.health).toBeUndefined();
    expect(view?.probe.error).toContain("autoheal.probe.tcp");

    // Different values: logged again.
    h.prober.sync({ ...bad, labels: probeLabels({ tcp: ":99999" }) });
    expect(h.log.error).toHaveBeenCalledTimes(2);

    await advance(1_000);
    expect(h.docker.calls.map((c) => c.id)).toEqual(["good"]);
    expect(h.health("good")).toBe("healthy");

    // Fixed labels: the probe starts, as on a new run.
    h.prober.sync({ ...bad, labels: probeLabels({ exec: "fixed", interval: "1s" }) });
    expect(h.prober.view("bad")).toEqual({
      probe: { kind: "exec", target: "fixed" },
      health: "starting",
      failingStreak: 0,
    });
    await advance(1_000);
    expect(h.health("bad")).toBe("healthy");
    await h.prober.stop();
  });

  it("reports labels naming no kind with an explanation", () => {
    const h = harness();
    h.prober.sync(details({ labels: probeLabels({ interval: "10s" }) }));
    expect(h.prober.view("c1")?.probe.error).toContain("no probe kind");
    expect(vi.getTimerCount()).toBe(0);
  });

  it("reports a port-only probe of a container without an address as a configuration error", () => {
    const h = harness();
    h.prober.sync(details({ labels: probeLabels({ tcp: ":8080" }), networkMode: "none" }));
    const view = h.prober.view("c1");
    expect(view?.probe.error).toContain("no address to probe: give host:port");
    expect(view?.health).toBeUndefined();
    expect(h.log.error).toHaveBeenCalledTimes(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("stops probing when the probe labels go away", async () => {
    const h = harness();
    const d = details();
    h.prober.sync(d);
    h.prober.sync({ ...d, labels: { autoheal: "true" } });
    expect(h.prober.view("c1")).toBeUndefined();
    expect(vi.getTimerCount()).toBe(0);
    await h.prober.stop();
  });

  it("runs no timers at all when no container is probed", () => {
    const h = harness();
    h.prober.sync(details({ labels: { autoheal: "true" } }));
    h.prober.sync(details({ id: "c2", labels: {} }));
    expect(h.prober.view("c1")).toBeUndefined();
    expect(vi.getTimerCount()).toBe(0);
  });

  it("remove() stops the loop and drops a probe in flight", async () => {
    const h = harness();
    h.prober.sync(details());
    h.prober.sync(details({ id: "c2" }));
    h.prober.remove("c2");
    expect(vi.getTimerCount()).toBe(1);
    h.docker.hold(true);
    await advance(1_000);
    expect(h.docker.inFlight()).toBe(1);
    h.prober.remove("c1");
    h.prober.remove("unknown");
    expect(vi.getTimerCount()).toBe(0);
    h.docker.release();
    await advance(5_000);
    expect(h.prober.view("c1")).toBeUndefined();
    expect(h.transitions).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("stop() aborts probes in flight, waits for them and leaves no timers", async () => {
    const h = harness();
    h.docker.hold(true);
    h.prober.sync(details());
    h.prober.sync(details({ id: "c2", labels: probeLabels({ exec: "x", interval: "30s" }) }));
    await advance(1_000);
    expect(h.docker.inFlight()).toBe(1);
    expect(vi.getTimerCount()).toBe(1);
    let stopped = false;
    const stopping = h.prober.stop().then(() => {
      stopped = true;
    });
    await stopping;
    expect(stopped).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
    expect(h.transitions).toEqual([]);
    // After stop, sync is ignored.
    h.prober.sync(details({ id: "c3" }));
    expect(vi.getTimerCount()).toBe(0);
    h.docker.release();
  });

  it("notifies onChange on view changes only", async () => {
    const h = harness();
    h.prober.sync(details());
    expect(h.changes).toEqual(["c1"]);
    h.prober.sync(details());
    expect(h.changes).toEqual(["c1"]);
    await advance(1_000); // starting -> healthy, output "ok"
    expect(h.changes).toEqual(["c1", "c1"]);
    await advance(1_000); // same result: no change
    expect(h.changes).toEqual(["c1", "c1"]);
    await h.prober.stop();
  });

  it("survives a throwing transition callback", async () => {
    const docker = fakeDocker();
    const log = fakeLog();
    const prober = new Prober({
      docker,
      log: log as unknown as Logger,
      onTransition: () => {
        throw new Error("subscriber bug");
      },
    });
    docker.healthy.set("c1", false);
    prober.sync(details({ labels: probeLabels({ exec: "x", interval: "1s", retries: "1" }) }));
    await advance(1_000);
    expect(prober.view("c1")?.health).toBe("unhealthy");
    expect(log.error).toHaveBeenCalledTimes(1);
    await advance(1_000);
    expect(docker.calls).toHaveLength(2);
    await prober.stop();
    expect(vi.getTimerCount()).toBe(0);
  });

  it("probes the address from the latest details", async () => {
    vi.useRealTimers();
    const server = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    const docker = fakeDocker();
    const prober = new Prober({
      docker,
      log: fakeLog() as unknown as Logger,
      onTransition: () => {},
    });
    try {
      const d = details({
        labels: probeLabels({ tcp: `:${port}`, interval: "250ms", retries: "1" }),
        // Loopback only: nothing listens on 127.0.0.2 (the server is bound to 127.0.0.1).
        ipAddresses: ["127.0.0.2"],
        networkMode: "bridge",
      });
      prober.sync(d);
      await vi.waitFor(() => expect(prober.view("c1")?.health).toBe("unhealthy"), {
        timeout: 5_000,
      });
      expect(prober.view("c1")?.lastOutput).toContain(`127.0.0.2:${port}`);
      prober.sync({ ...d, ipAddresses: ["127.0.0.1"] });
      await vi.waitFor(() => expect(prober.view("c1")?.health).toBe("healthy"), {
        timeout: 5_000,
      });
      expect(prober.view("c1")?.lastOutput).toBe(`connected to 127.0.0.1:${port}`);
      expect(docker.calls).toEqual([]);
    } finally {
      await prober.stop();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe("Prober: explicit probe targets (FLEETHEAL_PROBE_ALLOW)", () => {
  function refusingHarness(access?: ProbeAccess) {
    const log = fakeLog();
    const transitions: string[] = [];
    const prober = new Prober({
      docker: fakeDocker(),
      log: log as unknown as Logger,
      ...(access ? { access } : {}),
      onTransition: (id, health) => transitions.push(`${id} ${health}`),
    });
    return { log, prober, transitions };
  }
  const tcp = (target: string) => probeLabels({ tcp: target, interval: "1s", retries: "1" });

  it("refuses an explicit host by default: the label named in the view, warned and counted once", async () => {
    const h = refusingHarness();
    const d = details({ labels: tcp("127.0.0.1:6379") });
    h.prober.sync(d);
    const reason =
      'autoheal.probe.tcp="127.0.0.1:6379": host 127.0.0.1 is not allowed on this agent; probe the container\'s own address with :port, or allow the host with FLEETHEAL_PROBE_ALLOW';
    expect(h.prober.view("c1")).toEqual({
      probe: { kind: "tcp", target: "127.0.0.1:6379", error: reason },
      failingStreak: 0,
    });
    expect(vi.getTimerCount()).toBe(0);
    // Seen again (inspects, pause and unpause): still one warning, one count.
    h.prober.sync(d);
    h.prober.sync({ ...d, state: "paused" });
    h.prober.sync(d);
    expect(h.log.warn).toHaveBeenCalledTimes(1);
    expect(h.log.warn.mock.calls[0]?.[1]).toContain("probe target refused on web");
    expect(h.log.warn.mock.calls[0]?.[0]).toMatchObject({ error: reason, refusedTargets: 1 });
    expect(h.log.error).not.toHaveBeenCalled();
    expect(h.prober.stats.refusedTargets).toBe(1);

    // Another container is its own refusal.
    h.prober.sync(details({ id: "c2", labels: tcp("http.example:80") }));
    expect(h.prober.stats.refusedTargets).toBe(2);
    expect(h.prober.resultCounts()).toEqual({ pass: 0, fail: 0, error: 0, refused: 2 });

    // The container's own address needs no permission.
    h.prober.sync({ ...d, labels: tcp(":6379"), ipAddresses: ["172.17.0.2"] });
    expect(h.prober.view("c1")).toEqual({
      probe: { kind: "tcp", target: ":6379" },
      health: "starting",
      failingStreak: 0,
    });
    await h.prober.stop();
  });

  it("probes an explicit host the operator allows", async () => {
    const list = parseProbeAllow(["127.0.0.0/8"]);
    if (!list.ok) throw new Error(list.errors.join());
    const h = refusingHarness({ allow: list.allow });
    h.prober.sync(details({ labels: tcp("127.0.0.1:6379") }));
    expect(h.prober.view("c1")).toMatchObject({ health: "starting" });
    expect(h.prober.view("c1")?.probe.error).toBeUndefined();
    expect(h.prober.stats.refusedTargets).toBe(0);
    await h.prober.stop();
  });

  it("stops a probe whose name resolves outside the list, until its labels change", async () => {
    const list = parseProbeAllow(["10.0.0.0/8"]);
    if (!list.ok) throw new Error(list.errors.join());
    const resolve = vi.fn(async () => ["127.0.0.1"]);
    const h = refusingHarness({ allow: list.allow, resolve });
    const d = details({ labels: tcp("svc.internal:6379") });
    h.prober.sync(d);
    expect(h.prober.view("c1")).toMatchObject({ health: "starting" });
    await advance(1_000);
    expect(resolve).toHaveBeenCalledTimes(1);
    const error =
      'autoheal.probe.tcp="svc.internal:6379": host svc.internal resolves to 127.0.0.1, which FLEETHEAL_PROBE_ALLOW does not allow on this agent';
    expect(h.prober.view("c1")).toEqual({
      probe: { kind: "tcp", target: "svc.internal:6379", error },
      failingStreak: 0,
    });
    // A refusal says nothing about the container: no transition, and no more probes.
    expect(h.transitions).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
    h.prober.sync(d);
    await advance(5_000);
    expect(resolve).toHaveBeenCalledTimes(1);
    expect(h.prober.view("c1")?.probe.error).toBe(error);
    expect(h.prober.stats.refusedTargets).toBe(1);
    expect(h.log.warn).toHaveBeenCalledTimes(1);

    h.prober.sync({ ...d, labels: tcp("svc.internal:6380") });
    expect(h.prober.view("c1")).toMatchObject({ health: "starting" });
    expect(h.prober.view("c1")?.probe.error).toBeUndefined();
    await h.prober.stop();
  });
});
