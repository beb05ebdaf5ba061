import { describeError } from "../common/errors.js";
import { settlesWithin } from "../common/lifecycle.js";
import type { Logger } from "../common/logger.js";
import { earliestTimeNano } from "../common/nanosecond-time.js";
import { RepeatLimiter } from "../common/repeat-limiter.js";
import { VERSION } from "../common/version.js";
import type { HostSnapshot } from "../contracts/index.js";
import type { AgentBaseline, AgentNats, CommandServer } from "./agent-ports.js";
import { BaselineKeeper } from "./baseline-keeper.js";
import { CommandGate } from "./command-auth.js";
import { CommandExecutor } from "./command-executor.js";
import { commandHandlers } from "./command-handlers.js";
import type { AgentConfig } from "./config.js";
import type { ContainerDetails, DockerEngine } from "./docker-engine.js";
import type { DockerContainerEvent } from "./docker-event.js";
import { EventPump } from "./event-pump.js";
import { EventTranslator } from "./event-translator.js";
import { executorView } from "./executor-view.js";
import { HostState, judgedHealth } from "./host-state.js";
import { InspectFirst } from "./inspect-first.js";
import { Outbox } from "./outbox.js";
import { NOTHING_ALLOWED } from "./probes/probe-allow.js";
import { Prober } from "./probes/prober.js";
import { Reconciler } from "./reconciler.js";
import { RefreshCoalescer } from "./refresh-coalescer.js";
import { resyncBudget } from "./resync.js";
import { SnapshotPublisher } from "./snapshot-publisher.js";

export interface AgentDeps {
  config: AgentConfig;
  docker: DockerEngine;
  nats: AgentNats;
  /** The last published snapshot, kept for the next run. */
  baseline: AgentBaseline;
  log: Logger;
  now?: () => Date;
}

/**
 * Longest a Docker health event waits for the inspect that shows its check's output. An inspect
 * takes milliseconds; one stuck behind a busy dockerd must not hold up healing for long.
 */
const INSPECT_FIRST_WAIT_MS = 2_000;

/** Counters for what the agent has seen and done. */
export interface AgentStats {
  forwarded: number;
  synthesized: number;
  rejectedDockerLines: number;
  invalidEvents: number;
  reconciles: number;
}

/**
 * One host's agent: Docker events in, contract events out, a live host snapshot, and commands
 * executed. It takes no healing decisions.
 */
export class Agent {
  readonly state: HostState;
  readonly outbox: Outbox;
  readonly stats: AgentStats = {
    forwarded: 0,
    synthesized: 0,
    rejectedDockerLines: 0,
    invalidEvents: 0,
    reconciles: 0,
  };
  private readonly pump: EventPump;
  private readonly snapshots: SnapshotPublisher;
  private readonly executor: CommandExecutor;
  /** Who may restart and stop, and what was refused. */
  private readonly gate: CommandGate;
  private readonly prober: Prober;
  /** Re-inspects a container after each of its events, coalescing the triggers. */
  private readonly refresher: RefreshCoalescer;
  /** What subscribers were last told, and the reconciles that find what they were not. */
  private readonly reconciler: Reconciler;
  /** The last published snapshot, kept for the next run. */
  private readonly baseline: BaselineKeeper;
  /** Container transitions into contract events in the outbox. */
  private readonly events: EventTranslator;
  /** Docker's health events, each held until the inspect that shows its check's output. */
  private readonly inspectFirst: InspectFirst;
  private reconcileTimer: NodeJS.Timeout | undefined;
  private firstContactTimer: NodeJS.Timeout | undefined;
  private commands: CommandServer | undefined;
  private snapshotsStarted = false;
  private readonly now: () => Date;
  private readonly log: Logger;
  private readonly config: AgentConfig;

  constructor(private readonly deps: AgentDeps) {
    const { config, docker, log } = deps;
    this.config = config;
    this.log = log;
    this.now = deps.now ?? (() => new Date());
    this.baseline = new BaselineKeeper(deps.baseline, log);
    const optIn = { label: config.label, watchAll: config.watchAll };
    const startedAt = this.now();
    this.gate = new CommandGate({
      keys: config.commandKeys,
      acceptUnsigned: config.insecureUnsignedCommands,
      clockSkewMs: config.commandClockSkewMs,
      startedAtMs: startedAt.getTime(),
      replayFloorMs: () => this.executor.replayFloorMs,
      now: () => this.now().getTime(),
      onCount: () => this.snapshots.changed(),
    });
    this.state = new HostState({
      host: config.hostId,
      version: VERSION,
      startedAt,
      heartbeatMs: config.heartbeatMs,
      optIn,
      commandKeys: this.gate.verifier.keys,
      acceptsUnsignedCommands: config.insecureUnsignedCommands,
    });
    // A refusal that lasts (NATS down, the host over its share of the events stream) fails every
    // retry of every message in flight: log it once a minute, with how many were held back.
    const publishFailures = new RepeatLimiter(60_000);
    this.outbox = new Outbox({
      publish: deps.nats.publishEvent,
      capacity: config.outboxCapacity,
      onPublishError: (error, message) => {
        const held = publishFailures.take();
        if (held === undefined) return;
        log.warn(
          { err: describeError(error), subject: message.subject, heldBack: held },
          "event publish failed",
        );
      },
      onDrop: (message) => {
        log.error({ subject: message.subject }, "outbox full: dropped the oldest event");
        void this.reconciler.request();
      },
      onUnpublishable: (error, message) => {
        log.error(
          { err: describeError(error), subject: message.subject, bytes: message.payload.length },
          "NATS refuses this event for good; dropped it",
        );
        this.snapshots.changed();
      },
    });
    this.snapshots = new SnapshotPublisher({
      take: (withoutLabels) => this.takeSnapshot(withoutLabels),
      publish: async (snapshot) => {
        await deps.nats.publishSnapshot(snapshot);
        await this.baseline.save(snapshot);
      },
      debounceMs: config.snapshotDebounceMs,
      heartbeatMs: config.heartbeatMs,
      onError: (error) => log.warn({ err: describeError(error) }, "snapshot publish failed"),
      onWithoutLabels: (error) =>
        error
          ? log.error(
              { err: describeError(error) },
              "NATS refuses the host snapshot for good; publishing it without labels",
            )
          : log.info("the host snapshot fits again; publishing it with labels"),
    });
    this.executor = new CommandExecutor({
      host: config.hostId,
      docker,
      optIn,
      defaultStopTimeoutSeconds: config.defaultStopTimeoutSeconds,
      ...executorView({
        live: () => this.pump.live,
        refresher: {
          pending: (id) => this.refresher.pending(id),
          verified: (id) => this.refresher.verified(id),
        },
        state: this.state,
        probe: (id) => this.prober.view(id),
      }),
      clockSkewMs: config.commandClockSkewMs,
      now: () => this.now().getTime(),
    });
    this.prober = new Prober({
      docker,
      log,
      access: { allow: config.probeAllow ?? NOTHING_ALLOWED },
      onTransition: (id, health) => this.events.synthesize(id, health, "probe"),
      onChange: () => this.snapshots.changed(),
    });
    this.refresher = new RefreshCoalescer({
      docker,
      log,
      apply: (id, details) => this.inspected(id, details),
    });
    this.reconciler = new Reconciler({
      docker,
      state: this.state,
      refresh: (id) => this.refresher.refresh(id),
      hasQueuedEventFor: (id) => this.pump.hasQueuedEventFor(id) || this.inspectFirst.holds(id),
      synthesize: (id, action, source) => this.events.synthesize(id, action, source),
      healthOf: (details) => judgedHealth(details, this.prober.view(details.id)).health,
      current: (id) => this.refresher.verified(id),
      resyncBudget: () => resyncBudget(this.outbox.stats.depth, config.outboxCapacity),
      forget: (id) => this.prober.remove(id),
      changed: () => this.snapshots.changed(),
      started: () => this.stats.reconciles++,
      finished: () => {
        this.firstContact();
        this.snapshots.publishNow();
      },
      log,
      now: this.now,
    });
    this.events = new EventTranslator({
      hostId: config.hostId,
      label: config.label,
      state: this.state,
      reported: this.reconciler,
      healthOutput: (id) => {
        const details = this.state.get(id);
        return details && judgedHealth(details, this.prober.view(id)).output;
      },
      enqueue: (message) => this.outbox.enqueue(message),
      log,
      now: this.now,
      stats: this.stats,
    });
    this.inspectFirst = new InspectFirst({
      refresh: (id) => this.refresher.refresh(id),
      forward: (event, inspected) => this.forward(event, inspected),
      waitMs: INSPECT_FIRST_WAIT_MS,
      log,
    });
    this.pump = new EventPump({
      docker,
      log,
      queueCapacity: config.eventQueueCapacity,
      onEvent: (event) => {
        this.reconciler.touch(event.containerId);
        this.inspectFirst.push(event);
      },
      onConnected: () => this.reconciler.request(),
      onDisconnected: (error) => this.dockerDown(error),
      onOverflow: () => void this.reconciler.request(),
      onRejected: () => this.stats.rejectedDockerLines++,
    });
  }

  async start(): Promise<void> {
    const warning = this.gate.warning();
    if (warning) this.log.warn(warning);
    await this.loadBaseline();
    this.commands = await this.deps.nats.serveCommands(
      commandHandlers({
        gate: this.gate,
        executor: this.executor,
        docker: this.deps.docker,
        state: this.state,
        probe: (id) => this.prober.view(id),
        snapshot: () => this.takeSnapshot(),
        log: this.log,
      }),
    );
    this.deps.nats.onReconnect(() => {
      this.log.info("NATS reconnected: reconciling and republishing the snapshot");
      this.outbox.kick();
      void this.reconciler.request();
    });
    // Snapshots start once the first contact with Docker has settled, so the first snapshot
    // never claims "Docker down" merely because the agent has just started. A Docker endpoint
    // that neither answers nor fails must not keep the host invisible, though.
    this.pump.start();
    this.firstContactTimer = setTimeout(() => this.firstContact(), this.config.heartbeatMs);
    this.reconcileTimer = setInterval(
      () => void this.reconciler.request(),
      this.config.reconcileIntervalMs,
    );
    this.log.info(
      { host: this.config.hostId, label: this.config.label, version: VERSION },
      "agent started",
    );
  }

  /** Stops reading Docker, stops serving commands, and flushes what is still unacked. */
  /**
   * Stops within about `dockerWaitMs + drainTimeoutMs` whatever Docker does: an inspect or a
   * reconcile stuck on a hung dockerd is abandoned (the next start replays from the snapshot's
   * `lastEventTimeNano` and reconciles), and events JetStream has not acked are left to that
   * replay too.
   */
  async stop(drainTimeoutMs = 5_000, dockerWaitMs = 5_000): Promise<void> {
    clearInterval(this.reconcileTimer);
    clearTimeout(this.firstContactTimer);
    await this.pump.stop();
    const dockerWork = Promise.all([
      this.inspectFirst.idle(),
      this.prober.stop(),
      this.commands?.close(),
      this.reconciler.idle(),
    ]);
    if (!(await settlesWithin(dockerWork, dockerWaitMs))) {
      this.log.warn({ dockerWaitMs }, "Docker calls still in flight at shutdown; abandoned");
    }
    await settlesWithin(this.outbox.drained(), drainTimeoutMs);
    const unsent = this.outbox.close();
    if (unsent.length > 0) this.log.warn({ unsent: unsent.length }, "events not acked at shutdown");
    await this.snapshots.stop();
  }

  private takeSnapshot(withoutLabels = false): HostSnapshot {
    return this.state.snapshot(
      this.now(),
      {
        outbox: {
          depth: this.outbox.stats.depth,
          capacity: this.config.outboxCapacity,
          published: this.outbox.stats.published,
          dropped: this.outbox.stats.dropped,
          unpublishable: this.outbox.stats.unpublishable,
        },
        lastEventTimeNano: this.replayPoint(),
        probe: (id) => this.prober.view(id),
        commandRefusals: this.gate.snapshot(),
        // Carried by the next snapshot, not a reason for one: a probe runs every few seconds.
        counters: {
          reconciles: this.stats.reconciles,
          probeResults: this.prober.resultCounts(),
        },
      },
      withoutLabels,
    );
  }

  /**
   * Where a restarted agent must replay from: just before the oldest Docker event that is not
   * stored yet, or the last event read when everything is stored.
   */
  private replayPoint(): string | undefined {
    const unacked = earliestTimeNano(
      this.outbox.oldestTimeNano(),
      this.inspectFirst.oldestTimeNano(),
    );
    return unacked === undefined ? this.pump.lastTimeNano : (BigInt(unacked) - 1n).toString();
  }

  /**
   * The previous run's last snapshot is what subscribers were last told: the baseline against
   * which reconciliation finds the transitions nobody reported, and the replay point.
   */
  private async loadBaseline(): Promise<void> {
    const previous = await this.baseline.load();
    if (!previous) return;
    this.reconciler.resume(previous);
    this.pump.lastTimeNano = previous.lastEventTimeNano;
    this.log.info(
      { containers: previous.containers.length, since: previous.lastEventTimeNano },
      "resuming from the previous snapshot",
    );
  }

  /** One Docker event, in Docker's order for its container; `inspected`: no inspect needed. */
  private forward(event: DockerContainerEvent, inspected: boolean): void {
    this.reconciler.touch(event.containerId);
    this.events.docker(event.containerId, event.action, event.timeNano, event.attributes);
    if (event.action === "destroy") {
      this.prober.remove(event.containerId);
      if (this.state.remove(event.containerId)) this.snapshots.changed();
    } else if (!inspected) {
      void this.refresher.refresh(event.containerId);
    }
  }

  /** One inspect's result, into the state, the baseline and the label probes. */
  private inspected(id: string, details: ContainerDetails | undefined): void {
    const changed = details ? this.state.upsert(details) : this.state.remove(id);
    if (details) {
      this.reconciler.inspected(details);
      this.prober.sync(details);
    } else {
      this.prober.remove(id);
    }
    if (changed) this.snapshots.changed();
  }

  private firstContact(): void {
    if (this.snapshotsStarted) return;
    this.snapshotsStarted = true;
    clearTimeout(this.firstContactTimer);
    this.snapshots.start();
  }

  private dockerDown(error: unknown): void {
    const message = describeError(error);
    this.log.warn({ err: message }, "Docker unreachable; reconnecting");
    if (this.state.setDockerDown(message)) this.snapshots.publishNow();
    this.firstContact();
  }
}
