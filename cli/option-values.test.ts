import { describe, expect, it } from "vitest";
import { DEFAULT_STREAM_LIMITS } from "../common/jetstream-resources.js";
import { ContainersQuery } from "../gateway/http/api-schemas.js";
import { UsageError } from "./args.js";
import {
  durationMs,
  HISTORY_RETENTION_MS,
  optionIssue,
  sinceValue,
  wholeNumber,
} from "./option-values.js";

const NOW = Date.parse("2026-11-27T20:00:00.000Z");

function usage(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return (error as Error).message;
  }
  throw new Error("no usage error");
}

describe("option values", () => {
  it("knows the history's retention as the events stream keeps it", () => {
    expect(HISTORY_RETENTION_MS).toBe(DEFAULT_STREAM_LIMITS.maxAgeMs);
  });

  it("reads whole numbers, quoting what was given otherwise", () => {
    expect(wholeNumber("limit", "10", 1, 1000)).toBe(10);
    expect(usage(() => wholeNumber("limit", "abc", 1, 1000))).toBe(
      '--limit: expected a whole number, got "abc"',
    );
    expect(usage(() => wholeNumber("limit", "1.5", 1, 1000))).toBe(
      '--limit: expected a whole number, got "1.5"',
    );
    expect(usage(() => wholeNumber("limit", "-1", 1, 1000))).toBe(
      '--limit: expected a whole number, got "-1"',
    );
    expect(usage(() => wholeNumber("limit", "0", 1, 1000))).toBe(
      '--limit: expected a whole number from 1 to 1000, got "0"',
    );
    expect(usage(() => wholeNumber("limit", "\u001b[2J", 1, 1000))).toBe(
      '--limit: expected a whole number, got "\\u001b[2J"',
    );
  });

  it("says what the API's schema refused without its wording", () => {
    const check = (given: Record<string, string>) => {
      const parsed = ContainersQuery.safeParse(given);
      if (parsed.success) throw new Error("accepted");
      return optionIssue(parsed.error, given, (f) => (f === "optedIn" ? "opted-in" : f)).message;
    };
    expect(check({ limit: "abc" })).toBe('--limit: expected a whole number, got "abc"');
    expect(check({ limit: "5000" })).toBe('--limit: expected at most 1000, got "5000"');
    expect(check({ health: "sick" })).toBe(
      '--health: expected healthy, unhealthy, starting, none, got "sick"',
    );
    expect(check({ optedIn: "maybe" })).toBe('--opted-in: expected 0, 1, true, false, got "maybe"');
    expect(check({ label: "=x" })).toBe(
      '--label: label filters look like key or key=value, got "=x"',
    );
  });

  it("reads durations with days, up to the history's 7 days", () => {
    expect(durationMs("1d")).toBe(86_400_000);
    expect(durationMs("1d12h")).toBe(129_600_000);
    expect(durationMs("90m")).toBe(5_400_000);
    expect(durationMs("1x")).toBeUndefined();
    expect(durationMs("1d1x")).toBeUndefined();
    expect(sinceValue("15m", NOW)).toBe("15m");
    expect(sinceValue("1d", NOW)).toBe("86400s");
    expect(sinceValue("7d", NOW)).toBe("604800s");
    expect(sinceValue("168h", NOW)).toBe("168h");
    expect(sinceValue("2026-11-25T00:00:00Z", NOW)).toBe("2026-11-25T00:00:00Z");
    expect(usage(() => sinceValue("8d", NOW))).toBe(
      '--since: the history keeps 7 days, and "8d" goes back further: give at most 7d',
    );
    expect(usage(() => sinceValue("169h", NOW))).toMatch(/keeps 7 days/);
    expect(usage(() => sinceValue("2026-11-01", NOW))).toMatch(/keeps 7 days/);
    expect(usage(() => sinceValue("yesterday", NOW))).toBe(
      '--since: expected a duration back from now (30s, 15m, 2h, 1d, up to 7d) or an ISO-8601 time, got "yesterday"',
    );
  });
});
