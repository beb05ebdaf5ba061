import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { HostSnapshot } from "../contracts/index.js";
import { UnpublishableError } from "./outbox.js";
import { SnapshotPublisher } from "./snapshot-publisher.js";

function fakeSnapshot(seq: number): HostSnapshot {
  return {
    type: "fleetheal.snapshot.v1.host",
    v: 1,
    host: "host-a",
    seq,
    at: "2026-11-27T19:42:00.000Z",
    heartbeatMs: 1000,
    agent: {
      version: "0.1.0",
      startedAt: "2026-11-27T18:00:00.000Z",
      label: "autoheal",
      watchAll: false,
      uptimeSeconds: 6120,
    },
    outbox: { depth: 0, capacity: 10_000, published: 0, dropped: 0 },
    docker: { status: "up", version: "20.10.24" },
    containers: [],
  };
}

/** A publish function that records snapshots; each call resolves at once unless held. */
function harness(options: { hold?: boolean; debounceMs?: number; heartbeatMs?: number } = {}) {
  let seq = 0;
  const published: number[] = [];
  const pending: (() => void)[] = [];
  const errors: unknown[] = [];
  let failNext = false;
  const publisher = new SnapshotPublisher({
    take: () => fakeSnapshot(++seq),
    publish: (snapshot) => {
      published.push(snapshot.seq);
      if (failNext) {
        failNext = false;
        return Promise.reject(new Error("kv down"));
      }
      if (!options.hold) return Promise.resolve();
      return new Promise<void>((resolve) => pending.push(resolve));
    },
    debounceMs: options.debounceMs ?? 100,
    heartbeatMs: options.heartbeatMs ?? 1000,
    onError: (e) => errors.push(e),
  });
  return {
    publisher,
    published,
    errors,
    failNextPublish: () => {
      failNext = true;
    },
    releaseOne: () => {
      const release = pending.shift();
      if (!release) throw new Error("no publish in flight");
      release();
    },
    pendingCount: () => pending.length,
  };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("SnapshotPublisher", () => {
  it("publishes nothing before start()", async () => {
    const h = harness({ debounceMs: 10, heartbeatMs: 100 });
    h.publisher.changed();
    h.publisher.publishNow();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(h.published).toEqual([]);
    h.publisher.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(h.published).toEqual([1]);
    await h.publisher.stop();
  });

  it("publishes at start", async () => {
    const h = harness();
    h.publisher.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(h.published).toEqual([1]);
    await h.publisher.stop();
  });

  it("coalesces many changes within the debounce window into one publish", async () => {
    const h = harness({ debounceMs: 100, heartbeatMs: 60_000 });
    h.publisher.start();
    await vi.advanceTimersByTimeAsync(0);
    for (let i = 0; i < 20; i++) {
      h.publisher.changed();
      await vi.advanceTimersByTimeAsync(4);
    }
    // 80 ms elapsed since the first change: nothing yet.
    expect(h.published).toEqual([1]);
    await vi.advanceTimersByTimeAsync(20);
    expect(h.published).toEqual([1, 2]);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(h.published).toEqual([1, 2]);
    // A later change starts a new window.
    h.publisher.changed();
    await vi.advanceTimersByTimeAsync(99);
    expect(h.published).toEqual([1, 2]);
    await vi.advanceTimersByTimeAsync(1);
    expect(h.published).toEqual([1, 2, 3]);
    await h.publisher.stop();
  });

  it("publishes on every heartbeat when nothing changes", async () => {
    const h = harness({ heartbeatMs: 1000 });
    h.publisher.start();
    await vi.advanceTimersByTimeAsync(999);
    expect(h.published).toEqual([1]);
    await vi.advanceTimersByTimeAsync(1);
    expect(h.published).toEqual([1, 2]);
    await vi.advanceTimersByTimeAsync(3000);
    expect(h.published).toEqual([1, 2, 3, 4, 5]);
    await h.publisher.stop();
  });

  it("a change during an in-flight publish causes exactly one more publish", async () => {
    const h = harness({ hold: true, heartbeatMs: 60_000 });
    h.publisher.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(h.published).toEqual([1]);
    h.publisher.publishNow();
    h.publisher.changed();
    await vi.advanceTimersByTimeAsync(100);
    h.publisher.publishNow();
    expect(h.published).toEqual([1]);
    expect(h.pendingCount()).toBe(1);
    h.releaseOne();
    await vi.advanceTimersByTimeAsync(0);
    expect(h.published).toEqual([1, 2]);
    h.releaseOne();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(h.published).toEqual([1, 2]);
    expect(h.pendingCount()).toBe(0);
    await h.publisher.stop();
  });

  it("reports a take() that throws instead of raising it from a timer", async () => {
    const errors: unknown[] = [];
    const publisher = new SnapshotPublisher({
      take: () => {
        throw new Error("broken state");
      },
      publish: async () => {},
      debounceMs: 10,
      heartbeatMs: 60_000,
      onError: (error) => errors.push(error),
    });
    publisher.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(errors.map((e) => (e as Error).message)).toEqual(["broken state"]);
    await publisher.stop();
  });

  it("reports a failed publish and keeps going", async () => {
    const h = harness({ heartbeatMs: 1000 });
    h.failNextPublish();
    h.publisher.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(h.errors).toHaveLength(1);
    expect((h.errors[0] as Error).message).toBe("kv down");
    await vi.advanceTimersByTimeAsync(1000);
    expect(h.published).toEqual([1, 2]);
    await h.publisher.stop();
  });

  it("stop() stops the timers and waits for the publish in flight", async () => {
    const h = harness({ hold: true, heartbeatMs: 1000, debounceMs: 100 });
    h.publisher.start();
    h.publisher.changed();
    let stopped = false;
    const stopping = h.publisher.stop().then(() => {
      stopped = true;
    });
    await vi.advanceTimersByTimeAsync(0);
    expect(stopped).toBe(false);
    h.releaseOne();
    await stopping;
    expect(stopped).toBe(true);
    await vi.advanceTimersByTimeAsync(10_000);
    h.publisher.changed();
    h.publisher.publishNow();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(h.published).toEqual([1]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("replaces a snapshot NATS refuses for good with one without labels, and says so once", async () => {
    let tooLarge = true;
    const sent: string[] = [];
    const told: (string | false)[] = [];
    const errors: unknown[] = [];
    let seq = 0;
    const publisher = new SnapshotPublisher({
      take: (withoutLabels) => ({
        ...fakeSnapshot(++seq),
        agent: { ...fakeSnapshot(seq).agent, label: withoutLabels ? "bare" : "full" },
      }),
      publish: async (snapshot) => {
        if (snapshot.agent.label === "full" && tooLarge) {
          throw new UnpublishableError("larger than max_payload");
        }
        sent.push(`${snapshot.seq}:${snapshot.agent.label}`);
      },
      debounceMs: 10,
      heartbeatMs: 100,
      onError: (e) => errors.push(e),
      onWithoutLabels: (e) => told.push(e === false ? false : e.code),
    });
    publisher.start();
    await vi.advanceTimersByTimeAsync(250);
    expect(sent).toEqual(["2:bare", "4:bare", "6:bare"]);
    expect(told).toEqual(["FLEETHEAL_ERR_UNPUBLISHABLE"]);
    tooLarge = false;
    await vi.advanceTimersByTimeAsync(100);
    expect(sent.at(-1)).toBe("7:full");
    expect(told).toEqual(["FLEETHEAL_ERR_UNPUBLISHABLE", false]);
    expect(errors).toEqual([]);
    await publisher.stop();
  });
});
