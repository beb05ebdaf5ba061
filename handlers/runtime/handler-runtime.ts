import type { ConsumerMessages, JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import type { CommandSigning } from "../../common/agent-commands.js";
import type { FleetJetStream } from "../../common/jetstream-resources.js";
import { settlesWithin } from "../../common/lifecycle.js";
import type { Logger } from "../../common/logger.js";
import { EVENTS_STREAM, type HealPolicy } from "../../contracts/index.js";
import type { HandlerDefinition } from "../handler.js";
import { HandlerMetrics } from "../metrics/handler-metrics.js";
import type { Notifier } from "../notify/notifier.js";
import { DecisionRunner } from "./decision-runner.js";
import { type HandlerStats, handleDelivery } from "./delivery.js";
import { durableName, ensureDurable } from "./durable-consumer.js";
import type { HandlerIo } from "./handler-io.js";
import { natsHandlerIo } from "./nats-handler-io.js";

/** What a {@link HandlerRuntime} is built with: NATS, and the settings its handlers share. */
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
  /** Where the replica's counters are kept; a new set by default. */
  metrics?: HandlerMetrics;
}

/**
 * How long one pull waits. nats.js notices a lost pull (the consumer's leader moved to another
 * node, a server restarted) only after two missed idle heartbeats, at half this each, so a
 * short pull keeps a handler from sitting idle long after a cluster node dies.
 */
const PULL_EXPIRES_MS = 5_000;

/** How long a stop waits for the messages in progress: well within a role's stop timeout. */
const STOP_GRACE_MS = 10_000;

/**
 * Binds handler definitions to JetStream: one durable consumer per handler, shared by every
 * replica, each message handled by delivery.ts with one {@link DecisionRunner} for all. A
 * message is acknowledged only after every decision has been applied; failures are redelivered
 * with backoff.
 */
export class HandlerRuntime {
  private readonly running: {
    def: HandlerDefinition<unknown>;
    messages: ConsumerMessages;
    loop: Promise<void>;
  }[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  /** The replica's counters: fed here, read by the stats service and the metrics endpoint. */
  readonly metrics: HandlerMetrics;
  private readonly io: HandlerIo;
  private readonly runner: DecisionRunner;

  constructor(private readonly options: RuntimeOptions) {
    this.metrics = options.metrics ?? new HandlerMetrics();
    this.io = natsHandlerIo(options);
    this.runner = new DecisionRunner(this.io, {
      log: options.log,
      commandTimeoutMs: options.commandTimeoutMs,
      policy: options.policy,
      ...(options.notifier ? { notifier: options.notifier } : {}),
      observer: this.metrics,
    });
  }

  /** Each bound handler's counters, by name (the `$SRV` stats). */
  get stats(): ReadonlyMap<string, HandlerStats> {
    return this.metrics.stats;
  }

  /** The durable consumers of the handlers bound so far. */
  durables(): string[] {
    return this.running.map((r) => durableName(r.def.name));
  }

  /** Creates (or updates) the handler's durable consumer and starts consuming. */
  async bind<E>(def: HandlerDefinition<E>): Promise<void> {
    const generic = def as HandlerDefinition<unknown>;
    const durable = durableName(def.name);
    await this.runner.ready();
    await ensureDurable(this.options.fjs.jsm, generic, this.options.startBackMs, this.options.log);
    const consumer = await this.options.fjs.js.consumers.get(EVENTS_STREAM, durable);
    const messages = await consumer.consume({
      max_messages: Math.max(def.concurrency * 2, 16),
      expires: PULL_EXPIRES_MS,
    });
    const stats = this.metrics.handler(def.name);
    this.running.push({ def: generic, messages, loop: this.loop(generic, messages, stats) });
    this.options.log.info({ handler: def.name, subject: def.subject, durable }, "handler bound");
  }

  /**
   * Stops taking messages and waits for those in progress, at most `graceMs`: a message still in
   * progress then (a restart waiting out a long stop timeout) is abandoned unacked, and
   * JetStream delivers it again, to another replica or to this one's next start.
   */
  async stop(graceMs = STOP_GRACE_MS): Promise<void> {
    for (const r of this.running) await r.messages.close();
    const settled = Promise.all(this.running.map((r) => r.loop)).then(() =>
      Promise.all(this.inFlight),
    );
    if (!(await settlesWithin(settled, graceMs))) {
      this.options.log.warn(
        { inFlight: this.inFlight.size, graceMs },
        "messages still in progress at stop: abandoned unacked, to be delivered again",
      );
    }
    await this.runner.stop();
  }

  /** Hands each message to delivery.ts, at most `def.concurrency` at once. */
  private async loop(
    def: HandlerDefinition<unknown>,
    messages: AsyncIterable<JsMsg>,
    stats: HandlerStats,
  ): Promise<void> {
    const deps = {
      runner: this.runner,
      io: this.io,
      log: this.options.log,
      stats,
      deadLetters: this.metrics,
    };
    let busy = 0;
    let freed: (() => void) | undefined;
    for await (const msg of messages) {
      while (busy >= def.concurrency) await new Promise<void>((resolve) => (freed = resolve));
      busy++;
      const job = handleDelivery(def, msg, deps).finally(() => {
        busy--;
        this.inFlight.delete(job);
        const wake = freed;
        freed = undefined;
        wake?.();
      });
      this.inFlight.add(job);
    }
  }
}
