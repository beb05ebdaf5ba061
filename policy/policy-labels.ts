import {
  DEFAULT_HEAL_POLICY,
  formatDuration,
  HealAction,
  type HealPolicy,
  type Labels,
  POLICY_RANGES,
  type PolicyRange,
  parseDuration,
} from "../contracts/index.js";
import type { LabelSpec } from "./label-spec.js";

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

const HEAL_ROLE = "heal handler";

/** How one policy label is read: a duration or count within a range, or a flag. */
type Reader =
  | { kind: "duration" | "count"; range: PolicyRange }
  | { kind: "flag" }
  | { kind: "action" };

interface PolicyLabelSpec extends LabelSpec {
  read: Reader;
}

const L = POLICY_LABELS;
/** The default as the docs show it: the fleet policy's value, and that value out of the box. */
const d = (seconds: number) => `fleet policy (${humanSeconds(seconds)} by default)`;

/** `90s`, `24h`, `7 days`: whole days are easier to read as days. */
function humanSeconds(seconds: number): string {
  if (seconds >= 2 * 86_400 && seconds % 86_400 === 0) return `${seconds / 86_400} days`;
  return formatDuration(seconds * 1000);
}

function rangeText(reader: Reader): string {
  if (reader.kind === "flag") return "`true`, `false`";
  if (reader.kind === "action") return HealAction.options.map((a) => `\`${a}\``).join(", ");
  const { min, max } = POLICY_RANGES[reader.range];
  return reader.kind === "count"
    ? `${min} to ${max}`
    : `${humanSeconds(min)} to ${humanSeconds(max)}`;
}

function spec(
  name: string,
  read: Reader,
  fleetDefault: string,
  meaning: string,
  role = HEAL_ROLE,
): PolicyLabelSpec {
  const value =
    read.kind === "duration"
      ? "duration (`90s`, `1m30s`, `2h`, or seconds)"
      : read.kind === "count"
        ? "whole number"
        : read.kind === "flag"
          ? "`true` or `false`"
          : "action";
  return {
    name,
    value,
    range: rangeText(read),
    default: fleetDefault,
    meaning,
    role,
    read,
  };
}

/**
 * The policy labels, each with its range (from {@link POLICY_RANGES}, the schema's own) and its
 * docs. {@link effectivePolicy} reads the labels by these, and docs/reference/labels.md is
 * generated from them (tools/labels-doc.ts).
 */
export const POLICY_LABEL_SPECS: readonly PolicyLabelSpec[] = [
  spec(
    L.action,
    { kind: "action" },
    `fleet policy (\`${DEFAULT_HEAL_POLICY.action}\`)`,
    "What heal does to this container when it is unhealthy (or crashed, with `restart_on_exit`).",
  ),
  spec(
    L.startPeriod,
    { kind: "duration", range: "startPeriodSeconds" },
    d(DEFAULT_HEAL_POLICY.startPeriodSeconds),
    "After the container starts, health failures are ignored for this long.",
  ),
  spec(
    L.unhealthyFor,
    { kind: "duration", range: "unhealthyForSeconds" },
    d(DEFAULT_HEAL_POLICY.unhealthyForSeconds),
    "Act only once the container has been unhealthy for this long.",
  ),
  spec(
    L.restartOnExit,
    { kind: "flag" },
    `fleet policy (\`${DEFAULT_HEAL_POLICY.restartOnExit}\`)`,
    "Also heal the container when it exits with a non-zero code.",
  ),
  spec(
    L.dependents,
    { kind: "flag" },
    `fleet policy (\`${DEFAULT_HEAL_POLICY.dependents}\`)`,
    "On a restarted or recreated container: restart its dependents ([DEPENDENTS.md](../DEPENDENTS.md)). `false` on a dependent keeps it out of every round.",
    "heal and dependents handlers",
  ),
  spec(
    L.dryRun,
    { kind: "flag" },
    "`false`",
    "Decide and record, but never act on this container. Cannot take a container out of a fleet in dry-run.",
  ),
  spec(
    L.backoffInitial,
    { kind: "duration", range: "backoffInitialSeconds" },
    d(DEFAULT_HEAL_POLICY.backoff.initialSeconds),
    "Wait before the second restart; doubles after each restart.",
  ),
  spec(
    L.backoffMax,
    { kind: "duration", range: "backoffMaxSeconds" },
    d(DEFAULT_HEAL_POLICY.backoff.maxSeconds),
    "The longest wait between restarts.",
  ),
  spec(
    L.backoffResetAfter,
    { kind: "duration", range: "backoffResetAfterSeconds" },
    d(DEFAULT_HEAL_POLICY.backoff.resetAfterSeconds),
    "Healthy this long after a restart, and the backoff starts over.",
  ),
  spec(
    L.budgetRestarts,
    { kind: "count", range: "budgetRestarts" },
    `fleet policy (${DEFAULT_HEAL_POLICY.budget.restarts} by default)`,
    "Restarts allowed in the window; one more quarantines the container.",
  ),
  spec(
    L.budgetWindow,
    { kind: "duration", range: "budgetWindowSeconds" },
    d(DEFAULT_HEAL_POLICY.budget.windowSeconds),
    "The window the restart budget counts in.",
  ),
  spec(
    L.budgetReleaseAfter,
    { kind: "duration", range: "budgetReleaseAfterHealthySeconds" },
    d(DEFAULT_HEAL_POLICY.budget.releaseAfterHealthySeconds),
    "A quarantined container is released after being healthy this long.",
  ),
  spec(
    RECREATE_PULL_LABEL,
    { kind: "flag" },
    "`false`",
    "With the `recreate` action, pull the image reference again before recreating.",
  ),
];

/**
 * Applies a container's policy labels on top of the fleet policy. A bad label value, or one out
 * of its range, is ignored (the fleet's value stays) and reported; the container's other labels
 * still apply, so one typo never stops a container from being healed as its other labels say.
 * Each label is checked against the schema's own range, so the result is always a valid policy.
 */
export function effectivePolicy(fleet: HealPolicy, labels: Labels): EffectivePolicy {
  const errors: string[] = [];
  const read = new Map<string, unknown>();
  for (const { name, read: reader, range } of POLICY_LABEL_SPECS) {
    const raw = labels[name];
    if (raw === undefined) continue;
    const value = readLabel(reader, raw.trim());
    if (value === undefined) {
      errors.push(`${name}=${JSON.stringify(raw.slice(0, 64))}: ${expected(reader, range)}`);
    } else {
      read.set(name, value);
    }
  }
  const seconds = (name: string) => read.get(name) as number | undefined;
  const flag = (name: string) => read.get(name) as boolean | undefined;
  const policy: HealPolicy = {
    ...fleet,
    action: (read.get(L.action) as HealAction | undefined) ?? fleet.action,
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
      restarts: seconds(L.budgetRestarts) ?? fleet.budget.restarts,
      windowSeconds: seconds(L.budgetWindow) ?? fleet.budget.windowSeconds,
      releaseAfterHealthySeconds:
        seconds(L.budgetReleaseAfter) ?? fleet.budget.releaseAfterHealthySeconds,
    },
  };
  return { policy, recreatePull: flag(RECREATE_PULL_LABEL) ?? false, labelErrors: errors };
}

/** The label's value, or undefined when it is not one of the label's values. */
function readLabel(reader: Reader, value: string): unknown {
  switch (reader.kind) {
    case "flag": {
      const word = value.toLowerCase();
      return word === "true" ? true : word === "false" ? false : undefined;
    }
    case "action": {
      const parsed = HealAction.safeParse(value.toLowerCase());
      return parsed.success ? parsed.data : undefined;
    }
    case "count": {
      const { min, max } = POLICY_RANGES[reader.range];
      // Digits only, and few of them: Number("") is 0 and Number("1e9") is a billion.
      if (!/^\d{1,6}$/.test(value)) return undefined;
      const n = Number(value);
      return n >= min && n <= max ? n : undefined;
    }
    case "duration": {
      const { min, max } = POLICY_RANGES[reader.range];
      const ms = parseDuration(value);
      if (ms === undefined) return undefined;
      const s = Math.round(ms / 1000);
      return s >= min && s <= max ? s : undefined;
    }
  }
}

/** What a label must be, for its error. */
function expected(reader: Reader, range: string): string {
  switch (reader.kind) {
    case "flag":
      return "must be true or false";
    case "action":
      return `must be one of ${HealAction.options.join(", ")}`;
    case "count":
      return `must be a whole number from ${range}`;
    case "duration":
      return `must be a duration from ${range}`;
  }
}
