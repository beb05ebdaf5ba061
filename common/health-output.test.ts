import { describe, expect, it } from "vitest";
import { HealthOutput, MAX_HEALTH_OUTPUT } from "../contracts/index.js";
import { healthOutput } from "./health-output.js";

/** Every result must fit the contract; checked on each case. */
function out(raw: string | undefined): string | undefined {
  const result = healthOutput(raw);
  if (result !== undefined) expect(HealthOutput.safeParse(result).success).toBe(true);
  return result;
}

describe("healthOutput", () => {
  it("keeps plain output as it is, trailing whitespace trimmed", () => {
    expect(out("curl: (7) Failed to connect\n")).toBe("curl: (7) Failed to connect");
    expect(out("  indented\nsecond line \t \n\n")).toBe("  indented\nsecond line");
  });

  it("is undefined for nothing to show", () => {
    expect(out(undefined)).toBeUndefined();
    expect(out("")).toBeUndefined();
    expect(out(" \n\t\r\n ")).toBeUndefined();
  });

  it("escapes ANSI escape sequences", () => {
    expect(out("\u001b[31mred\u001b[0m")).toBe("\\u001b[31mred\\u001b[0m");
  });

  it("escapes \\r of \\r\\n line ends and keeps the newline", () => {
    expect(out("one\r\ntwo\r\n")).toBe("one\\u000d\ntwo");
    expect(out("progress 10%\rprogress 100%")).toBe("progress 10%\\u000dprogress 100%");
  });

  it("escapes NUL, tab, DEL and C1 controls", () => {
    expect(out("a\u0000b\tc\u007fd\u0080e\u009bf\u009fg")).toBe(
      "a\\u0000b\\u0009c\\u007fd\\u0080e\\u009bf\\u009fg",
    );
  });

  it("leaves printable characters beyond ASCII alone", () => {
    expect(out("état: échec 🚨 \u00a0ok")).toBe("état: échec 🚨 \u00a0ok");
  });

  it("keeps the last whole lines of a 100 KB output", () => {
    const lines = Array.from({ length: 2000 }, (_, i) => `line ${i} ${"x".repeat(40)}`);
    const result = out(`${lines.join("\n")}\n`) ?? "";
    expect(result.length).toBeLessThanOrEqual(MAX_HEALTH_OUTPUT);
    expect(result.endsWith(lines[1999] as string)).toBe(true);
    const kept = result.split("\n");
    // Whole lines only: each one is a line of the input, in order, ending with the last.
    expect(kept).toEqual(lines.slice(lines.length - kept.length));
    // As many as fit: one more would not.
    const oneMore = lines.slice(lines.length - kept.length - 1).join("\n");
    expect(oneMore.length).toBeGreaterThan(MAX_HEALTH_OUTPUT);
  });

  it("keeps the tail of a last line that alone is too long, after a leading …", () => {
    const long = `head ${"a".repeat(5000)} the verdict`;
    const result = out(`earlier line\n${long}`) ?? "";
    expect(result.length).toBe(MAX_HEALTH_OUTPUT);
    expect(result.startsWith("…")).toBe(true);
    expect(result.endsWith("a the verdict")).toBe(true);
    expect(result).not.toContain("\n");
  });

  it("counts escapes in the size and never cuts one in half", () => {
    // 400 ESCs escape to 2400 characters: the one line is too long once escaped.
    const result = out("\u001b".repeat(400)) ?? "";
    expect(result.length).toBeLessThanOrEqual(MAX_HEALTH_OUTPUT);
    expect(result.startsWith("…\\u001b")).toBe(true);
    expect(result.slice(1)).toMatch(/^(\\u001b)+$/);
  });

  it("drops a line that fits raw but not once escaped, rather than cutting it", () => {
    const result = out(`${"\u0007".repeat(300)}\nlast`);
    expect(result).toBe("last");
  });

  it("never splits a surrogate pair", () => {
    // Astral characters are two UTF-16 units; every cut position is tried.
    for (let pad = 0; pad < 4; pad++) {
      const result = out(`${"x".repeat(pad)}${"🚨".repeat(1500)}`) ?? "";
      expect(result.length).toBeLessThanOrEqual(MAX_HEALTH_OUTPUT);
      expect(Buffer.from(result, "utf8").toString("utf8")).toBe(result);
      expect(result.slice(1)).toMatch(/^(🚨)+$/u);
    }
  });

  it("replaces lone surrogates of a badly decoded output", () => {
    expect(out("bad \ud800 half \udc00.")).toBe("bad \ufffd half \ufffd.");
  });

  it("is idempotent: what it produced passes through unchanged", () => {
    const once = out(`\u001b[1mbold\r\n${"y".repeat(3000)}`);
    expect(out(once)).toBe(once);
  });
});
