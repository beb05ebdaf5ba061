import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { SKIP_CODES, skipCode } from "./skip-codes.js";

describe("skip codes", () => {
  it("are a fixed set: anything else is other", () => {
    expect(skipCode("storm-cap")).toBe("storm-cap");
    expect(skipCode("image-breaker")).toBe("image-breaker");
    expect(skipCode("Storm-Cap")).toBe("other");
    expect(skipCode("docker-error")).toBe("other");
    expect(skipCode("x".repeat(64))).toBe("other");
  });

  it("hold every code docs/POLICY.md lists for skipped and quarantined records", () => {
    const policy = readFileSync(new URL("../docs/POLICY.md", import.meta.url), "utf8");
    const rows = policy
      .split("\n")
      .filter((line) => /^\| `(skipped|quarantined)` /.test(line))
      .map((line) => line.split("|")[2] ?? "");
    expect(rows.length).toBeGreaterThan(5);
    const documented = rows.flatMap((cell) => [...cell.matchAll(/`([a-z-]+)`/g)].map((m) => m[1]));
    expect(documented.filter((code) => !SKIP_CODES.has(code ?? ""))).toEqual([]);
  });
});
