import { createHash } from "node:crypto";
import { type ContainerCommandDraft, verbOf } from "../common/agent-commands.js";
import { remediationRecord } from "../common/remediation-record.js";
import {
  type CommandReply,
  type ContainerEvent,
  containerKey,
  type HealAction,
  type Labels,
  type LedgerEntry,
  type LedgerRestart,
  MAX_COMMAND_LIFETIME_MS,
  RECREATE_COMMAND_TYPE,
  RESTART_COMMAND_TYPE,
  type RemediationPhase,
  STOP_COMMAND_TYPE,
} from "../contracts/index.js";
import type { Trigger } from "../policy/heal-policy.js";
import type { CommandResult, Decision } from "./decisions.js";
import type { HandlerContext } from "./handler.js";
import { restartDeadlineMs } from "./restart-deadline.js";

/*
 * The heal handler's command, once decided: building it for the container's action, sending
 * it, and what its answer changes in the ledger and the records.
 */

export const HEAL_HANDLER = "heal";
const HEAL_ACTOR = `handler:${HEAL_HANDLER}`;

/** The actions that send the agent a command, each on the verb of its name; `notify` sends none. */
export type CommandAction = Exclude<HealAction, "notify">;

/** Extra facts a record may carry besides its phase, code and message. */
export interface RecordExtras {
  commandId?: string | undefined;
  dryRun?: boolean;
  action?: HealAction;
  until?: Date | undefined;
  /**
   * The record is the agent's answer to the command: its id is the command's, whichever
   * trigger of the incident sent (or resent) it, so that JetStream stores one answer per
   * attempt however many triggers resumed it.
   */
  answer?: boolean;
}

/** Makes a `remediation` decision for one phase of the remediation of one event. */
export type RecordFn = (
  phase: RemediationPhase,
  code: string,
  message: string,
  extras?: RecordExtras,
) => Decision;

/**
 * The records of the remediation that `event` started, for one attempt of its incident; one
 * remediation per event and attempt. They carry the event's health check output.
 */
export function healRecords(event: ContainerEvent, now: Date, attempt = 1): RecordFn {
  const remediationId = `${HEAL_HANDLER}:${event.id}${attempt > 1 ? `#${attempt}` : ""}`;
  return (phase, code, message, extras = {}) => ({
    kind: "remediation",
    record: remediationRecord({
      // Deterministic per phase and reason, so JetStream drops the copy a redelivery publishes.
      id:
        extras.answer && extras.commandId
          ? `${HEAL_HANDLER}:${extras.commandId}:${phase}:${code}`
          : `${remediationId}:${phase}:${code}`,
      remediationId,
      host: event.host,
      containerId: event.container.id,
      containerName: event.container.name,
      phase,
      code,
      message,
      incident: event.container.startedAt,
      triggerEventId: event.id,
      commandId: extras.commandId,
      actor: HEAL_ACTOR,
      at: now,
      dryRun: extras.dryRun ?? false,
      action: extras.action,
      attempt,
      until: extras.until,
      healthOutput: event.healthOutput,
    }),
  });
}

/** What one command of heal is for. */
export interface HealCommandSpec {
  event: ContainerEvent;
  incident: string;
  commandId: string;
  trigger: Trigger;
  action: CommandAction;
  /** With `recreate`: pull the image reference first. */
  pull: boolean;
}

/** The command that carries out `action` on `event`'s container for this incident. */
export function healCommand(spec: HealCommandSpec): ContainerCommandDraft {
  const { event, incident, commandId, trigger, action } = spec;
  const fields = {
    v: 1 as const,
    commandId,
    host: event.host,
    containerId: event.container.id,
    reason: trigger === "unhealthy" ? "unhealthy" : `exited with code ${event.exitCode ?? "?"}`,
    requestedBy: HEAL_ACTOR,
    // A crashed container is not unhealthy; only an unhealthy trigger needs it to still be.
    ...(trigger === "unhealthy" ? { requireUnhealthy: true } : {}),
    // Only a real StartedAt lets the agent detect a stale command.
    ...(event.container.startedAt === incident ? { incident } : {}),
  };
  switch (action) {
    case "restart":
      return { type: RESTART_COMMAND_TYPE, ...fields };
    case "stop":
      return { type: STOP_COMMAND_TYPE, ...fields };
    case "recreate":
      return { type: RECREATE_COMMAND_TYPE, ...fields, ...(spec.pull ? { pull: true } : {}) };
  }
}

/**
 * Deterministic per event and attempt, so that a redelivered event produces the same command
 * id (and the agent executes it once), while a new attempt gets a new one.
 */
export function commandIdFor(event: ContainerEvent, attempt = 1): string {
  const key = attempt > 1 ? `${event.id}#${attempt}` : event.id;
  return `heal-${createHash("sha256").update(key).digest("hex").slice(0, 32)}`;
}

/** What to do when an attempt fails: when (if at all) to try the incident again. */
export type RetryAfterFailure = () => number | undefined;

/**
 * When the container's trouble began, as far as the event tells (ms since the epoch): for an
 * unhealthy trigger Docker's transition time (a resync re-asserts it in `unhealthySince`), for
 * a crash the event's time.
 */
export function troubleSinceMs(event: ContainerEvent, trigger: Trigger): number {
  return Date.parse((trigger === "unhealthy" ? event.unhealthySince : undefined) ?? event.time);
}

/** Records the command as sent, sends it, and records its answer in the ledger and a record. */
export function sendHealCommand(
  command: ContainerCommandDraft,
  event: ContainerEvent,
  ctx: HandlerContext,
  retryDelayMs: number,
  record: RecordFn,
  retryAfterFailure: RetryAfterFailure = () => undefined,
): Decision[] {
  const action: CommandAction = verbOf(command);
  // A heal's latency is measured from Docker's unhealthy event; a crash has none.
  const unhealthyAt =
    triggerOf(event) === "unhealthy" ? new Date(troubleSinceMs(event, "unhealthy")) : undefined;
  return [
    record("restarting", `${action}-sent`, `${action} command sent to the agent`, {
      commandId: command.commandId,
      action,
    }),
    {
      kind: "command",
      command,
      minTimeoutMs: commandDeadlineMs(command, event.container.labels),
      ...(unhealthyAt && !Number.isNaN(unhealthyAt.getTime()) ? { unhealthyAt } : {}),
      onReply: (result) =>
        afterCommand(result, command, ctx, retryDelayMs, record, retryAfterFailure),
    },
  ];
}

/**
 * How long the agent may take: a restart's deadline; a recreate also creates and starts a new
 * container, and its pull may take what is left of the command's lifetime.
 */
function commandDeadlineMs(command: ContainerCommandDraft, labels: Labels): number {
  const restart = restartDeadlineMs(labels);
  if (command.type !== RECREATE_COMMAND_TYPE) return restart;
  return 2 * restart + (command.pull ? MAX_COMMAND_LIFETIME_MS : 0);
}

/**
 * The ledger says this attempt was decided and its command never got an answer (the replica
 * died, or the agent was unreachable): send the same command again. The agent executes a
 * command id once, so this cannot act twice.
 */
export function resumePending(
  event: ContainerEvent,
  last: LedgerRestart,
  ctx: HandlerContext,
  retryDelayMs: number,
  record: RecordFn,
  pull: boolean,
): Decision[] {
  const trigger = triggerOf(event);
  const command = healCommand({
    event,
    incident: last.incident,
    commandId: last.commandId,
    trigger,
    // A pending attempt always sent a command: notify records none.
    action: last.action === undefined || last.action === "notify" ? "restart" : last.action,
    pull,
  });
  return sendHealCommand(command, event, ctx, retryDelayMs, record);
}

/** What an event that heal acts on triggers: a `die` is a crash, anything else unhealthy. */
function triggerOf(event: ContainerEvent): Trigger {
  return event.action === "die" ? "exit" : "unhealthy";
}

const OUTCOME_PHASE: Record<CommandReply["outcome"], RemediationPhase> = {
  restarted: "restarted",
  stopped: "stopped",
  recreated: "recreated",
  failed: "failed",
  refused: "skipped",
  skipped: "skipped",
};

/**
 * An unreachable agent is asked again later, unless this is the last delivery. A failed
 * attempt leaves the container stuck with that failure, and the incident is looked at again
 * when the backoff allows the next attempt.
 */
function afterCommand(
  result: CommandResult,
  command: ContainerCommandDraft,
  ctx: HandlerContext,
  retryDelayMs: number,
  record: RecordFn,
  retryAfterFailure: RetryAfterFailure,
): Decision[] {
  const action: CommandAction = verbOf(command);
  const extras = { commandId: command.commandId, action, answer: true };
  if (!result.ok) {
    const unreachable = result.code === "no-responders" || result.code === "timeout";
    if (unreachable && !ctx.lastDelivery) {
      return [
        { kind: "retry", reason: `agent unreachable: ${result.message}`, delayMs: retryDelayMs },
      ];
    }
    return failed(command, ctx, result.code, result.message, record, extras, retryAfterFailure);
  }
  const { reply } = result;
  if (reply.outcome === "failed") {
    return failed(command, ctx, reply.code, reply.message, record, extras, retryAfterFailure);
  }
  return [
    setOutcome(command, reply.outcome, ctx.now),
    record(OUTCOME_PHASE[reply.outcome], reply.code, reply.message, extras),
  ];
}

function failed(
  command: ContainerCommandDraft,
  ctx: HandlerContext,
  code: string,
  message: string,
  record: RecordFn,
  extras: RecordExtras,
  retryAfterFailure: RetryAfterFailure,
): Decision[] {
  const stuck = { code: code.slice(0, 64), message: message.slice(0, 2048) };
  const decisions: Decision[] = [
    setOutcome(command, "failed", ctx.now, stuck),
    record("failed", code, message, extras),
  ];
  const delayMs = ctx.lastDelivery ? undefined : retryAfterFailure();
  if (delayMs !== undefined) {
    decisions.push({ kind: "retry", reason: `${extras.action} failed: try again`, delayMs });
  }
  return decisions;
}

/**
 * The command's outcome in the ledger. A failure also marks the container stuck with it, for
 * the incident the command was for; any other answer ends what was held for that incident.
 */
function setOutcome(
  command: ContainerCommandDraft,
  outcome: LedgerRestart["outcome"],
  now: Date,
  stuck?: { code: string; message: string },
): Decision {
  return {
    kind: "update",
    store: "ledger",
    key: containerKey(command.host, command.containerId),
    update: (current) => {
      // The entry can only be missing if an operator deleted it; start a new history then.
      const entry: LedgerEntry = (current as LedgerEntry | undefined) ?? {
        v: 1,
        host: command.host,
        containerId: command.containerId,
        restarts: [],
        consecutiveRestarts: 0,
      };
      const attempt = entry.restarts.find((r) => r.commandId === command.commandId);
      const { notHealing: _ended, ...rest } = entry;
      const next: LedgerEntry = {
        ...(stuck ? rest : entry.notHealing?.incident === attempt?.incident ? rest : entry),
        restarts: entry.restarts.map((r) =>
          r.commandId === command.commandId ? { ...r, outcome } : r,
        ),
      };
      if (stuck) {
        next.notHealing = {
          reason: "stuck",
          ...stuck,
          since: now.toISOString(),
          ...(attempt ? { incident: attempt.incident } : {}),
        };
      }
      return next;
    },
  };
}
