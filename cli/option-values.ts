import type { z } from "zod";
import { parseDuration } from "../contracts/index.js";
import { EventsQuery } from "../gateway/http/api-schemas.js";
import { UsageError } from "./args.js";
import { printable } from "./table.js";

// Option values checked on the command line, with messages that name the option and quote what
// was given: `--limit: expected a whole number, got "abc"`, never a schema library's wording.

const DAY_MS = 86_400_000;

/**
 * How far back the events stream keeps history: common/jetstream-resources.ts's
 * DEFAULT_STREAM_LIMITS.maxAgeMs (a test keeps them equal). Held here so that a command that
 * reads history does not load the NATS client to know it.
 */
export const HISTORY_RETENTION_MS = 7 * DAY_MS;

/** `"abc"`, as a message quotes a value: in JSON quotes, control characters escaped. */
export function quoted(value: unknown): string {
  return printable(JSON.stringify(String(value)));
}

/** A whole number option within [min, max]; its own message otherwise. */
export function wholeNumber(flag: string, value: string, min: number, max: number): number {
  const n = /^[0-9]{1,15}$/.test(value) ? Number(value) : Number.NaN;
  if (Number.isNaN(n))
    throw new UsageError(`--${flag}: expected a whole number, got ${quoted(value)}`);
  if (n < min || n > max) {
    throw new UsageError(
      `--${flag}: expected a whole number from ${min} to ${max}, got ${quoted(value)}`,
    );
  }
  return n;
}

/**
 * The first issue of a check of option values against one of the API's schemas, as a usage
 * error naming the option (`flagOf` maps a field of the API to its option) and the value given.
 */
export function optionIssue(
  error: z.ZodError,
  given: Readonly<Record<string, unknown>>,
  flagOf: (field: string) => string = (field) => field,
): UsageError {
  const issue = error.issues[0];
  const field = String(issue?.path[0] ?? "");
  const got = `got ${quoted(given[field])}`;
  const flag = `--${flagOf(field)}`;
  if (!issue) return new UsageError(`${flag}: invalid, ${got}`);
  switch (issue.code) {
    case "invalid_type":
      return new UsageError(
        `${flag}: expected ${issue.expected === "number" || issue.expected === "int" ? "a whole number" : issue.expected}, ${got}`,
      );
    case "too_small":
      return new UsageError(`${flag}: expected at least ${issue.minimum}, ${got}`);
    case "too_big":
      return new UsageError(`${flag}: expected at most ${issue.maximum}, ${got}`);
    case "invalid_value":
      return new UsageError(
        `${flag}: expected ${issue.values.map((v) => String(v)).join(", ")}, ${got}`,
      );
    default:
      // The API's own messages (formats, refinements) are written for people already.
      return new UsageError(`${flag}: ${issue.message}, ${got}`);
  }
}

const DAYS = /^([0-9]{1,4})d(.*)$/;

/**
 * The milliseconds of a duration as the API takes them (`30s`, `1h30m`, a bare number of
 * seconds) or with days first (`1d`, `7d`, `1d12h`), which the API does not take; undefined
 * when `value` is not one.
 */
export function durationMs(value: string): number | undefined {
  const days = DAYS.exec(value);
  if (!days) return parseDuration(value);
  const rest = days[2] === "" ? 0 : parseDuration(days[2] as string);
  return rest === undefined ? undefined : Number(days[1]) * DAY_MS + rest;
}

/**
 * A `--since` value checked against the history's retention and put the way the API takes it:
 * as given, but days in seconds (the API has no days). Anything further back
 * than the history goes is refused here, rather than answered with an empty page.
 */
export function sinceValue(value: string, now: number, flag = "since"): string {
  const ms = durationMs(value);
  const iso = ms === undefined && EventsQuery.shape.since.safeParse(value).success;
  if (ms === undefined && !iso) {
    throw new UsageError(
      `--${flag}: expected a duration back from now (30s, 15m, 2h, 1d, up to 7d) or an ISO-8601 time, got ${quoted(value)}`,
    );
  }
  const back = ms ?? now - Date.parse(value);
  if (back > HISTORY_RETENTION_MS) {
    throw new UsageError(
      `--${flag}: the history keeps 7 days, and ${quoted(value)} goes back further: give at most 7d`,
    );
  }
  if (ms === undefined || parseDuration(value) !== undefined) return value;
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}
