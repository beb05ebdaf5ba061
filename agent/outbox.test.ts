import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Outbox, type OutboxMessage, UnpublishableError } from "./outbox.js";

/** A publish function whose every call waits until the test resolves or rejects it. */
class FakePublish {
  readonly calls: { message: OutboxMessage; resolve: () => void; reject: (e: unknown) => void }[] =
    [];
  inFlight = 0;
  maxInFlight = 0;

  readonly fn = (message: OutboxMessage): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      this.inFlight++;
      this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
      const done = () => {
        this.inFlight--;
      };
      this.calls.push({
        message,
        resolve: () => {
          done();
          resolve();
        },
        reject: (e) => {
          done();
          reject(e);
        },
      });
    });

  subjects(): string[] {
    return this.calls.map((c) => c.message.subject);
  }

  call(i: number) {
    const c = this.calls[i];
    if (!c) throw new Error(`no publish call #${i}`);
    return c;
  }
}

function msg(n: number | string): OutboxMessage {
  return { subject: `s.${n}`, payload: new TextEncoder().encode(String(n)), msgId: `id-${n}` };
}

/** Lets promise callbacks (acks) run. */
const flush = () => vi.advanceTimersByTimeAsync(0);

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("Outbox", () => {
  it("publishes in enqueue order and counts acks", async () => {
    const pub = new FakePublish();
    const outbox = new Outbox({ publish: pub.fn, capacity: 10, window: 10 });
    for (const n of [1, 2, 3]) expect(outbox.enqueue(msg(n))).toBe(true);
    expect(pub.subjects()).toEqual(["s.1", "s.2", "s.3"]);
    expect(pub.call(0).message.msgId).toBe("id-1");
    expect(outbox.stats).toEqual({
      depth: 3,
      published: 0,
      dropped: 0,
      unpublishable: 0,
      failedAttempts: 0,
    });
    for (const c of pub.calls) c.resolve();
    await flush();
    expect(outbox.stats).toEqual({
      depth: 0,
      published: 3,
      dropped: 0,
      unpublishable: 0,
      failedAttempts: 0,
    });
  });

  it("never has more than `window` publishes in flight", async () => {
    const pub = new FakePublish();
    const outbox = new Outbox({ publish: pub.fn, capacity: 100, window: 2 });
    for (let n = 1; n <= 5; n++) outbox.enqueue(msg(n));
    expect(pub.subjects()).toEqual(["s.1", "s.2"]);
    pub.call(0).resolve();
    await flush();
    expect(pub.subjects()).toEqual(["s.1", "s.2", "s.3"]);
    pub.call(1).resolve();
    pub.call(2).resolve();
    await flush();
    expect(pub.subjects()).toEqual(["s.1", "s.2", "s.3", "s.4", "s.5"]);
    pub.call(3).resolve();
    pub.call(4).resolve();
    await flush();
    expect(pub.maxInFlight).toBe(2);
    expect(outbox.stats.published).toBe(5);
    expect(outbox.stats.depth).toBe(0);
  });

  it("retries a failed message with the same msgId after a doubling backoff", async () => {
    const pub = new FakePublish();
    const errors: string[] = [];
    const outbox = new Outbox({
      publish: pub.fn,
      capacity: 10,
      window: 1,
      retryDelayMs: 100,
      maxRetryDelayMs: 400,
      onPublishError: (error, message) => errors.push(`${message.msgId}:${String(error)}`),
    });
    outbox.enqueue(msg(1));
    expect(pub.calls).toHaveLength(1);

    // Attempt 1 fails: the next attempt comes 100 ms later, not before.
    pub.call(0).reject(new Error("no responders"));
    await flush();
    expect(outbox.stats.failedAttempts).toBe(1);
    await vi.advanceTimersByTimeAsync(99);
    expect(pub.calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(pub.calls).toHaveLength(2);
    expect(pub.call(1).message.msgId).toBe("id-1");

    // Attempt 2 fails: 200 ms.
    pub.call(1).reject(new Error("timeout"));
    await vi.advanceTimersByTimeAsync(199);
    expect(pub.calls).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(pub.calls).toHaveLength(3);

    // Attempt 3 fails: 400 ms (the cap), then attempt 4 fails: still 400 ms.
    pub.call(2).reject(new Error("timeout"));
    await vi.advanceTimersByTimeAsync(399);
    expect(pub.calls).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(1);
    expect(pub.calls).toHaveLength(4);
    pub.call(3).reject(new Error("timeout"));
    await vi.advanceTimersByTimeAsync(399);
    expect(pub.calls).toHaveLength(4);
    await vi.advanceTimersByTimeAsync(1);
    expect(pub.calls).toHaveLength(5);

    pub.call(4).resolve();
    await flush();
    expect(outbox.stats).toEqual({
      depth: 0,
      published: 1,
      dropped: 0,
      unpublishable: 0,
      failedAttempts: 4,
    });
    expect(errors).toEqual([
      "id-1:Error: no responders",
      "id-1:Error: timeout",
      "id-1:Error: timeout",
      "id-1:Error: timeout",
    ]);

    // A success resets the backoff to the first delay.
    outbox.enqueue(msg(2));
    pub.call(5).reject(new Error("again"));
    await vi.advanceTimersByTimeAsync(99);
    expect(pub.calls).toHaveLength(6);
    await vi.advanceTimersByTimeAsync(1);
    expect(pub.calls).toHaveLength(7);
    expect(pub.call(6).message.msgId).toBe("id-2");
  });

  it("kick() retries at once after a reconnect and starts the backoff over", async () => {
    const pub = new FakePublish();
    const outbox = new Outbox({
      publish: pub.fn,
      capacity: 10,
      window: 2,
      retryDelayMs: 100,
      maxRetryDelayMs: 5_000,
    });
    outbox.enqueue(msg(1));
    // An outage: every attempt fails and the backoff grows to 3.2 s.
    for (let attempt = 0; attempt < 6; attempt++) {
      pub.call(attempt).reject(new Error("disconnected"));
      await vi.advanceTimersByTimeAsync(100 * 2 ** attempt);
    }
    pub.call(6).reject(new Error("disconnected"));
    await flush();
    outbox.enqueue(msg(2));
    expect(pub.calls).toHaveLength(7);

    outbox.kick();
    expect(pub.subjects().slice(7)).toEqual(["s.1", "s.2"]);
    // A kick while both are in flight sends no copy of them.
    outbox.kick();
    expect(pub.calls).toHaveLength(9);

    pub.call(7).reject(new Error("still settling"));
    await flush();
    await vi.advanceTimersByTimeAsync(99);
    expect(pub.calls).toHaveLength(9);
    await vi.advanceTimersByTimeAsync(1);
    expect(pub.calls).toHaveLength(10);
    pub.call(8).resolve();
    pub.call(9).resolve();
    await flush();
    expect(outbox.stats).toMatchObject({ depth: 0, published: 2, dropped: 0 });
  });

  it("holds new messages while waiting to retry, then sends them in order", async () => {
    const pub = new FakePublish();
    const outbox = new Outbox({ publish: pub.fn, capacity: 10, window: 4, retryDelayMs: 50 });
    outbox.enqueue(msg(1));
    pub.call(0).reject(new Error("down"));
    await flush();
    outbox.enqueue(msg(2));
    outbox.enqueue(msg(3));
    expect(pub.subjects()).toEqual(["s.1"]);
    await vi.advanceTimersByTimeAsync(50);
    expect(pub.subjects()).toEqual(["s.1", "s.1", "s.2", "s.3"]);
  });

  it("drops the oldest message when full, calls onDrop and counts it", async () => {
    const pub = new FakePublish();
    const dropped: string[] = [];
    const outbox = new Outbox({
      publish: pub.fn,
      capacity: 2,
      window: 1,
      retryDelayMs: 100,
      onDrop: (m) => dropped.push(m.msgId),
    });
    expect(outbox.enqueue(msg(1))).toBe(true);
    pub.call(0).reject(new Error("disconnected"));
    await flush();
    expect(outbox.enqueue(msg(2))).toBe(true);
    expect(outbox.enqueue(msg(3))).toBe(false);
    expect(dropped).toEqual(["id-1"]);
    expect(outbox.stats.dropped).toBe(1);
    expect(outbox.stats.depth).toBe(2);
    expect(outbox.enqueue(msg(4))).toBe(false);
    expect(dropped).toEqual(["id-1", "id-2"]);
    expect(outbox.stats).toMatchObject({ dropped: 2, depth: 2 });

    // After the backoff only the kept messages are sent; the dropped one is not retried.
    await vi.advanceTimersByTimeAsync(100);
    expect(pub.subjects()).toEqual(["s.1", "s.3"]);
    pub.call(1).resolve();
    await flush();
    expect(pub.subjects()).toEqual(["s.1", "s.3", "s.4"]);
    pub.call(2).resolve();
    await flush();
    expect(outbox.stats).toEqual({
      depth: 0,
      published: 2,
      dropped: 2,
      unpublishable: 0,
      failedAttempts: 1,
    });
  });

  it("does not count a message as published when it was dropped while in flight", async () => {
    const pub = new FakePublish();
    const outbox = new Outbox({ publish: pub.fn, capacity: 1, window: 4 });
    outbox.enqueue(msg(1));
    outbox.enqueue(msg(2)); // drops message 1, whose publish is still in flight
    pub.call(0).resolve();
    await flush();
    expect(outbox.stats).toEqual({
      depth: 1,
      published: 0,
      dropped: 1,
      unpublishable: 0,
      failedAttempts: 0,
    });
    pub.call(1).resolve();
    await flush();
    expect(outbox.stats).toEqual({
      depth: 0,
      published: 1,
      dropped: 1,
      unpublishable: 0,
      failedAttempts: 0,
    });
  });

  it("tells the time of the oldest Docker event not yet acked", async () => {
    const pub = new FakePublish();
    const outbox = new Outbox({ publish: pub.fn, capacity: 10, window: 10 });
    expect(outbox.oldestTimeNano()).toBeUndefined();
    outbox.enqueue({ ...msg(1), timeNano: "100" });
    outbox.enqueue(msg(2)); // not a Docker event (e.g. a probe transition)
    outbox.enqueue({ ...msg(3), timeNano: "300" });
    expect(outbox.oldestTimeNano()).toBe("100");
    pub.call(0).resolve();
    await flush();
    expect(outbox.oldestTimeNano()).toBe("300");
    pub.call(2).resolve();
    await flush();
    expect(outbox.oldestTimeNano()).toBeUndefined();
  });

  it("finds the oldest Docker event wherever it is queued (a health event waits for its inspect)", () => {
    const outbox = new Outbox({ publish: new FakePublish().fn, capacity: 10, window: 10 });
    outbox.enqueue({ ...msg(1), timeNano: "1795809602000000000" });
    outbox.enqueue({ ...msg(2), timeNano: "1795809601999999999" });
    outbox.enqueue({ ...msg(3), timeNano: "1795809603000000000" });
    expect(outbox.oldestTimeNano()).toBe("1795809601999999999");
  });

  it("drained() resolves at once when empty and otherwise only after the last ack", async () => {
    const pub = new FakePublish();
    const outbox = new Outbox({ publish: pub.fn, capacity: 10, window: 10 });
    await expect(outbox.drained()).resolves.toBeUndefined();

    outbox.enqueue(msg(1));
    outbox.enqueue(msg(2));
    let drained = false;
    void outbox.drained().then(() => {
      drained = true;
    });
    pub.call(0).resolve();
    await flush();
    expect(drained).toBe(false);
    pub.call(1).reject(new Error("lost ack"));
    await flush();
    expect(drained).toBe(false);
    await vi.advanceTimersByTimeAsync(100);
    expect(pub.calls).toHaveLength(3);
    pub.call(2).resolve();
    await flush();
    expect(drained).toBe(true);
    expect(outbox.stats.published).toBe(2);
  });

  it("close() stops retries and returns what is still queued", async () => {
    const pub = new FakePublish();
    const outbox = new Outbox({ publish: pub.fn, capacity: 10, window: 1, retryDelayMs: 10 });
    outbox.enqueue(msg(1));
    outbox.enqueue(msg(2));
    pub.call(0).reject(new Error("down"));
    await flush();
    expect(outbox.close().map((m) => m.msgId)).toEqual(["id-1", "id-2"]);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(pub.calls).toHaveLength(1);
    outbox.enqueue(msg(3));
    expect(pub.calls).toHaveLength(1);
  });

  it("drops a message the server refuses for good, reports it once, and goes on at once", async () => {
    const pub = new FakePublish();
    const refused: string[] = [];
    const retried: string[] = [];
    const outbox = new Outbox({
      publish: pub.fn,
      capacity: 10,
      window: 1,
      retryDelayMs: 100,
      onUnpublishable: (error, message) => refused.push(`${message.msgId}:${error.code}`),
      onPublishError: (_error, message) => retried.push(message.msgId),
    });
    outbox.enqueue(msg("huge"));
    outbox.enqueue(msg(2));
    expect(pub.subjects()).toEqual(["s.huge"]);
    pub.call(0).reject(new UnpublishableError("larger than max_payload"));
    // No backoff: the next message goes out as soon as the refusal is known.
    await flush();
    expect(pub.subjects()).toEqual(["s.huge", "s.2"]);
    pub.call(1).resolve();
    await flush();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(pub.subjects()).toEqual(["s.huge", "s.2"]);
    expect(refused).toEqual(["id-huge:FLEETHEAL_ERR_UNPUBLISHABLE"]);
    expect(retried).toEqual([]);
    expect(outbox.stats).toEqual({
      depth: 0,
      published: 1,
      dropped: 0,
      unpublishable: 1,
      failedAttempts: 1,
    });
    await outbox.drained();
  });

  it("a full window of refused messages does not hold up the event behind them", async () => {
    // The measured case of issue 18: 64 oversized messages, then one normal event.
    const attempts = new Map<string, number>();
    const outbox = new Outbox({
      publish: async (message) => {
        attempts.set(message.msgId, (attempts.get(message.msgId) ?? 0) + 1);
        if (message.msgId.startsWith("id-big")) throw new UnpublishableError("too large");
      },
      capacity: 1_000,
      window: 64,
    });
    for (let n = 0; n < 64; n++) outbox.enqueue(msg(`big${n}`));
    outbox.enqueue(msg("normal"));
    await vi.advanceTimersByTimeAsync(1_500);
    expect(outbox.stats.published).toBe(1);
    expect(outbox.stats.unpublishable).toBe(64);
    expect(outbox.stats.failedAttempts).toBe(64);
    expect(Math.max(...attempts.values())).toBe(1);
    expect(outbox.stats.depth).toBe(0);
  });

  it("keeps retrying other failures as before", async () => {
    const pub = new FakePublish();
    const outbox = new Outbox({ publish: pub.fn, capacity: 10, window: 1, retryDelayMs: 100 });
    outbox.enqueue(msg(1));
    pub.call(0).reject(new Error("TIMEOUT"));
    await vi.advanceTimersByTimeAsync(100);
    expect(pub.subjects()).toEqual(["s.1", "s.1"]);
    expect(outbox.stats.unpublishable).toBe(0);
    expect(outbox.stats.depth).toBe(1);
  });
});
