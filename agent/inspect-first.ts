import type { Logger } from "../common/logger.js";
import { earliestTimeNano } from "../common/nanosecond-time.js";
import type { DockerContainerEvent } from "./docker-event.js";

/** What the hold needs: the inspect, and where each event goes once it may. */
export interface InspectFirstOptions {
  /** Re-inspects the container into the host state; settles when that is done (or failed). */
  refresh(containerId: string): Promise<void>;
  /**
   * Forwards one event, in Docker's order for its container. `inspected`: an inspect that began
   * after the event has just been applied, so the event needs no inspect of its own.
   */
  forward(event: DockerContainerEvent, inspected: boolean): void;
  /** Longest wait for the inspect; after it the events go on with what the agent knows. */
  waitMs: number;
  log: Logger;
}

/**
 * Holds each Docker health event until the inspect that follows it. Docker's `health_status`
 * event names the new status but not the output of the check that caused it, which only an
 * inspect shows (`State.Health.Log`), and the events are what the handlers record and notify
 * from. Later events of the same container wait behind a held one, so that each container's
 * events keep Docker's order; other containers' events are not held up. The wait is one inspect,
 * and never longer than `waitMs`.
 */
export class InspectFirst {
  /** Per container with a held health event, it and the events that came after it. */
  private readonly held = new Map<string, DockerContainerEvent[]>();
  private readonly releasing = new Set<Promise<void>>();

  constructor(private readonly options: InspectFirstOptions) {}

  /** One event from Docker's stream, in Docker's order. */
  push(event: DockerContainerEvent): void {
    const waiting = this.held.get(event.containerId);
    if (waiting) {
      waiting.push(event);
      return;
    }
    if (event.action !== "healthy" && event.action !== "unhealthy") {
      this.options.forward(event, false);
      return;
    }
    this.held.set(event.containerId, [event]);
    const done = this.release(event.containerId);
    this.releasing.add(done);
    void done.finally(() => this.releasing.delete(done));
  }

  /** Whether events of this container are held: they are on their way to subscribers. */
  holds(containerId: string): boolean {
    return this.held.has(containerId);
  }

  /** Docker's time of the oldest event held, which a restarted agent must replay from. */
  oldestTimeNano(): string | undefined {
    let oldest: string | undefined;
    for (const [first] of this.held.values()) {
      if (first) oldest = earliestTimeNano(oldest, first.timeNano);
    }
    return oldest;
  }

  /** Settles when every event held now has been forwarded. */
  async idle(): Promise<void> {
    await Promise.all([...this.releasing]);
  }

  private async release(containerId: string): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const inspected = await Promise.race([
      this.options.refresh(containerId).then(
        () => true,
        () => false,
      ),
      new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), this.options.waitMs);
      }),
    ]);
    clearTimeout(timer);
    if (!inspected) {
      this.options.log.warn(
        { containerId, waitMs: this.options.waitMs },
        "no inspect after a health event in time; forwarding it without the check's output",
      );
    }
    const events = this.held.get(containerId) ?? [];
    this.held.delete(containerId);
    events.forEach((event, i) => {
      try {
        this.options.forward(event, inspected && i === 0);
      } catch (error) {
        this.options.log.error({ err: error, containerId }, "forwarding a held event failed");
      }
    });
  }
}
