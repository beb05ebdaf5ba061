import { createHash } from "node:crypto";
import {
  ContainerEvent,
  containerKey,
  type Labels,
  type LedgerEntry,
  type LedgerRestart,
  REMEDIATION_TYPE,
  RESTART_COMMAND_TYPE,
  type RemediationPhase,
  type RemediationRecord,
  type RestartCommand,
  SUBJECTS,
  stopTimeoutFromLabels,
} from "../contracts/index.js";
import type { CommandResult, Decision, HandlerContext, HandlerDefinition } from "./handler.js";

/** Settings of the minimal heal policy. */
export interface HealOptions {
  /** After a restart, further incidents of the same container wait this long. */
  cooldownMs: number;
  /** Events older than this are history, not a reason to restart now. */
  maxEventAgeMs: number;
  /** Delay before a restart that could not reach the agent is tried again. */
  retryDelayMs: number;
}

const HANDLER = "heal";
/** Docker's own default, used when the container has no stop-timeout label. */
const DEFAULT_STOP_TIMEOUT_SECONDS = 10;
const MAX_HISTORY = 50;

/**
 * Restarts an opted-in container when Docker reports it unhealthy, at most once per incident
 * (one run of the container, named by its StartedAt), however many replicas see the event.
 */
export function healHandler(options: HealOptions): HandlerDefinition<ContainerEvent> {
  return {
    name: HANDLER,
    subject: SUBJECTS.eventsWithAction("unhealthy"),
    schema: ContainerEvent,
    concurrency: 32,
    maxDeliver: 10,
    handle: (event, ctx) => decideHeal(event, ctx, options),
  };
}

/** The heal decision for one `unhealthy` event; exported for unit tests. */
export async function decideHeal(
  event: ContainerEvent,
  ctx: HandlerContext,
  options: HealOptions,
): Promise<Decision[]> {
  if (event.action !== "unhealthy") return [];
  const now = ctx.now;
  const record = recordFactory(event, now);
  if (!event.container.optedIn) {
    return [record("skipped", "not-opted-in", "container has not opted in to healing")];
  }
  const key = containerKey(event.host, event.container.id);
  const incident = event.container.startedAt ?? event.id;
  const current = await ctx.read("ledger", key);
  const entry = current?.value;
  // Before the age check: a claimed incident must get its answer however late the redelivery.
  if (entry?.lastIncident === incident) return resumeIfPending(event, entry, ctx, options, record);
  const ageMs = now.getTime() - Date.parse(event.time);
  if (ageMs > options.maxEventAgeMs) {
    return [record("skipped", "stale-event", `event is ${Math.round(ageMs / 1000)}s old`)];
  }
  if (entry?.lastRestartAt) {
    const sinceLast = now.getTime() - Date.parse(entry.lastRestartAt);
    if (sinceLast < options.cooldownMs) return deferForCooldown(sinceLast, ctx, options, record);
  }
  const command = restartCommand(event, incident, commandIdFor(event));
  const next: LedgerEntry = {
    v: 1,
    host: event.host,
    containerId: event.container.id,
    lastIncident: incident,
    lastCommandId: command.commandId,
    lastRestartAt: now.toISOString(),
    restarts: [
      {
        at: now.toISOString(),
        incident,
        commandId: command.commandId,
        outcome: "pending" as const,
      },
      ...(entry?.restarts ?? []),
    ].slice(0, MAX_HISTORY),
  };
  return [
    { kind: "claim", store: "ledger", key, expectedRevision: current?.revision ?? 0, value: next },
    record("decided", "unhealthy", "container is unhealthy; restarting it", command.commandId),
    ...sendRestart(command, event.container.labels, ctx, options, record),
  ];
}

/**
 * Docker reports `unhealthy` only once per run, so skipping the event would leave a container
 * that is still unhealthy after its cooldown alone for good. Instead the event is redelivered
 * when the cooldown ends; the command then asks the agent to act only if the container is
 * still unhealthy.
 */
function deferForCooldown(
  sinceLastMs: number,
  ctx: HandlerContext,
  options: HealOptions,
  record: RecordFn,
): Decision[] {
  const waitMs = options.cooldownMs - sinceLastMs;
  const message = `restarted ${Math.round(sinceLastMs / 1000)}s ago; cooldown is ${Math.round(options.cooldownMs / 1000)}s`;
  if (ctx.lastDelivery) return [record("skipped", "cooldown", `${message}; giving up`)];
  return [
    record("skipped", "cooldown", `${message}; will check again in ${Math.ceil(waitMs / 1000)}s`),
    { kind: "retry", reason: "cooldown", delayMs: waitMs + 50 },
  ];
}

type RecordFn = (
  phase: RemediationPhase,
  code: string,
  message: string,
  commandId?: string,
) => Decision;

/**
 * The ledger says this incident was already decided. If its restart never got an answer (the
 * replica died, or the agent was unreachable), send the same command again: the agent executes
 * a command id once, so this cannot restart twice.
 */
function resumeIfPending(
  event: ContainerEvent,
  entry: LedgerEntry,
  ctx: HandlerContext,
  options: HealOptions,
  record: RecordFn,
): Decision[] {
  const last = entry.restarts[0];
  if (last?.outcome !== "pending" || last.commandId !== entry.lastCommandId) {
    return [
      { kind: "log", level: "debug", msg: "incident already handled", fields: { id: event.id } },
    ];
  }
  return sendRestart(
    restartCommand(event, last.incident, last.commandId),
    event.container.labels,
    ctx,
    options,
    record,
  );
}

/**
 * A restart takes up to the container's stop timeout plus the time to start it again; waiting
 * less would report a restart that is merely slow as failed.
 */
function restartDeadlineMs(labels: Labels): number {
  return ((stopTimeoutFromLabels(labels) ?? DEFAULT_STOP_TIMEOUT_SECONDS) + 30) * 1000;
}

function sendRestart(
  command: RestartCommand,
  labels: Labels,
  ctx: HandlerContext,
  options: HealOptions,
  record: RecordFn,
): Decision[] {
  return [
    record("restarting", "restart-sent", "restart command sent to the agent", command.commandId),
    {
      kind: "restart",
      command,
      minTimeoutMs: restartDeadlineMs(labels),
      onReply: (result) => afterRestart(result, command, ctx, options, record),
    },
  ];
}

function afterRestart(
  result: CommandResult,
  command: RestartCommand,
  ctx: HandlerContext,
  options: HealOptions,
  record: RecordFn,
): Decision[] {
  const { lastDelivery } = ctx;
  if (!result.ok) {
    const unreachable = result.code === "no-responders" || result.code === "timeout";
    if (unreachable && !lastDelivery) {
      return [
        {
          kind: "retry",
          reason: `agent unreachable: ${result.message}`,
          delayMs: options.retryDelayMs,
        },
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

function setOutcome(command: RestartCommand, outcome: LedgerRestart["outcome"]): Decision {
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

function restartCommand(
  event: ContainerEvent,
  incident: string,
  commandId: string,
): RestartCommand {
  return {
    type: RESTART_COMMAND_TYPE,
    v: 1,
    commandId,
    host: event.host,
    containerId: event.container.id,
    reason: "unhealthy",
    requestedBy: `handler:${HANDLER}`,
    requireUnhealthy: true,
    // Only a real StartedAt lets the agent detect a stale command.
    ...(event.container.startedAt === incident ? { incident } : {}),
  };
}

/** Deterministic, so that a redelivered event produces the same command id. */
function commandIdFor(event: ContainerEvent): string {
  return `heal-${createHash("sha256").update(event.id).digest("hex").slice(0, 32)}`;
}

function recordFactory(event: ContainerEvent, now: Date): RecordFn {
  const remediationId = `${HANDLER}:${event.id}`;
  return (phase, code, message, commandId) => {
    const record: RemediationRecord = {
      type: REMEDIATION_TYPE,
      v: 1,
      // Deterministic per phase, so JetStream drops the copy a redelivery would publish.
      id: `${remediationId}:${phase}`,
      remediationId,
      host: event.host,
      containerId: event.container.id,
      containerName: event.container.name,
      phase,
      code,
      message,
      ...(event.container.startedAt ? { incident: event.container.startedAt } : {}),
      triggerEventId: event.id,
      ...(commandId ? { commandId } : {}),
      actor: `handler:${HANDLER}`,
      at: now.toISOString(),
      dryRun: false,
    };
    return { kind: "remediation", record };
  };
}
