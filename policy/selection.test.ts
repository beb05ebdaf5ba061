import { describe, expect, it } from "vitest";
import { DEFAULT_HEAL_POLICY, type HealPolicy } from "../contracts/index.js";
import { globMatches, selectionHold } from "./selection.js";

const web = { host: "host-a", name: "web-1", image: "ghcr.io/acme/web:1.4" };

function policy(patch: Partial<HealPolicy>): HealPolicy {
  return { ...DEFAULT_HEAL_POLICY, ...patch };
}

describe("globMatches", () => {
  it.each([
    ["web-1", "web-1", true],
    ["web-*", "web-1", true],
    ["web-*", "web-", true],
    ["web-*", "api-1", false],
    ["*", "", true],
    ["", "", true],
    ["", "x", false],
    ["?", "", false],
    ["w?b-1", "web-1", true],
    ["*:1.4", "ghcr.io/acme/web:1.4", true],
    ["ghcr.io/*", "docker.io/acme/web", false],
    ["*a*b", "xaxxb", true],
    ["*a*b", "xaxxbc", false],
    ["a**b", "ab", true],
    // Matched whole, not as a substring.
    ["web", "web-1", false],
  ])("%j against %j: %s", (pattern, text, expected) => {
    expect(globMatches(pattern, text)).toBe(expected);
  });

  it("answers a long near-miss on a hostile text (a backtracking regex would not return)", () => {
    expect(globMatches(`*${"a*".repeat(100)}b`, "a".repeat(1024))).toBe(false);
    expect(globMatches(`*${"a*".repeat(100)}b`, `${"a".repeat(1024)}b`)).toBe(true);
  });
});

describe("selectionHold", () => {
  it("selects every container by default", () => {
    expect(selectionHold(DEFAULT_HEAL_POLICY, web)).toBeUndefined();
  });

  it("holds a container whose healing is switched off on its host, by name", () => {
    const disabled = [
      { host: "host-a", name: "web-1", since: "2026-12-07T08:00:00Z", by: "gateway:admin" },
    ];
    expect(selectionHold(policy({ disabled }), web)).toMatchObject({
      code: "disabled",
      message: expect.stringContaining("by gateway:admin since 2026-12-07T08:00:00Z"),
    });
    expect(selectionHold(policy({ disabled }), { ...web, host: "host-b" })).toBeUndefined();
  });

  it("excludes by name or image pattern, and exclude wins over include", () => {
    const byName = policy({ exclude: { names: ["web-*"], images: [] } });
    expect(selectionHold(byName, web)).toMatchObject({
      code: "excluded",
      message: 'excluded by the fleet policy (name pattern "web-*")',
    });
    const byImage = policy({
      include: { names: ["web-1"], images: [] },
      exclude: { names: [], images: ["ghcr.io/acme/*"] },
    });
    expect(selectionHold(byImage, web)?.code).toBe("excluded");
  });

  it("with include patterns, holds what none of them matches", () => {
    const include = policy({ include: { names: [], images: ["*/web:*"] } });
    expect(selectionHold(include, web)).toBeUndefined();
    expect(selectionHold(include, { ...web, image: "redis:7" })?.code).toBe("not-included");
  });
});
