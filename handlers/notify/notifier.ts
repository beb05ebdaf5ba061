import { describeError, FleethealError } from "../../common/errors.js";
import type { Logger } from "../../common/logger.js";
import { VERSION } from "../../common/version.js";
import type { NotifyPayload } from "./payloads.js";
import { type NotifyTarget, scrub } from "./targets.js";

/** One notification for one target: what a `notify` decision carries. */
export interface NotifySend {
  /** `<record id>:<target index>`; a key this process already delivered is not sent again. */
  key: string;
  target: NotifyTarget;
  payload: NotifyPayload;
}

/** How a send ended, when it did not throw. */
export type DeliveryResult =
  | { outcome: "sent"; status: number; attempts: number; durationMs: number }
  /** This process already delivered this key (a redelivered record); nothing was sent. */
  | { outcome: "duplicate" }
  /**
   * The target answered with a client error that retrying cannot fix (400, 401, 403, 404, …):
   * logged as an error and dropped, so that a broken target does not hold back the others.
   */
  | { outcome: "rejected"; status: number; attempts: number; durationMs: number };

/**
 * The port through which the handler runtime sends notifications. `deliver` retries quickly by
 * itself and rejects with a {@link NotifyError} (whose message names the target only in its
 * redacted form) when every attempt failed; the runtime then fails the delivery so that
 * JetStream redelivers the record later.
 */
export interface Notifier {
  deliver(send: NotifySend, log: Logger): Promise<DeliveryResult>;
}

/** Every attempt to reach a target failed. The message is safe to log. */
export class NotifyError extends FleethealError {
  override readonly name = "NotifyError";
  constructor(
    readonly target: string,
    readonly attempts: number,
    /** The last attempt's failure: `HTTP 500`, `timed out after 5000 ms`, `fetch failed: …`. */
    readonly reason: string,
  ) {
    super(
      "FLEETHEAL_ERR_NOTIFY",
      `notification to ${target} failed after ${attempts} attempts: ${reason}`,
    );
  }
}

/** Waits between the quick attempts of one delivery: 4 attempts in about 3.5 s plus timeouts. */
export const RETRY_DELAYS_MS: readonly number[] = [500, 1_000, 2_000];

/** Keys remembered as delivered; far more than the records in flight at any time. */
const DEDUP_CAPACITY = 10_000;

export interface WebhookNotifierOptions {
  /** Per-attempt timeout, connection and response headers included. */
  timeoutMs: number;
  retryDelaysMs?: readonly number[];
  /** Injected in tests; the global fetch otherwise. */
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
  dedupCapacity?: number;
}

type Attempt =
  | { ok: true; status: number }
  | { ok: false; permanent: boolean; status?: number; reason: string };

/**
 * The real {@link Notifier}: POSTs with the global fetch, one timeout per attempt, exponential
 * quick retries, and an in-process LRU of delivered keys so that a redelivered record does not
 * reach again the targets that already got it (when the same replica receives it; see
 * docs/NOTIFY.md for the at-least-once guarantee).
 */
export class WebhookNotifier implements Notifier {
  private readonly fetch: typeof fetch;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly now: () => number;
  private readonly retryDelaysMs: readonly number[];
  private readonly capacity: number;
  /** Key -> the send, in flight or done. Insertion order is recency order. */
  private readonly delivered = new Map<string, Promise<DeliveryResult>>();

  constructor(private readonly options: WebhookNotifierOptions) {
    this.fetch = options.fetch ?? globalThis.fetch;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.now = options.now ?? Date.now;
    this.retryDelaysMs = options.retryDelaysMs ?? RETRY_DELAYS_MS;
    this.capacity = options.dedupCapacity ?? DEDUP_CAPACITY;
  }

  async deliver(send: NotifySend, log: Logger): Promise<DeliveryResult> {
    const known = this.delivered.get(send.key);
    if (known) {
      this.remember(send.key, known);
      // Still in flight from an earlier delivery: its outcome is this one's too.
      await known;
      log.debug(
        { target: send.target.label, key: send.key },
        "already notified; not sending again",
      );
      return { outcome: "duplicate" };
    }
    const job = this.send(send, log);
    this.remember(send.key, job);
    job.then(undefined, () => {
      // Failed sends are forgotten, so that the redelivery tries them again.
      if (this.delivered.get(send.key) === job) this.delivered.delete(send.key);
    });
    return job;
  }

  private remember(key: string, job: Promise<DeliveryResult>): void {
    this.delivered.delete(key);
    this.delivered.set(key, job);
    while (this.delivered.size > this.capacity) {
      const oldest = this.delivered.keys().next().value as string;
      this.delivered.delete(oldest);
    }
  }

  private async send(send: NotifySend, log: Logger): Promise<DeliveryResult> {
    const { target, key } = send;
    const started = this.now();
    for (let attempt = 1; ; attempt++) {
      const result = await this.attempt(send);
      const durationMs = this.now() - started;
      if (result.ok) {
        log.info(
          { target: target.label, key, status: result.status, attempts: attempt, durationMs },
          "notification sent",
        );
        return { outcome: "sent", status: result.status, attempts: attempt, durationMs };
      }
      if (result.permanent) {
        const status = result.status ?? 0;
        log.error(
          { target: target.label, key, status, attempts: attempt, err: result.reason },
          "notification rejected by the target; not retrying (check the target's URL)",
        );
        return { outcome: "rejected", status, attempts: attempt, durationMs };
      }
      const delayMs = this.retryDelaysMs[attempt - 1];
      if (delayMs === undefined) {
        throw new NotifyError(target.label, attempt, result.reason);
      }
      log.warn(
        { target: target.label, key, attempt, retryInMs: delayMs, err: result.reason },
        "notification attempt failed; retrying",
      );
      await this.sleep(delayMs);
    }
  }

  private async attempt({ target, payload }: NotifySend): Promise<Attempt> {
    const headers: Record<string, string> = {
      "User-Agent": `fleetheal/${VERSION}`,
      ...payload.headers,
    };
    if (target.authorization) headers.Authorization = target.authorization;
    const timeoutMs = this.options.timeoutMs;
    try {
      const res = await this.fetch(target.url, {
        method: "POST",
        headers,
        body: payload.body,
        signal: AbortSignal.timeout(timeoutMs),
      });
      // The body is not needed; release the connection.
      await res.body?.cancel().catch(() => {});
      if (res.ok) return { ok: true, status: res.status };
      return {
        ok: false,
        permanent: isPermanent(res.status),
        status: res.status,
        reason: `HTTP ${res.status}`,
      };
    } catch (error) {
      return {
        ok: false,
        permanent: false,
        reason: scrub(fetchFailure(error, timeoutMs), [target]),
      };
    }
  }
}

/** Client errors that a retry cannot fix. 408, 425 and 429 are worth retrying. */
function isPermanent(status: number): boolean {
  return status >= 400 && status < 500 && status !== 408 && status !== 425 && status !== 429;
}

/** fetch's errors say `fetch failed` and keep the reason in `cause`. */
function fetchFailure(error: unknown, timeoutMs: number): string {
  const name = (error as { name?: unknown })?.name;
  if (name === "TimeoutError" || name === "AbortError") return `timed out after ${timeoutMs} ms`;
  const cause = (error as { cause?: unknown })?.cause;
  if (cause === undefined) return describeError(error);
  const code = (cause as { code?: unknown }).code;
  return `${describeError(error)}: ${typeof code === "string" ? code : describeError(cause)}`;
}
