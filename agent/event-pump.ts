import type { Logger } from "../common/logger.js";
import type { DockerEngine } from "./docker-engine.js";
import {
  type DockerContainerEvent,
  type DockerEventRejection,
  parseDockerEventLine,
  sinceFromTimeNano,
  timeNanoFromSince,
} from "./docker-event.js";
import { NdjsonSplitter } from "./ndjson.js";

export interface EventPumpOptions {
  docker: DockerEngine;
  log: Logger;
  /** Receives every forwarded event, in Docker's order. Must return quickly and never throw. */
  onEvent: (event: DockerContainerEvent) => void;
  /**
   * The stream is open again and every event Docker still had from the gap has been replayed:
   * reconcile whatever is older. Live events wait in the queue until this resolves.
   */
  onConnected: () => Promise<void>;
  /** The stream ended or failed; Docker is probably down. */
  onDisconnected: (error: unknown) => void;
  /** Lines were dropped because the queue was full: the agent must reconcile. */
  onOverflow: () => void;
  onRejected?: (reason: DockerEventRejection) => void;
  /** Where to replay from when the agent starts (the previous run's last event). */
  initialTimeNano?: string;
  /** Lines held between reading and processing. */
  queueCapacity?: number;
  /**
   * Longest wait for onConnected before live events flow anyway. A reconcile that hangs (an
   * inspect stuck behind a container dockerd is still restoring) must not hold every later
   * event, and with it every heal on the host, for as long as it hangs.
   */
  connectedDeadlineMs?: number;
  /** Reconnect delays: starts here and doubles up to the maximum. */
  reconnectDelayMs?: number;
  maxReconnectDelayMs?: number;
}

/** Counters for the pump. */
export interface EventPumpStats {
  queued: number;
  dropped: number;
  reconnects: number;
}

const BATCH = 256;

/**
 * Reads Docker's event stream for as long as the agent runs.
 *
 * Docker drops a listener that does not read for 100 ms, so reading never waits for
 * processing: each chunk is split into lines and queued, and the queue is drained in batches on
 * later turns of the event loop. After every gap (start, dockerd restart, stream error) the pump
 * takes Docker's clock T, opens the live stream from T (its events wait in the queue), replays
 * what Docker kept from the last event seen up to T, lets the agent reconcile, and only then
 * processes the live events, so everything is handled in Docker's order.
 */
export class EventPump {
  private stopped = false;
  private abort: AbortController | undefined;
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private readonly queue: string[] = [];
  private head = 0;
  private paused = true;
  private drainScheduled = false;
  private streaming = false;
  private readonly capacity: number;
  readonly stats: EventPumpStats = { queued: 0, dropped: 0, reconnects: 0 };
  /** Docker's timeNano of the last event processed; the replay point after a gap. */
  lastTimeNano: string | undefined;

  constructor(private readonly options: EventPumpOptions) {
    this.lastTimeNano = options.initialTimeNano;
    this.capacity = options.queueCapacity ?? 50_000;
  }

  start(): void {
    this.loop = this.run();
  }

  /**
   * The live stream is open and past its replay and reconcile: every Docker event from now on
   * reaches onEvent, so what the agent built from them is current.
   */
  get live(): boolean {
    return this.streaming && !this.stopped;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort?.abort();
    this.wake?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    const initialDelay = this.options.reconnectDelayMs ?? 100;
    let delay = initialDelay;
    let first = true;
    while (!this.stopped) {
      if (!first) this.stats.reconnects++;
      first = false;
      const abort = new AbortController();
      this.abort = abort;
      this.settleQueue();
      this.paused = true;
      try {
        const now = await this.options.docker.clock();
        const live = await this.options.docker.openEventStream({
          since: now,
          signal: abort.signal,
        });
        const liveEnded = this.read(live, (line) => this.enqueue(line));
        // Awaited only after the replay and the reconcile; until then a failure of the live
        // stream must not surface as an unhandled rejection.
        liveEnded.catch(() => {});
        const replayed = await this.replayUntil(now, abort.signal);
        if (this.stopped) break;
        delay = initialDelay;
        this.options.log.info({ replayed, since: this.lastTimeNano }, "Docker event stream open");
        await this.settledOrLate(this.options.onConnected());
        this.paused = false;
        this.streaming = true;
        this.scheduleDrain();
        await liveEnded;
        this.streaming = false;
        if (!this.stopped) this.options.onDisconnected(new Error("Docker event stream ended"));
      } catch (error) {
        this.streaming = false;
        if (!this.stopped) this.options.onDisconnected(error);
      }
      abort.abort();
      if (this.stopped) break;
      await this.pause(delay);
      delay = Math.min(delay * 2, this.options.maxReconnectDelayMs ?? 5_000);
    }
  }

  /** Waits for `connected`, or until the deadline passes (logged; the work goes on behind). */
  private async settledOrLate(connected: Promise<void>): Promise<void> {
    const deadlineMs = this.options.connectedDeadlineMs ?? 15_000;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<"late">((resolve) => {
      timer = setTimeout(() => resolve("late"), deadlineMs);
    });
    try {
      const outcome = await Promise.race([connected.then(() => "done" as const), late]);
      if (outcome === "late") {
        this.options.log.warn(
          { deadlineMs },
          "reconcile after (re)connecting is slow; forwarding live Docker events meanwhile",
        );
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Before reconnecting: lines left from a connection that went live are processed now, in
   * order, so the replay starts after them. Lines from a connection that never went live are
   * dropped instead: they are newer than a replay that did not finish, and the next replay
   * delivers them again.
   */
  private settleQueue(): void {
    if (!this.paused) {
      while (this.head < this.queue.length) this.handleLine(this.queue[this.head++] as string);
    }
    this.queue.length = 0;
    this.head = 0;
  }

  /** Replays the events Docker kept after the last one seen, up to `until`; returns how many. */
  private async replayUntil(until: string, signal: AbortSignal): Promise<number> {
    if (this.lastTimeNano === undefined) return 0;
    // Docker's `since` is inclusive: start one nanosecond after the last event processed.
    const from = BigInt(this.lastTimeNano) + 1n;
    if (from >= BigInt(timeNanoFromSince(until))) return 0;
    const stream = await this.options.docker.openEventStream({
      since: sinceFromTimeNano(from.toString()),
      until,
      signal,
    });
    let count = 0;
    await this.read(stream, (line) => {
      count++;
      this.handleLine(line);
    });
    return count;
  }

  private read(stream: NodeJS.ReadableStream, onLine: (line: string) => void): Promise<void> {
    const splitter = new NdjsonSplitter();
    return new Promise<void>((resolve, reject) => {
      stream.on("data", (chunk: Buffer | string) => {
        for (const line of splitter.push(chunk)) onLine(line);
      });
      stream.on("end", () => resolve());
      stream.on("close", () => resolve());
      stream.on("error", (error: Error) => (this.stopped ? resolve() : reject(error)));
    });
  }

  /** True when a line naming this container waits in the queue (cheap: ids are 64 hex chars). */
  hasQueuedEventFor(containerId: string): boolean {
    for (let i = this.head; i < this.queue.length; i++) {
      if ((this.queue[i] as string).includes(containerId)) return true;
    }
    return false;
  }

  private enqueue(line: string): void {
    if (this.queue.length - this.head >= this.capacity) {
      this.stats.dropped++;
      if (this.stats.dropped === 1 || this.stats.dropped % 1000 === 0) {
        this.options.log.error({ dropped: this.stats.dropped }, "event queue full; reconciling");
      }
      this.options.onOverflow();
      return;
    }
    this.queue.push(line);
    this.stats.queued++;
    this.scheduleDrain();
  }

  private scheduleDrain(): void {
    if (this.paused || this.drainScheduled || this.head >= this.queue.length) return;
    this.drainScheduled = true;
    setImmediate(() => this.drain());
  }

  private drain(): void {
    this.drainScheduled = false;
    const end = Math.min(this.head + BATCH, this.queue.length);
    while (!this.paused && this.head < end) {
      const line = this.queue[this.head] as string;
      this.head++;
      this.handleLine(line);
    }
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    }
    this.scheduleDrain();
  }

  private handleLine(line: string): void {
    const parsed = parseDockerEventLine(line);
    if (!parsed.ok) {
      if (parsed.reason !== "not-forwarded") {
        this.options.log.warn(
          { reason: parsed.reason, line: line.slice(0, 200) },
          "bad Docker event",
        );
      }
      this.options.onRejected?.(parsed.reason);
      return;
    }
    this.lastTimeNano = parsed.event.timeNano;
    this.options.onEvent(parsed.event);
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}
