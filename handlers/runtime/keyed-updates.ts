import type { Versioned } from "../decisions.js";

/** One key's storage, as {@link KeyedUpdates} needs it. */
export interface UpdateTarget<T> {
  read(): Promise<Versioned<T> | undefined>;
  /** Writes `value` if the key is still at `revision` (0: the key must not exist); returns the
   * new revision, or `undefined` when the key has moved on meanwhile. */
  write(value: T, revision: number): Promise<number | undefined>;
}

interface Waiter<T> {
  update: (current: T | undefined) => T;
  resolve: (result: UpdateResult<T>) => void;
  reject: (error: unknown) => void;
  /** What this waiter's update returned on the latest attempt. */
  own?: T;
}

/** What an update stored. */
export interface UpdateResult<T> {
  /** The key as written: this update and the others of its batch. */
  written: Versioned<T>;
  /** The value right after this update, before those that came after it in the batch. */
  own: T;
}

interface Queue<T> {
  waiting: Waiter<T>[];
  /** What this replica last wrote or read of the key while its queue was busy (null: absent). */
  latest: Versioned<T> | null | undefined;
}

/** Thrown when a key kept moving under every attempt. */
export class UpdateConflictError extends Error {
  override readonly name = "UpdateConflictError";
  readonly code = "FLEETHEAL_ERR_UPDATE_CONFLICT";
}

/**
 * Read-modify-writes with compare-and-set, coalesced per key within this replica: the updates
 * that arrive while one write of a key is in flight are applied together, in order, in the next
 * write, starting from the revision this replica has just written. In a storm, every container
 * of a failing image counts itself against one breaker key; done one by one, the concurrent
 * messages of a single replica would lose most of their compare-and-sets to each other and
 * decide again (docs/benchmarks/PERFORMANCE.md, "Handler throughput and storm"). Coalesced, only other
 * replicas can make a write conflict, and a conflict re-reads the key and re-applies every
 * update of the batch. Each update function must be pure: it may run more than once.
 */
export class KeyedUpdates<T> {
  private readonly queues = new Map<string, Queue<T>>();

  constructor(private readonly maxAttempts: number) {}

  /**
   * Applies `update` to the key's latest value and stores the result; resolves with what was
   * stored, which includes the updates written in the same batch, and with this update's own
   * result. `known` is a recent read of the key that the first attempt may start from; `null`
   * says the key was read and is absent, so the first attempt creates it without reading again.
   */
  apply(
    id: string,
    target: UpdateTarget<T>,
    update: (current: T | undefined) => T,
    known?: Versioned<T> | null,
  ): Promise<UpdateResult<T>> {
    return new Promise((resolve, reject) => {
      const waiter: Waiter<T> = { update, resolve, reject };
      const queue = this.queues.get(id);
      if (queue) {
        queue.waiting.push(waiter);
        return;
      }
      const fresh: Queue<T> = { waiting: [waiter], latest: known };
      this.queues.set(id, fresh);
      void this.drain(id, fresh, target);
    });
  }

  private async drain(id: string, queue: Queue<T>, target: UpdateTarget<T>): Promise<void> {
    while (queue.waiting.length > 0) {
      const batch = queue.waiting.splice(0);
      try {
        const { written, applied } = await this.writeBatch(batch, queue.latest, target);
        if (written) {
          queue.latest = written;
          for (const w of applied) w.resolve({ written, own: w.own as T });
        }
      } catch (error) {
        queue.latest = undefined;
        for (const w of batch) w.reject(error);
      }
    }
    this.queues.delete(id);
  }

  private async writeBatch(
    batch: Waiter<T>[],
    known: Versioned<T> | null | undefined,
    target: UpdateTarget<T>,
  ): Promise<{ written?: Versioned<T>; applied: Waiter<T>[] }> {
    let current = known ?? undefined;
    let applied = batch;
    for (let attempt = 1; attempt <= this.maxAttempts; attempt++) {
      if (attempt > 1 || known === undefined) current = await target.read();
      let value = current?.value;
      const kept: Waiter<T>[] = [];
      for (const w of applied) {
        try {
          value = w.update(value);
          w.own = value;
          kept.push(w);
        } catch (error) {
          // One message's bad update fails that message alone.
          w.reject(error);
        }
      }
      applied = kept;
      // Nothing left to write when every update of the batch failed.
      if (applied.length === 0 || value === undefined) return { applied: [] };
      const revision = await target.write(value, current?.revision ?? 0);
      if (revision !== undefined) return { written: { value, revision }, applied };
    }
    throw new UpdateConflictError(
      `the key changed under each of ${this.maxAttempts} attempts to update it`,
    );
  }
}
