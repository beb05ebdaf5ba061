import {
  AckPolicy,
  type ConsumerConfig,
  type ConsumerMessages,
  DeliverPolicy,
  type JsMsg,
} from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { type NatsConnection, headers as natsHeaders } from "@nats-io/nats-core";
import type { z } from "zod";
import { type CommandSigning, sendAgentCommand } from "../common/agent-commands.js";
import { describeError } from "../common/errors.js";
import type { FleetJetStream } from "../common/jetstream-resources.js";
import type { Logger } from "../common/logger.js";
import { isWrongRevision } from "../common/nats-errors.js";
import {
  DEAD_LETTER_HEADERS,
  deadLetterSubject,
  decode,
  EVENTS_STREAM,
  encode,
  type HealPolicy,
  HostSnapshot,
  ImageFailures,
  INFLIGHT_BUCKET,
  LedgerEntry,
  MonitoredContainer,
  RATE_BUCKET,
} from "../contracts/index.js";
import { FleetHosts } from "./fleet-hosts.js";
import type {
  CommandResult,
  Decision,
  HandlerContext,
  HandlerDefinition,
  HostSnapshotEntry,
  StoreName,
  Stores,
  Versioned,
} from "./handler.js";
import { KeyedUpdates } from "./keyed-updates.js";
import { LeaseSet, SlotBoard } from "./leases.js";
import type { Notifier } from "./notify/notifier.js";

export interface RuntimeOptions {
  nc: NatsConnection;
  fjs: FleetJetStream;
  log: Logger;
  /** How long a restart request waits for the agent. Docker's stop timeout is inside it. */
  commandTimeoutMs: number;
  /** How restart commands are signed, at send time. */
  commandSigning: CommandSigning;
  /** A new consumer starts this far back in the stream, so a handler started just after an
   * agent still sees its first events. */
  startBackMs: number;
  /** The fleet policy in force. */
  policy: () => HealPolicy;
  /** Sends `notify` decisions (webhooks); needed only when the notify handler is bound. */
  notifier?: Notifier;
}

/** Counters per handler, for logs now and metrics later. */
export interface HandlerStats {
  handled: number;
  rejected: number;
  retried: number;
  deferred: number;
  failed: number;
  conflicts: number;
}

const ACK_WAIT_MS = 30_000;
/**
 * How long one pull waits. nats.js notices a lost pull (the consumer's leader moved to another
 * node, a server restarted) only after two missed idle heartbeats, at half this each: with its
 * 30 s default a handler sat idle for about 40 s after a cluster node died (test/fault-nats-cluster).
 */
const PULL_EXPIRES_MS = 5_000;
/** Tell JetStream we are still working well before ACK_WAIT_MS runs out. */
const WORKING_INTERVAL_MS = 10_000;
const MAX_CLAIM_ATTEMPTS = 5;
/** In-progress storm slots are renewed this often; their bucket forgets them after 60 s. */
const LEASE_RENEW_MS = 20_000;
/**
 * Unacknowledged messages a consumer may have out. A deferral (a message nak'ed with a delay:
 * backoff, storm guard, image breaker) stays unacknowledged until it comes back, and JetStream
 * stops delivering anything new at this limit: with a lower one, a storm of deferred events
 * would hold back every other event behind it. What one replica holds in memory is bounded by
 * the pull size instead.
 */
const MAX_ACK_PENDING = 250_000;
const nanos = (ms: number) => ms * 1_000_000;

/** The schema of each store, for validating what is read and written. */
const STORE_SCHEMAS: { [S in StoreName]: z.ZodType<Stores[S]> } = {
  ledger: LedgerEntry,
  monitored: MonitoredContainer,
  breakers: ImageFailures,
};

/** Thrown inside decision application when a claim lost its race. */
class ClaimConflict extends Error {
  override readonly name = "ClaimConflict";
}

/** Thrown to fail a delivery on purpose, so that it is redelivered. */
class RetryLater extends Error {
  override readonly name = "RetryLater";
  constructor(
    message: string,
    readonly delayMs: number,
  ) {
    super(message);
  }
}

/**
 * Binds handler definitions to JetStream: one durable consumer per handler, shared by every
 * replica, and the I/O for the decisions that handlers return. A message is acknowledged only
 * after every decision has been applied; failures are redelivered with backoff.
 */
export class HandlerRuntime {
  private readonly running: {
    def: HandlerDefinition<unknown>;
    messages: ConsumerMessages;
    loop: Promise<void>;
  }[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  readonly stats = new Map<string, HandlerStats>();
  private boards: Promise<{ inflight: SlotBoard; rate: SlotBoard }> | undefined;
  private readonly updates = new KeyedUpdates<Stores[StoreName]>(MAX_CLAIM_ATTEMPTS);
  private readonly fleetHosts: FleetHosts;

  constructor(private readonly options: RuntimeOptions) {
    this.fleetHosts = new FleetHosts(() => options.fjs.hosts.keys(), {
      onError: (error) =>
        options.log.warn({ err: describeError(error) }, "could not count the fleet's hosts"),
    });
  }

  /** Creates (or updates) the handler's durable consumer and starts consuming. */
  async bind<E>(def: HandlerDefinition<E>): Promise<void> {
    const durable = durableName(def.name);
    await this.leaseBoards();
    await this.ensureConsumer(def, durable);
    const consumer = await this.options.fjs.js.consumers.get(EVENTS_STREAM, durable);
    const messages = await consumer.consume({
      max_messages: Math.max(def.concurrency * 2, 16),
      expires: PULL_EXPIRES_MS,
    });
    const generic = def as HandlerDefinition<unknown>;
    this.stats.set(def.name, {
      handled: 0,
      rejected: 0,
      retried: 0,
      deferred: 0,
      failed: 0,
      conflicts: 0,
    });
    this.running.push({ def: generic, messages, loop: this.loop(generic, messages) });
    this.options.log.info({ handler: def.name, subject: def.subject, durable }, "handler bound");
  }

  /** Stops taking messages, waits for those in progress, then returns. */
  async stop(): Promise<void> {
    for (const r of this.running) await r.messages.close();
    await Promise.all(this.running.map((r) => r.loop));
    await Promise.all(this.inFlight);
    const boards = await this.boards;
    await Promise.all([boards?.inflight.stop(), boards?.rate.stop()]);
  }

  /** This replica's view of the storm guard's slots, shared by all its messages. */
  private leaseBoards(): Promise<{ inflight: SlotBoard; rate: SlotBoard }> {
    this.boards ??= (async () => {
      const board = async (kv: KV, bucket: string) => {
        const ttl = (await kv.status()).ttl;
        const b = new SlotBoard(kv, ttl > 0 ? ttl : Number.POSITIVE_INFINITY);
        b.start(this.options.log.child({ bucket }));
        return b;
      };
      const [inflight, rate] = await Promise.all([
        board(this.options.fjs.inflight, INFLIGHT_BUCKET),
        board(this.options.fjs.rate, RATE_BUCKET),
      ]);
      return { inflight, rate };
    })();
    // A failed start is tried again by the next caller rather than remembered.
    this.boards.catch(() => {
      this.boards = undefined;
    });
    return this.boards;
  }

  private async ensureConsumer(def: HandlerDefinition<unknown>, durable: string): Promise<void> {
    const jsm = this.options.fjs.jsm;
    const mutable = durableSettings(def);
    try {
      await jsm.consumers.info(EVENTS_STREAM, durable);
      try {
        // An existing durable keeps its position: one that `fleetheal nats-migrate import`
        // created, or another replica's, resumes where it is.
        await jsm.consumers.update(EVENTS_STREAM, durable, mutable);
      } catch (updateError) {
        // nats-server 2.9 cannot change a consumer's filter in place (an upgrade that changed a
        // handler's subject): start it over from the recent past.
        this.options.log.warn(
          { durable, err: describeError(updateError) },
          "consumer cannot be updated; recreating it",
        );
        await jsm.consumers.delete(EVENTS_STREAM, durable);
        throw new Error("consumer not found after delete");
      }
    } catch (error) {
      if (!/not found/i.test(describeError(error))) throw error;
      try {
        await jsm.consumers.add(
          EVENTS_STREAM,
          durableConfig(def, { startTime: new Date(Date.now() - this.options.startBackMs) }),
        );
      } catch (addError) {
        // Another replica created it first; that is the same consumer.
        if (!/already (exists|in use)/i.test(describeError(addError))) throw addError;
      }
    }
  }

  private async loop(def: HandlerDefinition<unknown>, messages: ConsumerMessages): Promise<void> {
    let busy = 0;
    let freed: (() => void) | undefined;
    for await (const msg of messages) {
      while (busy >= def.concurrency) await new Promise<void>((resolve) => (freed = resolve));
      busy++;
      const job = this.process(def, msg).finally(() => {
        busy--;
        this.inFlight.delete(job);
        const wake = freed;
        freed = undefined;
        wake?.();
      });
      this.inFlight.add(job);
    }
  }

  private async process(def: HandlerDefinition<unknown>, msg: JsMsg): Promise<void> {
    const stats = this.stats.get(def.name) as HandlerStats;
    const log = this.options.log.child({ handler: def.name, subject: msg.subject, seq: msg.seq });
    const decoded = decode(def.schema, msg.data);
    const problem = !decoded.ok
      ? { code: decoded.error.code, err: decoded.error.message }
      : subjectProblem(def, msg.subject, decoded.value);
    if (problem || !decoded.ok) {
      const { code, err } = problem ?? { code: "FLEETHEAL_ERR_SCHEMA", err: "invalid" };
      stats.rejected++;
      log.warn({ code, err }, "rejected malformed message; moved to the dead-letter stream");
      await this.deadLetter(def, msg, `${code}: ${err}`, log);
      return;
    }
    const working = setInterval(() => msg.working(), WORKING_INTERVAL_MS);
    const lastDelivery = msg.info.deliveryCount >= def.maxDeliver;
    try {
      for (let attempt = 1; ; attempt++) {
        const ctx = this.context(log, msg.info.deliveryCount, lastDelivery);
        const decisions = await def.handle(decoded.value, ctx);
        try {
          await this.apply(decisions, log);
          break;
        } catch (error) {
          if (!(error instanceof ClaimConflict) || attempt >= MAX_CLAIM_ATTEMPTS) throw error;
          stats.conflicts++;
          log.debug({ attempt }, "claim lost to another replica; deciding again");
        }
      }
      stats.handled++;
      msg.ack();
    } catch (error) {
      const delayMs = error instanceof RetryLater ? error.delayMs : backoff(msg.info.deliveryCount);
      if (lastDelivery) {
        stats.failed++;
        log.error(
          { err: describeError(error), deliveries: msg.info.deliveryCount },
          "giving up on message after its last delivery; moved to the dead-letter stream",
        );
        await this.deadLetter(def, msg, describeError(error), log);
      } else if (error instanceof RetryLater) {
        stats.deferred++;
        // Routine, and recorded already (a skipped record, the counters): in a storm this
        // would be a line per waiting container per retry.
        log.debug({ reason: error.message, delayMs }, "deferred; JetStream will redeliver");
        msg.nak(delayMs);
      } else {
        stats.retried++;
        log.warn({ err: describeError(error), delayMs }, "handling failed; will retry");
        msg.nak(delayMs);
      }
    } finally {
      clearInterval(working);
    }
  }

  /**
   * Moves a message to `fleetheal.v1.dlq.<handler>` (stream FLEETHEAL_DLQ) with why, then
   * terminates it. If the dead letter cannot be stored, the message is left to be redelivered:
   * nothing is dropped silently.
   */
  private async deadLetter(
    def: HandlerDefinition<unknown>,
    msg: JsMsg,
    reason: string,
    log: Logger,
  ): Promise<void> {
    const h = natsHeaders();
    h.set(DEAD_LETTER_HEADERS.subject, msg.subject);
    h.set(DEAD_LETTER_HEADERS.reason, reason.replace(/[\r\n]+/g, " ").slice(0, 1024));
    h.set(DEAD_LETTER_HEADERS.handler, def.name);
    h.set(DEAD_LETTER_HEADERS.deliveries, String(msg.info.deliveryCount));
    h.set(DEAD_LETTER_HEADERS.streamSeq, String(msg.seq));
    try {
      await this.options.fjs.js.publish(deadLetterSubject(def.name), msg.data, {
        headers: h,
        msgID: `${def.name}:${msg.seq}`,
      });
      // A bare +TERM: nats-server 2.9 takes `+TERM <reason>` for no acknowledgement at all and
      // redelivers the message after the ack wait. The reason is in the dead letter's headers.
      msg.term();
    } catch (error) {
      log.error({ err: describeError(error) }, "could not store the dead letter; will retry");
      msg.nak(backoff(msg.info.deliveryCount));
    }
  }

  private context(log: Logger, deliveryCount: number, lastDelivery: boolean): HandlerContext {
    return {
      now: new Date(),
      log,
      deliveryCount,
      lastDelivery,
      policy: this.options.policy(),
      read: (store, key) => this.read(store, key),
      hostSnapshot: async (host) => (await this.hostSnapshotEntry(host))?.snapshot(),
      hostSnapshotEntry: (host) => this.hostSnapshotEntry(host),
      severalHosts: () => this.fleetHosts.severalHosts(),
    };
  }

  /** The host's latest snapshot, decoded on demand; undefined when there is none. */
  private async hostSnapshotEntry(host: string): Promise<HostSnapshotEntry | undefined> {
    const entry = await this.options.fjs.hosts.get(host);
    if (entry?.operation !== "PUT") return undefined;
    let decoded: HostSnapshot | undefined | null = null;
    return {
      revision: entry.revision,
      snapshot: () => {
        if (decoded !== null) return decoded;
        const result = decode(HostSnapshot, entry.value);
        if (!result.ok) {
          this.options.log.warn(
            { host, err: result.error.message },
            "unreadable host snapshot ignored",
          );
        }
        decoded = result.ok ? result.value : undefined;
        return decoded;
      },
    };
  }

  private bucket(store: StoreName): KV {
    return this.options.fjs[store];
  }

  private async read<S extends StoreName>(
    store: S,
    key: string,
  ): Promise<Versioned<Stores[S]> | undefined> {
    const entry = await this.bucket(store).get(key);
    if (entry?.operation !== "PUT") return undefined;
    const decoded = decode(STORE_SCHEMAS[store], entry.value);
    if (!decoded.ok) {
      // A corrupt entry must not wedge the container forever: it is logged and removed, and the
      // handler decides as if the container had no history.
      this.options.log.error(
        { store, key, err: decoded.error.message },
        "corrupt store entry removed",
      );
      await this.bucket(store).delete(key, { previousSeq: entry.revision });
      return undefined;
    }
    return { value: decoded.value as Stores[S], revision: entry.revision };
  }

  private async apply(decisions: Decision[], log: Logger): Promise<void> {
    const leases = new LeaseSet(await this.leaseBoards());
    const run: ApplyRun = { log, pending: [], leases, written: new Map() };
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

  /** Applies decisions in order; returns true when a lease was denied (the rest is skipped). */
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
        run.pending.push(this.options.fjs.records.publish(decision.record));
        return;
      case "restart":
        run.leases.markStarted(decision.command.commandId);
        return this.request(decision.command, decision.minTimeoutMs).then(async (result) => {
          const confirmed = result.ok || result.code !== "timeout";
          // The slots go back while the outcome is written; the ack waits for both.
          run.pending.push(run.leases.finished(decision.command.commandId, confirmed));
          await this.applyAll(decision.onReply(result), run);
          return undefined;
        });
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

  private async lease(decision: Extract<Decision, { kind: "lease" }>, run: ApplyRun) {
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

  private async claim(decision: Extract<Decision, { kind: "claim" }>, run: ApplyRun) {
    const bucket = this.bucket(decision.store);
    const value = STORE_SCHEMAS[decision.store].parse(decision.value);
    let revision: number;
    try {
      revision =
        decision.expectedRevision === 0
          ? await bucket.create(decision.key, encode(value))
          : await bucket.update(decision.key, encode(value), decision.expectedRevision);
    } catch (error) {
      if (isWrongRevision(error)) throw new ClaimConflict(describeError(error));
      throw error;
    }
    run.written.set(writtenKey(decision.store, decision.key), { value, revision });
    return undefined;
  }

  /**
   * Read-modify-write with compare-and-set, coalesced with this replica's other updates of the
   * same key (KeyedUpdates). A key this message has just written, or that the handler read,
   * starts from that, which saves reading it again; a conflict falls back to reading it.
   */
  private async update(
    decision: Extract<Decision, { kind: "update" }>,
    run: ApplyRun,
  ): Promise<Step> {
    const { store, key } = decision;
    const id = writtenKey(store, key);
    const bucket = this.bucket(store);
    const schema = STORE_SCHEMAS[store] as z.ZodType<Stores[StoreName]>;
    const written = await this.updates.apply(
      id,
      {
        read: () => this.read(store, key),
        write: async (value, revision) => {
          try {
            return revision === 0
              ? await bucket.create(key, encode(value))
              : await bucket.update(key, encode(value), revision);
          } catch (error) {
            if (isWrongRevision(error)) return undefined;
            throw error;
          }
        },
      },
      (current) => schema.parse(decision.update(current)),
      run.written.get(id) ?? decision.read,
    );
    run.written.set(id, written.written);
    if (!decision.onStored) return undefined;
    return (await this.applyAll(decision.onStored(written.own), run)) ? STOP : undefined;
  }

  private async request(
    command: Extract<Decision, { kind: "restart" }>["command"],
    minTimeoutMs = 0,
  ): Promise<CommandResult> {
    const result = await sendAgentCommand(this.options.nc, command, {
      signing: this.options.commandSigning,
      timeoutMs: Math.max(this.options.commandTimeoutMs, minTimeoutMs),
    });
    if (result.ok || result.code !== "rejected") return result;
    return { ok: false, code: "bad-reply", message: `agent error: ${result.message}` };
  }
}

/** What of a handler's durable consumer the runtime sets on every bind. */
type DurableHandler = Pick<HandlerDefinition<unknown>, "subject" | "maxDeliver">;

/** The durable consumer of a handler, shared by every replica: `fleetheal-<name>`. */
export function durableName(handler: string): string {
  return `fleetheal-${handler}`;
}

/** The settings of a handler's durable that every bind applies again (its position is kept). */
export function durableSettings(def: DurableHandler) {
  return {
    filter_subject: def.subject,
    max_deliver: def.maxDeliver,
    ack_wait: nanos(ACK_WAIT_MS),
    max_ack_pending: MAX_ACK_PENDING,
  };
}

/**
 * The whole configuration of a handler's durable, starting at a time (a new durable: the recent
 * past) or at a stream sequence (one placed by `fleetheal nats-migrate import`).
 */
export function durableConfig(
  def: DurableHandler & { name: string },
  start: { startTime: Date } | { startSeq: number },
): Partial<ConsumerConfig> {
  return {
    ...durableSettings(def),
    durable_name: durableName(def.name),
    ack_policy: AckPolicy.Explicit,
    ...("startTime" in start
      ? { deliver_policy: DeliverPolicy.StartTime, opt_start_time: start.startTime.toISOString() }
      : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: start.startSeq }),
  };
}

/** Returned by a decision after which the remaining ones are not applied (a denied lease). */
const STOP = Symbol("stop");
type Step = typeof STOP | undefined;

/** What one message's decisions have in progress while they are applied. */
interface ApplyRun {
  log: Logger;
  /** Publishes and notifications still in flight; all must succeed before the ack. */
  pending: Promise<unknown>[];
  leases: LeaseSet;
  /** What this message wrote, by store and key, with the revision it got. */
  written: Map<string, Versioned<Stores[StoreName]>>;
}

function writtenKey(store: StoreName, key: string): string {
  return `${store}/${key}`;
}

/** A valid message on a subject that is not its own: treated as malformed. */
function subjectProblem(
  def: HandlerDefinition<unknown>,
  subject: string,
  message: unknown,
): { code: string; err: string } | undefined {
  const mismatch = def.subjectMismatch?.(subject, message);
  return mismatch === undefined ? undefined : { code: "FLEETHEAL_ERR_SUBJECT", err: mismatch };
}

/** Redelivery delay: 1 s doubling to 60 s. */
function backoff(deliveryCount: number): number {
  return Math.min(1_000 * 2 ** Math.max(0, deliveryCount - 1), 60_000);
}
