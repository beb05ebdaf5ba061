import type {
  SlotBucket,
  SlotChange,
  SlotWatch,
  StoredValue,
} from "../../handlers/runtime/handler-io.js";

interface Entry {
  value: Uint8Array;
  revision: number;
  operation: "PUT" | "DEL";
  created: number;
}

export interface InMemoryBucketOptions {
  /** The bucket forgets a write this long after it, as a bucket with a TTL does; never if unset. */
  ttlMs?: number;
  /** A clock of the test's own, in ms (see {@link InMemoryBucket.now}); the system's if unset. */
  now?: number;
}

/**
 * A KV bucket in memory with JetStream's compare-and-set rules: revisions are the bucket's
 * sequence, a write at revision 0 fails on a live value, any other write and a delete need the
 * key's last revision (a delete marker's too). Writes expire by age like a bucket with a TTL
 * (markers included, and no watcher is told), and watches see every key's latest change, then
 * each new one. Every operation yields to the event loop first, so that concurrent callers
 * really overlap, and is logged in {@link calls}.
 */
export class InMemoryBucket implements SlotBucket {
  readonly entries = new Map<string, Entry>();
  /** `get <key>`, `create <key>`, `update <key>@<revision>`, `delete <key>@<revision>`. */
  readonly calls: string[] = [];
  /** Operations under way right now, and the most there ever were. */
  inFlight = 0;
  maxInFlight = 0;
  /** Runs before the next write, to let someone else write first. */
  beforeWrite: (() => void) | undefined;
  readonly ttlMs: number;
  private seq = 0;
  private manualNow: number | undefined;
  private readonly watchers = new Set<(change: SlotChange) => void>();

  constructor(options: InMemoryBucketOptions = {}) {
    this.ttlMs = options.ttlMs ?? Number.POSITIVE_INFINITY;
    this.manualNow = options.now;
  }

  /** The bucket's clock: the test's own once set (it then only moves when the test moves it). */
  get now(): number {
    return this.manualNow ?? Date.now();
  }

  set now(ms: number) {
    this.manualNow = ms;
  }

  get(key: string): Promise<StoredValue | undefined> {
    return this.op(`get ${key}`, () => {
      const entry = this.entries.get(key);
      return entry?.operation === "PUT"
        ? { value: entry.value, revision: entry.revision }
        : undefined;
    });
  }

  write(key: string, value: Uint8Array, revision: number): Promise<number | undefined> {
    return this.op(revision === 0 ? `create ${key}` : `update ${key}@${revision}`, () => {
      const hook = this.beforeWrite;
      this.beforeWrite = undefined;
      hook?.();
      const current = this.entries.get(key);
      const ok =
        revision === 0 ? current?.operation !== "PUT" : (current?.revision ?? 0) === revision;
      return ok ? this.put(key, value) : undefined;
    });
  }

  delete(key: string, revision: number): Promise<boolean> {
    return this.op(`delete ${key}@${revision}`, () => {
      if ((this.entries.get(key)?.revision ?? 0) !== revision) return false;
      this.put(key, new Uint8Array(), "DEL");
      return true;
    });
  }

  async watch(): Promise<SlotWatch> {
    const queue: SlotChange[] = [];
    let wake: (() => void) | undefined;
    let stopped = false;
    const push = (change: SlotChange) => {
      queue.push(change);
      wake?.();
    };
    this.expire();
    for (const [key, e] of this.entries) {
      push({ key, operation: e.operation, revision: e.revision, created: new Date(e.created) });
    }
    this.watchers.add(push);
    return {
      stop: () => {
        stopped = true;
        this.watchers.delete(push);
        wake?.();
      },
      async *[Symbol.asyncIterator]() {
        for (;;) {
          const next = queue.shift();
          if (next) {
            yield next;
            continue;
          }
          if (stopped) return;
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
        }
      },
    };
  }

  /** Writes at once, whatever is there (another writer); the new revision. */
  put(key: string, value: Uint8Array | string, operation: "PUT" | "DEL" = "PUT"): number {
    const revision = ++this.seq;
    const bytes = typeof value === "string" ? new TextEncoder().encode(value) : value;
    const created = this.now;
    this.entries.set(key, { value: bytes, revision, operation, created });
    for (const w of this.watchers) w({ key, operation, revision, created: new Date(created) });
    return revision;
  }

  /** The live keys. */
  keys(): string[] {
    this.expire();
    return [...this.entries].filter(([, e]) => e.operation === "PUT").map(([key]) => key);
  }

  /** The live values under `<prefix>.` as text: for slots, their holders. */
  held(prefix: string): string[] {
    this.expire();
    return [...this.entries]
      .filter(([k, e]) => k.startsWith(`${prefix}.`) && e.operation === "PUT")
      .map(([, e]) => new TextDecoder().decode(e.value));
  }

  private async op<T>(call: string, fn: () => T): Promise<T> {
    this.calls.push(call);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    await new Promise((resolve) => setImmediate(resolve));
    this.inFlight--;
    this.expire();
    return fn();
  }

  /** The bucket drops writes older than its TTL, markers included, and tells no watcher. */
  private expire(): void {
    if (!Number.isFinite(this.ttlMs)) return;
    for (const [key, e] of this.entries) {
      if (e.created + this.ttlMs <= this.now) this.entries.delete(key);
    }
  }
}
