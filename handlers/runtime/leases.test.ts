import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { InMemoryBucket } from "../../test/support/in-memory-bucket.js";
import type { LeaseRequest } from "../decisions.js";
import type { SlotBucket } from "./handler-io.js";
import { LeaseSet, MAX_SLOT_TRIES, SlotBoard } from "./leases.js";

const TTL = 60_000;

/** A lease bucket with the storm guard's TTL, on a clock the test moves. */
const bucket = () => new InMemoryBucket({ ttlMs: TTL, now: 1_000_000 });

/** A replica's boards over the two buckets, following them like the runtime does. */
function replica(
  inflight: InMemoryBucket,
  rate: InMemoryBucket,
  options: { watch?: boolean } = {},
) {
  const boards = {
    inflight: new SlotBoard(inflight, TTL, () => inflight.now),
    rate: new SlotBoard(rate, TTL, () => rate.now),
  };
  if (options.watch !== false) {
    const log = pino({ level: "silent" });
    boards.inflight.start(log);
    boards.rate.start(log);
  }
  return {
    boards,
    lease: (random?: () => number) => new LeaseSet(boards, random),
    stop: () => Promise.all([boards.inflight.stop(), boards.rate.stop()]),
  };
}

/** Lets watches deliver what was written. */
const settle = async () => {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
};

const caps = (perHost: number, fleet: number, ratePerHost = 30, rateFleet = 120) =>
  [
    { bucket: "inflight", prefix: "host.h1", cap: perHost, label: "host at once" },
    { bucket: "inflight", prefix: "fleet", cap: fleet, label: "fleet at once" },
    { bucket: "rate", prefix: "host.h1", cap: ratePerHost, label: "host a minute" },
    { bucket: "rate", prefix: "fleet", cap: rateFleet, label: "fleet a minute" },
  ] satisfies LeaseRequest[];

describe("LeaseSet", () => {
  it("takes a slot under every cap at once, each with one write", async () => {
    const inflight = bucket();
    const rate = bucket();
    const r = replica(inflight, rate);
    expect(await r.lease().acquireAll(caps(5, 20), "cmd-1")).toBeUndefined();
    expect(inflight.held("host.h1")).toEqual(["cmd-1"]);
    expect(inflight.held("fleet")).toEqual(["cmd-1"]);
    expect(rate.held("host.h1")).toEqual(["cmd-1"]);
    expect(rate.held("fleet")).toEqual(["cmd-1"]);
    expect(inflight.calls.length + rate.calls.length).toBe(4);
    expect(inflight.maxInFlight).toBe(2);
    expect(rate.maxInFlight).toBe(2);
    await r.stop();
  });

  it("a cap of 0 is no cap", async () => {
    const inflight = bucket();
    const rate = bucket();
    const r = replica(inflight, rate);
    expect(await r.lease().acquireAll(caps(0, 0, 0, 0), "cmd-1")).toBeUndefined();
    expect([...inflight.calls, ...rate.calls]).toEqual([]);
    await r.stop();
  });

  it("a cap the board shows full is refused without a round trip", async () => {
    const inflight = bucket();
    const rate = bucket();
    const r = replica(inflight, rate);
    for (let i = 0; i < 2; i++) {
      expect(await r.lease().acquireAll(caps(2, 20), `cmd-${i}`)).toBeUndefined();
    }
    await settle();
    const before = inflight.calls.length + rate.calls.length;
    expect(await r.lease().acquireAll(caps(2, 20), "cmd-x")).toEqual({ cap: "host at once" });
    expect(inflight.calls.length + rate.calls.length).toBe(before);
    await r.stop();
  });

  it("a full rate cap says when its oldest slot expires", async () => {
    const inflight = bucket();
    const rate = bucket();
    const r = replica(inflight, rate);
    const first = r.lease();
    expect(await first.acquireAll(caps(5, 20, 2), "cmd-1")).toBeUndefined();
    await first.releaseAll(true);
    rate.now += 15_000;
    inflight.now += 15_000;
    const second = r.lease();
    expect(await second.acquireAll(caps(5, 20, 2), "cmd-2")).toBeUndefined();
    await second.releaseAll(true);
    await settle();
    expect(await r.lease().acquireAll(caps(5, 20, 2), "cmd-3")).toEqual({
      cap: "host a minute",
      freeInMs: 45_000,
    });
    // Once it has expired, its slot is free again.
    rate.now += 45_000;
    inflight.now += 45_000;
    expect(await r.lease().acquireAll(caps(5, 20, 2), "cmd-3")).toBeUndefined();
    expect(rate.held("host.h1").sort()).toEqual(["cmd-2", "cmd-3"]);
    await r.stop();
  });

  it("when one cap is full, what the others took is given back", async () => {
    const inflight = bucket();
    const rate = bucket();
    // This replica does not watch, so it only learns that the fleet cap is full by trying.
    const other = replica(inflight, rate);
    expect(await other.lease().acquireAll(caps(5, 1), "cmd-other")).toBeUndefined();
    const blind = replica(inflight, rate, { watch: false });
    const denial = await blind.lease().acquireAll(caps(5, 1), "cmd-2");
    expect(denial).toEqual({ cap: "fleet at once" });
    expect(inflight.held("host.h1")).toEqual(["cmd-other"]);
    expect(inflight.held("fleet")).toEqual(["cmd-other"]);
    expect(rate.held("host.h1")).toEqual(["cmd-other"]);
    expect(rate.held("fleet")).toEqual(["cmd-other"]);
    await Promise.all([other.stop(), blind.stop()]);
  });

  it("a stale board costs at most a few failed writes per cap, never a slot too many", async () => {
    const inflight = bucket();
    const rate = bucket();
    const seen = replica(inflight, rate);
    const blind = replica(inflight, rate, { watch: false });
    for (let i = 0; i < 3; i++) {
      expect(await seen.lease().acquireAll(caps(3, 20), `cmd-${i}`)).toBeUndefined();
    }
    const before = inflight.calls.length;
    expect(await blind.lease().acquireAll(caps(3, 20), "cmd-x")).toEqual({ cap: "host at once" });
    // The host cap: MAX_SLOT_TRIES failed creates; the fleet slot taken and given back.
    const hostTries = inflight.calls.slice(before).filter((c) => c.includes("host.h1"));
    expect(hostTries).toHaveLength(MAX_SLOT_TRIES);
    expect(inflight.held("host.h1")).toHaveLength(3);
    expect(inflight.held("fleet")).toHaveLength(3);
    await Promise.all([seen.stop(), blind.stop()]);
  });

  it("a released slot is taken again with one write at its marker's revision", async () => {
    const inflight = bucket();
    const rate = bucket();
    const r = replica(inflight, rate);
    const only = [{ bucket: "inflight", prefix: "fleet", cap: 1, label: "one" }] as const;
    const first = r.lease();
    expect(await first.acquireAll(only, "cmd-1")).toBeUndefined();
    await first.releaseAll(true);
    await settle();
    inflight.calls.length = 0;
    expect(await r.lease().acquireAll(only, "cmd-2")).toBeUndefined();
    expect(inflight.calls).toEqual(["update fleet.0@2"]);
    await r.stop();
  });

  it("many messages on several replicas at once never hold more slots than a cap", async () => {
    const inflight = bucket();
    const rate = bucket();
    const replicas = [
      replica(inflight, rate),
      replica(inflight, rate),
      replica(inflight, rate, { watch: false }),
    ];
    let peakHost = 0;
    let peakFleet = 0;
    let granted = 0;
    let seed = 7;
    const random = () => {
      seed = (seed * 48_271) % 2_147_483_647;
      return seed / 2_147_483_647;
    };
    await Promise.all(
      Array.from({ length: 60 }, async (_, i) => {
        const lease = (replicas[i % replicas.length] as (typeof replicas)[number]).lease(random);
        const denied = await lease.acquireAll(caps(3, 4, 1_000, 1_000), `cmd-${i}`);
        peakHost = Math.max(peakHost, inflight.held("host.h1").length);
        peakFleet = Math.max(peakFleet, inflight.held("fleet").length);
        if (denied) return;
        granted++;
        lease.markStarted(`cmd-${i}`);
        await new Promise((resolve) => setImmediate(resolve));
        await lease.releaseAll(true);
      }),
    );
    expect(peakHost).toBeLessThanOrEqual(3);
    expect(peakFleet).toBeLessThanOrEqual(4);
    expect(granted).toBeGreaterThan(0);
    expect(rate.held("fleet")).toHaveLength(granted);
    await Promise.all(replicas.map((r) => r.stop()));
  });

  describe("giving back", () => {
    async function holding() {
      const inflight = bucket();
      const rate = bucket();
      const r = replica(inflight, rate);
      const lease = r.lease();
      expect(await lease.acquireAll(caps(5, 20), "cmd-1")).toBeUndefined();
      return { inflight, rate, r, lease };
    }

    it("after success: in-progress slots only; the rate slots count for a minute", async () => {
      const { inflight, rate, r, lease } = await holding();
      await lease.releaseAll(true);
      expect(inflight.held("fleet")).toEqual([]);
      expect(rate.held("fleet")).toEqual(["cmd-1"]);
      await r.stop();
    });

    it("after a failure before the restart was sent: everything", async () => {
      const { inflight, rate, r, lease } = await holding();
      await lease.releaseAll(false);
      expect(inflight.held("fleet")).toEqual([]);
      expect(rate.held("fleet")).toEqual([]);
      expect(rate.held("host.h1")).toEqual([]);
      await r.stop();
    });

    it("after a failure once the restart was sent: the rate slots stay", async () => {
      const { inflight, rate, r, lease } = await holding();
      lease.markStarted("cmd-1");
      await lease.releaseAll(false);
      expect(inflight.held("fleet")).toEqual([]);
      expect(rate.held("fleet")).toEqual(["cmd-1"]);
      expect(rate.held("host.h1")).toEqual(["cmd-1"]);
      await r.stop();
    });

    it("once the restart is answered: its in-progress slots, at once", async () => {
      const { inflight, rate, r, lease } = await holding();
      lease.markStarted("cmd-1");
      await lease.finished("cmd-1", true);
      expect(inflight.held("fleet")).toEqual([]);
      expect(inflight.held("host.h1")).toEqual([]);
      expect(rate.held("fleet")).toEqual(["cmd-1"]);
      await lease.releaseAll(true);
      expect(rate.held("fleet")).toEqual(["cmd-1"]);
      await r.stop();
    });

    it("several restarts in one message: each one's slots, as it is answered", async () => {
      const { inflight, rate, r, lease } = await holding();
      lease.markStarted("cmd-1");
      expect(await lease.acquireAll(caps(5, 20), "cmd-2")).toBeUndefined();
      expect(inflight.held("host.h1").sort()).toEqual(["cmd-1", "cmd-2"]);
      await lease.finished("cmd-1", true);
      expect(inflight.held("host.h1")).toEqual(["cmd-2"]);
      // The message fails before the second restart is sent: its rate slots are given back.
      await lease.releaseAll(false);
      expect(inflight.held("host.h1")).toEqual([]);
      expect(rate.held("host.h1")).toEqual(["cmd-1"]);
      await r.stop();
    });

    it("after a restart that got no answer in time: nothing; the slots expire", async () => {
      const { inflight, rate, r, lease } = await holding();
      lease.markStarted("cmd-1");
      await lease.finished("cmd-1", false);
      await lease.releaseAll(false);
      expect(inflight.held("fleet")).toEqual(["cmd-1"]);
      expect(inflight.held("host.h1")).toEqual(["cmd-1"]);
      expect(rate.held("fleet")).toEqual(["cmd-1"]);
      inflight.now += TTL;
      expect(inflight.held("fleet")).toEqual([]);
      await r.stop();
    });

    it("a slot that expired and was taken by someone else stays theirs", async () => {
      const { inflight, rate, r, lease } = await holding();
      inflight.now += TTL;
      rate.now += TTL;
      const other = r.lease();
      expect(await other.acquireAll(caps(1, 1), "cmd-2")).toBeUndefined();
      await lease.releaseAll(false);
      expect(inflight.held("fleet")).toEqual(["cmd-2"]);
      expect(rate.held("fleet")).toEqual(["cmd-2"]);
      await r.stop();
    });
  });

  it("renewing rewrites the in-progress slots, which restarts their age", async () => {
    const inflight = bucket();
    const rate = bucket();
    const r = replica(inflight, rate);
    const lease = r.lease();
    expect(await lease.acquireAll(caps(5, 20), "cmd-1")).toBeUndefined();
    inflight.now += 40_000;
    rate.now += 40_000;
    await lease.renew();
    inflight.now += 40_000;
    rate.now += 40_000;
    expect(inflight.held("fleet")).toEqual(["cmd-1"]);
    expect(rate.held("fleet")).toEqual([]);
    await lease.releaseAll(true);
    expect(inflight.held("fleet")).toEqual([]);
    await r.stop();
  });
});

describe("SlotBoard", () => {
  it("keeps the newest revision it has seen of a slot", () => {
    const board = new SlotBoard(bucket(), TTL, () => 1_000);
    board.observe("fleet.0", "PUT", 7, 1_000);
    board.observe("fleet.0", "DEL", 5, 900);
    expect(board.look("fleet", 1).free).toEqual([]);
    board.observe("fleet.0", "DEL", 8, 1_000);
    expect(board.look("fleet", 1).free).toEqual([{ key: "fleet.0", revision: 8 }]);
  });

  it("looks at a few free slots from a starting point, not at every slot of a large cap", () => {
    const board = new SlotBoard(bucket(), TTL, () => 1_000);
    board.observe("fleet.99999", "PUT", 3, 1_000);
    board.observe("fleet.0", "PUT", 4, 1_000);
    const { free, freeInMs } = board.look("fleet", 100_000, { start: 99_998, limit: 3 });
    expect(free.map((f) => f.key)).toEqual(["fleet.99998", "fleet.1", "fleet.2"]);
    expect(freeInMs).toBeUndefined();
    // A full cap is still scanned to the end, to say when it frees.
    expect(board.look("fleet", 1, { limit: 1 })).toEqual({ free: [], freeInMs: TTL });
  });

  it("a slot a claim found taken is held for a moment, unless the watch knows better", () => {
    let now = 1_000;
    const board = new SlotBoard(bucket(), TTL, () => now);
    board.noteTaken("fleet.0", 0);
    expect(board.look("fleet", 1)).toEqual({ free: [], freeInMs: 1_000 });
    now += 1_000;
    expect(board.look("fleet", 1).free).toEqual([{ key: "fleet.0", revision: 0 }]);
    board.observe("fleet.1", "PUT", 9, now);
    board.noteTaken("fleet.1", 4);
    expect(board.look("fleet", 2).free).toEqual([{ key: "fleet.0", revision: 0 }]);
    expect(board.look("fleet", 2).freeInMs).toBeUndefined();
  });

  it("starts watching again after its watch fails, from a clean view", async () => {
    const slots = bucket();
    let watches = 0;
    const failing: SlotBucket = {
      ttlMs: TTL,
      get: (key) => slots.get(key),
      write: (key, value, revision) => slots.write(key, value, revision),
      delete: (key, revision) => slots.delete(key, revision),
      watch: async () => {
        watches++;
        if (watches === 1) throw new Error("no responders");
        return slots.watch();
      },
    };
    const board = new SlotBoard(failing, TTL, () => slots.now);
    board.observe("fleet.0", "PUT", 1, slots.now);
    board.start(pino({ level: "silent" }), 1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(watches).toBe(2);
    expect(board.look("fleet", 1).free).toEqual([{ key: "fleet.0", revision: 0 }]);
    await board.stop();
  });
});
