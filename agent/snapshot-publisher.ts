import type { HostSnapshot } from "../contracts/index.js";
import { UnpublishableError } from "./outbox.js";

export interface SnapshotPublisherOptions {
  /** The snapshot now; `withoutLabels`: with every container's labels left out (and counted). */
  take: (withoutLabels: boolean) => HostSnapshot;
  /** Stores and announces one snapshot (KV put and subject publish). */
  publish: (snapshot: HostSnapshot) => Promise<void>;
  /** Changes within this window are coalesced into one snapshot. */
  debounceMs: number;
  /** A snapshot goes out at least this often, so readers can tell a live host from a dead one. */
  heartbeatMs: number;
  onError: (error: unknown) => void;
  /**
   * The full snapshot was refused for good (too large), so one without labels went out instead.
   * Called when that starts, not on every snapshot while it lasts; `false` once a full one is
   * published again.
   */
  onWithoutLabels?: (error: UnpublishableError | false) => void;
}

/**
 * Publishes the host snapshot on change (debounced) and on a heartbeat. At most one publish is
 * in flight; a change during a publish causes exactly one more. A snapshot the server refuses
 * for good (larger than NATS's message size limit, which labels alone cannot reach but many
 * containers' labels can) is replaced by one without labels, so the host never goes dark.
 */
export class SnapshotPublisher {
  private debounceTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private publishing: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  /** Before start(), changes are only remembered by the state; start() publishes them all. */
  private started = false;
  /** The last snapshot went out without labels. */
  private withoutLabels = false;

  constructor(private readonly options: SnapshotPublisherOptions) {}

  start(): void {
    this.started = true;
    this.heartbeatTimer = setInterval(() => this.publishNow(), this.options.heartbeatMs);
    this.publishNow();
  }

  /** Something a snapshot shows has changed. */
  changed(): void {
    if (!this.started || this.stopped || this.debounceTimer) return;
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = undefined;
      this.publishNow();
    }, this.options.debounceMs);
  }

  /** Publishes now (or right after the publish in flight). */
  publishNow(): void {
    if (!this.started || this.stopped) return;
    if (this.publishing) {
      this.again = true;
      return;
    }
    // take() and publish() run inside the promise, so a synchronous throw is reported, not
    // raised from a timer callback.
    this.publishing = Promise.resolve()
      .then(() => this.publishTaken())
      .catch(this.options.onError)
      .finally(() => {
        this.publishing = undefined;
        if (this.again) {
          this.again = false;
          this.publishNow();
        }
      });
  }

  private async publishTaken(): Promise<void> {
    try {
      await this.options.publish(this.options.take(false));
    } catch (error) {
      if (!(error instanceof UnpublishableError)) throw error;
      if (!this.withoutLabels) this.options.onWithoutLabels?.(error);
      this.withoutLabels = true;
      await this.options.publish(this.options.take(true));
      return;
    }
    if (this.withoutLabels) this.options.onWithoutLabels?.(false);
    this.withoutLabels = false;
  }

  /** Stops the timers and waits for the publish in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.debounceTimer);
    clearInterval(this.heartbeatTimer);
    await this.publishing;
  }
}
