import { describe, expect, it } from "vitest";
import { HANDLER_STATS_TYPE, HandlerStats, handlerStatsSubject } from "./index.js";

const counters = { handled: 3, rejected: 0, retried: 1, deferred: 2, failed: 0, conflicts: 0 };

describe("HandlerStats", () => {
  it("takes a replica's counters per handler", () => {
    const stats = {
      type: HANDLER_STATS_TYPE,
      v: 1,
      replica: "fleetheal-handler-node-1-4242",
      handlers: { heal: counters, "auto-monitor": counters },
    };
    expect(HandlerStats.parse(stats)).toEqual(stats);
  });

  it("refuses negative or fractional counts, and handler names that are not tokens", () => {
    const base = { type: HANDLER_STATS_TYPE, v: 1, replica: "r1" };
    expect(
      HandlerStats.safeParse({ ...base, handlers: { heal: { ...counters, handled: -1 } } }),
    ).toMatchObject({ success: false });
    expect(
      HandlerStats.safeParse({ ...base, handlers: { heal: { ...counters, failed: 0.5 } } }),
    ).toMatchObject({ success: false });
    expect(HandlerStats.safeParse({ ...base, handlers: { "a.b": counters } })).toMatchObject({
      success: false,
    });
  });

  it("is asked for on the replica's own subject", () => {
    expect(handlerStatsSubject("fleetheal-handler-node-1-4242")).toBe(
      "fleetheal.v1.handler.fleetheal-handler-node-1-4242.stats",
    );
    expect(() => handlerStatsSubject("a.b")).toThrow();
  });
});
