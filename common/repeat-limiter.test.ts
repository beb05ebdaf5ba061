import { describe, expect, it } from "vitest";
import { RepeatLimiter } from "./repeat-limiter.js";

describe("RepeatLimiter", () => {
  it("reports the first occurrence, holds back the rest of the interval, then counts them", () => {
    let now = 1_000;
    const limiter = new RepeatLimiter(60_000, () => now);
    expect(limiter.take()).toBe(0);
    now += 10;
    expect(limiter.take()).toBeUndefined();
    now += 59_000;
    expect(limiter.take()).toBeUndefined();
    now += 990;
    expect(limiter.take()).toBe(2);
    expect(limiter.take()).toBeUndefined();
    now += 60_000;
    expect(limiter.take()).toBe(1);
  });
});
