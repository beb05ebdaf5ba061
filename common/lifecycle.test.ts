import { afterEach, describe, expect, it, vi } from "vitest";
import { settlesWithin } from "./lifecycle.js";

afterEach(() => {
  vi.useRealTimers();
});

describe("settlesWithin", () => {
  it("is true when the work settles in time", async () => {
    expect(await settlesWithin(Promise.resolve(), 1_000)).toBe(true);
  });

  it("is false once the time is up, and stops waiting without cancelling the work", async () => {
    vi.useFakeTimers();
    let finish: () => void = () => {};
    const work = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const verdict = settlesWithin(work, 5_000);
    await vi.advanceTimersByTimeAsync(4_999);
    let settled = false;
    void verdict.then(() => {
      settled = true;
    });
    await Promise.resolve();
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await verdict).toBe(false);
    finish();
    await expect(work).resolves.toBeUndefined();
  });

  it("passes the work's failure on", async () => {
    await expect(settlesWithin(Promise.reject(new Error("boom")), 1_000)).rejects.toThrow("boom");
  });

  it("takes a deadline already passed as no time at all", async () => {
    vi.useFakeTimers();
    const verdict = settlesWithin(new Promise(() => {}), -50);
    await vi.advanceTimersByTimeAsync(0);
    expect(await verdict).toBe(false);
  });
});
