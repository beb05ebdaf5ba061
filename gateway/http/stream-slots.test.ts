import { describe, expect, it } from "vitest";
import { StreamSlots } from "./stream-slots.js";

describe("StreamSlots", () => {
  it("limits streams per address and in all, reporting each run of refusals once", () => {
    const slots = new StreamSlots(3, 2);
    const a1 = slots.take("a");
    const a2 = slots.take("a");
    expect(typeof a1).toBe("function");
    expect(typeof a2).toBe("function");
    expect(slots.take("a")).toEqual({ reason: "client-limit", first: true });
    expect(slots.take("a")).toEqual({ reason: "client-limit", first: false });
    const b1 = slots.take("b");
    expect(typeof b1).toBe("function");
    expect(slots.take("c")).toEqual({ reason: "limit", first: true });
    expect(slots.take("c")).toEqual({ reason: "limit", first: false });
    if (typeof a1 !== "function") throw new Error("no slot");
    a1();
    a1();
    expect(slots.inUse).toBe(2);
    expect(slots.heldBy("a")).toBe(1);
    const a3 = slots.take("a");
    expect(typeof a3).toBe("function");
    // A new run of refusals is reported again.
    expect(slots.take("a")).toEqual({ reason: "client-limit", first: true });
    expect(slots.take("c")).toEqual({ reason: "limit", first: true });
  });

  it("forgets an address once it holds no stream", () => {
    const slots = new StreamSlots(10, 1);
    const slot = slots.take("a");
    if (typeof slot !== "function") throw new Error("no slot");
    slot();
    expect(slots.heldBy("a")).toBe(0);
    expect(typeof slots.take("a")).toBe("function");
  });
});
