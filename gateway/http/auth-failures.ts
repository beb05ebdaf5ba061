/** Failed authentications allowed per client address in one window, unless told otherwise. */
export const DEFAULT_AUTH_FAILURES_PER_MINUTE = 20;
/** Most client addresses remembered at once; the oldest window is forgotten first. */
const MAX_ADDRESSES = 10_000;
const WINDOW_MS = 60_000;

interface Window {
  startedAt: number;
  failures: number;
}

/**
 * Counts failed authentications per client address in fixed one-minute windows, so that a
 * client guessing tokens is answered 429 past the limit, before its token is even checked. The
 * address is Fastify's `request.ip`, which honours the gateway's trust-proxy setting. Memory is
 * bounded: at most {@link MAX_ADDRESSES} windows are kept.
 */
export class AuthFailures {
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly maxPerMinute = DEFAULT_AUTH_FAILURES_PER_MINUTE,
    private readonly now: () => number = Date.now,
  ) {}

  /** Seconds until the address may try again, or undefined when it may try now. */
  blockedFor(address: string): number | undefined {
    const window = this.current(address);
    if (!window || window.failures < this.maxPerMinute) return undefined;
    return Math.max(1, Math.ceil((window.startedAt + WINDOW_MS - this.now()) / 1000));
  }

  /** One more failed authentication from the address. */
  failed(address: string): void {
    const window = this.current(address);
    if (window) {
      window.failures++;
      return;
    }
    if (this.windows.size >= MAX_ADDRESSES) {
      const oldest = this.windows.keys().next().value;
      if (oldest !== undefined) this.windows.delete(oldest);
    }
    this.windows.set(address, { startedAt: this.now(), failures: 1 });
  }

  /** The address's window, if it is still running; an ended one is forgotten. */
  private current(address: string): Window | undefined {
    const window = this.windows.get(address);
    if (window && this.now() - window.startedAt >= WINDOW_MS) {
      this.windows.delete(address);
      return undefined;
    }
    return window;
  }
}
