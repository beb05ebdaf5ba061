import type { HealPolicy, LedgerEntry, LedgerRestart } from "../contracts/index.js";
import { backoffUntil, type HealVerdict } from "../policy/heal-policy.js";
import type { BreakerState } from "../policy/image-breaker.js";
import { imageName } from "../policy/image-breaker-tally.js";
import type { Decision } from "./decisions.js";
import type { HandlerContext } from "./handler.js";
import { type CommandAction, commandIdFor, healCommand, sendHealCommand } from "./heal-command.js";
import { type HoldInput, holdDecisions } from "./heal-holds.js";
import { countImageFailure, type readImageBreaker } from "./heal-image-breaker.js";
import { heldBackRetryMs, stormLeases, stormRetryDelayMs } from "./storm-slots.js";

/*
 * What the heal handler does once the policy allows it: the container's action, carried out
 * once per attempt under the image breaker and the storm guard.
 */

/** Settings of the heal handler that are not policy (the policy lives in KV). */
export interface HealOptions {
  /** Triggers older than this are history, not a reason to restart now. */
  maxEventAgeMs: number;
  /** Delay before a restart that could not reach the agent is tried again. */
  retryDelayMs: number;
}

const MAX_HISTORY = 50;

/** What one trouble event is decided from, once the ledger entry is read. */
export interface Trouble extends HoldInput {
  ctx: HandlerContext;
  options: HealOptions;
  /** A resync's re-assertion: never deferred by redelivery, never recorded as stale. */
  resync: boolean;
  attempt: number;
  action: HealPolicy["action"];
  pull: boolean;
  /** Warnings about the container's policy labels. */
  warnings: Decision[];
}

/**
 * What the policy allows, by the container's action: `notify` alerts once per incident and
 * leaves the container be; the others are a command, held back while the image breaker is
 * open, and otherwise, with slots under the storm guard's caps, claimed in the ledger and sent.
 */
export async function decideAction(
  t: Trouble,
  verdict: Extract<HealVerdict, { kind: "restart" }>,
  breakerRead: Awaited<ReturnType<typeof readImageBreaker>>,
): Promise<Decision[]> {
  const { record } = t;
  if (t.action === "notify") {
    return holdDecisions(
      t,
      {
        reason: "held",
        code: "notify-only",
        message: `${t.trigger === "unhealthy" ? "container is unhealthy" : "container exited with an error"}; its action is notify, so fleetheal only alerts`,
      },
      "alerted",
      { extras: { action: "notify" }, write: { lastIncident: t.incident } },
    );
  }
  if (t.action === "stop" && t.trigger === "exit") {
    return [
      ...t.keepObserved,
      record("skipped", "already-stopped", "container has exited; its action is stop"),
    ];
  }
  return decideCommand(t, t.action, verdict, breakerRead);
}

async function decideCommand(
  t: Trouble,
  action: CommandAction,
  verdict: Extract<HealVerdict, { kind: "restart" }>,
  breakerRead: Awaited<ReturnType<typeof readImageBreaker>>,
): Promise<Decision[]> {
  const { event, ctx, policy, record, observed, incident } = t;
  const now = ctx.now;
  const breaker = countImageFailure(breakerRead, event, incident, t.troubleSince, now, policy);
  const { windowSeconds } = policy.storm.imageBreaker;
  const heldBack = ({ containers, hosts }: BreakerState): Decision[] => [
    ...holdDecisions(
      t,
      {
        reason: "held",
        code: "image-breaker",
        message: `${containers} containers of image ${imageName(event)} failed within ${windowSeconds}s on ${hosts} ${hosts === 1 ? "host" : "hosts"}: not restarting them until failures thin out`,
      },
      "quarantined",
    ),
    ...(t.resync
      ? []
      : [
          {
            kind: "retry" as const,
            reason: "image-breaker",
            delayMs: heldBackRetryMs(event.id, ctx.deliveryCount, windowSeconds * 1000),
          },
        ]),
  ];
  if (breaker?.state.open) {
    // Whatever other replicas count meanwhile, an open breaker holds this restart back (at
    // worst until the redelivery looks again), so the count is a plain update; one that
    // counts nothing new need not be written.
    return [...(breaker.changed ? [breaker.tally] : []), ...heldBack(breaker.state)];
  }
  const command = healCommand({
    event,
    incident,
    commandId: commandIdFor(event, t.attempt),
    trigger: t.trigger,
    action,
    pull: t.pull,
  });
  const attempt: LedgerRestart = {
    at: now.toISOString(),
    incident,
    commandId: command.commandId,
    outcome: "pending",
    ...(action !== "restart" ? { action } : {}),
  };
  const { notHealing: _acting, ...rest } = observed;
  const next: LedgerEntry = {
    ...rest,
    lastIncident: incident,
    lastCommandId: command.commandId,
    lastRestartAt: now.toISOString(),
    consecutiveRestarts: observed.consecutiveRestarts + 1,
    restarts: [attempt, ...observed.restarts].slice(0, MAX_HISTORY),
  };
  // A failed attempt is tried again when the backoff allows the next one; the redelivery then
  // decides it like any trigger (the budget may quarantine instead).
  const retryAfterFailure = () => {
    const until = backoffUntil(next, policy) ?? now.getTime();
    return Math.max(1_000, until - ctx.now.getTime());
  };
  const stormHold = (cap: string) =>
    holdDecisions(
      t,
      { reason: "held", code: "storm-cap", message: `storm guard: ${cap}; waiting for a slot` },
      "skipped",
    );
  return [
    {
      kind: "lease",
      holder: command.commandId,
      leases: stormLeases(event.host, policy),
      // Counted whether or not a slot is free, while the slots are taken. What was stored
      // decides: with the counts of every message before it, this one's included, the
      // breaker may have opened meanwhile, and then the restart is held back (its slots
      // are given back with the failed delivery).
      alongside: breaker ? [breaker.countThen(heldBack)] : [],
      onDenied: (denial) => [
        ...stormHold(denial.cap),
        ...(t.resync
          ? []
          : [
              {
                kind: "retry" as const,
                reason: "storm-cap",
                delayMs: stormRetryDelayMs(event.id, ctx.deliveryCount, denial),
              },
            ]),
      ],
    },
    // Only with the slots held: a ledger claim without them would let the redelivery
    // restart with no slot at all (resumePending takes none).
    t.claim(next),
    record("decided", t.trigger, decidedMessage(verdict.message, action, t.attempt), {
      commandId: command.commandId,
      action,
    }),
    ...sendHealCommand(command, event, ctx, t.options.retryDelayMs, record, retryAfterFailure),
  ];
}

function decidedMessage(message: string, action: CommandAction, attempt: number): string {
  const what = action === "restart" ? message : message.replace(/restarting it$/, `${action}`);
  return attempt > 1 ? `${what} (attempt ${attempt})` : what;
}
