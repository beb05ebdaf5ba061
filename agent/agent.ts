import { describeError } from "../common/errors.js";
import type { Logger } from "../common/logger.js";
import { VERSION } from "../common/version.js";
import {
  CONTAINER_EVENT_TYPE,
  ContainerEvent,
  containerEventId,
  encode,
  eventSubject,
} from "../contracts/index.js";
import type { AgentNats, CommandServer } from "./agent-ports.js";
import type { AgentConfig } from "./config.js";
import type { DockerEngine } from "./docker-engine.js";
import {
  type DockerContainerEvent,
  isoFromTimeNano,
  labelsFromAttributes,
} from "./docker-event.js";
import { EventPump } from "./event-pump.js";
import { HostState } from "./host-state.js";
import { isOptedIn, type OptInPolicy } from "./opt-in.js";
import { Outbox } from "./outbox.js";
import { RestartExecutor } from "./restart-executor.js";
import { SnapshotPublisher } from "./snapshot-publisher.js";

export interface AgentDeps {
  config: AgentConfig;
  docker: DockerEngine;
  nats: AgentNats;
  log: Logger;
  now?: () => Date;
}

/** Counters for what the agent has seen and done. */
export interface AgentStats {
  forwarded: number;
  rejectedDockerLines: number;
  invalidEvents: number;
}

/**
 * One host's agent: Docker events in, contract events out, a live host snapshot, and restart
 * commands executed. It takes no healing decisions.
 */
export class Agent {
  readonly state: HostState;
  readonly outbox: Outbox;
  readonly stats: AgentStats = { forwarded: 0, rejectedDockerLines: 0, invalidEvents: 0 };
  private readonly pump: EventPump;
  private readonly snapshots: SnapshotPublisher;
  private readonly executor: RestartExecutor;
  private readonly refreshing = new Map<string, { again: boolean }>();
  private commands: CommandServer | undefined;
  private snapshotsStarted = false;
  private readonly now: () => Date;
  private readonly log: Logger;
  private readonly optIn: OptInPolicy;

  constructor(private readonly deps: AgentDeps) {
    const { config, docker, log } = deps;
    this.log = log;
    this.now = deps.now ?? (() => new Date());
    const optIn = { label: config.label, watchAll: config.watchAll };
    this.optIn = optIn;
    this.state = new HostState({
      host: config.hostId,
      version: VERSION,
      startedAt: this.now().toISOString(),
      heartbeatMs: config.heartbeatMs,
      optIn,
    });
    this.outbox = new Outbox({
      publish: deps.nats.publishEvent,
      capacity: config.outboxCapacity,
      onPublishError: (error, message) =>
        log.warn({ err: describeError(error), subject: message.subject }, "event publish failed"),
      onDrop: (message) =>
        log.error({ subject: message.subject }, "outbox full: dropped the oldest event"),
    });
    this.snapshots = new SnapshotPublisher({
      take: () => this.state.snapshot(this.now()),
      publish: (snapshot) => deps.nats.publishSnapshot(snapshot),
      debounceMs: config.snapshotDebounceMs,
      heartbeatMs: config.heartbeatMs,
      onError: (error) => log.warn({ err: describeError(error) }, "snapshot publish failed"),
    });
    this.executor = new RestartExecutor({
      host: config.hostId,
      docker,
      optIn,
      defaultStopTimeoutSeconds: config.defaultStopTimeoutSeconds,
    });
    this.pump = new EventPump({
      docker,
      log,
      onEvent: (event) => this.forward(event),
      onConnected: () => void this.reconcile(),
      onDisconnected: (error) => this.dockerDown(error),
      onRejected: () => this.stats.rejectedDockerLines++,
    });
  }

  async start(): Promise<void> {
    this.commands = await this.deps.nats.serveCommands(async (command) => {
      const reply = await this.executor.execute(command);
      this.log.info(
        {
          commandId: command.commandId,
          containerId: command.containerId,
          requestedBy: command.requestedBy,
          reason: command.reason,
          outcome: reply.outcome,
          code: reply.code,
          duplicate: reply.duplicate,
          durationMs: reply.durationMs,
        },
        `restart command: ${reply.outcome} (${reply.code})`,
      );
      return reply;
    });
    // Snapshots start once the first contact with Docker has settled (see firstContact), so the
    // first snapshot never claims "Docker down" merely because the agent has just started. A
    // Docker endpoint that neither answers nor fails must not keep the host invisible, though.
    this.pump.start();
    setTimeout(() => this.firstContact(), this.deps.config.heartbeatMs).unref();
    this.log.info(
      { host: this.deps.config.hostId, label: this.deps.config.label, version: VERSION },
      "agent started",
    );
  }

  /** Stops reading Docker, stops serving commands, and flushes what is still unacked. */
  async stop(drainTimeoutMs = 5_000): Promise<void> {
    await this.pump.stop();
    await this.commands?.close();
    await Promise.race([
      this.outbox.drained(),
      new Promise((resolve) => setTimeout(resolve, drainTimeoutMs).unref()),
    ]);
    const unsent = this.outbox.close();
    if (unsent.length > 0) this.log.warn({ unsent: unsent.length }, "events not acked at shutdown");
    await this.snapshots.stop();
  }

  private forward(event: DockerContainerEvent): void {
    const host = this.deps.config.hostId;
    const known = this.state.get(event.containerId);
    const labels = known?.labels ?? labelsFromAttributes(event.attributes);
    const candidate = {
      type: CONTAINER_EVENT_TYPE,
      v: 1,
      id: containerEventId(host, event.containerId, event.timeNano, event.action),
      host,
      action: event.action,
      timeNano: event.timeNano,
      time: isoFromTimeNano(event.timeNano),
      container: {
        id: event.containerId,
        name: event.attributes.name ?? known?.name ?? "",
        image: event.attributes.image ?? known?.image ?? "",
        labels,
        optedIn: isOptedIn(this.optIn, labels),
        // On create/start the known StartedAt belongs to the previous run, not this one.
        ...(known?.startedAt && event.action !== "start" && event.action !== "create"
          ? { startedAt: known.startedAt }
          : {}),
      },
      ...(event.attributes.exitCode !== undefined
        ? { exitCode: Number.parseInt(event.attributes.exitCode, 10) }
        : {}),
      ...(event.attributes.signal !== undefined ? { signal: event.attributes.signal } : {}),
    };
    const checked = ContainerEvent.safeParse(candidate);
    if (!checked.success) {
      this.stats.invalidEvents++;
      this.log.error(
        { containerId: event.containerId, action: event.action, issues: checked.error.issues },
        "Docker event does not fit the contract; not forwarded",
      );
    } else {
      this.outbox.enqueue({
        subject: eventSubject(host, event.containerId, event.action),
        payload: encode(checked.data),
        msgId: checked.data.id,
      });
      this.stats.forwarded++;
    }
    if (event.action === "destroy") {
      if (this.state.remove(event.containerId)) this.snapshots.changed();
    } else {
      void this.refresh(event.containerId);
    }
  }

  /**
   * Re-inspects one container. Calls for a container already being inspected are coalesced into
   * one more inspect afterwards, so the last inspect always follows the last trigger.
   */
  private async refresh(id: string): Promise<void> {
    const running = this.refreshing.get(id);
    if (running) {
      running.again = true;
      return;
    }
    const entry = { again: true };
    this.refreshing.set(id, entry);
    try {
      while (entry.again) {
        entry.again = false;
        const details = await this.deps.docker.inspect(id);
        const changed = details ? this.state.upsert(details) : this.state.remove(id);
        if (changed) this.snapshots.changed();
      }
    } catch (error) {
      this.log.warn({ containerId: id, err: describeError(error) }, "inspect failed");
    } finally {
      this.refreshing.delete(id);
    }
  }

  /** Rebuilds the host state from a full list, after start and after every gap in the stream. */
  private async reconcile(): Promise<void> {
    try {
      const version = await this.deps.docker.version();
      if (this.state.setDockerUp(version)) this.snapshots.changed();
      const ids = await this.deps.docker.listContainerIds();
      if (this.state.retainOnly(new Set(ids))) this.snapshots.changed();
      await Promise.all(ids.map((id) => this.refresh(id)));
      this.log.info({ containers: ids.length }, "reconciled with Docker");
    } catch (error) {
      this.log.warn({ err: describeError(error) }, "reconcile failed");
    }
    this.firstContact();
    this.snapshots.publishNow();
  }

  private firstContact(): void {
    if (this.snapshotsStarted) return;
    this.snapshotsStarted = true;
    this.snapshots.start();
  }

  private dockerDown(error: unknown): void {
    const message = describeError(error);
    this.log.warn({ err: message }, "Docker unreachable; reconnecting");
    if (this.state.setDockerDown(message)) this.snapshots.publishNow();
    this.firstContact();
  }
}
