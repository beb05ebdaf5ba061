import { describeError } from "../common/errors.js";
import type { Logger } from "../common/logger.js";
import type { ContainerDetails, DockerEngine } from "./docker-engine.js";

/** What the coalescer needs: Docker's inspect, and where each inspect's result goes. */
export interface RefreshCoalescerOptions {
  docker: Pick<DockerEngine, "inspect">;
  /** Takes one inspect's result: the container's details, or undefined when it is gone. */
  apply(containerId: string, details: ContainerDetails | undefined): void;
  log: Logger;
}

interface Refreshing {
  /** Another trigger arrived during the inspect in progress: one more inspect follows. */
  again: boolean;
  done: Promise<void>;
}

/**
 * Re-inspects containers on demand, one inspect at a time per container. Calls for a container
 * already being inspected are coalesced into one more inspect afterwards, so the last inspect
 * always follows the last trigger, however many triggers arrive meanwhile.
 */
export class RefreshCoalescer {
  private readonly refreshing = new Map<string, Refreshing>();
  /** Containers whose last inspect failed: what the agent knows of them may have missed a change. */
  private readonly unverified = new Set<string>();

  constructor(private readonly options: RefreshCoalescerOptions) {}

  /** Re-inspects one container; settles once an inspect that began after this call is applied. */
  refresh(containerId: string): Promise<void> {
    const running = this.refreshing.get(containerId);
    if (running) {
      running.again = true;
      return running.done;
    }
    const entry: Refreshing = { again: true, done: Promise.resolve() };
    this.refreshing.set(containerId, entry);
    entry.done = this.inspectUntilSettled(containerId, entry).finally(() =>
      this.refreshing.delete(containerId),
    );
    return entry.done;
  }

  /** The inspects of this container in progress, if any: it is current once they are done. */
  pending(containerId: string): Promise<void> | undefined {
    return this.refreshing.get(containerId)?.done;
  }

  /** Whether the last inspect of this container worked (or none has failed yet). */
  verified(containerId: string): boolean {
    return !this.unverified.has(containerId);
  }

  private async inspectUntilSettled(containerId: string, entry: Refreshing): Promise<void> {
    try {
      while (entry.again) {
        entry.again = false;
        const details = await this.options.docker.inspect(containerId);
        this.unverified.delete(containerId);
        this.options.apply(containerId, details);
      }
    } catch (error) {
      // What is known may now lag behind an event: commands must ask Docker until an inspect works.
      this.unverified.add(containerId);
      this.options.log.warn({ containerId, err: describeError(error) }, "inspect failed");
    }
  }
}
