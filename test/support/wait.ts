import { setTimeout as delay } from "node:timers/promises";

/**
 * Thrown by a probe to stop {@link waitFor} at once, e.g. when the process being waited for has
 * already exited and polling on would only burn the rest of the deadline.
 */
export class GiveUpWaiting extends Error {
  override name = "GiveUpWaiting";
}

export interface WaitForOptions {
  timeoutMs: number;
  /** Pause between probes; default 50 ms. */
  intervalMs?: number;
  /** Used as the error message on timeout; a function is evaluated only then, so it can report state. */
  message: string | (() => string);
}

/**
 * Polls `probe` until it returns a truthy value and returns that value.
 *
 * A probe that throws counts as "not yet"; on timeout the error carries `message` and, as `cause`,
 * the last error a probe threw. A probe that throws {@link GiveUpWaiting} ends the wait with that
 * error. A probe still pending at the deadline does not extend it.
 */
export async function waitFor<T>(
  probe: () => T | undefined | false | null | Promise<T | undefined | false | null>,
  opts: WaitForOptions,
): Promise<T> {
  const intervalMs = opts.intervalMs ?? 50;
  const deadline = Date.now() + opts.timeoutMs;
  let lastError: unknown;
  let attempts = 0;

  for (;;) {
    attempts++;
    const remaining = deadline - Date.now();
    try {
      const value = await withDeadline(Promise.resolve().then(probe), remaining);
      if (value !== TIMED_OUT && value) return value;
    } catch (err) {
      if (err instanceof GiveUpWaiting) throw err;
      lastError = err;
    }
    const left = deadline - Date.now();
    if (left <= 0) {
      const base = typeof opts.message === "function" ? opts.message() : opts.message;
      const suffix =
        lastError === undefined ? "" : `; last probe error: ${describeError(lastError)}`;
      throw new Error(`${base} (gave up after ${opts.timeoutMs} ms, ${attempts} probes${suffix})`, {
        cause: lastError,
      });
    }
    await delay(Math.min(intervalMs, left));
  }
}

const TIMED_OUT: unique symbol = Symbol("timed out");

async function withDeadline<T>(p: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => resolve(TIMED_OUT), Math.max(0, ms));
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** One line describing an unknown thrown value, for error messages. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}
