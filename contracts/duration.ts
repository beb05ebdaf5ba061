/*
 * Durations as people write them in labels and settings: Go/Docker style (`500ms`, `10s`,
 * `1m30s`) or a bare number of seconds.
 */

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };
const DURATION_PART = /([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ms|s|m|h)/y;
const PLAIN_NUMBER = /^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$/;

/**
 * Parses a Go/Docker style duration (`500ms`, `10s`, `1m30s`, `1.5h`) or a bare number of
 * seconds (`30`, `0.5`) into whole milliseconds. Units: ms, s, m, h. No sign, no spaces.
 * Returns undefined for anything else.
 */
export function parseDuration(value: string): number | undefined {
  if (typeof value !== "string" || value.length === 0 || value.length > 64) return undefined;
  let total: number;
  if (PLAIN_NUMBER.test(value)) {
    total = Number(value) * 1_000;
  } else {
    total = 0;
    DURATION_PART.lastIndex = 0;
    let at = 0;
    while (at < value.length) {
      DURATION_PART.lastIndex = at;
      const m = DURATION_PART.exec(value);
      if (!m) return undefined;
      const [whole, amount, unit] = m as unknown as [string, string, string];
      total += Number(amount) * (DURATION_UNITS[unit] ?? Number.NaN);
      at += whole.length;
    }
  }
  const ms = Math.round(total);
  return Number.isSafeInteger(ms) && ms >= 0 ? ms : undefined;
}

/** `30s`, `1m30s`, `250ms`, for messages. */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  const parts: string[] = [];
  let rest = ms;
  for (const [unit, size] of [
    ["h", 3_600_000],
    ["m", 60_000],
    ["s", 1_000],
    ["ms", 1],
  ] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return parts.join("");
}
