import { describe, expect, it } from "vitest";
import { HealPolicy, type ImageFailures } from "../../contracts/index.js";
import { countOpenBreakers } from "./breakers-sync.js";

const T0 = Date.parse("2026-11-27T20:00:00.000Z");
const policy = HealPolicy.parse({ storm: { imageBreaker: { failures: 2, windowSeconds: 60 } } });

/** An entry with one failing container on each of `hosts`, `agoSeconds` before T0. */
function entry(image: string, hosts: string[], agoSeconds = 0): ImageFailures {
  return {
    v: 1,
    image,
    failures: hosts.map((host, i) => ({
      at: new Date(T0 - agoSeconds * 1000).toISOString(),
      host,
      containerId: `${i}`.padStart(12, "0"),
      incident: "run-1",
    })),
  };
}

describe("countOpenBreakers", () => {
  it("counts the entries whose breaker is open now, as the heal handler judges them", () => {
    const entries = [
      entry("web:1", ["a", "b"]),
      // Two containers on one host: one host cannot open it in a fleet of several.
      { ...entry("web:2", ["a"]), failures: [...entry("x", ["a", "a"]).failures] },
      // Open once, its failures have left the window.
      entry("web:3", ["a", "b"], 61),
    ];
    expect(countOpenBreakers(entries, T0, policy, true)).toBe(1);
    // On a one-host fleet that host counts in full.
    expect(countOpenBreakers(entries, T0, policy, false)).toBe(2);
    expect(countOpenBreakers([], T0, policy, true)).toBe(0);
    const off = HealPolicy.parse({ storm: { imageBreaker: { failures: 0 } } });
    expect(countOpenBreakers(entries, T0, off, true)).toBe(0);
  });
});
