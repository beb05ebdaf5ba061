import { describeError } from "../common/errors.js";
import { sameInstant } from "../common/nanosecond-time.js";
import {
  COMMAND_REPLY_TYPE,
  type CommandOutcome,
  type CommandReply,
  RESTART_COMMAND_TYPE,
  type RestartCommand,
  type StopCommand,
  stopTimeoutFromLabels,
} from "../contracts/index.js";
import type { ContainerDetails, DockerEngine } from "./docker-engine.js";
import { isOptedIn, type OptInPolicy } from "./opt-in.js";

export interface CommandExecutorOptions {
  host: string;
  docker: DockerEngine;
  optIn: OptInPolicy;
  defaultStopTimeoutSeconds: number;
  /**
   * The agent's own current view of a container, kept by Docker's event stream; undefined when
   * the agent has no view it can vouch for (the stream is down, an inspect of it failed, the id
   * is unknown or abbreviated). Docker is asked only then: an inspect on the heal path costs a
   * Docker API round trip that the event stream has usually just paid for.
   */
  currentView?: (id: string) => Promise<ContainerDetails | undefined>;
  /**
   * Health as the agent judges it: Docker's own for a container with a HEALTHCHECK, the label
   * probe's for one without (Docker reports "none" for those).
   */
  healthOf?: (details: ContainerDetails) => ContainerDetails["health"];
  /**
   * How long a command id is remembered at least; a repeat within it gets the first reply. An
   * id is also kept until its command's `expiresAt` plus the clock skew, so that the command
   * cannot be executed again while the agent would still accept it.
   */
  dedupWindowMs?: number;
  /** Most command ids remembered. */
  dedupCapacity?: number;
  /** The clock skew the agent allows (FLEETHEAL_COMMAND_CLOCK_SKEW_MS). */
  clockSkewMs?: number;
  now?: () => number;
}

interface Remembered {
  /** Forgotten after this (ms since the epoch). */
  keepUntil: number;
  /** The latest `issuedAt` it was sent with, in ms. */
  issuedAt: number;
  reply: Promise<CommandReply>;
}

/** A command that changes a container. */
export type ContainerCommand = RestartCommand | StopCommand;

/**
 * Executes restart and stop commands on this host, and is the last line of defence: it re-checks
 * opt-in against Docker's current labels whoever asks, executes each command id at most once,
 * never runs two commands on one container at the same time, and refuses a command for an
 * incident that is already over.
 */
export class CommandExecutor {
  private readonly seen = new Map<string, Remembered>();
  private readonly busy = new Set<string>();
  private readonly now: () => number;
  private floor: number | undefined;

  constructor(private readonly options: CommandExecutorOptions) {
    this.now = options.now ?? Date.now;
  }

  execute(command: ContainerCommand): Promise<CommandReply> {
    this.forgetExpired();
    const issuedAt = Date.parse(command.issuedAt);
    const acceptedUntil = Date.parse(command.expiresAt) + (this.options.clockSkewMs ?? 0);
    const previous = this.seen.get(command.commandId);
    if (previous) {
      // A re-sent command lives longer than the first attempt: remember it as long.
      previous.keepUntil = Math.max(previous.keepUntil, acceptedUntil);
      previous.issuedAt = Math.max(previous.issuedAt, issuedAt);
      return previous.reply.then((reply) => ({ ...reply, duplicate: true }));
    }
    const reply = this.run(command);
    const window = this.options.dedupWindowMs ?? 10 * 60 * 1000;
    this.seen.set(command.commandId, {
      keepUntil: Math.max(this.now() + window, acceptedUntil),
      issuedAt,
      reply,
    });
    return reply;
  }

  /**
   * Commands issued at or before this instant (ms) must be refused: the memory was full and
   * forgot a command issued then that agents would still accept, so a repeat of it could not
   * be recognised. Undefined while nothing was forgotten early.
   */
  get replayFloorMs(): number | undefined {
    return this.floor;
  }

  private async run(command: ContainerCommand): Promise<CommandReply> {
    const started = this.now();
    const verb = command.type === RESTART_COMMAND_TYPE ? "restart" : "stop";
    const reply = (outcome: CommandOutcome, code: string, message: string): CommandReply => ({
      type: COMMAND_REPLY_TYPE,
      v: 1,
      verb,
      commandId: command.commandId,
      host: this.options.host,
      containerId: command.containerId,
      outcome,
      code,
      message,
      duplicate: false,
      startedAt: new Date(started).toISOString(),
      durationMs: this.now() - started,
    });
    if (command.host !== this.options.host) {
      return reply("refused", "wrong-host", `this agent serves host ${this.options.host}`);
    }
    let details: ContainerDetails | undefined;
    try {
      details =
        (await this.options.currentView?.(command.containerId)) ??
        (await this.options.docker.inspect(command.containerId));
    } catch (error) {
      return reply("failed", "docker-error", `inspect failed: ${describeError(error)}`);
    }
    if (!details) return reply("refused", "not-found", "no such container on this host");
    // Keyed by the full id so that a short id and a long id cannot restart one container twice.
    const id = details.id;
    if (!isOptedIn(this.options.optIn, details.labels)) {
      return reply(
        "refused",
        "not-opted-in",
        `container has not opted in (label ${this.options.optIn.label}=true)`,
      );
    }
    if (this.busy.has(id)) return reply("skipped", "already-restarting", "a command is running");
    if (details.state === "paused") return reply("skipped", "paused", "container is paused");
    if (details.state === "restarting") {
      return reply("skipped", "already-restarting", "Docker is already restarting it");
    }
    const restart = command.type === RESTART_COMMAND_TYPE ? command : undefined;
    if (
      restart?.incident !== undefined &&
      (details.startedAt === undefined || !sameInstant(restart.incident, details.startedAt))
    ) {
      return reply(
        "skipped",
        "stale-incident",
        `container was started again at ${details.startedAt ?? "?"} after the incident at ${restart.incident}`,
      );
    }
    const health = this.options.healthOf?.(details) ?? details.health;
    if (restart?.requireUnhealthy && health !== "unhealthy") {
      return reply("skipped", "not-unhealthy", `container is ${health} now, not unhealthy`);
    }
    const timeout =
      stopTimeoutFromLabels(details.labels) ??
      command.stopTimeoutSeconds ??
      this.options.defaultStopTimeoutSeconds;
    this.busy.add(id);
    try {
      if (restart) {
        await this.options.docker.restart(id, timeout);
        return reply("restarted", "restarted", `restarted (stop timeout ${timeout}s)`);
      }
      await this.options.docker.stop(id, timeout);
      return reply("stopped", "stopped", `stopped (stop timeout ${timeout}s)`);
    } catch (error) {
      return reply("failed", "docker-error", `${verb} failed: ${describeError(error)}`);
    } finally {
      this.busy.delete(id);
    }
  }

  private forgetExpired(): void {
    const capacity = this.options.dedupCapacity ?? 10_000;
    const now = this.now();
    // Map iteration is insertion order, so the oldest entries come first. An entry that must
    // be kept ends the sweep: those behind it are forgotten later, never sooner.
    for (const [id, entry] of this.seen) {
      const kept = entry.keepUntil > now;
      if (kept && this.seen.size <= capacity) break;
      if (kept) this.floor = Math.max(this.floor ?? entry.issuedAt, entry.issuedAt);
      this.seen.delete(id);
    }
  }
}
