import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { hostEventsStream } from "../common/host-event-streams.js";
import { FILTER_ANCHOR_SOURCE } from "../common/jetstream-resources.js";
import { EVENTS_STREAM, SUBJECTS } from "../contracts/index.js";
import { InMemoryStreams } from "../test/support/host-streams-memory.js";
import { waitFor } from "../test/support/wait.js";
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

/** A keeper over an in-memory JetStream whose hosts bucket holds `hosts`. */
async function keeperOf(hosts: string[], options: { everyMs?: number; maxHosts?: number } = {}) {
  const js = fleet();
  const keys = new MemoryHostKeys();
  for (const host of hosts) keys.put(host);
  const keeper = await startHostEventKeeper({
    keys,
    api: js,
    settings: { hostMaxBytes: 1, hostWindowMs: 60_000 },
    log,
    ...options,
  });
  await keeper.settled();
  return { js, keys, keeper };
}

describe("startHostEventKeeper", () => {
  it("gives every host in the bucket, and every host that joins, a stream sourced into the fleet's", async () => {
    const { js, keys, keeper } = await keeperOf(["a"]);
    expect(sources(js)).toEqual([hostEventsStream("a")]);
    keys.put("b");
    await keeper.settled();
    expect(sources(js)).toEqual([hostEventsStream("a"), hostEventsStream("b")]);
    await keeper.stop();
  });

  it("puts back a stream and a source lost since, on its periodic pass", async () => {
    const { js, keeper } = await keeperOf(["a"], { everyMs: 20 });
    js.streams.delete(hostEventsStream("a"));
    js.streams.set(EVENTS_STREAM, { ...js.streams.get(EVENTS_STREAM), sources: [] } as never);
    await waitFor(() => js.streams.has(hostEventsStream("a")) && sources(js).length === 1, {
      timeoutMs: 5_000,
      intervalMs: 10,
      message: "the periodic pass did not restore host a",
    });
    await keeper.stop();
  });

  it("refuses keys that are no host id, and hosts beyond the bound", async () => {
    const { js, keeper } = await keeperOf(["a", "b", "x>y"], { maxHosts: 1 });
    expect([...js.streams.keys()].sort()).toEqual([EVENTS_STREAM, hostEventsStream("a")]);
    await keeper.stop();
  });
});
