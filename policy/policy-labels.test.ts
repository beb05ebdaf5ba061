import { describe, expect, it } from "vitest";
import { DEFAULT_HEAL_POLICY, HealPolicy, POLICY_RANGES } from "../contracts/index.js";
import {
  effectivePolicy,
  POLICY_LABEL_SPECS,
  POLICY_LABELS,
  RECREATE_PULL_LABEL,
} from "./policy-labels.js";

const FLEET = DEFAULT_HEAL_POLICY;

/** Reads one field of a policy by a dotted path (`backoff.initialSeconds`). */
function at(policy: HealPolicy, path: string): unknown {
  let value: unknown = policy;
  for (const part of path.split(".")) value = (value as Record<string, unknown>)[part];
  return value;
}

/** Which policy field each label sets, and what kind of value it takes. */
const FIELDS: Record<string, { path: string; kind: "duration" | "flag" | "count" | "action" }> = {
  [POLICY_LABELS.action]: { path: "action", kind: "action" },
  [POLICY_LABELS.startPeriod]: { path: "startPeriodSeconds", kind: "duration" },
  [POLICY_LABELS.unhealthyFor]: { path: "unhealthyForSeconds", kind: "duration" },
  [POLICY_LABELS.restartOnExit]: { path: "restartOnExit", kind: "flag" },
  [POLICY_LABELS.dependents]: { path: "dependents", kind: "flag" },
  [POLICY_LABELS.dryRun]: { path: "dryRun", kind: "flag" },
  [POLICY_LABELS.backoffInitial]: { path: "backoff.initialSeconds", kind: "duration" },
  [POLICY_LABELS.backoffMax]: { path: "backoff.maxSeconds", kind: "duration" },
  [POLICY_LABELS.backoffResetAfter]: { path: "backoff.resetAfterSeconds", kind: "duration" },
  [POLICY_LABELS.budgetRestarts]: { path: "budget.restarts", kind: "count" },
  [POLICY_LABELS.budgetWindow]: { path: "budget.windowSeconds", kind: "duration" },
  [POLICY_LABELS.budgetReleaseAfter]: {
    path: "budget.releaseAfterHealthySeconds",
    kind: "duration",
  },
};
const LABELS = Object.keys(FIELDS);
/** The range a label's spec states, as its error and docs/reference/labels.md show it. */
const rangeOf = (label: string) => POLICY_LABEL_SPECS.find((s) => s.name === label)?.range ?? "";
const of = (kind: string) => LABELS.filter((l) => FIELDS[l]?.kind === kind);

describe("POLICY_LABELS", () => {
  it("are exactly the labels these tests cover", () => {
    expect(Object.values(POLICY_LABELS).sort()).toEqual([...LABELS].sort());
  });

  it("all live under autoheal.", () => {
    for (const label of LABELS) expect(label).toMatch(/^autoheal\.[a-z_.]+$/);
  });
});

describe("effectivePolicy", () => {
  it("without labels is the fleet policy", () => {
    expect(effectivePolicy(FLEET, {})).toEqual({
      policy: FLEET,
      recreatePull: false,
      labelErrors: [],
    });
    expect(effectivePolicy(FLEET, { autoheal: "true", other: "x" })).toEqual({
      policy: FLEET,
      recreatePull: false,
      labelErrors: [],
    });
  });

  it.each([
    ["stop", "stop"],
    [" Recreate ", "recreate"],
    ["NOTIFY", "notify"],
    ["restart", "restart"],
  ])("action label %j is the action %s", (raw, action) => {
    expect(effectivePolicy(FLEET, { [POLICY_LABELS.action]: raw }).policy.action).toBe(action);
  });

  it("a bad action label keeps the fleet's action and names the choices", () => {
    const fleet = { ...FLEET, action: "stop" as const };
    expect(effectivePolicy(fleet, { [POLICY_LABELS.action]: "reboot" })).toMatchObject({
      policy: { action: "stop" },
      labelErrors: ['autoheal.action="reboot": must be one of restart, stop, recreate, notify'],
    });
  });

  it("reads the recreate pull flag, which is not a policy field", () => {
    expect(effectivePolicy(FLEET, { [RECREATE_PULL_LABEL]: "True" }).recreatePull).toBe(true);
    expect(effectivePolicy(FLEET, { [RECREATE_PULL_LABEL]: "yes" })).toMatchObject({
      recreatePull: false,
      labelErrors: ['autoheal.recreate.pull="yes": must be true or false'],
    });
  });

  it("does not change the fleet policy it is given", () => {
    const fleet = HealPolicy.parse({});
    const copy = structuredClone(fleet);
    effectivePolicy(fleet, { [POLICY_LABELS.backoffMax]: "60s", [POLICY_LABELS.dryRun]: "true" });
    expect(fleet).toEqual(copy);
  });

  it.each([
    ["30s", 30],
    ["1m30s", 90],
    ["1m", 60],
    ["2h", 7_200],
    ["1.5h", 5_400],
    ["45", 45],
    ["0", 0],
    ["0s", 0],
    ["2500ms", 3],
    [" 20s ", 20],
    ["86400", 86_400],
    ["24h", 86_400],
  ])("duration %j is %i seconds for every duration label", (value, seconds) => {
    for (const label of of("duration")) {
      const { policy, labelErrors } = effectivePolicy(FLEET, { [label]: value });
      expect(labelErrors).toEqual([]);
      expect(at(policy, FIELDS[label]?.path ?? "")).toBe(seconds);
    }
  });

  it.each(["abc", "-5s", "10d", "1 m", "", "  ", "s", "5x", "1e3", "604801", "168h1s", "8d"])(
    "duration %j is ignored with an error naming the label",
    (value) => {
      for (const label of of("duration")) {
        const { policy, labelErrors } = effectivePolicy(FLEET, { [label]: value });
        const path = FIELDS[label]?.path ?? "";
        expect(at(policy, path)).toBe(at(FLEET, path));
        expect(labelErrors).toEqual([
          `${label}=${JSON.stringify(value)}: must be a duration from ${rangeOf(label)}`,
        ]);
      }
    },
  );

  it.each([
    ["true", true],
    ["false", false],
    ["TRUE", true],
    [" False ", false],
  ])("flag %j is %s for restart_on_exit and dependents", (value, expected) => {
    for (const label of [POLICY_LABELS.restartOnExit, POLICY_LABELS.dependents]) {
      const fleet = HealPolicy.parse({ restartOnExit: !expected, dependents: !expected });
      const { policy, labelErrors } = effectivePolicy(fleet, { [label]: value });
      expect(labelErrors).toEqual([]);
      expect(at(policy, FIELDS[label]?.path ?? "")).toBe(expected);
    }
  });

  it.each(["yes", "1", "0", "on", "", "truee"])(
    "flag %j is ignored with an error naming the label",
    (value) => {
      for (const label of of("flag")) {
        const { policy, labelErrors } = effectivePolicy(FLEET, { [label]: value });
        const path = FIELDS[label]?.path ?? "";
        expect(at(policy, path)).toBe(at(FLEET, path));
        expect(labelErrors).toEqual([`${label}=${JSON.stringify(value)}: must be true or false`]);
      }
    },
  );

  it("an out-of-range label drops only itself; the container's other labels still apply", () => {
    const { policy, labelErrors } = effectivePolicy(FLEET, {
      [POLICY_LABELS.backoffMax]: "2m",
      [POLICY_LABELS.budgetRestarts]: "100",
      [POLICY_LABELS.startPeriod]: "168h",
      [POLICY_LABELS.unhealthyFor]: "30s",
    });
    expect(policy.backoff.maxSeconds).toBe(120);
    expect(policy.unhealthyForSeconds).toBe(30);
    expect(policy.budget.restarts).toBe(FLEET.budget.restarts);
    expect(policy.startPeriodSeconds).toBe(FLEET.startPeriodSeconds);
    expect(labelErrors).toEqual([
      'autoheal.start_period="168h": must be a duration from 0s to 24h',
      'autoheal.budget.restarts="100": must be a whole number from 1 to 50',
    ]);
    expect(HealPolicy.parse(policy)).toEqual(policy);
  });

  // One range, stated once (POLICY_RANGES): a label accepts exactly what the schema accepts.
  it.each(
    POLICY_LABEL_SPECS.flatMap((spec) =>
      spec.read.kind === "duration" || spec.read.kind === "count"
        ? [[spec.name, spec.read.range] as const]
        : [],
    ),
  )("%s accepts its range's ends and refuses one past them, as the schema does", (label, range) => {
    const { min, max } = POLICY_RANGES[range];
    const path = FIELDS[label]?.path ?? "";
    const withField = (value: number) => {
      const [group, field] = path.split(".");
      return field === undefined || group === undefined
        ? { [path]: value }
        : { [group]: { [field]: value } };
    };
    for (const ok of [min, max]) {
      expect(at(effectivePolicy(FLEET, { [label]: String(ok) }).policy, path)).toBe(ok);
      expect(HealPolicy.safeParse(withField(ok)).success).toBe(true);
    }
    for (const bad of [min - 1, max + 1].filter((n) => n >= 0)) {
      const { policy, labelErrors } = effectivePolicy(FLEET, { [label]: String(bad) });
      expect(at(policy, path)).toBe(at(FLEET, path));
      expect(labelErrors).toHaveLength(1);
      expect(HealPolicy.safeParse(withField(bad)).success).toBe(false);
    }
  });

  it.each([
    ["1", 1],
    ["3", 3],
    [" 7 ", 7],
    ["50", 50],
  ])("count %j is %i restarts", (value, expected) => {
    const { policy, labelErrors } = effectivePolicy(FLEET, {
      [POLICY_LABELS.budgetRestarts]: value,
    });
    expect(labelErrors).toEqual([]);
    expect(policy.budget.restarts).toBe(expected);
  });

  it.each(["0", "-1", "2.5", "abc", "", "123456", "3s", "51", "100", "1e1"])(
    "count %j is ignored with an error naming the label",
    (value) => {
      const label = POLICY_LABELS.budgetRestarts;
      const { policy, labelErrors } = effectivePolicy(FLEET, { [label]: value });
      expect(policy.budget.restarts).toBe(FLEET.budget.restarts);
      expect(labelErrors).toEqual([
        `${label}=${JSON.stringify(value)}: must be a whole number from 1 to 50`,
      ]);
    },
  );

  it("quotes at most 64 characters of a bad value", () => {
    const value = "x".repeat(200);
    const { labelErrors } = effectivePolicy(FLEET, { [POLICY_LABELS.startPeriod]: value });
    expect(labelErrors).toEqual([
      `${POLICY_LABELS.startPeriod}=${JSON.stringify("x".repeat(64))}: must be a duration from 0s to 24h`,
    ]);
  });

  it("a bad label leaves the good ones in force, and every bad one is reported", () => {
    const { policy, labelErrors } = effectivePolicy(FLEET, {
      [POLICY_LABELS.backoffInitial]: "5s",
      [POLICY_LABELS.backoffMax]: "forever",
      [POLICY_LABELS.budgetRestarts]: "none",
      [POLICY_LABELS.restartOnExit]: "true",
    });
    expect(policy.backoff).toEqual({ initialSeconds: 5, maxSeconds: 300, resetAfterSeconds: 600 });
    expect(policy.budget.restarts).toBe(5);
    expect(policy.restartOnExit).toBe(true);
    expect(labelErrors).toHaveLength(2);
    expect(labelErrors[0]).toContain(POLICY_LABELS.backoffMax);
    expect(labelErrors[1]).toContain(POLICY_LABELS.budgetRestarts);
  });

  it("every label at once", () => {
    const { policy, labelErrors } = effectivePolicy(FLEET, {
      "autoheal.start_period": "1m",
      "autoheal.unhealthy_for": "30s",
      "autoheal.restart_on_exit": "true",
      "autoheal.dependents": "false",
      "autoheal.dry_run": "true",
      "autoheal.backoff.initial": "5s",
      "autoheal.backoff.max": "2m",
      "autoheal.backoff.reset_after": "15m",
      "autoheal.budget.restarts": "3",
      "autoheal.budget.window": "30m",
      "autoheal.budget.release_after": "1h",
    });
    expect(labelErrors).toEqual([]);
    expect(policy).toEqual({
      // Whatever labels cannot set (pause, maintenance, the storm guard…) is the fleet's.
      ...FLEET,
      paused: false,
      dryRun: true,
      startPeriodSeconds: 60,
      unhealthyForSeconds: 30,
      restartOnExit: true,
      dependents: false,
      backoff: { initialSeconds: 5, maxSeconds: 120, resetAfterSeconds: 900 },
      budget: { restarts: 3, windowSeconds: 1_800, releaseAfterHealthySeconds: 3_600 },
      maintenance: [],
    });
    expect(HealPolicy.parse(policy)).toEqual(policy);
  });

  it("keeps the fleet's values for what labels cannot set (pause, maintenance)", () => {
    const fleet = HealPolicy.parse({
      paused: true,
      maintenance: [{ start: "2026-11-27T00:00:00Z", end: "2026-11-28T00:00:00Z" }],
      backoff: { initialSeconds: 20 },
    });
    const { policy } = effectivePolicy(fleet, {
      [POLICY_LABELS.backoffMax]: "60",
      paused: "false",
      "autoheal.paused": "false",
      "autoheal.maintenance": "[]",
    });
    expect(policy.paused).toBe(true);
    expect(policy.maintenance).toEqual(fleet.maintenance);
    // A label overrides one field of a group; the others keep the fleet's (not the default's).
    expect(policy.backoff).toEqual({ initialSeconds: 20, maxSeconds: 60, resetAfterSeconds: 600 });
  });

  describe("dry-run", () => {
    it("a container can ask for dry-run", () => {
      expect(effectivePolicy(FLEET, { [POLICY_LABELS.dryRun]: "true" }).policy.dryRun).toBe(true);
    });

    it("a container cannot leave a fleet-wide dry-run", () => {
      const fleet = HealPolicy.parse({ dryRun: true });
      const { policy, labelErrors } = effectivePolicy(fleet, { [POLICY_LABELS.dryRun]: "false" });
      expect(policy.dryRun).toBe(true);
      expect(labelErrors).toEqual([]);
      expect(effectivePolicy(fleet, {}).policy.dryRun).toBe(true);
    });

    it("dry_run=false outside a fleet-wide dry-run is the default", () => {
      expect(effectivePolicy(FLEET, { [POLICY_LABELS.dryRun]: "false" }).policy.dryRun).toBe(false);
    });

    // Was a product bug: `fleet.dryRun || (flag(L.dryRun) ?? false)` short-circuited, so the
    // label was never read (nor its bad value reported) when the fleet was in dry-run.
    it("a bad dry_run value is reported even while the fleet is in dry-run", () => {
      const fleet = HealPolicy.parse({ dryRun: true });
      const { policy, labelErrors } = effectivePolicy(fleet, { [POLICY_LABELS.dryRun]: "yes" });
      expect(policy.dryRun).toBe(true);
      expect(labelErrors).toEqual([`${POLICY_LABELS.dryRun}="yes": must be true or false`]);
    });
  });
});
