import { describe, expect, it } from "vitest";
import { compareInstants, msFromTimeNano, parseInstant, sameInstant } from "./nanosecond-time.js";

const S = BigInt(Date.parse("2026-11-27T19:53:18Z")) * 1_000_000n;

describe("parseInstant", () => {
  it.each([
    ["Docker's StartedAt", "2026-11-27T19:53:18.613456789Z", S + 613_456_789n, 9],
    ["trailing zeros dropped by Go", "2026-11-27T19:53:18.61345678Z", S + 613_456_780n, 8],
    ["milliseconds", "2026-11-27T19:53:18.613Z", S + 613_000_000n, 3],
    ["whole seconds", "2026-11-27T19:53:18Z", S, 0],
    ["leading zeros kept", "2026-11-27T19:53:18.000000007Z", S + 7n, 9],
    ["an offset", "2026-11-27T20:53:18.5+01:00", S + 500_000_000n, 1],
    ["a negative offset", "2026-11-27T14:53:18.1-05:00", S + 100_000_000n, 1],
    ["digits beyond nanoseconds cut", "2026-11-27T19:53:18.6134567891234Z", S + 613_456_789n, 9],
    ["lower case t and z", "2026-11-27t19:53:18z", S, 0],
  ])("%s: %s", (_why, value, epochNanos, digits) => {
    expect(parseInstant(value)).toEqual({ epochNanos, digits });
  });

  it.each([
    ["empty", ""],
    ["not a time", "yesterday"],
    ["no zone", "2026-11-27T19:53:18.613456789"],
    ["space instead of T", "2026-11-27 19:53:18Z"],
    ["offset without colon", "2026-11-27T19:53:18+0100"],
    ["a date only", "2026-11-27"],
    ["an impossible month", "2026-13-27T19:53:18Z"],
    ["an impossible hour", "2026-11-27T25:53:18Z"],
    ["an empty fraction", "2026-11-27T19:53:18.Z"],
  ])("%s -> undefined", (_why, value) => {
    expect(parseInstant(value)).toBeUndefined();
  });
});

describe("compareInstants", () => {
  it("orders RFC 3339 times to the nanosecond, across offsets", () => {
    expect(compareInstants("2026-11-27T19:41:35.500000001Z", "2026-11-27T19:41:35.5Z")).toBe(1);
    expect(compareInstants("2026-11-27T19:41:35.5Z", "2026-11-27T19:41:35.500000000Z")).toBe(0);
    expect(compareInstants("2026-11-27T20:41:35+01:00", "2026-11-27T19:41:35.000000001Z")).toBe(-1);
    expect(compareInstants("2026-11-27T19:41:35Z", "not a time")).toBeUndefined();
  });
});

describe("sameInstant", () => {
  const STARTED = "2026-11-27T19:41:29.98123456Z";

  it.each([
    ["itself", STARTED],
    ["cut to milliseconds", "2026-11-27T19:41:29.981Z"],
    ["cut to milliseconds, another offset", "2026-11-27T20:41:29.981+01:00"],
    ["with Go's dropped zero written", "2026-11-27T19:41:29.981234560Z"],
  ])("%s is the same", (_why, other) => {
    expect(sameInstant(STARTED, other)).toBe(true);
    expect(sameInstant(other, STARTED)).toBe(true);
  });

  it.each([
    ["a few nanoseconds on", "2026-11-27T19:41:29.981234567Z"],
    ["the next millisecond", "2026-11-27T19:41:29.982Z"],
    ["whole seconds", "2026-11-27T19:41:29Z"],
    ["not a time", "yesterday"],
  ])("%s is not", (_why, other) => {
    expect(sameInstant(STARTED, other)).toBe(false);
  });
});

describe("msFromTimeNano", () => {
  it("cuts Docker's nanoseconds to milliseconds, as Date does", () => {
    expect(msFromTimeNano("1795808494172958659")).toBe(1795808494172);
    expect(new Date(msFromTimeNano("1795808494999999999")).toISOString()).toBe(
      "2026-11-27T19:41:34.999Z",
    );
    expect(msFromTimeNano("0")).toBe(0);
  });
});
