import { describeError } from "../../common/errors.js";
import type { Logger } from "../../common/logger.js";
import type { LeaseDenial, LeaseRequest } from "../decisions.js";
import type { SlotBucket, SlotChange } from "./handler-io.js";

/** Slots tried per cap before the request is denied, when the board's view turns out stale. */
export const MAX_SLOT_TRIES = 3;
/** Free slots a replica picks from at random: enough to make two replicas rarely collide. */
const FREE_SLOTS_CONSIDERED = 8;

/** How long a slot that a claim found taken counts as held, if the watch does not say more. */
const TAKEN_GUESS_MS = 1_000;
const SWEEP_INTERVAL_MS = 10_000;

interface SlotState {
  operation: SlotChange["operation"];
  revision: number;
  /** When the bucket drops the slot's message by age (Infinity for a bucket without TTL). */
  expiresAt: number;
}

/** A slot that the board takes to be free, and the revision to claim it at (0: absent). */
interface FreeSlot {
  key: string;
  revision: number;
}

/**
 * What this replica knows about the slots of one lease bucket, kept current by a KV watch. It
 * is advice only: a slot is taken only by a compare-and-set on its key, which fails if the
 * board was stale, so a stale board can cost a failed write or a needless wait, never a slot
 * too many. It lets a full cap be refused without a round trip, and a released slot be taken
 * with one write at its delete marker's revision (KV create would first fail on the marker,
 * then read it, then write).
 */
export class SlotBoard {
  private readonly slots = new Map<string, SlotState>();
  /** Slots this replica is claiming right now: concurrent messages try different ones. */
  private readonly claiming = new Set<string>();
  private watch: Awaited<ReturnType<SlotBucket["watch"]>> | undefined;
  private loop: Promise<void> | undefined;
  private stopped = false;
  private lastSweep = 0;

  constructor(
    readonly bucket: SlotBucket,
    /** The bucket's TTL: a slot's message is gone this long after it was written. */
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Starts following the bucket (`log` should name it); a watch that fails is started again
   * after `retryMs`.
   */
  start(log: Logger, retryMs = 1_000): void {
    this.loop = (async () => {
      while (!this.stopped) {
        try {
          const watch = await this.bucket.watch();
          this.watch = watch;
          // stop() may have come while the watch was being set up.
          if (this.stopped) watch.stop();
          for await (const e of watch) {
            this.observe(e.key, e.operation, e.revision, e.created.getTime());
          }
        } catch (error) {
          log.warn({ err: describeError(error) }, "storm-guard slot watch failed; restarting it");
        }
        if (this.stopped) return;
        // What was seen may be out of date by now; the next watch starts from the bucket's state.
        this.slots.clear();
        await new Promise((resolve) => setTimeout(resolve, retryMs));
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.watch?.stop();
    await this.loop;
  }

  /** Records what a slot key holds now (from the watch, or from our own writes). */
  observe(
    key: string,
    operation: SlotState["operation"],
    revision: number,
    createdMs: number,
  ): void {
    const known = this.slots.get(key);
    if (known && known.revision > revision) return;
    this.slots.set(key, { operation, revision, expiresAt: createdMs + this.ttlMs });
    this.sweep();
  }

  /**
   * A claim at `triedRevision` failed: someone else wrote the slot. Unless the watch has shown
   * the new holder already, the slot counts as held for a moment, until the watch catches up.
   */
  noteTaken(key: string, triedRevision: number): void {
    const known = this.slots.get(key);
    if (known && known.operation === "PUT" && known.revision > triedRevision) return;
    this.slots.set(key, {
      operation: "PUT",
      revision: known?.revision ?? 0,
      expiresAt: this.now() + TAKEN_GUESS_MS,
    });
  }

  /** The slots of a cap that look free, and when the earliest held one expires. */
  look(
    prefix: string,
    cap: number,
    /**
     * Scan from slot `start` (wrapping) and stop after `limit` free ones: a cap of 100,000 with
     * a few slots held would otherwise cost a 100,000-slot scan per restart.
     */
    { start = 0, limit = Number.POSITIVE_INFINITY }: { start?: number; limit?: number } = {},
  ): { free: FreeSlot[]; freeInMs: number | undefined } {
    const now = this.now();
    const free: FreeSlot[] = [];
    let earliest = Number.POSITIVE_INFINITY;
    for (let i = 0; i < cap && free.length < limit; i++) {
      const n = (start + i) % cap;
      const key = `${prefix}.${n}`;
      if (this.claiming.has(key)) continue;
      const state = this.slots.get(key);
      if (!state || state.expiresAt <= now) {
        free.push({ key, revision: 0 });
      } else if (state.operation === "PUT") {
        earliest = Math.min(earliest, state.expiresAt);
      } else {
        free.push({ key, revision: state.revision });
      }
    }
    const freeInMs =
      free.length === 0 && Number.isFinite(earliest) ? Math.max(0, earliest - now) : undefined;
    return { free, freeInMs };
  }

  /**
   * Takes `slot` for `holder` by compare-and-set; undefined when someone else has it. Its
   * revision on success.
   */
  async claim(slot: FreeSlot, holder: string): Promise<number | undefined> {
    this.claiming.add(slot.key);
    try {
      const value = new TextEncoder().encode(holder);
      const revision = await this.bucket.write(slot.key, value, slot.revision);
      if (revision === undefined) {
        this.noteTaken(slot.key, slot.revision);
        return undefined;
      }
      this.observe(slot.key, "PUT", revision, this.now());
      return revision;
    } finally {
      this.claiming.delete(slot.key);
    }
  }

  /** Forgets slots whose message the bucket has dropped by age, so the map stays small. */
  private sweep(): void {
    const now = this.now();
    if (now - this.lastSweep < SWEEP_INTERVAL_MS) return;
    this.lastSweep = now;
    for (const [key, state] of this.slots) {
      if (state.expiresAt <= now) this.slots.delete(key);
    }
  }
}

interface Held {
  kind: LeaseRequest["bucket"];
  board: SlotBoard;
  key: string;
  revision: number;
  holder: string;
}

/**
 * The slots one message holds while its decisions are applied, by holder (the command id of the
 * restart they are for: a message may make several restarts, one after another). A slot is a
 * KV key taken with compare-and-set, so however many replicas compete, at most `cap` hold slots
 * under one prefix. In-progress slots are released when their restart is answered, or when the
 * decisions are done (and expire with their bucket's TTL if the holder dies); rate slots are
 * kept until they expire.
 */
export class LeaseSet {
  private held: Held[] = [];
  private readonly started = new Set<string>();
  private readonly unconfirmed = new Set<string>();

  constructor(
    private readonly boards: { inflight: SlotBoard; rate: SlotBoard },
    private readonly random: () => number = Math.random,
  ) {}

  /**
   * Takes a slot under every cap, or none. A cap that the board shows full is refused without
   * a round trip; otherwise every cap is tried at once, and if any of them is full what the
   * others took is given back.
   */
  async acquireAll(
    requests: readonly LeaseRequest[],
    holder: string,
  ): Promise<LeaseDenial | undefined> {
    const active = requests.filter((r) => r.cap > 0);
    for (const request of active) {
      const { free, freeInMs } = this.boards[request.bucket].look(request.prefix, request.cap, {
        limit: 1,
      });
      if (free.length === 0) return denial(request, freeInMs);
    }
    const results = await Promise.allSettled(active.map((r) => this.acquire(r, holder)));
    const taken = results.flatMap((r) => (r.status === "fulfilled" && r.value.slot) || []);
    const failed = results.find((r) => r.status === "rejected");
    const refused = results.flatMap((r) =>
      r.status === "fulfilled" && r.value.denial ? [r.value.denial] : [],
    );
    if (failed || refused.length > 0) {
      await release(taken);
      if (failed) throw (failed as PromiseRejectedResult).reason;
      // The longest known wait is the one that decides when it is worth trying again.
      return refused.reduce((a, b) => ((b.freeInMs ?? 0) > (a.freeInMs ?? 0) ? b : a));
    }
    this.held.push(...taken);
    return undefined;
  }

  /**
   * The restart `holder` is about to be sent: from now on it counts against the rate caps even
   * if a later step fails, because the agent may have acted on it.
   */
  markStarted(holder: string): void {
    this.started.add(holder);
  }

  /**
   * The restart `holder` is answered: it is no longer in progress, and its in-progress slots
   * are given back now rather than when the message's decisions are done. Unless it got no
   * answer in time (`confirmed` false): the agent may still be working on it, so those slots
   * are left to expire with their bucket's TTL (they are no longer renewed), and a slow agent's
   * restart still counts against the concurrency caps for a while instead of letting another
   * one start beside it at once.
   */
  async finished(holder: string, confirmed: boolean): Promise<void> {
    if (!confirmed) {
      this.unconfirmed.add(holder);
      return;
    }
    const done = this.held.filter((h) => h.holder === holder && h.kind === "inflight");
    this.held = this.held.filter((h) => !done.includes(h));
    await release(done);
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
            const renewed = await h.board.bucket.write(
              h.key,
              new TextEncoder().encode(h.holder),
              h.revision,
            );
            // Not renewed: it expired and someone else took it meanwhile; it is theirs now.
            if (renewed !== undefined) h.revision = renewed;
          } catch {
            // The bucket did not answer: the next renewal tries again.
          }
        }),
    );
  }

  /**
   * Gives back the in-progress slots, unless the restart sent got no answer in time (they then
   * expire); after a failure also the rate slots, unless the restart was sent (a failure before
   * the command went out started nothing).
   */
  async releaseAll(succeeded: boolean): Promise<void> {
    const returning = this.held.filter((h) =>
      h.kind === "inflight"
        ? !(this.started.has(h.holder) && this.unconfirmed.has(h.holder))
        : !(succeeded || this.started.has(h.holder)),
    );
    this.held = [];
    await release(returning);
  }

  private async acquire(
    request: LeaseRequest,
    holder: string,
  ): Promise<{ slot?: Held; denial?: LeaseDenial }> {
    const board = this.boards[request.bucket];
    for (let attempt = 0; attempt < MAX_SLOT_TRIES; attempt++) {
      // A random free slot, so that replicas with the same view rarely pick the same one.
      const { free, freeInMs } = board.look(request.prefix, request.cap, {
        start: Math.floor(this.random() * request.cap),
        limit: FREE_SLOTS_CONSIDERED,
      });
      const slot = free[Math.floor(this.random() * free.length)];
      if (!slot) return { denial: denial(request, freeInMs) };
      const revision = await board.claim(slot, holder);
      if (revision !== undefined) {
        return { slot: { kind: request.bucket, board, key: slot.key, revision, holder } };
      }
    }
    return { denial: denial(request, undefined) };
  }
}

/**
 * Only a rate slot's expiry says when its cap frees: an in-progress slot is given back when its
 * restart ends, and renewed until then.
 */
function denial(request: LeaseRequest, freeInMs: number | undefined): LeaseDenial {
  return freeInMs === undefined || request.bucket !== "rate"
    ? { cap: request.label }
    : { cap: request.label, freeInMs };
}

async function release(slots: readonly Held[]): Promise<void> {
  await Promise.all(
    slots.map(async (s) => {
      try {
        // Only our own revision: a slot that expired and was taken by someone else stays theirs.
        await s.board.bucket.delete(s.key, s.revision);
      } catch {
        // Expired, or taken over: nothing of ours to give back.
      }
    }),
  );
}
