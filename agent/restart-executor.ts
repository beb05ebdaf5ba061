import { describeError } from "../common/errors.js";
import {
  RESTART_REPLY_TYPE,
  type RestartCommand,
  type RestartOutcome,
  type RestartReply,
} from "../contracts/index.js";
import type { DockerEngine } from "./docker-engine.js";
import { isOptedIn, type OptInPolicy, stopTimeoutFromLabels } from "./opt-in.js";

export interface RestartExecutorOptions {
  host: string;
  docker: DockerEngine;
  optIn: OptInPolicy;
  defaultStopTimeoutSeconds: number;
  /** How long a command id is remembered; a repeat within it gets the first reply. */
  dedupWindowMs?: number;
  /** Most command ids remembered. */
  dedupCapacity?: number;
  now?: () => number;
}

interface Remembered {
  at: number;
  reply: Promise<RestartReply>;
}

/**
 * Executes restart commands on this host, and is the last line of defence: it re-checks opt-in
 * against Docker's current labels whoever asks, executes each command id at most once, never
 * runs two restarts of one container at the same time, and refuses a command for an incident
 * that is already over.
 */
export class RestartExecutor {
  private readonly seen = new Map<string, Remembered>();
  private readonly busy = new Set<string>();
  private readonly now: () => number;

  constructor(private readonly options: RestartExecutorOptions) {
    this.now = options.now ?? Date.now;
  }

  execute(command: RestartCommand): Promise<RestartReply> {
    this.forgetExpired();
    const previous = this.seen.get(command.commandId);
    if (previous) return previous.reply.then((reply) => ({ ...reply, duplicate: true }));
    const reply = this.run(command);
    this.seen.set(command.commandId, { at: this.now(), reply });
    return reply;
  }

  private async run(command: RestartCommand): Promise<RestartReply> {
    const started = this.now();
    const reply = (outcome: RestartOutcome, code: string, message: string): RestartReply => ({
      type: RESTART_REPLY_TYPE,
      v: 1,
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
    let details: Awaited<ReturnType<DockerEngine["inspect"]>>;
    try {
      details = await this.options.docker.inspect(command.containerId);
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
    if (this.busy.has(id)) return reply("skipped", "already-restarting", "a restart is running");
    if (details.state === "paused") return reply("skipped", "paused", "container is paused");
    if (details.state === "restarting") {
      return reply("skipped", "already-restarting", "Docker is already restarting it");
    }
    if (command.incident !== undefined && !sameInstant(command.incident, details.startedAt)) {
      return reply(
        "skipped",
        "stale-incident",
        `container was started again at ${details.startedAt ?? "?"} after the incident at ${command.incident}`,
      );
    }
    if (command.requireUnhealthy && details.health !== "unhealthy") {
      return reply("skipped", "not-unhealthy", `container is ${details.health} now, not unhealthy`);
    }
    const timeout =
      stopTimeoutFromLabels(details.labels) ??
      command.stopTimeoutSeconds ??
      this.options.defaultStopTimeoutSeconds;
    this.busy.add(id);
    try {
      await this.options.docker.restart(id, timeout);
      return reply("restarted", "restarted", `restarted (stop timeout ${timeout}s)`);
    } catch (error) {
      return reply("failed", "docker-error", `restart failed: ${describeError(error)}`);
    } finally {
      this.busy.delete(id);
    }
  }

  private forgetExpired(): void {
    const window = this.options.dedupWindowMs ?? 10 * 60 * 1000;
    const capacity = this.options.dedupCapacity ?? 10_000;
    const cutoff = this.now() - window;
    // Map iteration is insertion order, so the oldest entries come first.
    for (const [id, entry] of this.seen) {
      if (entry.at >= cutoff && this.seen.size <= capacity) break;
      this.seen.delete(id);
    }
  }
}

/** Docker's StartedAt carries nanoseconds; callers may have rounded it, so compare as instants. */
function sameInstant(a: string, b: string | undefined): boolean {
  if (b === undefined) return false;
  if (a === b) return true;
  return Date.parse(a) === Date.parse(b);
}
