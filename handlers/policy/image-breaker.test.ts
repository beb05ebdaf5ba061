import { describe, expect, it } from "vitest";
import { HealPolicy, ImageFailures } from "../../contracts/index.js";
import { imageKey, recordImageFailure } from "./image-breaker.js";

const T0 = Date.parse("2026-11-27T20:00:00.000Z");
const policy = (failures: number, windowSeconds = 60) =>
  HealPolicy.parse({ storm: { imageBreaker: { failures, windowSeconds } } });
const failure = (n: number, atSeconds: number, incident = "run-1") => ({
  at: T0 + atSeconds * 1000,
  host: `h${n % 2}`,
  containerId: `${n}`.padStart(12, "0"),
  incident,
});

describe("recordImageFailure", () => {
  it("opens when the threshold of distinct failing containers is reached in the window", () => {
    let entry: ImageFailures | undefined;
    const states = [0, 1, 2].map((n) => {
      const state = recordImageFailure(entry, "web:1", failure(n, n), policy(3));
      entry = state.entry;
      return state;
    });
    expect(states.map((s) => [s.count, s.open])).toEqual([
      [1, false],
      [2, false],
      [3, true],
    ]);
    expect(ImageFailures.safeParse(entry).success).toBe(true);
  });

  it("counts an incident once, however often it is seen (redeliveries)", () => {
    const first = recordImageFailure(undefined, "web:1", failure(1, 0), policy(2));
    const again = recordImageFailure(first.entry, "web:1", failure(1, 5), policy(2));
    expect(again.entry.failures).toHaveLength(1);
    expect(again.open).toBe(false);
  });

  it("counts a container once even with several incidents in the window", () => {
    const first = recordImageFailure(undefined, "web:1", failure(1, 0, "run-1"), policy(2));
    const second = recordImageFailure(first.entry, "web:1", failure(1, 5, "run-2"), policy(2));
    expect(second.entry.failures).toHaveLength(2);
    expect(second.count).toBe(1);
    expect(second.open).toBe(false);
  });

  it("forgets failures older than the window, so the breaker closes again", () => {
    const first = recordImageFailure(undefined, "web:1", failure(1, 0), policy(2, 60));
    const later = recordImageFailure(first.entry, "web:1", failure(2, 61), policy(2, 60));
    expect(later.entry.failures.map((f) => f.containerId)).toEqual(["000000000002"]);
    expect(later.open).toBe(false);
  });

  it("never opens with a threshold of 0", () => {
    let entry: ImageFailures | undefined;
    for (let n = 0; n < 50; n++) {
      const state = recordImageFailure(entry, "web:1", failure(n, 0), policy(0));
      expect(state.open).toBe(false);
      entry = state.entry;
    }
  });

  it("keys images by a hash that is a valid KV key, stable and distinct", () => {
    expect(imageKey("registry.example:5000/team/web@sha256:abc")).toMatch(/^img-[0-9a-f]{32}$/);
    expect(imageKey("web:1")).toBe(imageKey("web:1"));
    expect(imageKey("web:1")).not.toBe(imageKey("web:2"));
  });
});
