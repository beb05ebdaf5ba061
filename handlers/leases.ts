import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";

/** A request for one of `cap` slots under a key prefix, in a lease bucket. */
export interface LeaseRequest {
  bucket: "inflight" | "rate";
  /** Slot keys are `<prefix>.<n>`, n < cap. Tokens only: `host.<host>` or `fleet`. */
  prefix: string;
  cap: number;
  /** Shown in errors and logs: which cap this is. */
  label: string;
}

interface Held {
  kind: LeaseRequest["bucket"];
  bucket: KV;
  key: string;
  revision: number;
  holder: string;
}

/**
 * The slots one message holds while its decisions are applied. A slot is a KV key created with
 * compare-and-set (create fails if it exists), so however many replicas compete, at most `cap`
 * hold slots under one prefix. In-progress slots are released when the decisions are done (and
 * expire with their bucket's TTL if the holder dies); rate slots are kept until they expire.
 */
export class LeaseSet {
  private readonly held: Held[] = [];

  constructor(private readonly buckets: { inflight: KV; rate: KV }) {}

  /**
   * Takes a slot for every request, or none: on the first cap that is full, what this call took
   * is given back and the label of the full cap is returned.
   */
  async acquireAll(requests: readonly LeaseRequest[], holder: string): Promise<string | undefined> {
    const taken: Held[] = [];
    for (const request of requests) {
      if (request.cap <= 0) continue;
      const slot = await this.acquire(request, holder);
      if (!slot) {
        await release(taken);
        return request.label;
      }
      taken.push(slot);
    }
    this.held.push(...taken);
    return undefined;
  }

  /**
   * Rewrites the in-progress slots held, which restarts their age in the bucket: a holder that
   * is alive keeps its slots however long the restart takes, and a dead one loses them within
   * the bucket's short TTL.
   */
  async renew(): Promise<void> {
    await Promise.all(
      this.held
        .filter((h) => h.kind === "inflight")
        .map(async (h) => {
          try {
            h.revision = await h.bucket.update(
              h.key,
              new TextEncoder().encode(h.holder),
              h.revision,
            );
          } catch {
            // Expired and taken by someone else meanwhile: it is theirs now.
          }
        }),
    );
  }

  /** Gives back in-progress slots; after a failure also the rate slots (nothing was started). */
  async releaseAll(succeeded: boolean): Promise<void> {
    const returning = this.held.filter((h) => !succeeded || h.kind === "inflight");
    this.held.length = 0;
    await release(returning);
  }

  private async acquire(request: LeaseRequest, holder: string): Promise<Held | undefined> {
    const bucket = this.buckets[request.bucket];
    // Start at a random slot so that competing replicas rarely collide.
    const offset = Math.floor(Math.random() * request.cap);
    for (let i = 0; i < request.cap; i++) {
      const key = `${request.prefix}.${(offset + i) % request.cap}`;
      try {
        const revision = await bucket.create(key, new TextEncoder().encode(holder));
        return { kind: request.bucket, bucket, key, revision, holder };
      } catch (error) {
        if (!isTaken(error)) throw error;
      }
    }
    return undefined;
  }
}

async function release(slots: readonly Held[]): Promise<void> {
  await Promise.all(
    slots.map((s) =>
      // Only our own revision: a slot that expired and was taken by someone else stays theirs.
      s.bucket.delete(s.key, { previousSeq: s.revision }).catch(() => {}),
    ),
  );
}

function isTaken(error: unknown): boolean {
  return (
    error instanceof JetStreamApiError &&
    (error.code === JetStreamApiCodes.StreamWrongLastSequence ||
      error.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}
