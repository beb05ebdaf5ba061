/*
 * The codes the handlers write on `skipped` and `quarantined` records (the "not now, and why"
 * of docs/POLICY.md), as one fixed set: the replica's metrics count holds by code, and a label's
 * values must come from a fixed set. Part of a record's code is the agent's (its reply to a
 * command), and a host's agent is hostile input, so any code not listed here counts as `other`.
 */

/** The heal policy's holds and skips (policy/heal-policy.ts, policy/selection.ts, heal-*.ts). */
const HEAL_CODES = [
  "not-opted-in",
  "stale-event",
  "recovered",
  "paused",
  "maintenance",
  "start-period",
  "unhealthy-for",
  "backoff",
  "storm-cap",
  "image-breaker",
  "quarantined",
  "budget-spent",
  "disabled",
  "excluded",
  "not-included",
  "already-stopped",
  "dry-run",
] as const;

/** The agent's `refused` and `skipped` replies (contracts/commands.ts, `CommandReply.code`). */
const AGENT_CODES = [
  "not-found",
  "wrong-host",
  "already-restarting",
  "stale-incident",
  "not-unhealthy",
  "not-network-child",
  "auto-remove",
] as const;

/** Why a dependent was left alone (dependents-round.ts, dependency-plan.ts). */
const DEPENDENTS_CODES = [
  "parent-not-running",
  "parent-not-restarted",
  "already-current",
  "dependents-disabled",
  "not-running",
] as const;

/**
 * Every code a handler writes on a `skipped` or `quarantined` record. A container stuck after a
 * failed attempt is held with the failure's own code (common/restart-outcomes.ts), which the
 * metrics count as `other` here: fleetheal_restart_failures_total has those by code.
 */
export const SKIP_CODES: ReadonlySet<string> = new Set<string>([
  ...HEAL_CODES,
  ...AGENT_CODES,
  ...DEPENDENTS_CODES,
]);

/** A skipped or quarantined record's code as a label value: one of {@link SKIP_CODES}, or `other`. */
export function skipCode(code: string): string {
  return SKIP_CODES.has(code) ? code : "other";
}
