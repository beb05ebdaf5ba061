import { describeError } from "../common/errors.js";
import type { Logger } from "../common/logger.js";
import { VERSION } from "../common/version.js";
import {
  CONTAINER_EVENT_TYPE,
  type ContainerAction,
  ContainerEvent,
  containerEventId,
  encode,
  eventSubject,
  type HealthStatus,
  type HostSnapshot,
  type Labels,
} from "../contracts/index.js";
import type { AgentBaseline, AgentNats, CommandServer } from "./agent-ports.js";
import { CommandGate } from "./command-auth.js";
import { CommandExecutor } from "./command-executor.js";
import type { AgentConfig } from "./config.js";
import type { ContainerDetails, DockerEngine } from "./docker-engine.js";
import {
  type DockerContainerEvent,
  isoFromTimeNano,
  labelsFromAttributes,
} from "./docker-event.js";
import { EventPump } from "./event-pump.js";
import { HostState } from "./host-state.js";
import { relevantLabels } from "./labels.js";
import { Outbox } from "./outbox.js";
import { Prober } from "./probes/prober.js";
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

/** Counters for what the agent has seen and done. */
export interface AgentStats {
  forwarded: number;
  synthesized: number;
  rejectedDockerLines: number;
  invalidEvents: number;
  reconciles: number;
}

/**
 * What subscribers were last told about a container, and who it was: reconciliation reports the
 * differences, and can still name a container that has vanished.
 */
interface Reported {
  running: boolean;
  health: HealthStatus;
  /** The run subscribers know of; a different StartedAt now means a restart nobody reported. */
  startedAt: string | undefined;
  name: string;
  image: string;
  imageId: string | undefined;
  labels: Labels;
}

/** Where a forwarded transition comes from (see ContainerEvent.source). */
type EventSource = "docker" | "reconcile" | "probe";

/**
 * Inspects a reconcile has in flight at once. A whole host at once keeps every response alive
 * together, so V8 promotes them all and must reclaim them with full collections: on 100
 * containers, a full collection about every fourth reconcile instead of one in thirty, and
 * 3–4 MB more resident memory after a few minutes (docs/AGENT.md, "Memory"). Docker answers
 * them no sooner all at once.
 */
const RECONCILE_INSPECTS = 8;

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
  private readonly refreshing = new Map<string, { again: boolean; done: Promise<void> }>();
  /** Containers whose last inspect failed: the state may have missed a change to them. */
  private readonly unverified = new Set<string>();
  /** Per container, what subscribers were last told; undefined until a baseline exists. */
  private readonly reported = new Map<string, Reported>();
  /** When the baseline was taken (the previous run's last snapshot), if there is one. */
  private baselineAt: number | undefined;
  private baselineFailing = false;
  private reconciling: Promise<void> | undefined;
  private reconcileAgain: Promise<void> | undefined;
  private reconcileTimer: NodeJS.Timeout | undefined;
  private firstContactTimer: NodeJS.Timeout | undefined;
  private commands: CommandServer | undefined;
  private snapshotsStarted = false;
  private syntheticSeq = 0;
  /** Containers with a kill or stop since their last start: their next die was asked for. */
  private readonly stopping = new Set<string>();
  /** Containers with a Docker event since the current reconcile began. */
  private readonly touched = new Set<string>();
  private readonly now: () => Date;
  private readonly log: Logger;
  private readonly config: AgentConfig;

  constructor(private readonly deps: AgentDeps) {
    const { config, docker, log } = deps;
    this.config = config;
    this.log = log;
    this.now = deps.now ?? (() => new Date());
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
    this.outbox = new Outbox({
      publish: deps.nats.publishEvent,
      capacity: config.outboxCapacity,
      onPublishError: (error, message) =>
        log.warn({ err: describeError(error), subject: message.subject }, "event publish failed"),
      onDrop: (message) => {
        log.error({ subject: message.subject }, "outbox full: dropped the oldest event");
        void this.requestReconcile();
      },
    });
    this.snapshots = new SnapshotPublisher({
      take: () => this.takeSnapshot(),
      publish: async (snapshot) => {
        await deps.nats.publishSnapshot(snapshot);
        await this.keepBaseline(snapshot);
      },
      debounceMs: config.snapshotDebounceMs,
      heartbeatMs: config.heartbeatMs,
      onError: (error) => log.warn({ err: describeError(error) }, "snapshot publish failed"),
    });
    this.executor = new CommandExecutor({
      host: config.hostId,
      docker,
      optIn,
      defaultStopTimeoutSeconds: config.defaultStopTimeoutSeconds,
      currentView: (id) => this.currentView(id),
      healthOf: (details) => this.healthOf(details),
      clockSkewMs: config.commandClockSkewMs,
      now: () => this.now().getTime(),
    });
    this.prober = new Prober({
      docker,
      log,
      onTransition: (id, health) => this.synthesize(id, health, "probe"),
      onChange: () => this.snapshots.changed(),
    });
    this.pump = new EventPump({
      docker,
      log,
      queueCapacity: config.eventQueueCapacity,
      onEvent: (event) => this.forward(event),
      onConnected: () => this.requestReconcile(),
      onDisconnected: (error) => this.dockerDown(error),
      onOverflow: () => void this.requestReconcile(),
      onRejected: () => this.stats.rejectedDockerLines++,
    });
  }

  async start(): Promise<void> {
    const warning = this.gate.warning();
    if (warning) this.log.warn(warning);
    await this.loadBaseline();
    this.commands = await this.deps.nats.serveCommands({
      authorise: (command, request) => this.gate.authorise(command, request),
      rejected: (verb, reason) => this.gate.rejected(verb, reason),
      rejections: (verb) => this.gate.rejections(verb),
      execute: async (command) => {
        const reply = await this.executor.execute(command);
        this.log.info(
          {
            verb: reply.verb,
            commandId: command.commandId,
            containerId: command.containerId,
            requestedBy: command.requestedBy,
            reason: command.reason,
            outcome: reply.outcome,
            code: reply.code,
            duplicate: reply.duplicate,
            durationMs: reply.durationMs,
          },
          `${reply.verb} command: ${reply.outcome} (${reply.code})`,
        );
        return reply;
      },
      inspect: async (id) => {
        const details = await this.deps.docker.inspect(id);
        return details && this.state.containerSnapshot(details, this.prober.view(details.id));
      },
      snapshot: () => this.takeSnapshot(),
    });
    this.deps.nats.onReconnect(() => {
      this.log.info("NATS reconnected: reconciling and republishing the snapshot");
      this.outbox.kick();
      void this.requestReconcile();
    });
    // Snapshots start once the first contact with Docker has settled, so the first snapshot
    // never claims "Docker down" merely because the agent has just started. A Docker endpoint
    // that neither answers nor fails must not keep the host invisible, though.
    this.pump.start();
    this.firstContactTimer = setTimeout(() => this.firstContact(), this.config.heartbeatMs);
    this.reconcileTimer = setInterval(
      () => void this.requestReconcile(),
      this.config.reconcileIntervalMs,
    );
    this.log.info(
      { host: this.config.hostId, label: this.config.label, version: VERSION },
      "agent started",
    );
  }

  /** Stops reading Docker, stops serving commands, and flushes what is still unacked. */
  async stop(drainTimeoutMs = 5_000): Promise<void> {
    clearInterval(this.reconcileTimer);
    clearTimeout(this.firstContactTimer);
    await this.pump.stop();
    await this.prober.stop();
    await this.commands?.close();
    await this.reconciling;
    let drainTimer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.outbox.drained(),
      new Promise((resolve) => {
        drainTimer = setTimeout(resolve, drainTimeoutMs);
      }),
    ]);
    clearTimeout(drainTimer);
    const unsent = this.outbox.close();
    if (unsent.length > 0) this.log.warn({ unsent: unsent.length }, "events not acked at shutdown");
    await this.snapshots.stop();
  }

  private takeSnapshot(): HostSnapshot {
    return this.state.snapshot(this.now(), {
      outbox: {
        depth: this.outbox.stats.depth,
        capacity: this.config.outboxCapacity,
        published: this.outbox.stats.published,
        dropped: this.outbox.stats.dropped,
      },
      lastEventTimeNano: this.replayPoint(),
      probe: (id) => this.prober.view(id),
      commandRefusals: this.gate.snapshot(),
    });
  }

  /**
   * Where a restarted agent must replay from: just before the oldest Docker event that is not
   * stored yet, or the last event read when everything is stored.
   */
  private replayPoint(): string | undefined {
    const unacked = this.outbox.oldestTimeNano();
    return unacked === undefined ? this.pump.lastTimeNano : (BigInt(unacked) - 1n).toString();
  }

  /**
   * The previous run's last snapshot is what subscribers were last told: the baseline against
   * which reconciliation finds the transitions nobody reported, and the replay point.
   */
  private async loadBaseline(): Promise<void> {
    let previous: HostSnapshot | undefined;
    try {
      previous = await this.deps.baseline.load();
    } catch (error) {
      this.log.warn({ err: describeError(error) }, "ignoring an unreadable previous snapshot");
    }
    if (!previous) return;
    this.baselineAt = Date.parse(previous.at);
    for (const c of previous.containers) {
      this.reported.set(c.id, {
        running: isRunning(c.state),
        health: c.health,
        startedAt: c.startedAt,
        name: c.name,
        image: c.image,
        imageId: c.imageId,
        labels: c.labels,
      });
    }
    this.pump.lastTimeNano = previous.lastEventTimeNano;
    this.log.info(
      { containers: previous.containers.length, since: previous.lastEventTimeNano },
      "resuming from the previous snapshot",
    );
  }

  /**
   * Saves what subscribers have just been told. A failure is logged once until a save works
   * again: the agent heals without it, but its next run would start without a baseline.
   */
  private async keepBaseline(snapshot: HostSnapshot): Promise<void> {
    try {
      await this.deps.baseline.save(snapshot);
      if (this.baselineFailing) this.log.info("the snapshot is saved for the next run again");
      this.baselineFailing = false;
    } catch (error) {
      if (!this.baselineFailing) {
        this.log.warn(
          { err: describeError(error) },
          "could not save the snapshot for the next run; it will start without a baseline",
        );
      }
      this.baselineFailing = true;
    }
  }

  private forward(event: DockerContainerEvent): void {
    this.touched.add(event.containerId);
    // Docker announces a stop or kill before the die it causes; a die without one is a crash.
    if (event.action === "kill" || event.action === "stop") this.stopping.add(event.containerId);
    this.publish(event.containerId, event.action, event.timeNano, "docker", event.attributes);
    if (event.action === "start" || event.action === "die" || event.action === "destroy") {
      this.stopping.delete(event.containerId);
    }
    if (event.action === "destroy") {
      this.prober.remove(event.containerId);
      if (this.state.remove(event.containerId)) this.snapshots.changed();
    } else {
      void this.refresh(event.containerId);
    }
  }

  /** A transition Docker did not report (a gap, or a label probe), stamped with our clock. */
  private synthesize(containerId: string, action: ContainerAction, source: EventSource): void {
    const ns = BigInt(this.now().getTime()) * 1_000_000n + BigInt(this.syntheticSeq++ % 1_000_000);
    this.stats.synthesized++;
    this.publish(containerId, action, ns.toString(), source, {});
  }

  private publish(
    containerId: string,
    action: ContainerAction,
    timeNano: string,
    source: EventSource,
    attributes: Record<string, string>,
  ): void {
    const host = this.config.hostId;
    // A container that is gone from the state (a synthetic destroy) is named from the baseline.
    const known = this.state.get(containerId) ?? this.reported.get(containerId);
    const labels = known?.labels ?? labelsFromAttributes(attributes);
    const exitCode =
      attributes.exitCode ?? (action === "die" ? this.state.get(containerId)?.exitCode : undefined);
    const candidate = {
      type: CONTAINER_EVENT_TYPE,
      v: 1,
      id: containerEventId(host, containerId, timeNano, action),
      host,
      action,
      timeNano,
      time: isoFromTimeNano(timeNano),
      source,
      container: {
        id: containerId,
        name: attributes.name ?? known?.name ?? "",
        image: attributes.image ?? known?.image ?? "",
        // A container's image never changes, so any inspect of it tells; only events that come
        // before its first inspect (a create, a start) can be without.
        ...(known?.imageId ? { imageId: known.imageId } : {}),
        labels: relevantLabels(labels, this.config.label),
        optedIn: this.state.optedIn({ labels }),
        // A Docker start/create begins a new run: the known StartedAt is the previous one's.
        ...(known?.startedAt &&
        !(source === "docker" && (action === "start" || action === "create"))
          ? { startedAt: known.startedAt }
          : {}),
      },
      ...(exitCode !== undefined ? { exitCode: Number(exitCode) } : {}),
      ...(attributes.signal !== undefined ? { signal: attributes.signal } : {}),
      ...(action === "die" && source === "docker"
        ? { stopped: this.stopping.has(containerId) }
        : {}),
    };
    this.noteReported(containerId, action, {
      name: candidate.container.name,
      image: candidate.container.image,
      imageId: known?.imageId,
      labels: candidate.container.labels,
      startedAt: "startedAt" in candidate.container ? candidate.container.startedAt : undefined,
    });
    const checked = ContainerEvent.safeParse(candidate);
    if (!checked.success) {
      this.stats.invalidEvents++;
      this.log.error(
        { containerId, action, issues: checked.error.issues },
        "event does not fit the contract; not forwarded",
      );
      return;
    }
    this.outbox.enqueue({
      subject: eventSubject(host, containerId, action),
      payload: encode(checked.data),
      msgId: checked.data.id,
      ...(source === "docker" ? { timeNano } : {}),
    });
    this.stats.forwarded++;
  }

  /**
   * Keeps the reported baseline in step with what was just forwarded. `identity` is what the
   * event said about the container; a start begins a run whose StartedAt the next inspect
   * fills in.
   */
  private noteReported(
    containerId: string,
    action: ContainerAction,
    identity: Pick<Reported, "name" | "image" | "imageId" | "labels" | "startedAt">,
  ): void {
    const current = this.reported.get(containerId);
    const base = {
      ...identity,
      running: current?.running ?? false,
      health: current?.health ?? "none",
    };
    switch (action) {
      case "start":
        this.reported.set(containerId, { ...base, running: true, health: "starting" });
        return;
      case "restart":
        this.reported.set(containerId, { ...base, running: true });
        return;
      case "die":
      case "stop":
        this.reported.set(containerId, { ...base, running: false, health: "none" });
        return;
      case "destroy":
        this.reported.delete(containerId);
        return;
      case "healthy":
      case "unhealthy":
      case "starting":
        this.reported.set(containerId, { ...base, running: true, health: action });
        return;
      default:
        if (!current) this.reported.set(containerId, base);
        return;
    }
  }

  /**
   * Re-inspects one container. Calls for a container already being inspected are coalesced into
   * one more inspect afterwards, so the last inspect always follows the last trigger.
   */
  private refresh(id: string): Promise<void> {
    const running = this.refreshing.get(id);
    if (running) {
      running.again = true;
      return running.done;
    }
    const entry: { again: boolean; done: Promise<void> } = {
      again: true,
      done: Promise.resolve(),
    };
    this.refreshing.set(id, entry);
    entry.done = this.inspectUntilSettled(id, entry).finally(() => this.refreshing.delete(id));
    return entry.done;
  }

  private async inspectUntilSettled(id: string, entry: { again: boolean }): Promise<void> {
    try {
      while (entry.again) {
        entry.again = false;
        const details = await this.deps.docker.inspect(id);
        this.unverified.delete(id);
        const changed = details ? this.state.upsert(details) : this.state.remove(id);
        const told = this.reported.get(id);
        // A Docker start event cannot carry the new run's StartedAt; its first inspect can.
        if (details && told?.running && told.startedAt === undefined) {
          told.startedAt = details.startedAt;
        }
        if (details) this.prober.sync(details);
        else this.prober.remove(id);
        if (changed) this.snapshots.changed();
      }
    } catch (error) {
      // The state may now lag behind an event: commands must ask Docker until an inspect works.
      this.unverified.add(id);
      this.log.warn({ containerId: id, err: describeError(error) }, "inspect failed");
    }
  }

  /**
   * The container as the agent knows it, when that is as current as an inspect: Docker's event
   * stream is live (every event is followed by an inspect of its container, and one in progress
   * is waited for), and the last inspect of it worked. Undefined otherwise.
   */
  private async currentView(id: string): Promise<ContainerDetails | undefined> {
    if (!this.pump.live) return undefined;
    await this.refreshing.get(id)?.done;
    if (!this.pump.live || this.unverified.has(id)) return undefined;
    return this.state.get(id);
  }

  /** Health as the agent judges it: Docker's, or the label probe's for a container without one. */
  private healthOf(details: ContainerDetails): ContainerDetails["health"] {
    if (details.hasHealthcheck) return details.health;
    return this.prober.view(details.id)?.health ?? details.health;
  }

  /**
   * Reconciles now, or once more after the reconcile in progress (never two at once). The
   * promise settles when a reconcile that started after this call has finished.
   */
  private requestReconcile(): Promise<void> {
    if (this.reconciling) {
      this.reconcileAgain ??= this.reconciling.then(() => {
        this.reconcileAgain = undefined;
        return this.requestReconcile();
      });
      return this.reconcileAgain;
    }
    this.reconciling = this.reconcile().finally(() => {
      this.reconciling = undefined;
    });
    return this.reconciling;
  }

  /**
   * Rebuilds the host state from a full list and inspect, and reports every transition that
   * subscribers have not heard of: a container that became unhealthy, started, died or vanished
   * while nobody was listening.
   */
  private async reconcile(): Promise<void> {
    this.stats.reconciles++;
    this.touched.clear();
    try {
      const version = await this.deps.docker.version();
      if (this.state.setDockerUp(version)) this.snapshots.changed();
      const ids = await this.deps.docker.listContainerIds();
      for (const id of this.state.retainOnly(new Set(ids))) this.prober.remove(id);
      let next = 0;
      const inspectRest = async () => {
        for (let id = ids[next++]; id !== undefined; id = ids[next++]) await this.refresh(id);
      };
      await Promise.all(Array.from({ length: RECONCILE_INSPECTS }, inspectRest));
      this.reportMissedTransitions(new Set(ids));
      this.log.debug({ containers: ids.length }, "reconciled with Docker");
    } catch (error) {
      this.log.warn({ err: describeError(error) }, "reconcile failed");
    }
    this.firstContact();
    this.snapshots.publishNow();
  }

  private reportMissedTransitions(ids: ReadonlySet<string>): void {
    for (const id of [...this.reported.keys()]) {
      if (!ids.has(id)) this.synthesize(id, "destroy", "reconcile");
    }
    for (const id of ids) {
      const details = this.state.get(id);
      if (details) this.reportContainer(details);
    }
    this.baselineAt ??= this.now().getTime();
  }

  private reportContainer(details: ContainerDetails): void {
    // Docker is reporting on this container right now: its own events will tell subscribers,
    // and a synthetic one could only duplicate them.
    if (this.touched.has(details.id) || this.pump.hasQueuedEventFor(details.id)) return;
    const running = isRunning(details.state);
    const told = this.reported.get(details.id);
    const health = details.health;
    const synthesize = (action: ContainerAction) =>
      this.synthesize(details.id, action, "reconcile");
    if (!told) {
      // Never reported: it appeared while nobody was listening (or this is the first run).
      const startedSinceBaseline =
        this.baselineAt !== undefined &&
        details.startedAt !== undefined &&
        Date.parse(details.startedAt) > this.baselineAt;
      if (running && startedSinceBaseline) synthesize("start");
      if (running && health === "unhealthy") synthesize("unhealthy");
      this.reported.set(details.id, {
        running,
        health: running ? health : "none",
        startedAt: details.startedAt,
        name: details.name,
        image: details.image,
        imageId: details.imageId,
        labels: details.labels,
      });
      return;
    }
    // Restarted while nobody was listening: a new run, whose health starts afresh.
    const newRun =
      running &&
      told.running &&
      told.startedAt !== undefined &&
      told.startedAt !== details.startedAt;
    if (running && (!told.running || newRun)) synthesize("start");
    if (!running && told.running) synthesize("die");
    const toldHealth = newRun || !told.running ? "starting" : told.health;
    if (running && health !== toldHealth && (health === "healthy" || health === "unhealthy")) {
      synthesize(health);
    }
    const after = this.reported.get(details.id);
    if (after) after.startedAt = details.startedAt;
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

function isRunning(state: string): boolean {
  return state === "running" || state === "paused";
}
