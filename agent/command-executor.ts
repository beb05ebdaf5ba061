import { type ContainerCommand, verbOf } from "../common/agent-commands.js";
import { describeError } from "../common/errors.js";
import { sameInstant } from "../common/nanosecond-time.js";
import {
  COMMAND_REPLY_TYPE,
  type CommandReply,
  stopTimeoutFromLabels,
} from "../contracts/index.js";
import { type ActionResult, performAction, verbRefusal } from "./command-actions.js";
import type { ContainerDetails, DockerEngine } from "./docker-engine.js";
import { isOptedIn, type OptInPolicy } from "./opt-in.js";

export type { ContainerCommand } from "../common/agent-commands.js";

/** The longest message a reply may carry (CommandReply.message). */
const MAX_MESSAGE = 2048;
/** The least time a pull gets, even for a command near the end of its lifetime. */
const MIN_PULL_MS = 1_000;

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

/**
 * Executes restart, stop and recreate commands on this host, and is the last line of defence: it
 * re-checks opt-in against Docker's current labels whoever asks, executes each command id at
 * most once, never runs two commands on one container at the same time, and refuses a command
 * for an incident that is already over. The Docker work itself is in command-actions.ts.
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
    const reply = (result: ActionResult): CommandReply => ({
      type: COMMAND_REPLY_TYPE,
      v: 1,
      verb: verbOf(command),
      commandId: command.commandId,
      host: this.options.host,
      containerId: command.containerId,
      outcome: result.outcome,
      code: result.code,
      message: result.message.slice(0, MAX_MESSAGE),
      duplicate: false,
      startedAt: new Date(started).toISOString(),
      durationMs: this.now() - started,
      ...(result.newContainerId ? { newContainerId: result.newContainerId } : {}),
    });
    let details: ContainerDetails | undefined;
    try {
      details =
        command.host === this.options.host
          ? ((await this.options.currentView?.(command.containerId)) ??
            (await this.options.docker.inspect(command.containerId)))
          : undefined;
    } catch (error) {
      const message = `inspect failed: ${describeError(error)}`;
      return reply({ outcome: "failed", code: "docker-error", message });
    }
    const refusal = this.guard(command, details);
    if (refusal || !details) return reply(refusal ?? NOT_FOUND);
    // Keyed by the full id so that a short id and a long id cannot act on one container twice.
    const id = details.id;
    // An explicit value in the command (a manual restart's, as `docker restart -t`) wins over
    // the container's label; the handlers never set one, so healing uses the label.
    const stopTimeoutSeconds =
      command.stopTimeoutSeconds ??
      stopTimeoutFromLabels(details.labels) ??
      this.options.defaultStopTimeoutSeconds;
    // A pull must end by the command's deadline: its sender waits no longer than that.
    const left = Date.parse(command.expiresAt) - this.now();
    this.busy.add(id);
    try {
      return reply(
        await performAction(command, {
          docker: this.options.docker,
          id,
          details,
          stopTimeoutSeconds,
          pullTimeoutMs: Math.max(MIN_PULL_MS, left),
        }),
      );
    } finally {
      this.busy.delete(id);
    }
  }

  /** Why the command must not run on this container now; undefined when it may. */
  private guard(
    command: ContainerCommand,
    details: ContainerDetails | undefined,
  ): ActionResult | undefined {
    const { host, optIn } = this.options;
    if (command.host !== host) {
      return { outcome: "refused", code: "wrong-host", message: `this agent serves host ${host}` };
    }
    if (!details) return NOT_FOUND;
    if (!isOptedIn(optIn, details.labels)) {
      const message = `container has not opted in (label ${optIn.label}=true)`;
      return { outcome: "refused", code: "not-opted-in", message };
    }
    if (this.busy.has(details.id)) {
      return { outcome: "skipped", code: "already-restarting", message: "a command is running" };
    }
    if (details.state === "paused") {
      return { outcome: "skipped", code: "paused", message: "container is paused" };
    }
    if (details.state === "restarting") {
      const message = "Docker is already restarting it";
      return { outcome: "skipped", code: "already-restarting", message };
    }
    if (
      command.incident !== undefined &&
      (details.startedAt === undefined || !sameInstant(command.incident, details.startedAt))
    ) {
      return {
        outcome: "skipped",
        code: "stale-incident",
        message: `container was started again at ${details.startedAt ?? "?"} after the incident at ${command.incident}`,
      };
    }
    const health = this.options.healthOf?.(details) ?? details.health;
    // A container whose last start failed (a restart that stopped it and could not start it
    // again) is still the incident's trouble: the next attempt is what starts it.
    const failedToStart = details.state !== "running" && details.startError !== undefined;
    if (command.requireUnhealthy && health !== "unhealthy" && !failedToStart) {
      const message = `container is ${health} now, not unhealthy`;
      return { outcome: "skipped", code: "not-unhealthy", message };
    }
    return verbRefusal(command, details);
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

const NOT_FOUND: ActionResult = {
  outcome: "refused",
  code: "not-found",
  message: "no such container on this host",
};
