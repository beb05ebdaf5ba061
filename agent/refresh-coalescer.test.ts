import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { MemoryDocker } from "../test/support/agent-memory-ports.js";
import type { ContainerDetails } from "./docker-engine.js";
import { RefreshCoalescer } from "./refresh-coalescer.js";

const A = "a1".repeat(32);

const web: ContainerDetails = {
  id: A,
  name: "web",
  image: "nginx:1.27",
  state: "running",
  health: "healthy",
  labels: {},
  startedAt: "2026-11-27T19:00:00.000Z",
  restartCount: 0,
  failingStreak: 0,
  hasHealthcheck: true,
  ipAddresses: [],
};

/** The in-memory Docker, each inspect's answer (taken when it is asked) held until released. */
function setup() {
  const docker = new MemoryDocker();
  docker.add(web);
  const held: (() => void)[] = [];
  const inspect = docker.inspect.bind(docker);
  docker.inspect = async (id) => {
    const answer = await inspect(id);
    await new Promise<void>((resolve) => held.push(resolve));
    return answer;
  };
  const applied: (string | undefined)[] = [];
  const refresher = new RefreshCoalescer({
    docker,
    log: pino({ level: "silent" }),
    apply: (_id, details) => applied.push(details?.health),
  });
  /** Lets the held inspect finish and its result be applied. */
  const release = async () => {
    while (held.length === 0) await new Promise((resolve) => setImmediate(resolve));
    held.shift()?.();
    await new Promise((resolve) => setImmediate(resolve));
  };
  return { docker, refresher, applied, release };
}

describe("RefreshCoalescer", () => {
  it("coalesces the triggers during an inspect into one more inspect, which follows the last", async () => {
    const r = setup();
    const first = r.refresher.refresh(A);
    expect(r.refresher.pending(A)).toBe(first);
    const again = [r.refresher.refresh(A), r.refresher.refresh(A)];
    r.docker.add({ ...web, health: "unhealthy" });
    await r.release();
    await r.release();
    await Promise.all([first, ...again]);
    expect(r.applied).toEqual(["healthy", "unhealthy"]);
    expect(r.docker.calls).toEqual(["inspect a1a1", "inspect a1a1"]);
    expect(r.refresher.pending(A)).toBeUndefined();
  });

  it("a gone container is applied as undefined", async () => {
    const r = setup();
    r.docker.containers.clear();
    const done = r.refresher.refresh(A);
    await r.release();
    await done;
    expect(r.applied).toEqual([undefined]);
  });

  it("a failed inspect leaves the container unverified until an inspect works", async () => {
    const r = setup();
    const inspect = r.docker.inspect;
    r.docker.inspect = async () => {
      throw new Error("Docker is busy");
    };
    await r.refresher.refresh(A);
    expect(r.refresher.verified(A)).toBe(false);
    r.docker.inspect = inspect;
    const done = r.refresher.refresh(A);
    await r.release();
    await done;
    expect(r.refresher.verified(A)).toBe(true);
    expect(r.applied).toEqual(["healthy"]);
  });
});
