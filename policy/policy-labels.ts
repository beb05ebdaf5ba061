import { z } from "zod";
import { HealAction, HealPolicy, type Labels, parseDuration } from "../contracts/index.js";

/** Labels by which one container overrides the fleet's heal policy (see docs/POLICY.md). */
export const POLICY_LABELS = {
  startPeriod: "autoheal.start_period",
  unhealthyFor: "autoheal.unhealthy_for",
  restartOnExit: "autoheal.restart_on_exit",
  dependents: "autoheal.dependents",
  dryRun: "autoheal.dry_run",
  backoffInitial: "autoheal.backoff.initial",
  backoffMax: "autoheal.backoff.max",
  backoffResetAfter: "autoheal.backoff.reset_after",
  budgetRestarts: "autoheal.budget.restarts",
  budgetWindow: "autoheal.budget.window",
  budgetReleaseAfter: "autoheal.budget.release_after",
  action: "autoheal.action",
} as const;

/** With the `recreate` action, pull the image reference again first (`true`/`false`). */
export const RECREATE_PULL_LABEL = "autoheal.recreate.pull";

/** The policy for one container, and the labels that could not be used (with why). */
export interface EffectivePolicy {
  policy: HealPolicy;
  /** With the `recreate` action: pull the image reference again before recreating. */
  recreatePull: boolean;
  labelErrors: string[];
}

const MAX_SECONDS = 604_800;

/**
 * The fields labels can change. Only these are checked again after the labels apply: the rest is
 * the fleet policy as it was validated when stored, and the run-time switch list alone can hold
 * thousands of entries, too many to validate again for every event.
 */
const LabelledFields = z.object(
  HealPolicy.pick({
    action: true,
    startPeriodSeconds: true,
    unhealthyForSeconds: true,
    restartOnExit: true,
    dependents: true,
    dryRun: true,
    backoff: true,
    budget: true,
  }).shape,
);

/**
 * Applies a container's policy labels on top of the fleet policy. A bad label value is ignored
 * (the fleet default stays) and reported, so one typo never stops a container from being healed.
 */
export function effectivePolicy(fleet: HealPolicy, labels: Labels): EffectivePolicy {
  const errors: string[] = [];
  const seconds = (key: string): number | undefined => {
    const raw = labels[key];
    if (raw === undefined) return undefined;
    const ms = parseDuration(raw.trim());
    if (ms === undefined || ms / 1000 > MAX_SECONDS) {
      errors.push(`${key}=${JSON.stringify(raw.slice(0, 64))}: not a duration up to 7 days`);
      return undefined;
    }
    return Math.round(ms / 1000);
  };
  const flag = (key: string): boolean | undefined => {
    const raw = labels[key];
    if (raw === undefined) return undefined;
    const value = raw.trim().toLowerCase();
    if (value === "true") return true;
    if (value === "false") return false;
    errors.push(`${key}=${JSON.stringify(raw.slice(0, 64))}: must be true or false`);
    return undefined;
  };
  const count = (key: string): number | undefined => {
    const raw = labels[key];
    if (raw === undefined) return undefined;
    if (!/^\d{1,5}$/.test(raw.trim()) || Number(raw) < 1) {
      errors.push(`${key}=${JSON.stringify(raw.slice(0, 64))}: must be a whole number from 1`);
      return undefined;
    }
    return Number(raw);
  };
  const action = (): HealAction | undefined => {
    const raw = labels[POLICY_LABELS.action];
    if (raw === undefined) return undefined;
    const parsed = HealAction.safeParse(raw.trim().toLowerCase());
    if (parsed.success) return parsed.data;
    errors.push(
      `${POLICY_LABELS.action}=${JSON.stringify(raw.slice(0, 64))}: must be one of ${HealAction.options.join(", ")}`,
    );
    return undefined;
  };
  const L = POLICY_LABELS;
  const recreatePull = flag(RECREATE_PULL_LABEL) ?? false;
  const policy: HealPolicy = {
    ...fleet,
    action: action() ?? fleet.action,
    startPeriodSeconds: seconds(L.startPeriod) ?? fleet.startPeriodSeconds,
    unhealthyForSeconds: seconds(L.unhealthyFor) ?? fleet.unhealthyForSeconds,
    restartOnExit: flag(L.restartOnExit) ?? fleet.restartOnExit,
    dependents: flag(L.dependents) ?? fleet.dependents,
    // A container can ask for dry-run, but cannot leave a fleet that is in dry-run (the label is
    // still read, so that a bad value is reported either way).
    dryRun: (flag(L.dryRun) ?? false) || fleet.dryRun,
    backoff: {
      initialSeconds: seconds(L.backoffInitial) ?? fleet.backoff.initialSeconds,
      maxSeconds: seconds(L.backoffMax) ?? fleet.backoff.maxSeconds,
      resetAfterSeconds: seconds(L.backoffResetAfter) ?? fleet.backoff.resetAfterSeconds,
    },
    budget: {
      restarts: count(L.budgetRestarts) ?? fleet.budget.restarts,
      windowSeconds: seconds(L.budgetWindow) ?? fleet.budget.windowSeconds,
      releaseAfterHealthySeconds:
        seconds(L.budgetReleaseAfter) ?? fleet.budget.releaseAfterHealthySeconds,
    },
  };
  // Each label was checked on its own; the result must also fit the schema's limits.
  const checked = LabelledFields.safeParse(policy);
  if (!checked.success) {
    const issue = checked.error.issues[0];
    errors.push(
      `policy labels out of range (${issue?.path.join(".") ?? "?"}: ${issue?.message ?? "invalid"}); using the fleet policy`,
    );
    return { policy: fleet, recreatePull, labelErrors: errors };
  }
  return { policy: { ...policy, ...checked.data }, recreatePull, labelErrors: errors };
}
