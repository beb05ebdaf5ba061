import type { Logger } from "../common/logger.js";
import type { DockerEngine } from "./docker-engine.js";
import {
  type DockerContainerEvent,
  type DockerEventRejection,
  parseDockerEventLine,
  sinceFromTimeNano,
} from "./docker-event.js";
import { NdjsonSplitter } from "./ndjson.js";

export interface EventPumpOptions {
  docker: DockerEngine;
  log: Logger;
  /** Receives every forwarded event, in Docker's order. Must return quickly and never throw. */
  onEvent: (event: DockerContainerEvent) => void;
  /** The stream is open (again); everything before it must be reconciled. */
  onConnected: () => void;
  /** The stream ended or failed; Docker is probably down. */
  onDisconnected: (error: unknown) => void;
  onRejected?: (reason: DockerEventRejection) => void;
  /** Reconnect delays: starts here and doubles up to the maximum. */
  reconnectDelayMs?: number;
  maxReconnectDelayMs?: number;
}

/**
 * Reads Docker's event stream for as long as the agent runs.
 *
 * Docker drops a listener that does not read for 100 ms, so the pump reads in 'data' callbacks
 * and hands each event on synchronously; nothing on this path awaits. The stream ends quietly
 * when dockerd restarts; the pump then reconnects with backoff and replays from the last event
 * it saw (Docker keeps the last 256), and tells the agent to reconcile whatever is older.
 */
export class EventPump {
  private stopped = false;
  private abort: AbortController | undefined;
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  /** Docker's timeNano of the last event read; the replay point after a gap. */
  lastTimeNano: string | undefined;

  constructor(private readonly options: EventPumpOptions) {}

  start(): void {
    this.loop = this.run();
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
    while (!this.stopped) {
      const abort = new AbortController();
      this.abort = abort;
      try {
        const since = this.lastTimeNano ? sinceFromTimeNano(this.lastTimeNano) : undefined;
        const stream = await this.options.docker.openEventStream({
          ...(since ? { since } : {}),
          signal: abort.signal,
        });
        delay = initialDelay;
        this.options.log.info({ since }, "Docker event stream open");
        this.options.onConnected();
        await this.consume(stream);
        if (!this.stopped) this.options.onDisconnected(new Error("Docker event stream ended"));
      } catch (error) {
        if (!this.stopped) this.options.onDisconnected(error);
      }
      if (this.stopped) break;
      await this.pause(delay);
      delay = Math.min(delay * 2, this.options.maxReconnectDelayMs ?? 5_000);
    }
  }

  private consume(stream: NodeJS.ReadableStream): Promise<void> {
    const splitter = new NdjsonSplitter();
    return new Promise<void>((resolve, reject) => {
      stream.on("data", (chunk: Buffer | string) => {
        for (const line of splitter.push(chunk)) this.handleLine(line);
      });
      stream.on("end", () => resolve());
      stream.on("close", () => resolve());
      stream.on("error", (error: Error) => (this.stopped ? resolve() : reject(error)));
    });
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
