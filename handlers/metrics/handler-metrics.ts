import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import { failureOutcome } from "../../common/restart-outcomes.js";
import { VERSION } from "../../common/version.js";
import {
  type CommandReply,
  RemediationPhase,
  type RemediationRecord,
} from "../../contracts/index.js";
import { emptyHandlerStats, type HandlerStats } from "../runtime/delivery.js";
import { SKIP_CODES, skipCode } from "../skip-codes.js";
import type { JetStreamLevels } from "./jetstream-levels.js";

/*
 * A handler replica's counters, kept in one place: the runtime feeds them where it acknowledges
 * messages, stores records and dead letters and gets the agents' answers, and both the `$SRV`
 * stats service (stats-service.ts) and the Prometheus endpoint (metrics-app.ts) read them. Every
 * label value comes from a fixed set in code, and anything else is counted as `other`, so that
 * no input (a host's agent writes part of a record's code) can create series without end.
 */

/** The `result` label of fleetheal_handler_messages_total, for each of a handler's counters. */
const MESSAGE_RESULTS = {
  handled: "handled",
  rejected: "rejected",
  retried: "retried",
  deferred: "deferred",
  failed: "failed",
  conflicts: "conflict",
} as const satisfies Record<keyof HandlerStats, string>;

/** The `trigger` label of restart metrics: what a handler restarts for. */
export const RESTART_TRIGGERS = ["heal", "dependents"] as const;

/**
 * fleetheal_heal_latency_seconds's buckets: a heal waits at least the health check's own
 * retries, and the policy may hold it (unhealthy-for, backoff), so they reach ten minutes.
 */
const LATENCY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

/** The agent's answers that mean it began the action (Docker did it, or failed at it). */
const ACTED = new Set<CommandReply["outcome"]>(["restarted", "stopped", "recreated"]);

/** What the replica's metrics are built with. */
export interface HandlerMetricsOptions {
  /** Also export Node's process metrics (memory, CPU, event loop): only when they are served. */
  processMetrics?: boolean;
  /** The JetStream levels (consumers, dead letters), read at scrape time; absent: not exported. */
  levels?: () => Promise<JetStreamLevels | undefined>;
}

/** One handler replica's counters, for its `$SRV` stats and its `/metrics`. */
export class HandlerMetrics {
  readonly registry = new Registry();
  /** Each bound handler's message counters, by name: the `$SRV` stats report these objects. */
  readonly stats = new Map<string, HandlerStats>();
  private readonly decisions: Counter<"handler" | "phase">;
  private readonly skips: Counter<"code">;
  private readonly restarts: Counter<"trigger" | "outcome">;
  private readonly failures: Counter<"trigger" | "code">;
  private readonly latency: Histogram;
  private readonly deadLetters: Counter<"handler">;

  constructor(options: HandlerMetricsOptions = {}) {
    const registers = [this.registry];
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: "fleetheal_build_info",
      help: "1, labelled with the role and the version of fleetheal it runs.",
      labelNames: ["role", "version"],
      registers,
    }).set({ role: "handler", version: VERSION }, 1);
    const stats = this.stats;
    new Counter({
      name: "fleetheal_handler_messages_total",
      help: "Messages each handler of this replica took from its consumer, by result: handled (acted on and acknowledged), rejected (malformed: dead-lettered at once), retried (failed, to be delivered again), deferred (held back on purpose: backoff, storm guard…), failed (given up after the last delivery: dead-lettered), conflict (a claim lost to another replica, decided again).",
      labelNames: ["handler", "result"],
      registers,
      collect() {
        // The counters live in the stats objects the runtime updates (one source for `$SRV`
        // and here); a scrape copies them.
        this.reset();
        for (const [handler, counts] of stats) {
          for (const [field, result] of Object.entries(MESSAGE_RESULTS)) {
            this.inc({ handler, result }, counts[field as keyof HandlerStats]);
          }
        }
      },
    });
    this.decisions = new Counter({
      name: "fleetheal_decisions_total",
      help: "Remediation records this replica stored, by handler and phase (a redelivery's copy, which JetStream drops, is not counted).",
      labelNames: ["handler", "phase"],
      registers,
    });
    this.skips = new Counter({
      name: "fleetheal_skips_total",
      help: "Skipped and quarantined records this replica stored, by code: why a container was not acted on (paused, backoff, storm-cap, image-breaker, budget-spent…; unknown codes as other).",
      labelNames: ["code"],
      registers,
    });
    this.restarts = new Counter({
      name: "fleetheal_restarts_total",
      help: "Restarts this replica decided that the agent answered, by trigger (heal, dependents) and outcome (restarted, failed), from the restarted and failed records it stored.",
      labelNames: ["trigger", "outcome"],
      registers,
    });
    this.failures = new Counter({
      name: "fleetheal_restart_failures_total",
      help: "Failed restarts this replica recorded, by trigger and failure code (docker-error, pull-failed, timeout, no-responders, command-refused, bad-reply, error; others as other).",
      labelNames: ["trigger", "code"],
      registers,
    });
    this.latency = new Histogram({
      name: "fleetheal_heal_latency_seconds",
      help: "From Docker's unhealthy event (its time, or the transition's time that a resync re-asserts) to the moment the agent began the heal's restart, stop or recreate, as the agent reports it in its reply (startedAt). Only answers in which the agent acted.",
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.deadLetters = new Counter({
      name: "fleetheal_dead_letters_total",
      help: "Messages this replica moved to the dead-letter stream FLEETHEAL_DLQ, by handler.",
      labelNames: ["handler"],
      registers,
    });
    for (const trigger of RESTART_TRIGGERS) {
      for (const outcome of ["restarted", "failed"]) this.restarts.inc({ trigger, outcome }, 0);
    }
    for (const code of SKIP_CODES) this.skips.inc({ code }, 0);
    if (options.levels) levelGauges(options.levels, registers);
  }

  /** The counters of a handler the runtime binds, at zero; the same object for the same name. */
  handler(name: string): HandlerStats {
    let counts = this.stats.get(name);
    if (!counts) {
      counts = emptyHandlerStats();
      this.stats.set(name, counts);
      this.deadLetters.inc({ handler: name }, 0);
    }
    return counts;
  }

  /** A remediation record stored for the first time (not a copy JetStream dropped). */
  recordStored(handler: string | undefined, record: RemediationRecord): void {
    const name = this.handlerLabel(handler);
    const phase = RemediationPhase.safeParse(record.phase).success ? record.phase : "other";
    this.decisions.inc({ handler: name, phase });
    if (record.phase === "skipped" || record.phase === "quarantined") {
      this.skips.inc({ code: skipCode(record.code) });
    }
    // Stop and recreate have records of their own; a failed one says its action.
    const restart = record.action === undefined || record.action === "restart";
    if (!restart || record.dryRun) return;
    const trigger = triggerOf(name);
    if (record.phase === "restarted") this.restarts.inc({ trigger, outcome: "restarted" });
    if (record.phase === "failed") {
      this.restarts.inc({ trigger, outcome: "failed" });
      this.failures.inc({ trigger, code: failureOutcome(record.code) });
    }
  }

  /**
   * The agent answered a heal's command that an unhealthy container triggered at
   * `unhealthyAt`: one latency sample when it acted. A repeat answer (the command was sent
   * again after its first answer was lost) carries the first execution's start, and is
   * sampled as this replica never saw the first.
   */
  actionAnswered(unhealthyAt: Date, reply: CommandReply): void {
    if (!ACTED.has(reply.outcome)) return;
    const seconds = (Date.parse(reply.startedAt) - unhealthyAt.getTime()) / 1000;
    // A host's clock behind Docker's event time (or a bad time) gives no sample, not a zero.
    if (Number.isFinite(seconds) && seconds >= 0) this.latency.observe(seconds);
  }

  /** A message moved to the dead-letter stream (stored there). */
  deadLettered(handler: string): void {
    this.deadLetters.inc({ handler: this.handlerLabel(handler) });
  }

  /** The Prometheus text exposition of every metric. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** A handler's name as a label: one the runtime bound (names fixed in code), else `other`. */
  private handlerLabel(handler: string | undefined): string {
    return handler !== undefined && this.stats.has(handler) ? handler : "other";
  }
}

/** Which restarts a handler's are: heal's own, or dependents' (its three handlers). */
function triggerOf(handler: string): string {
  if (handler === "heal") return "heal";
  return handler === "dependents" || handler.startsWith("dependents-") ? "dependents" : "other";
}

/** The consumer and dead-letter gauges, read from JetStream at scrape time (cached). */
function levelGauges(
  levels: () => Promise<JetStreamLevels | undefined>,
  registers: Registry[],
): void {
  const perConsumer = (
    name: string,
    help: string,
    field: "pending" | "ackPending" | "redelivered",
  ) =>
    new Gauge({
      name,
      help,
      labelNames: ["consumer"],
      registers,
      async collect() {
        this.reset();
        // An unreadable level is left out rather than shown stale or as zero.
        for (const c of (await levels())?.consumers ?? []) {
          this.set({ consumer: c.consumer }, c[field]);
        }
      },
    });
  perConsumer(
    "fleetheal_consumer_pending",
    "Messages in FLEETHEAL_EVENTS not yet delivered to a handler's durable consumer (shared by every replica), by consumer: the handlers' backlog.",
    "pending",
  );
  perConsumer(
    "fleetheal_consumer_ack_pending",
    "Messages a handler's consumer delivered that are not yet acknowledged (in progress, or deferred to come back later), by consumer.",
    "ackPending",
  );
  perConsumer(
    "fleetheal_consumer_redelivered",
    "Messages of a handler's consumer delivered more than once and not yet acknowledged, by consumer.",
    "redelivered",
  );
  new Gauge({
    name: "fleetheal_dlq_messages",
    help: "Messages in the dead-letter stream FLEETHEAL_DLQ (kept 30 days), from every replica.",
    registers,
    async collect() {
      // A gauge without labels cannot be left out; while unreadable it keeps its last value.
      const dlq = (await levels())?.dlqMessages;
      if (dlq !== undefined) this.set(dlq);
    },
  });
}
