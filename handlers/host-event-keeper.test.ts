import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { hostEventsStream } from "../common/host-event-streams.js";
import { FILTER_ANCHOR_SOURCE } from "../common/jetstream-resources.js";
import { EVENTS_STREAM, SUBJECTS } from "../contracts/index.js";
import { InMemoryStreams } from "../test/support/host-streams-memory.js";
import { acceptedHosts, type HostKeys, startHostEventKeeper } from "./host-event-keeper.js";

const log = pino({ level: "silent" });

/** The hosts bucket's keys in memory: `put` tells the watcher, as a KV watch would. */
class MemoryHostKeys implements HostKeys {
  readonly keys = new Set<string>();
  private onKey: ((key: string) => void) | undefined;
  put(key: string) {
    this.keys.add(key);
    this.onKey?.(key);
  }
  async list() {
    return [...this.keys];
  }
  async watch(onKey: (key: string) => void) {
    this.onKey = onKey;
    for (const key of this.keys) onKey(key);
    return {
      stop: async () => {
        this.onKey = undefined;
      },
    };
  }
}

function fleet() {
  const js = new InMemoryStreams();
  js.streams.set(EVENTS_STREAM, {
    name: EVENTS_STREAM,
    subjects: [SUBJECTS.remediations],
    sources: [FILTER_ANCHOR_SOURCE],
  } as never);
  return js;
}

/** The hosts' streams FLEETHEAL_EVENTS sources (not the filter anchor). */
const sources = (js: InMemoryStreams) =>
  (js.streams.get(EVENTS_STREAM)?.sources ?? [])
    .filter((s) => s.external === undefined)
    .map((s) => s.name);

describe("acceptedHosts", () => {
  it("takes valid host ids, sorted, up to the bound, and refuses the rest", () => {
    expect(acceptedHosts(["c", "a.b", "b", "a", "d"], 2)).toEqual({
      hosts: ["a", "b"],
      refused: [
        { key: "a.b", reason: "not a valid host id" },
        { key: "c", reason: "more than 2 hosts" },
        { key: "d", reason: "more than 2 hosts" },
      ],
    });
  });
});

describe("startHostEventKeeper", () => {
  it("gives every host in the bucket, and every host that joins, a stream sourced into the fleet's", async () => {
    const js = fleet();
    const keys = new MemoryHostKeys();
    keys.put("a");
    const keeper = await startHostEventKeeper({
      keys,
      api: js,
      settings: { hostMaxBytes: 1, hostWindowMs: 60_000 },
      log,
    });
    await keeper.settled();
    expect(sources(js)).toEqual([hostEventsStream("a")]);
    keys.put("b");
    await keeper.settled();
    expect(sources(js)).toEqual([hostEventsStream("a"), hostEventsStream("b")]);
    await keeper.stop();
  });

  it("puts back a stream and a source lost since, on its periodic pass", async () => {
    const js = fleet();
    const keys = new MemoryHostKeys();
    keys.put("a");
    const keeper = await startHostEventKeeper({
      keys,
      api: js,
      settings: { hostMaxBytes: 1, hostWindowMs: 60_000 },
      log,
      everyMs: 20,
    });
    await keeper.settled();
    js.streams.delete(hostEventsStream("a"));
    js.streams.set(EVENTS_STREAM, { ...js.streams.get(EVENTS_STREAM), sources: [] } as never);
    const deadline = Date.now() + 5_000;
    while (!(js.streams.has(hostEventsStream("a")) && sources(js).length === 1)) {
      if (Date.now() > deadline) throw new Error("the periodic pass did not restore host a");
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await keeper.stop();
  });

  it("refuses keys that are no host id, and hosts beyond the bound", async () => {
    const js = fleet();
    const keys = new MemoryHostKeys();
    for (const key of ["a", "b", "x>y"]) keys.put(key);
    const keeper = await startHostEventKeeper({
      keys,
      api: js,
      settings: { hostMaxBytes: 1, hostWindowMs: 60_000 },
      log,
      maxHosts: 1,
    });
    await keeper.settled();
    expect([...js.streams.keys()].sort()).toEqual([EVENTS_STREAM, hostEventsStream("a")]);
    await keeper.stop();
  });
});
