import { describe, expect, it } from "vitest";
import { MAX_RESYNC_PER_PASS, ResyncRotation, resyncBudget } from "./resync.js";

describe("resyncBudget", () => {
  it.each([
    [0, 10_000, MAX_RESYNC_PER_PASS],
    [9_000, 10_000, MAX_RESYNC_PER_PASS],
    [9_990, 10_000, 5],
    [9_999, 10_000, 0],
    [10_000, 10_000, 0],
    [12_000, 10_000, 0],
    [0, 100, 50],
  ])("depth %d of %d -> %d", (depth, capacity, expected) => {
    expect(resyncBudget(depth, capacity)).toBe(expected);
  });

  it("never fills the outbox, however often it is asked", () => {
    let depth = 0;
    for (let pass = 0; pass < 1_000; pass++) depth += resyncBudget(depth, 1_000);
    expect(depth).toBeLessThan(1_000);
  });
});

describe("ResyncRotation", () => {
  it("takes everyone when the budget allows, in the order given", () => {
    const r = new ResyncRotation();
    expect(r.choose(["a", "b", "c"], 10)).toEqual(["a", "b", "c"]);
    expect(r.choose(["a", "b", "c"], 10)).toEqual(["a", "b", "c"]);
  });

  it("takes turns: least recently re-asserted first", () => {
    const r = new ResyncRotation();
    const due = ["a", "b", "c", "d", "e"];
    expect(r.choose(due, 2)).toEqual(["a", "b"]);
    expect(r.choose(due, 2)).toEqual(["c", "d"]);
    expect(r.choose(due, 2)).toEqual(["e", "a"]);
    expect(r.choose(due, 2)).toEqual(["b", "c"]);
  });

  it("puts a newly due container first, and forgets one no longer due", () => {
    const r = new ResyncRotation();
    expect(r.choose(["a", "b"], 1)).toEqual(["a"]);
    expect(r.choose(["a", "b", "z"], 1)).toEqual(["b"]);
    expect(r.choose(["a", "z"], 1)).toEqual(["z"]);
    // b left the due set: when it is due again, it has never been re-asserted as far as it knows.
    expect(r.choose(["a", "b", "z"], 1)).toEqual(["b"]);
  });

  it("with no budget chooses nothing", () => {
    expect(new ResyncRotation().choose(["a"], 0)).toEqual([]);
    expect(new ResyncRotation().choose(["a"], -3)).toEqual([]);
  });
});
