import { describeError } from "../../common/errors.js";
import type { Logger } from "../../common/logger.js";
import {
  type CommandReply,
  type HealPolicy,
  INFLIGHT_BUCKET,
  RATE_BUCKET,
  type RemediationRecord,
} from "../../contracts/index.js";
import type {
  ClaimDecision,
  CommandDecision,
  Decision,
  LeaseDecision,
  StoreName,
  Stores,
  UpdateDecision,
  Versioned,
} from "../decisions.js";
import type { HandlerContext } from "../handler.js";
import type { Notifier } from "../notify/notifier.js";
import { FleetHosts } from "./fleet-hosts.js";
import type { HandlerIo, SlotBucket } from "./handler-io.js";
import { KeyedUpdates } from "./keyed-updates.js";
import { LeaseSet, SlotBoard } from "./leases.js";
import { STORE_SCHEMAS, TypedStores } from "./typed-stores.js";

/** How often one message decides again after losing a claim, before it fails. */
const MAX_CLAIM_ATTEMPTS = 5;
/** In-progress storm slots are renewed this often; their bucket forgets them after 60 s. */
const LEASE_RENEW_MS = 20_000;

/** What a {@link DecisionRunner} needs besides its {@link HandlerIo}. */
export interface DecisionRunnerOptions {
  log: Logger;
  /** How long a restart waits for the agent, at least. Docker's stop timeout is inside it. */
  commandTimeoutMs: number;
  /** The fleet policy in force. */
  policy: () => HealPolicy;
  /** Sends `notify` decisions (webhooks); needed only when the notify handler is bound. */
  notifier?: Notifier;
  /** The handlers' clock (`HandlerContext.now`); the system's by default. */
  now?: () => Date;
  /** Told what the decisions did, for the replica's metrics (handlers/metrics). */
  observer?: RunObserver;
}

/** What the runner reports as it applies decisions: the replica's counters. */
export interface RunObserver {
  /** A record was stored for the first time (not a redelivery's copy that JetStream dropped). */
  recordStored(handler: string | undefined, record: RemediationRecord): void;
  /** The agent answered a command decided with `unhealthyAt`. */
  actionAnswered(unhealthyAt: Date, reply: CommandReply): void;
}

/** One delivery of a message, as the runner needs to know it. */
export interface RunMessage {
  /** The handler deciding, as the runtime bound it: for the counters. */
  handler?: string;
  /** Names the handler, the subject and the sequence. */
  log: Logger;
  /** 1 the first time. */
  deliveryCount: number;
  /** JetStream will not deliver it again. */
  lastDelivery: boolean;
  /** Called each time a claim is lost and the handler decides again. */
  onLostClaim?: () => void;
}

/** How a message's decisions ended, unless they failed. */
export type RunOutcome =
  | { kind: "applied" }
  /** A `retry` decision: the message is to come back after `delayMs`. */
  | { kind: "retry"; reason: string; delayMs: number };

/**
 * Applies what handlers decide (decisions.ts, which says what each decision and continuation
 * means), through a {@link HandlerIo}. One runner serves every message of a replica: it keeps
 * the storm guard's view of the slots, and coalesces the updates of one key.
 */
export class DecisionRunner {
  private boards: Promise<{ inflight: SlotBoard; rate: SlotBoard }> | undefined;
  private readonly updates = new KeyedUpdates<Stores[StoreName]>(MAX_CLAIM_ATTEMPTS);
  private readonly fleetHosts: FleetHosts;
  private readonly stores: TypedStores;

  constructor(
    private readonly io: HandlerIo,
    private readonly options: DecisionRunnerOptions,
  ) {
    this.stores = new TypedStores(io, options.log);
    this.fleetHosts = new FleetHosts(io.listHostKeys, {
      onError: (error) =>
        options.log.warn({ err: describeError(error) }, "could not count the fleet's hosts"),
    });
  }

  /**
   * Lets `decide` (a handler's `handle`) decide with a fresh context, and applies what it
   * returns. If a claim is lost, what is left is dropped and it decides again. Resolves when
   * everything is applied and stored, or with the retry that ended it; rejects when a decision
   * failed, or when claims were lost on every attempt.
   */
  async run(
    decide: (ctx: HandlerContext) => Promise<Decision[]> | Decision[],
    message: RunMessage,
  ): Promise<RunOutcome> {
    for (let attempt = 1; ; attempt++) {
      const decisions = await decide(this.context(message));
      try {
        await this.apply(decisions, message);
        return { kind: "applied" };
      } catch (error) {
        if (error instanceof RetryLater) {
          return { kind: "retry", reason: error.message, delayMs: error.delayMs };
        }
        if (!(error instanceof ClaimConflict) || attempt >= MAX_CLAIM_ATTEMPTS) throw error;
        message.onLostClaim?.();
        message.log.debug({ attempt }, "claim lost to another replica; deciding again");
      }
    }
  }

  /** What a handler sees while deciding one delivery. */
  context(message: Pick<RunMessage, "log" | "deliveryCount" | "lastDelivery">): HandlerContext {
    return {
      now: this.options.now?.() ?? new Date(),
      log: message.log,
      deliveryCount: message.deliveryCount,
      lastDelivery: message.lastDelivery,
      policy: this.options.policy(),
      read: (store, key) => this.stores.read(store, key),
      hostSnapshot: async (host) => (await this.stores.hostSnapshotEntry(host))?.snapshot(),
      hostSnapshotEntry: (host) => this.stores.hostSnapshotEntry(host),
      severalHosts: () => this.fleetHosts.severalHosts(),
    };
  }

  /** Starts following the storm guard's slots now rather than on the first lease. */
  async ready(): Promise<void> {
    await this.leaseBoards();
  }

  /** Stops following the storm guard's slots. */
  async stop(): Promise<void> {
    const boards = await this.boards?.catch(() => undefined);
    await Promise.all([boards?.inflight.stop(), boards?.rate.stop()]);
  }

  /** This replica's view of the storm guard's slots, shared by all its messages. */
  private leaseBoards(): Promise<{ inflight: SlotBoard; rate: SlotBoard }> {
    this.boards ??= this.io.leaseBuckets().then(({ inflight, rate }) => {
      const board = (bucket: SlotBucket, name: string) => {
        const b = new SlotBoard(bucket, bucket.ttlMs);
        b.start(this.options.log.child({ bucket: name }));
        return b;
      };
      return { inflight: board(inflight, INFLIGHT_BUCKET), rate: board(rate, RATE_BUCKET) };
    });
    // A failed start is tried again by the next caller rather than remembered.
    this.boards.catch(() => {
      this.boards = undefined;
    });
    return this.boards;
  }

  private async apply(decisions: Decision[], message: RunMessage): Promise<void> {
    const leases = new LeaseSet(await this.leaseBoards());
    const { log, handler } = message;
    const run: ApplyRun = { log, handler, pending: [], leases, written: new Map() };
    const renewal = setInterval(() => void leases.renew(), LEASE_RENEW_MS);
    let succeeded = false;
    try {
      await this.applyAll(decisions, run);
      succeeded = true;
    } finally {
      clearInterval(renewal);
      // Records are published concurrently with the rest; the message is acked only when all
      // of them are stored.
      await Promise.all([leases.releaseAll(succeeded), Promise.all(run.pending)]);
    }
  }

  /** Applies decisions in order; true when a lease was denied (the rest is skipped). */
  private async applyAll(decisions: readonly Decision[], run: ApplyRun): Promise<boolean> {
    for (const decision of decisions) {
      // Decisions that need no answer (records, logs) are applied without yielding, so that
      // the publishes and the request that follow them leave in one write to the socket.
      const step = this.applyOne(decision, run);
      if (step === STOP || (step !== undefined && (await step) === STOP)) return true;
    }
    return false;
  }

  /** Applies one decision; STOP when the remaining decisions must not be applied. */
  private applyOne(decision: Decision, run: ApplyRun): Step | Promise<Step> {
    switch (decision.kind) {
      case "lease":
        return this.lease(decision, run);
      case "claim":
        return this.claim(decision, run);
      case "update":
        return this.update(decision, run);
      case "remediation":
        run.pending.push(this.publishRecord(decision.record, run));
        return;
      case "command":
        return this.command(decision, run);
      case "retry":
        throw new RetryLater(decision.reason, decision.delayMs);
      case "notify": {
        if (!this.options.notifier) throw new Error("notify decision but no notifier configured");
        // Targets are sent concurrently; the message is acked only when all of them are done.
        run.pending.push(this.options.notifier.deliver(decision, run.log));
        return;
      }
      case "log":
        run.log[decision.level](decision.fields ?? {}, decision.msg);
        return;
    }
  }

  /** Publishes a record (it leaves during the call) and counts it once it is stored. */
  private async publishRecord(record: RemediationRecord, run: ApplyRun): Promise<void> {
    const stored = await this.io.publishRecord(record);
    if (!stored.duplicate) this.options.observer?.recordStored(run.handler, record);
  }

  private async lease(decision: LeaseDecision, run: ApplyRun): Promise<Step> {
    // What goes along does not depend on the slots: it is written while they are taken.
    const [acquired, alongside] = await Promise.allSettled([
      run.leases.acquireAll(decision.leases, decision.holder),
      this.applyAll(decision.alongside ?? [], run),
    ]);
    if (acquired.status === "rejected") throw acquired.reason;
    if (alongside.status === "rejected") throw alongside.reason;
    if (acquired.value === undefined) return undefined;
    await this.applyAll(decision.onDenied(acquired.value), run);
    return STOP;
  }

  private async claim(decision: ClaimDecision, run: ApplyRun): Promise<Step> {
    const { store, key, expectedRevision } = decision;
    const value = STORE_SCHEMAS[store].parse(decision.value);
    const revision = await this.stores.write(store, key, value, expectedRevision);
    if (revision === undefined) {
      throw new ClaimConflict(`${store} ${key} is no longer at revision ${expectedRevision}`);
    }
    run.written.set(writtenKey(store, key), { value, revision });
    return undefined;
  }

  /**
   * Read-modify-write with compare-and-set, coalesced with this replica's other updates of the
   * same key (KeyedUpdates). A key this message has just written, or that the handler read,
   * starts from that, which saves reading it again; a conflict falls back to reading it.
   */
  private async update(decision: UpdateDecision, run: ApplyRun): Promise<Step> {
    const { store, key } = decision;
    const id = writtenKey(store, key);
    const schema = STORE_SCHEMAS[store] as (typeof STORE_SCHEMAS)[StoreName];
    const written = await this.updates.apply(
      id,
      {
        read: () => this.stores.read(store, key),
        write: (value, revision) => this.stores.write(store, key, value, revision),
      },
      (current) => schema.parse(decision.update(current)),
      run.written.get(id) ?? decision.read,
    );
    run.written.set(id, written.written);
    if (!decision.onStored) return undefined;
    return (await this.applyAll(decision.onStored(written.own), run)) ? STOP : undefined;
  }

  private async command(decision: CommandDecision, run: ApplyRun): Promise<Step> {
    const { command } = decision;
    run.leases.markStarted(command.commandId);
    const timeoutMs = Math.max(this.options.commandTimeoutMs, decision.minTimeoutMs ?? 0);
    const result = await this.io.sendCommand(command, timeoutMs);
    const confirmed = result.ok || result.code !== "timeout";
    // The slots go back while the outcome is written; the ack waits for both.
    run.pending.push(run.leases.finished(command.commandId, confirmed));
    if (decision.unhealthyAt && result.ok) {
      this.options.observer?.actionAnswered(decision.unhealthyAt, result.reply);
    }
    await this.applyAll(decision.onReply(result), run);
    return undefined;
  }
}

/** Thrown inside decision application when a claim lost its race. */
class ClaimConflict extends Error {
  override readonly name = "ClaimConflict";
}

/** Thrown by a `retry` decision, to end the message's decisions there. */
class RetryLater extends Error {
  override readonly name = "RetryLater";
  constructor(
    message: string,
    readonly delayMs: number,
  ) {
    super(message);
  }
}

/** Returned by a decision after which the remaining ones are not applied (a denied lease). */
const STOP = Symbol("stop");
type Step = typeof STOP | undefined;

/** What one message's decisions have in progress while they are applied. */
interface ApplyRun {
  log: Logger;
  handler: string | undefined;
  /** Publishes and notifications still in flight; all must succeed before the ack. */
  pending: Promise<unknown>[];
  leases: LeaseSet;
  /** What this message wrote, by store and key, with the revision it got. */
  written: Map<string, Versioned<Stores[StoreName]>>;
}

function writtenKey(store: StoreName, key: string): string {
  return `${store}/${key}`;
}
