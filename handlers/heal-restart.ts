import { createHash } from "node:crypto";
import type { RestartDraft } from "../common/agent-commands.js";
import { remediationRecord } from "../common/remediation-record.js";
import {
  type ContainerEvent,
  containerKey,
  type Labels,
  type LedgerEntry,
  type LedgerRestart,
  RESTART_COMMAND_TYPE,
  type RemediationPhase,
} from "../contracts/index.js";
import type { Trigger } from "../policy/heal-policy.js";
import type { CommandResult, Decision } from "./decisions.js";
import type { HandlerContext } from "./handler.js";
import { restartDeadlineMs } from "./restart-deadline.js";

/*
 * The heal handler's restart, once decided: the command, sending it, and what its answer
 * changes in the ledger and the records.
 */

export const HEAL_HANDLER = "heal";
const HEAL_ACTOR = `handler:${HEAL_HANDLER}`;

/** Makes a `remediation` decision for one phase of the remediation of one event. */
export type RecordFn = (
  phase: RemediationPhase,
  code: string,
  message: string,
  commandId?: string,
  dryRun?: boolean,
) => Decision;

/** The records of the remediation that `event` started; one remediation per event. */
export function healRecords(event: ContainerEvent, now: Date): RecordFn {
  const remediationId = `${HEAL_HANDLER}:${event.id}`;
  return (phase, code, message, commandId, dryRun = false) => ({
    kind: "remediation",
    record: remediationRecord({
      // Deterministic per phase and reason, so JetStream drops the copy a redelivery publishes.
      id: `${remediationId}:${phase}:${code}`,
      remediationId,
      host: event.host,
      containerId: event.container.id,
      containerName: event.container.name,
      phase,
      code,
      message,
      incident: event.container.startedAt,
      triggerEventId: event.id,
      commandId,
      actor: HEAL_ACTOR,
      at: now,
      dryRun,
    }),
  });
}

/** The restart of `event`'s container for this incident. */
export function restartCommand(
  event: ContainerEvent,
  incident: string,
  commandId: string,
  trigger: Trigger,
): RestartDraft {
  return {
    type: RESTART_COMMAND_TYPE,
    v: 1,
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
}

/** Deterministic, so that a redelivered event produces the same command id. */
export function commandIdFor(event: ContainerEvent): string {
  return `heal-${createHash("sha256").update(event.id).digest("hex").slice(0, 32)}`;
}

/** Records the restart as sent, sends it, and records its answer in the ledger and a record. */
export function sendRestart(
  command: RestartDraft,
  labels: Labels,
  ctx: HandlerContext,
  retryDelayMs: number,
  record: RecordFn,
): Decision[] {
  return [
    record("restarting", "restart-sent", "restart command sent to the agent", command.commandId),
    {
      kind: "command",
      command,
      minTimeoutMs: restartDeadlineMs(labels),
      onReply: (result) => afterRestart(result, command, ctx.lastDelivery, retryDelayMs, record),
    },
  ];
}

/**
 * The ledger says this incident was already decided. If its restart never got an answer (the
 * replica died, or the agent was unreachable), send the same command again: the agent executes
 * a command id once, so this cannot restart twice.
 */
export function resumeIfPending(
  event: ContainerEvent,
  entry: LedgerEntry,
  ctx: HandlerContext,
  retryDelayMs: number,
  record: RecordFn,
): Decision[] {
  const last = entry.restarts[0];
  if (
    last?.outcome !== "pending" ||
    last.commandId !== entry.lastCommandId ||
    last.incident !== entry.lastIncident
  ) {
    return [
      { kind: "log", level: "debug", msg: "incident already handled", fields: { id: event.id } },
    ];
  }
  const trigger: Trigger = event.action === "die" ? "exit" : "unhealthy";
  return sendRestart(
    restartCommand(event, last.incident, last.commandId, trigger),
    event.container.labels,
    ctx,
    retryDelayMs,
    record,
  );
}

/** An unreachable agent is asked again later, unless this is the last delivery. */
function afterRestart(
  result: CommandResult,
  command: RestartDraft,
  lastDelivery: boolean,
  retryDelayMs: number,
  record: RecordFn,
): Decision[] {
  if (!result.ok) {
    const unreachable = result.code === "no-responders" || result.code === "timeout";
    if (unreachable && !lastDelivery) {
      return [
        { kind: "retry", reason: `agent unreachable: ${result.message}`, delayMs: retryDelayMs },
      ];
    }
    return [
      setOutcome(command, "failed"),
      record("failed", result.code, result.message, command.commandId),
    ];
  }
  const { reply } = result;
  const phase: RemediationPhase =
    reply.outcome === "restarted" ? "restarted" : reply.outcome === "failed" ? "failed" : "skipped";
  return [
    setOutcome(command, reply.outcome),
    record(phase, reply.code, reply.message, command.commandId),
  ];
}

function setOutcome(command: RestartDraft, outcome: LedgerRestart["outcome"]): Decision {
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
      return {
        ...entry,
        restarts: entry.restarts.map((r) =>
          r.commandId === command.commandId ? { ...r, outcome } : r,
        ),
      };
    },
  };
}
