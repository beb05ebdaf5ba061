import { PassThrough } from "node:stream";
import { pino } from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ContainerDetails, DockerEngine, ExecResult } from "./docker-engine.js";
import type { DockerContainerEvent, DockerEventRejection } from "./docker-event.js";
import { EventPump, type EventPumpOptions } from "./event-pump.js";

const CID = "4f1c2b3a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a";
/** Docker's clock when the pump connects: `<seconds>.<nanoseconds>`. */
const T = "1795808500.000000000";
const T_NANO = "1795808500000000000";

/** One event stream the pump opened, with what it asked for. */
interface Opened {
  since: string | undefined;
  until: string | undefined;
  signal: AbortSignal;
  stream: PassThrough;
}

/**
 * A Docker engine whose event streams are PassThrough streams the test writes to. Like dockerode,
 * a stream is destroyed when its abort signal fires.
 */
class StreamDocker implements DockerEngine {
  readonly opened: Opened[] = [];
  clockValue = T;
  clockCalls = 0;
  /** Errors thrown by the next clock() calls, in order. */
  clockErrors: Error[] = [];
  private waiters: ((o: Opened) => void)[] = [];

  async clock(): Promise<string> {
    this.clockCalls++;
    const error = this.clockErrors.shift();
    if (error) throw error;
    return this.clockValue;
  }

  async openEventStream(options: {
    since?: string;
    until?: string;
    signal: AbortSignal;
  }): Promise<NodeJS.ReadableStream> {
    const stream = new PassThrough();
    const { signal } = options;
    const abort = () =>
      stream.destroy(Object.assign(new Error("The operation was aborted"), { name: "AbortError" }));
    if (signal.aborted) abort();
    else signal.addEventListener("abort", abort, { once: true });
    const opened = { since: options.since, until: options.until, signal, stream };
    this.opened.push(opened);
    for (const resolve of this.waiters.splice(0)) resolve(opened);
    return stream;
  }

  /** Resolves with the stream opened as number `index` (0-based), now or when it is opened. */
  async stream(index: number): Promise<Opened> {
    for (;;) {
      const found = this.opened[index];
      if (found) return found;
      await new Promise<Opened>((resolve) => this.waiters.push(resolve));
    }
  }

  async listContainerIds(): Promise<string[]> {
    throw new Error("not used");
  }
  async inspect(): Promise<ContainerDetails | undefined> {
    throw new Error("not used");
  }
  async restart(): Promise<void> {
    throw new Error("not used");
  }
  async stop(): Promise<void> {
    throw new Error("not used");
  }
  async exec(): Promise<ExecResult> {
    throw new Error("not used");
  }
  async version(): Promise<string> {
    return "24.0.7";
  }
}

/** A promise the test settles. */
function deferred<T = void>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Waits, turn by turn of the event loop (no sleeping), until `condition` holds. */
async function until(condition: () => boolean, what = "condition"): Promise<void> {
  for (let i = 0; i < 2_000; i++) {
    if (condition()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error(`gave up waiting for ${what}`);
}

/** Lets pending stream events, promise callbacks and drains run. */
async function settle(turns = 10): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** A line as Docker writes it on /events, with the nanosecond time as the identity. */
function line(timeNano: string, action = "start", type = "container"): string {
  return `${JSON.stringify({
    status: action,
    id: CID,
    from: "nginx:1.27",
    Type: type,
    Action: action,
    Actor: { ID: CID, Attributes: { name: "web", image: "nginx:1.27", autoheal: "true" } },
    scope: "local",
    time: Number(timeNano.slice(0, 10)),
    // A placeholder, replaced below so the digits stay exact (JSON numbers lose them).
    timeNano: 0,
  }).replace('"timeNano":0', `"timeNano":${timeNano}`)}\n`;
}

/** Event time `n` nanoseconds after second 1795808490 (before the clock T). */
const before = (n: number) => (1_795_808_490_000_000_000n + BigInt(n)).toString();
/** Event time `n` nanoseconds after the clock T. */
const after = (n: number) => (BigInt(T_NANO) + BigInt(n)).toString();

function harness(
  options: Partial<EventPumpOptions> & { connected?: () => Promise<void> } = {},
) {
  const docker = new StreamDocker();
  const events: DockerContainerEvent[] = [];
  const rejected: DockerEventRejection[] = [];
  const disconnects: unknown[] = [];
  const connects: number[] = [];
  let overflows = 0;
  const pump = new EventPump({
    docker,
    log: pino({ level: "silent" }),
    onEvent: (event) => events.push(event),
    onConnected: async () => {
      connects.push(events.length);
      await options.connected?.();
    },
    onDisconnected: (error) => disconnects.push(error),
    onOverflow: () => overflows++,
    onRejected: (reason) => rejected.push(reason),
    reconnectDelayMs: 100,
    ...options,
  });
  return {
    docker,
    pump,
    events,
    /** The timeNano of every event delivered, in order. */
    times: () => events.map((e) => e.timeNano),
    rejected,
    disconnects,
    connects,
    overflows: () => overflows,
  };
}

let running: EventPump[] = [];
afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(running.map((p) => p.stop()));
  running = [];
});

function start<H extends { pump: EventPump }>(h: H): H {
  running.push(h.pump);
  h.pump.start();
  return h;
}

describe("EventPump connecting", () => {
  it("without a last event: opens only the live stream, from Docker's clock", async () => {
    const h = start(harness());
    await until(() => h.connects.length === 1, "onConnected");
    expect(h.docker.clockCalls).toBe(1);
    expect(h.docker.opened.map(({ since, until }) => ({ since, until }))).toEqual([
      { since: T, until: undefined },
    ]);
    // Nothing was replayed, so onConnected came before any event.
    expect(h.connects).toEqual([0]);
  });

  it("with a last event: replays from it up to the clock, after opening the live stream", async () => {
    const last = before(7);
    const h = start(harness({ initialTimeNano: last }));
    const live = await h.docker.stream(0);
    const replay = await h.docker.stream(1);
    expect(live).toMatchObject({ since: T, until: undefined });
    expect(replay).toMatchObject({ since: "1795808490.000000007", until: T });
    replay.stream.end();
    await until(() => h.connects.length === 1, "onConnected");
    expect(h.docker.opened).toHaveLength(2);
  });

  it("does not replay when the last event is not older than Docker's clock", async () => {
    const h = start(harness({ initialTimeNano: T_NANO }));
    await until(() => h.connects.length === 1, "onConnected");
    expect(h.docker.opened.map((o) => o.until)).toEqual([undefined]);
  });

  it("replayed events come first; live events wait until onConnected resolves, in order", async () => {
    const connected = deferred();
    const h = start(harness({ initialTimeNano: before(1), connected: () => connected.promise }));
    const live = await h.docker.stream(0);
    const replay = await h.docker.stream(1);

    // Live events that arrive while the replay runs are queued...
    live.stream.write(line(after(1)));
    replay.stream.write(line(before(2), "die"));
    live.stream.write(line(after(2), "start"));
    replay.stream.write(line(before(3), "start"));
    await settle();
    // ...while replayed events are delivered at once.
    expect(h.times()).toEqual([before(2), before(3)]);
    replay.stream.end();
    await until(() => h.connects.length === 1, "onConnected");
    expect(h.connects).toEqual([2]);

    // Live events during onConnected (the agent reconciling) wait as well.
    live.stream.write(line(after(3), "health_status: unhealthy"));
    await settle();
    expect(h.times()).toEqual([before(2), before(3)]);
    expect(h.pump.lastTimeNano).toBe(before(3));

    connected.resolve();
    await until(() => h.events.length === 5, "the queued live events");
    expect(h.times()).toEqual([before(2), before(3), after(1), after(2), after(3)]);
    expect(h.events.map((e) => e.action)).toEqual(["die", "start", "start", "start", "unhealthy"]);
    expect(h.pump.lastTimeNano).toBe(after(3));

    // After that, live events flow straight through.
    live.stream.write(line(after(4), "stop"));
    await until(() => h.events.length === 6, "a live event");
    expect(h.events[5]).toMatchObject({ action: "stop", timeNano: after(4), containerId: CID });
    expect(h.pump.stats).toMatchObject({ queued: 4, dropped: 0, reconnects: 0 });
  });

  it("joins lines split across chunks and chunks holding several lines", async () => {
    const h = start(harness());
    const live = await h.docker.stream(0);
    await until(() => h.connects.length === 1, "onConnected");
    const a = line(after(1));
    const b = line(after(2), "die");
    const c = line(after(3), "destroy");
    const bytes = Buffer.from(a + b + c);
    // Split inside a line, and across the newline between b and c.
    const cut1 = Math.floor(a.length / 2);
    const cut2 = a.length + b.length - 1;
    live.stream.write(bytes.subarray(0, cut1));
    await settle();
    expect(h.events).toEqual([]);
    live.stream.write(bytes.subarray(cut1, cut2));
    await until(() => h.events.length === 1, "the first line");
    await settle();
    expect(h.times()).toEqual([after(1)]);
    live.stream.write(bytes.subarray(cut2));
    await until(() => h.events.length === 3, "all lines");
    expect(h.events.map((e) => e.action)).toEqual(["start", "die", "destroy"]);
    expect(h.events[0]?.attributes).toEqual({
      name: "web",
      image: "nginx:1.27",
      autoheal: "true",
    });
  });

  it("counts lines it does not forward, and they do not move the replay point", async () => {
    const h = start(harness());
    const live = await h.docker.stream(0);
    await until(() => h.connects.length === 1, "onConnected");
    live.stream.write(line(after(1), "exec_create: sh -c curl -f localhost"));
    live.stream.write(line(after(2), "exec_start: sh -c curl -f localhost"));
    live.stream.write(line(after(3), "exec_die"));
    live.stream.write(line(after(4), "connect", "network"));
    live.stream.write("this is not json\n");
    live.stream.write('{"Type":"container"}\n');
    live.stream.write(line(after(5), "health_status: healthy"));
    await until(() => h.events.length === 1, "the health event");
    expect(h.rejected).toEqual([
      "not-forwarded",
      "not-forwarded",
      "not-forwarded",
      "not-forwarded",
      "bad-json",
      "bad-shape",
    ]);
    expect(h.events[0]).toMatchObject({ action: "healthy", timeNano: after(5) });
    expect(h.pump.lastTimeNano).toBe(after(5));

    live.stream.write(line(after(6), "exec_die"));
    await until(() => h.rejected.length === 7, "the exec line");
    expect(h.pump.lastTimeNano).toBe(after(5));
  });
});

describe("EventPump reconnecting", () => {
  it("a live stream that ends -> onDisconnected, then reconnect replaying from the last event", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const h = start(harness({ reconnectDelayMs: 100 }));
    const live = await h.docker.stream(0);
    await until(() => h.connects.length === 1, "onConnected");
    live.stream.write(line(after(1)));
    live.stream.write(line(after(2), "health_status: unhealthy"));
    await until(() => h.events.length === 2, "two events");

    h.docker.clockValue = "1795808600.500000000";
    live.stream.end();
    await until(() => h.disconnects.length === 1, "onDisconnected");
    expect(String(h.disconnects[0])).toContain("Docker event stream ended");

    // Backoff: nothing happens before the delay.
    vi.advanceTimersByTime(99);
    await settle();
    expect(h.docker.clockCalls).toBe(1);
    vi.advanceTimersByTime(1);
    const live2 = await h.docker.stream(1);
    const replay = await h.docker.stream(2);
    expect(h.docker.clockCalls).toBe(2);
    expect(live2).toMatchObject({ since: "1795808600.500000000", until: undefined });
    expect(replay).toMatchObject({ since: "1795808500.000000002", until: "1795808600.500000000" });
    expect(live.signal.aborted).toBe(true);

    // What Docker kept from the gap is delivered, then the agent reconciles, then live again.
    replay.stream.write(line(after(3), "die"));
    live2.stream.write(line("1795808600600000000", "start"));
    replay.stream.end();
    await until(() => h.connects.length === 2, "the second onConnected");
    await until(() => h.events.length === 4, "the live event after the gap");
    expect(h.times()).toEqual([after(1), after(2), after(3), "1795808600600000000"]);
    expect(h.pump.stats.reconnects).toBe(1);
  });

  it("doubles the delay while Docker stays away, up to the maximum, and resets once connected", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const h = harness({ reconnectDelayMs: 100, maxReconnectDelayMs: 300 });
    h.docker.clockErrors = [1, 2, 3, 4].map((n) => new Error(`connect ENOENT (${n})`));
    start(h);
    const attemptsAfter = async (ms: number) => {
      vi.advanceTimersByTime(ms);
      await settle();
      return h.docker.clockCalls;
    };
    await until(() => h.disconnects.length === 1, "the first failure");
    expect(String(h.disconnects[0])).toContain("connect ENOENT (1)");
    expect(h.docker.clockCalls).toBe(1);
    expect(await attemptsAfter(99)).toBe(1);
    expect(await attemptsAfter(1)).toBe(2); // after 100 ms
    expect(await attemptsAfter(199)).toBe(2);
    expect(await attemptsAfter(1)).toBe(3); // after 200 ms
    expect(await attemptsAfter(299)).toBe(3);
    expect(await attemptsAfter(1)).toBe(4); // after 300 ms (the maximum)
    expect(await attemptsAfter(299)).toBe(4);
    expect(await attemptsAfter(1)).toBe(5); // the maximum again; this one succeeds
    await until(() => h.connects.length === 1, "onConnected");
    expect(h.disconnects).toHaveLength(4);
    expect(h.pump.stats.reconnects).toBe(4);

    // A successful connection resets the delay.
    (await h.docker.stream(0)).stream.end();
    await until(() => h.disconnects.length === 5, "the stream end");
    expect(await attemptsAfter(99)).toBe(5);
    expect(await attemptsAfter(1)).toBe(6);
  });

  it("a stream error is a disconnect too", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const h = start(harness());
    const live = await h.docker.stream(0);
    await until(() => h.connects.length === 1, "onConnected");
    live.stream.destroy(new Error("read ECONNRESET"));
    await until(() => h.disconnects.length === 1, "onDisconnected");
    expect(String(h.disconnects[0])).toContain("ECONNRESET");
    vi.advanceTimersByTime(100);
    await h.docker.stream(1);
    await until(() => h.connects.length === 2, "reconnected");
  });
});

describe("EventPump queue", () => {
  it("a full queue while paused drops lines, calls onOverflow and counts them", async () => {
    const connected = deferred();
    const h = start(harness({ queueCapacity: 3, connected: () => connected.promise }));
    const live = await h.docker.stream(0);
    await until(() => h.connects.length === 1, "onConnected");
    for (let n = 1; n <= 5; n++) live.stream.write(line(after(n)));
    await settle();
    expect(h.events).toEqual([]);
    expect(h.overflows()).toBe(2);
    expect(h.pump.stats).toMatchObject({ queued: 3, dropped: 2 });

    connected.resolve();
    await until(() => h.events.length === 3, "the queued events");
    await settle();
    // The oldest lines were kept; the newest were dropped (the agent reconciles instead).
    expect(h.times()).toEqual([after(1), after(2), after(3)]);

    // Once drained there is room again.
    live.stream.write(line(after(6)));
    await until(() => h.events.length === 4, "a new event");
    expect(h.pump.stats.dropped).toBe(2);
    expect(h.overflows()).toBe(2);
  });

  it("delivers a burst larger than one batch, in order", async () => {
    const h = start(harness());
    const live = await h.docker.stream(0);
    await until(() => h.connects.length === 1, "onConnected");
    const count = 700;
    let burst = "";
    for (let n = 1; n <= count; n++) burst += line(after(n));
    live.stream.write(burst);
    await until(() => h.events.length === count, "the burst");
    expect(h.times()).toEqual(Array.from({ length: count }, (_, i) => after(i + 1)));
  });
});

describe("EventPump.stop", () => {
  it("aborts the streams, reports no disconnect and delivers nothing more", async () => {
    const h = start(harness({ initialTimeNano: before(1) }));
    const live = await h.docker.stream(0);
    const replay = await h.docker.stream(1);
    replay.stream.end();
    await until(() => h.connects.length === 1, "onConnected");
    live.stream.write(line(after(1)));
    await until(() => h.events.length === 1, "an event");

    await h.pump.stop();
    expect(live.signal.aborted).toBe(true);
    expect(replay.signal.aborted).toBe(true);
    expect(live.stream.destroyed).toBe(true);
    expect(h.disconnects).toEqual([]);
    await settle();
    expect(h.docker.opened).toHaveLength(2);
    expect(h.events).toHaveLength(1);
  });

  it("returns at once while waiting to reconnect", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const h = harness({ reconnectDelayMs: 60_000 });
    h.docker.clockErrors = [new Error("connect ENOENT")];
    start(h);
    await until(() => h.disconnects.length === 1, "the failure");
    expect(vi.getTimerCount()).toBe(1);
    await h.pump.stop();
    expect(vi.getTimerCount()).toBe(0);
    expect(h.docker.clockCalls).toBe(1);
  });

  // BUG (agent/event-pump.ts, run()): after replayUntil() returns because stop() aborted it, the
  // loop still awaits onConnected() (the agent then reconciles after being stopped). Fix: add
  // `if (this.stopped) break;` right after `await this.replayUntil(...)`. Change it.fails to it
  // once fixed.
  it.fails("during the replay: ends without connecting", async () => {
    const h = start(harness({ initialTimeNano: before(1) }));
    const replay = await h.docker.stream(1);
    replay.stream.write(line(before(2)));
    await until(() => h.events.length === 1, "a replayed event");
    await h.pump.stop();
    expect(h.connects).toEqual([]);
    expect(h.disconnects).toEqual([]);
    expect(h.docker.opened.every((o) => o.signal.aborted)).toBe(true);
  });
});

describe("EventPump failure paths", () => {
  /**
   * Runs `scenario` with the process's unhandled-rejection listeners replaced by a recorder, and
   * returns what it recorded. Node 20 crashes the agent on an unhandled rejection.
   */
  async function unhandledDuring(scenario: () => Promise<void>): Promise<unknown[]> {
    const saved = process.listeners("unhandledRejection");
    const seen: unknown[] = [];
    process.removeAllListeners("unhandledRejection");
    process.on("unhandledRejection", (reason) => seen.push(reason));
    try {
      await scenario();
      await settle(20);
    } finally {
      process.removeAllListeners("unhandledRejection");
      for (const listener of saved) process.on("unhandledRejection", listener);
    }
    return seen;
  }

  // BUG (agent/event-pump.ts, run()): `liveEnded` is created before the replay and onConnected()
  // are awaited, but nothing handles it until `await liveEnded`. When the replay fails, the catch
  // path aborts the live stream; dockerode then destroys it with an error and `liveEnded` rejects
  // with no handler (the same happens when the live stream errors while the agent reconciles).
  // Node 20 exits on an unhandled rejection. Fix: attach a handler when it is created, e.g.
  // `liveEnded.catch(() => {})` right after `const liveEnded = this.read(...)` (the later
  // `await liveEnded` still sees the error). Change it.fails to it once fixed.
  it.fails("a replay that fails leaves no unhandled rejection behind", async () => {
    const h = harness({ initialTimeNano: before(1) });
    const open = h.docker.openEventStream.bind(h.docker);
    h.docker.openEventStream = async (options) => {
      if (options.until !== undefined) throw new Error("replay refused");
      return open(options);
    };
    const seen = await unhandledDuring(async () => {
      start(h);
      await until(() => h.disconnects.length === 1, "onDisconnected");
    });
    expect(String(h.disconnects[0])).toContain("replay refused");
    expect(seen).toEqual([]);
  });

  it("a replay that fails is a disconnect, and the pump tries again", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const h = harness({ initialTimeNano: before(1) });
    const open = h.docker.openEventStream.bind(h.docker);
    let failures = 1;
    h.docker.openEventStream = async (options) => {
      if (options.until !== undefined && failures-- > 0) throw new Error("replay refused");
      return open(options);
    };
    // (The unhandled rejection this causes is the bug above; it is not this test's subject.)
    await unhandledDuring(async () => {
      start(h);
      await until(() => h.disconnects.length === 1, "onDisconnected");
    });
    vi.advanceTimersByTime(100);
    const replay = await h.docker.stream(2);
    expect(replay).toMatchObject({ since: "1795808490.000000001", until: T });
    replay.stream.end();
    await until(() => h.connects.length === 1, "onConnected");
  });

  // BUG (agent/event-pump.ts, run()): lines still queued from the previous live stream when it
  // ended are not processed before the next connection: `paused = true` stops the drain, the
  // replay (from the last line processed) delivers them again, and after onConnected() the old
  // queue is drained too: duplicates, out of order, and lastTimeNano moves backwards. It needs a
  // burst longer than one drain batch (256 lines) still queued when the reconnect starts (delay
  // 0 here; with the default 100 ms a slow drain of a large burst). Fix: at the top of each
  // connection, before `this.paused = true`, process what is left synchronously:
  // `while (this.head < this.queue.length) this.handleLine(this.queue[this.head++] as string);`
  // then reset the queue. Change it.fails to it once fixed.
  it.fails("lines queued from the previous stream are delivered once, in order", async () => {
    const h = start(harness({ reconnectDelayMs: 0 }));
    const live = await h.docker.stream(0);
    await until(() => h.connects.length === 1, "onConnected");
    const count = 600;
    let burst = "";
    for (let n = 1; n <= count; n++) burst += line(after(n));
    h.docker.clockValue = "1795808600.000000000";
    live.stream.end(burst);
    await h.docker.stream(1);
    const replay = await h.docker.stream(2);
    // Docker replays what came after the last event the pump processed.
    const from = Number(BigInt(h.pump.lastTimeNano ?? T_NANO) - BigInt(T_NANO));
    let again = "";
    for (let n = from + 1; n <= count; n++) again += line(after(n));
    replay.stream.end(again);
    await until(() => h.connects.length === 2, "the second onConnected");
    await settle(30);
    expect(h.times()).toEqual(Array.from({ length: count }, (_, i) => after(i + 1)));
    expect(h.pump.lastTimeNano).toBe(after(count));
  });
});

