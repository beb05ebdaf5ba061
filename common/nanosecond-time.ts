/*
 * Times to the nanosecond. Docker stamps events with `timeNano` (nanoseconds since the epoch as
 * decimal digits, more than a JS number holds exactly) and containers with RFC 3339 StartedAt
 * times of up to nine fraction digits, which `Date` cuts to milliseconds. Every part of the
 * fleet reads them here, so they compare the same everywhere.
 */

const RFC3339 = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/i;

/** An RFC 3339 time read to the nanosecond. */
export interface NanoInstant {
  /** Nanoseconds since the epoch. */
  epochNanos: bigint;
  /** The fraction digits the time was written with (0 to 9; Go drops trailing zeros). */
  digits: number;
}

/**
 * Reads an RFC 3339 time, such as Docker's `2026-11-27T19:53:18.613456789Z`: digits beyond
 * nanoseconds are cut. Undefined when it is not one (no zone, an impossible date, an empty
 * fraction).
 */
export function parseInstant(value: string): NanoInstant | undefined {
  const match = RFC3339.exec(value.trim());
  if (!match) return undefined;
  const [, whole = "", fraction = "", zone = ""] = match;
  const ms = Date.parse(`${whole}${zone}`.toUpperCase());
  if (Number.isNaN(ms)) return undefined;
  const digits = fraction.slice(0, 9);
  return {
    epochNanos: BigInt(ms) * 1_000_000n + BigInt(digits.padEnd(9, "0")),
    digits: digits.length,
  };
}

/**
 * Orders two RFC 3339 times to the nanosecond, across offsets: negative, zero or positive, or
 * undefined if either cannot be read.
 */
export function compareInstants(a: string, b: string): number | undefined {
  const x = parseInstant(a);
  const y = parseInstant(b);
  if (x === undefined || y === undefined) return undefined;
  return x.epochNanos < y.epochNanos ? -1 : x.epochNanos > y.epochNanos ? 1 : 0;
}

/**
 * Whether two RFC 3339 times are the same instant: to the nanosecond, or to the millisecond
 * when either has no more than millisecond digits, because a time that passed through a `Date`
 * (a JSON client, a log) was cut to it. False if either cannot be read.
 */
export function sameInstant(a: string, b: string): boolean {
  const x = parseInstant(a);
  const y = parseInstant(b);
  if (x === undefined || y === undefined) return false;
  if (Math.min(x.digits, y.digits) > 3) return x.epochNanos === y.epochNanos;
  return floorDiv(x.epochNanos, 1_000_000n) === floorDiv(y.epochNanos, 1_000_000n);
}

/** Milliseconds since the epoch for a `timeNano` (cut, as `Date` cuts). */
export function msFromTimeNano(timeNano: string): number {
  return Number(floorDiv(BigInt(timeNano), 1_000_000n));
}

/** Division rounding down, also before 1970 (bigint division rounds toward zero). */
function floorDiv(n: bigint, d: bigint): bigint {
  const q = n / d;
  return n % d < 0n ? q - 1n : q;
}

/** The earlier of two `timeNano`s (either may be missing), compared exactly. */
export function earliestTimeNano(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return BigInt(b) < BigInt(a) ? b : a;
}
