import { describe, expect, it } from "vitest";
import { printable, relativeTime, renderTable, shortDuration } from "./table.js";

describe("renderTable", () => {
  it("aligns columns to the widest cell, numbers to the right, without trailing spaces", () => {
    const rows = [
      { name: "web", restarts: 3, host: "h1" },
      { name: "a-much-longer-name", restarts: 12, host: "h2" },
    ];
    expect(
      renderTable(
        [
          { header: "NAME", value: (r) => r.name },
          { header: "RESTARTS", value: (r) => String(r.restarts), align: "right" },
          { header: "HOST", value: (r) => r.host },
        ],
        rows,
      ),
    ).toEqual([
      "NAME                RESTARTS  HOST",
      "web                        3  h1",
      "a-much-longer-name        12  h2",
    ]);
  });

  it("prints only the header for no rows, and counts characters, not UTF-16 units", () => {
    expect(renderTable([{ header: "A", value: (r: string) => r }], [])).toEqual(["A"]);
    expect(
      renderTable(
        [
          { header: "X", value: (r: string) => r },
          { header: "Y", value: () => "|" },
        ],
        ["😀", "ab"],
      ),
    ).toEqual(["X   Y", "😀   |", "ab  |"]);
  });

  it("never sends a control character to the terminal", () => {
    expect(printable("evil\u001b[2Jname\n")).toBe("evil\\e[2Jname\\x0a");
    const [, row] = renderTable([{ header: "NAME", value: (r: string) => r }], ["a\u0007b"]);
    expect(row).toBe("a\\x07b");
  });
});

describe("relative times", () => {
  const now = Date.parse("2026-11-27T20:00:00.000Z");
  it.each([
    ["2026-11-27T20:00:00.400Z", "just now"],
    ["2026-11-27T19:59:55.000Z", "5s ago"],
    ["2026-11-27T19:57:00.000Z", "3m ago"],
    ["2026-11-27T17:59:00.000Z", "2h ago"],
    ["2026-11-24T20:00:00.000Z", "3d ago"],
    ["2026-11-27T20:05:00.000Z", "in 5m"],
    [undefined, "-"],
    ["not a time", "not a time"],
  ])("%s is %s", (iso, expected) => {
    expect(relativeTime(iso, now)).toBe(expected);
  });

  it("uses the largest unit only", () => {
    expect(shortDuration(59_999)).toBe("59s");
    expect(shortDuration(3_599_000)).toBe("59m");
    expect(shortDuration(86_400_000 * 2 + 5)).toBe("2d");
  });
});
