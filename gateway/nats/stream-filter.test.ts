import { describe, expect, it } from "vitest";
import type { StreamRecord } from "../http/api-schemas.js";
import { filterSubjects, matchesFilter, sinceTime } from "./stream-filter.js";

const NOW = Date.parse("2026-11-27T20:00:00Z");

describe("filterSubjects", () => {
  it("reads the whole stream when nothing is filtered", () => {
    expect(filterSubjects({})).toEqual([undefined]);
  });

  it("takes one subject per kind under the stream's own subjects", () => {
    expect(filterSubjects({ host: "h1" })).toEqual([
      "fleetheal.v1.evt.h1.*.*",
      "fleetheal.v1.act.h1.*.*",
    ]);
    expect(filterSubjects({ kind: "remediation", container: "c1" })).toEqual([
      "fleetheal.v1.act.*.c1.*",
    ]);
  });

  it.each([
    ["host", { host: "h.1" }],
    ["container", { container: "c>" }],
  ])("refuses a %s that is not a subject token", (_part, filter) => {
    expect(() => filterSubjects(filter)).toThrow(/may contain only/);
  });
});

describe("matchesFilter", () => {
  const record = {
    kind: "remediation",
    remediation: { host: "h1", containerId: "c1" },
  } as unknown as StreamRecord;

  it.each([
    [{}, true],
    [{ kind: "remediation" as const, host: "h1", container: "c1" }, true],
    [{ kind: "event" as const }, false],
    [{ host: "h2" }, false],
    [{ container: "c2" }, false],
  ])("%j -> %s", (filter, expected) => {
    expect(matchesFilter(filter, record)).toBe(expected);
  });
});

describe("sinceTime", () => {
  it("goes back an hour by default", () => {
    expect(sinceTime(undefined, NOW)).toBe(NOW - 3_600_000);
  });

  it("reads a duration back from now, or a time or date", () => {
    expect(sinceTime("15m", NOW)).toBe(NOW - 900_000);
    expect(sinceTime("2026-11-27T19:00:00Z", NOW)).toBe(NOW - 3_600_000);
    expect(sinceTime("2026-11-27", NOW)).toBe(Date.parse("2026-11-27"));
  });

  it("refuses anything else", () => {
    expect(() => sinceTime("yesterday", NOW)).toThrow(/since must be/);
  });
});
