import type { ServerResponse } from "node:http";

/** How much a live stream may hold back for a client that does not keep up. */
export interface SseBufferLimits {
  /** Bytes queued on the stream's socket past which the stream is closed at its next message. */
  maxPendingBytes: number;
  /** How long a stream may wait for its socket to drain once it needs to before it is closed. */
  drainTimeoutMs: number;
  /** How long a closed stream's last bytes may take to leave before its socket is destroyed. */
  closeGraceMs: number;
}

export const DEFAULT_SSE_LIMITS: SseBufferLimits = {
  maxPendingBytes: 1024 * 1024,
  drainTimeoutMs: 30_000,
  closeGraceMs: 10_000,
};

/** Why a stream was closed because its client did not keep up. */
export type SlowClientReason = "buffer" | "drain";

/** The last comment of a stream closed because its client did not keep up. */
export const SLOW_CLIENT_COMMENT = ": closing: client too slow, resume with Last-Event-ID\n\n";

/**
 * Writes one Server-Sent Events response with a bounded buffer. Node queues whatever the socket
 * does not take at once, without limit; a client that stops reading would make the gateway hold
 * everything pushed to it. Here the bytes queued on the socket (`writableLength`) are checked
 * before each message: when they are already past the bound, the message is not written and the
 * stream is closed instead, as it is when the socket does not drain in time. So a stream holds at
 * most the bound plus one message (a large `/health` body still goes out whole to a client that
 * keeps up). Messages are written whole or not at all, so the last `id` a client received is
 * where it resumes with `Last-Event-ID`.
 */
export class SseWriter {
  private closing = false;
  private finished = false;
  private drainTimer: NodeJS.Timeout | undefined;
  private graceTimer: NodeJS.Timeout | undefined;
  private readonly waiting = new Set<() => void>();
  /** Resolves when the response is over: finished, or its connection gone. */
  readonly ended: Promise<void>;

  constructor(
    private readonly res: ServerResponse,
    private readonly limits: SseBufferLimits,
    /** Called once when the stream is closed because its client does not keep up. */
    private readonly onSlow: (reason: SlowClientReason, pendingBytes: number) => void,
  ) {
    this.ended = new Promise((resolve) => {
      const done = () => {
        this.finished = true;
        this.closing = true;
        this.clearTimers();
        this.wakeWaiting();
        resolve();
      };
      res.once("close", done);
      res.once("error", done);
    });
    res.on("drain", () => {
      if (this.drainTimer) clearTimeout(this.drainTimer);
      this.drainTimer = undefined;
      this.wakeWaiting();
    });
  }

  /** False once the stream is closing or closed: nothing more is written. */
  get open(): boolean {
    return !this.closing;
  }

  /** Bytes written but not yet taken by the socket. */
  get pendingBytes(): number {
    return this.finished ? 0 : this.res.writableLength;
  }

  /**
   * Writes one whole message, or closes the stream when the bytes already queued are past the
   * bound. Returns false when the message was not written.
   */
  send(message: string): boolean {
    if (this.closing) return false;
    if (this.res.writableLength > this.limits.maxPendingBytes) {
      this.slow("buffer");
      return false;
    }
    if (!this.res.write(message) && !this.drainTimer) {
      this.drainTimer = setTimeout(() => this.slow("drain"), this.limits.drainTimeoutMs);
      this.drainTimer.unref();
    }
    return true;
  }

  /**
   * Resolves once the socket has taken what was queued (below its high-water mark), or the
   * stream is over; for writers that can wait, such as a catch-up from history.
   */
  async room(): Promise<void> {
    while (!this.closing && this.res.writableNeedDrain) {
      await new Promise<void>((resolve) => this.waiting.add(resolve));
    }
  }

  /**
   * Ends the stream with a last comment. Its socket is destroyed if what is still queued has not
   * left within `graceMs`, so a client that never reads again holds nothing for long.
   */
  close(comment: string, graceMs = this.limits.closeGraceMs): void {
    if (this.closing) return;
    this.closing = true;
    if (this.drainTimer) clearTimeout(this.drainTimer);
    this.drainTimer = undefined;
    this.wakeWaiting();
    this.res.end(comment);
    if (this.finished) return;
    this.graceTimer = setTimeout(() => this.res.destroy(), graceMs);
    this.graceTimer.unref();
  }

  private slow(reason: SlowClientReason): void {
    if (this.closing) return;
    const pending = this.res.writableLength;
    this.close(SLOW_CLIENT_COMMENT);
    this.onSlow(reason, pending);
  }

  private wakeWaiting(): void {
    for (const wake of this.waiting) wake();
    this.waiting.clear();
  }

  private clearTimers(): void {
    if (this.drainTimer) clearTimeout(this.drainTimer);
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.drainTimer = undefined;
    this.graceTimer = undefined;
  }
}
