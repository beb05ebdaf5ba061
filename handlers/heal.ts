import { releasedEntry } from "../common/quarantine-release.js";
import {
  ContainerEvent,
  containerKey,
  eventSubjectMismatch,
  type HealPolicy,
  type LedgerEntry,
  SUBJECTS,
} from "../contracts/index.js";
import { evaluateRelease, observeHealthy } from "../policy/heal-policy.js";
import { effectivePolicy } from "../policy/policy-labels.js";
import type { Decision } from "./decisions.js";
import type { HandlerContext, HandlerDefinition } from "./handler.js";
import type { HealOptions } from "./heal-act.js";
import { HEAL_HANDLER, healRecords } from "./heal-command.js";
import { decideTrouble } from "./heal-trouble.js";

export type { HealOptions } from "./heal-act.js";

/**
 * Heals opted-in containers by policy: acts on `unhealthy` (and on a crash, if the policy says
 * so) with the container's action (restart, stop, recreate or notify), once per attempt of an
 * incident (one run of the container, named by its StartedAt), however many replicas see the
 * event; a failed attempt is tried again under the backoff. Level-triggered: the agent
 * re-asserts an unhealthy container every resync interval, and each re-assertion is decided
 * like a fresh trigger. Also tracks healthy stretches for backoff resets and quarantine
 * releases. Deferred decisions (backoff, pause, start period…) are the same message redelivered
 * later, so nothing is lost while waiting.
 */
export function healHandler(options: HealOptions): HandlerDefinition<ContainerEvent> {
  return {
    name: HEAL_HANDLER,
    subject: SUBJECTS.events,
    schema: ContainerEvent,
    subjectMismatch: eventSubjectMismatch,
    concurrency: 32,
    // Deferrals are redeliveries too; a generous limit keeps a long backoff from being dropped.
    maxDeliver: 10_000,
    handle: (event, ctx) => decideHeal(event, ctx, options),
  };
}

/** The heal decisions for one container event; exported for unit tests. */
export async function decideHeal(
  event: ContainerEvent,
  ctx: HandlerContext,
  options: HealOptions,
): Promise<Decision[]> {
  switch (event.action) {
    case "unhealthy":
      return decideTrouble(event, "unhealthy", ctx, options);
    case "die":
      return isCrash(event, ctx.policy) ? decideTrouble(event, "exit", ctx, options) : [];
    case "healthy":
      return event.container.optedIn ? decideHealthy(event, ctx) : [];
    default:
      return [];
  }
}

/** A die that nobody asked for, with a non-zero code, on a container whose policy cares. */
function isCrash(event: ContainerEvent, fleet: HealPolicy): boolean {
  if (!event.container.optedIn || event.stopped || !event.exitCode) return false;
  return effectivePolicy(fleet, event.container.labels).policy.restartOnExit;
}

/**
 * A healthy event starts a healthy stretch (for the backoff reset), and releases a quarantined
 * container once the stretch is long enough: until then the event is redelivered at the time
 * the release is due, and a trouble event in between ends the stretch.
 */
async function decideHealthy(event: ContainerEvent, ctx: HandlerContext): Promise<Decision[]> {
  const key = containerKey(event.host, event.container.id);
  const current = await ctx.read("ledger", key);
  // No history: nothing to reset or release.
  if (!current) return [];
  const { policy } = effectivePolicy(ctx.policy, event.container.labels);
  const observed = withoutHold(observeHealthy(current.value, Date.parse(event.time)));
  const claim = (value: LedgerEntry): Decision => ({
    kind: "claim",
    store: "ledger",
    key,
    expectedRevision: current.revision,
    value,
  });
  const release = evaluateRelease(observed, policy, ctx.now.getTime());
  if (release?.kind === "release") {
    const record = healRecords(event, ctx.now);
    return [
      claim(releasedEntry(observed, ctx.now)),
      record("released", "healthy", release.message),
    ];
  }
  const decisions: Decision[] = observed !== current.value ? [claim(observed)] : [];
  if (release?.kind === "wait") {
    decisions.push({
      kind: "retry",
      reason: "quarantine-release",
      delayMs: Math.max(50, release.untilMs - ctx.now.getTime()),
    });
  }
  return decisions;
}

/** A healthy container is not being held or stuck any more. */
function withoutHold(entry: LedgerEntry): LedgerEntry {
  if (!entry.notHealing) return entry;
  const { notHealing: _over, ...rest } = entry;
  return rest;
}
