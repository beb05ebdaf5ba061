import { describe, expect, it } from "vitest";
import {
  DEFAULT_HEAL_POLICY,
  HealPolicy,
  LedgerEntry,
  type LedgerRestart,
} from "../contracts/index.js";
import { ledgerEntry } from "../test/support/fixtures.js";
import {
  backoffUntil,
  evaluateHeal,
  evaluateRelease,
  type HealInput,
  type HealVerdict,
  MAX_DEFER_MS,
  observeHealthy,
  observeTrouble,
  PAUSE_RECHECK_MS,
  restartsWithin,
} from "./heal-policy.js";

const HOST = "host-a";
const CID = "4f1c2b3a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a";
const NOW = Date.parse("2026-11-27T12:00:00.000Z");
const S = 1_000;
const iso = (ms: number) => new Date(ms).toISOString();

/** A policy from a partial JSON document, as the KV watcher would load it. */
function policy(doc: Record<string, unknown> = {}): HealPolicy {
  return HealPolicy.parse(doc);
}

function entry(patch: Partial<LedgerEntry> = {}): LedgerEntry {
  return ledgerEntry({ host: HOST, containerId: CID, ...patch });
}

function restartAt(atMs: number, outcome: LedgerRestart["outcome"] = "restarted"): LedgerRestart {
  return {
    at: iso(atMs),
    incident: iso(atMs - 60 * S),
    commandId: `heal-${atMs}`,
    outcome,
  };
}

function input(patch: Partial<HealInput> = {}): HealInput {
  return {
    trigger: "unhealthy",
    host: HOST,
    now: NOW,
    eventTime: NOW - S,
    startedAt: NOW - 3_600 * S,
    entry: undefined,
    policy: DEFAULT_HEAL_POLICY,
    maxEventAgeMs: 300 * S,
    ...patch,
  };
}

/** The parts of a verdict a rule decides; messages are checked separately. */
function summary(v: HealVerdict) {
  switch (v.kind) {
    case "defer":
      return { kind: v.kind, code: v.code, untilMs: v.untilMs };
    case "skip":
      return { kind: v.kind, code: v.code };
    default:
      return { kind: v.kind };
  }
}

const RESTART = { kind: "restart" } as const;
const skip = (code: string) => ({ kind: "skip", code }) as const;
const defer = (code: string, untilMs: number) => ({ kind: "defer", code, untilMs }) as const;

/** A maintenance window relative to NOW. */
function window(startMs: number, endMs: number, extra: { hosts?: string[]; reason?: string } = {}) {
  return { start: iso(NOW + startMs), end: iso(NOW + endMs), ...extra };
}

/** Backoff fixtures: restarted `consecutive` times in a row, the last `agoMs` before NOW. */
function backedOff(consecutive: number, agoMs: number): LedgerEntry {
  return entry({ consecutiveRestarts: consecutive, lastRestartAt: iso(NOW - agoMs) });
}

describe("evaluateHeal: one row per rule, in the guards' order", () => {
  const quarantined = entry({
    quarantine: { since: iso(NOW - 60 * S), reason: "budget spent" },
  });

  it.each<[string, Partial<HealInput>, ReturnType<typeof summary>]>([
    // --- stale event
    [
      "an event older than maxEventAgeMs is stale",
      { eventTime: NOW - 300_001 },
      skip("stale-event"),
    ],
    ["an event exactly maxEventAgeMs old is not stale", { eventTime: NOW - 300_000 }, RESTART],
    [
      "stale wins over quarantined and paused",
      { eventTime: NOW - 400 * S, entry: quarantined, policy: policy({ paused: true }) },
      skip("stale-event"),
    ],
    [
      "stale applies to exits too",
      { trigger: "exit", eventTime: NOW - 301 * S },
      skip("stale-event"),
    ],

    // --- quarantined
    ["a quarantined container is not restarted", { entry: quarantined }, skip("quarantined")],
    [
      "quarantined wins over paused",
      { entry: quarantined, policy: policy({ paused: true }) },
      skip("quarantined"),
    ],
    ["quarantined applies to exits", { trigger: "exit", entry: quarantined }, skip("quarantined")],

    // --- paused
    [
      "paused defers by PAUSE_RECHECK_MS",
      { policy: policy({ paused: true }) },
      defer("paused", NOW + PAUSE_RECHECK_MS),
    ],
    [
      "paused wins over maintenance",
      { policy: policy({ paused: true, maintenance: [window(-60 * S, 60 * S)] }) },
      defer("paused", NOW + PAUSE_RECHECK_MS),
    ],
    [
      "paused wins over dry-run",
      { policy: policy({ paused: true, dryRun: true }) },
      defer("paused", NOW + PAUSE_RECHECK_MS),
    ],

    // --- maintenance windows
    [
      "an active window for all hosts defers until its end",
      { policy: policy({ maintenance: [window(-3_600 * S, 60 * S)] }) },
      defer("maintenance", NOW + 60 * S),
    ],
    [
      "an active window for this host defers",
      { policy: policy({ maintenance: [window(-60 * S, 90 * S, { hosts: ["host-b", HOST] })] }) },
      defer("maintenance", NOW + 90 * S),
    ],
    [
      "an active window for another host does not apply",
      { policy: policy({ maintenance: [window(-60 * S, 90 * S, { hosts: ["host-b"] })] }) },
      RESTART,
    ],
    [
      "an expired window does not apply",
      { policy: policy({ maintenance: [window(-3_600 * S, -1)] }) },
      RESTART,
    ],
    [
      "a window that ends now is over",
      { policy: policy({ maintenance: [window(-3_600 * S, 0)] }) },
      RESTART,
    ],
    [
      "a future window does not apply",
      { policy: policy({ maintenance: [window(1, 3_600 * S)] }) },
      RESTART,
    ],
    [
      "a window that starts now applies",
      { policy: policy({ maintenance: [window(0, 60 * S)] }) },
      defer("maintenance", NOW + 60 * S),
    ],
    [
      "a long window defers at most MAX_DEFER_MS at a time",
      { policy: policy({ maintenance: [window(-60 * S, 7_200 * S)] }) },
      defer("maintenance", NOW + MAX_DEFER_MS),
    ],
    [
      "the first active window among several is used",
      {
        policy: policy({
          maintenance: [
            window(-7_200 * S, -3_600 * S),
            window(-60 * S, 30 * S, { hosts: ["host-b"] }),
            window(-60 * S, 45 * S),
          ],
        }),
      },
      defer("maintenance", NOW + 45 * S),
    ],
    [
      "maintenance wins over the start period",
      {
        startedAt: NOW - S,
        policy: policy({ startPeriodSeconds: 120, maintenance: [window(-60 * S, 30 * S)] }),
      },
      defer("maintenance", NOW + 30 * S),
    ],

    // --- start period
    [
      "within the start period, defer until startedAt + period",
      { startedAt: NOW - 30 * S, policy: policy({ startPeriodSeconds: 120 }) },
      defer("start-period", NOW + 90 * S),
    ],
    [
      "the start period ends exactly at startedAt + period",
      { startedAt: NOW - 120 * S, policy: policy({ startPeriodSeconds: 120 }) },
      RESTART,
    ],
    [
      "without a startedAt the start period does not apply",
      { startedAt: undefined, policy: policy({ startPeriodSeconds: 120 }) },
      RESTART,
    ],
    [
      "a long start period defers at most MAX_DEFER_MS at a time",
      { startedAt: NOW - S, policy: policy({ startPeriodSeconds: 3_600 }) },
      defer("start-period", NOW + MAX_DEFER_MS),
    ],
    [
      "the start period applies to exits",
      { trigger: "exit", startedAt: NOW - 5 * S, policy: policy({ startPeriodSeconds: 60 }) },
      defer("start-period", NOW + 55 * S),
    ],
    [
      "the start period wins over unhealthy-for",
      {
        startedAt: NOW - 10 * S,
        policy: policy({ startPeriodSeconds: 60, unhealthyForSeconds: 300 }),
      },
      defer("start-period", NOW + 50 * S),
    ],

    // --- unhealthy for (and recovered)
    [
      "unhealthy for less than N seconds defers until eventTime + N",
      { eventTime: NOW - 10 * S, policy: policy({ unhealthyForSeconds: 30 }) },
      defer("unhealthy-for", NOW + 20 * S),
    ],
    [
      "unhealthy for exactly N seconds acts",
      { eventTime: NOW - 30 * S, policy: policy({ unhealthyForSeconds: 30 }) },
      RESTART,
    ],
    [
      "an exit trigger skips the unhealthy-for rule",
      { trigger: "exit", eventTime: NOW - 10 * S, policy: policy({ unhealthyForSeconds: 30 }) },
      RESTART,
    ],
    [
      "healthy again after the event: recovered",
      {
        eventTime: NOW - 10 * S,
        entry: entry({ healthySince: iso(NOW - 5 * S) }),
        policy: policy({ unhealthyForSeconds: 30 }),
      },
      skip("recovered"),
    ],
    [
      "healthy since before the event: not recovered",
      { eventTime: NOW - 10 * S, entry: entry({ healthySince: iso(NOW - 20 * S) }) },
      RESTART,
    ],
    [
      "healthy since exactly the event time: not recovered",
      { eventTime: NOW - 10 * S, entry: entry({ healthySince: iso(NOW - 10 * S) }) },
      RESTART,
    ],
    [
      "an exit trigger is never 'recovered'",
      { trigger: "exit", eventTime: NOW - 10 * S, entry: entry({ healthySince: iso(NOW - S) }) },
      RESTART,
    ],

    // --- budget (quarantine)
    [
      "N restarts in the window spend the budget",
      {
        policy: policy({ budget: { restarts: 3, windowSeconds: 600 } }),
        entry: entry({
          restarts: [
            restartAt(NOW - 100 * S, "pending"),
            restartAt(NOW - 200 * S, "restarted"),
            restartAt(NOW - 300 * S, "failed"),
          ],
        }),
      },
      { kind: "quarantine" },
    ],
    [
      "N-1 restarts in the window leave room for one more",
      {
        policy: policy({ budget: { restarts: 3, windowSeconds: 600 } }),
        entry: entry({ restarts: [restartAt(NOW - 100 * S), restartAt(NOW - 200 * S)] }),
      },
      RESTART,
    ],
    [
      "refused and skipped commands do not count",
      {
        policy: policy({ budget: { restarts: 3, windowSeconds: 600 } }),
        entry: entry({
          restarts: [
            restartAt(NOW - 100 * S, "refused"),
            restartAt(NOW - 150 * S, "skipped"),
            restartAt(NOW - 200 * S, "restarted"),
            restartAt(NOW - 250 * S, "restarted"),
          ],
        }),
      },
      RESTART,
    ],
    [
      "restarts older than the window do not count",
      {
        policy: policy({ budget: { restarts: 3, windowSeconds: 600 } }),
        entry: entry({
          restarts: [
            restartAt(NOW - 100 * S),
            restartAt(NOW - 200 * S),
            restartAt(NOW - 600 * S - 1),
          ],
        }),
      },
      RESTART,
    ],
    [
      "a restart exactly at the window's start counts",
      {
        policy: policy({ budget: { restarts: 3, windowSeconds: 600 } }),
        entry: entry({
          restarts: [restartAt(NOW - 100 * S), restartAt(NOW - 200 * S), restartAt(NOW - 600 * S)],
        }),
      },
      { kind: "quarantine" },
    ],
    [
      "the budget wins over the backoff",
      {
        policy: policy({ budget: { restarts: 2, windowSeconds: 600 } }),
        entry: entry({
          consecutiveRestarts: 2,
          lastRestartAt: iso(NOW - S),
          restarts: [restartAt(NOW - S), restartAt(NOW - 20 * S)],
        }),
      },
      { kind: "quarantine" },
    ],
    [
      "the budget applies to exits",
      {
        trigger: "exit",
        policy: policy({ budget: { restarts: 1, windowSeconds: 600 } }),
        entry: entry({ restarts: [restartAt(NOW - 100 * S)] }),
      },
      { kind: "quarantine" },
    ],
    [
      "the budget wins over dry-run",
      {
        policy: policy({ dryRun: true, budget: { restarts: 1 } }),
        entry: entry({ restarts: [restartAt(NOW - 100 * S)] }),
      },
      { kind: "quarantine" },
    ],

    // --- backoff (Kubernetes: 10 s doubling to 300 s)
    ["the first restart is immediate", { entry: backedOff(0, S) }, RESTART],
    ["no ledger entry: immediate", { entry: undefined }, RESTART],
    ["after 1 restart: 10 s", { entry: backedOff(1, 4 * S) }, defer("backoff", NOW + 6 * S)],
    ["after 2 restarts: 20 s", { entry: backedOff(2, 4 * S) }, defer("backoff", NOW + 16 * S)],
    ["after 3 restarts: 40 s", { entry: backedOff(3, 4 * S) }, defer("backoff", NOW + 36 * S)],
    ["after 4 restarts: 80 s", { entry: backedOff(4, 4 * S) }, defer("backoff", NOW + 76 * S)],
    ["after 5 restarts: 160 s", { entry: backedOff(5, 4 * S) }, defer("backoff", NOW + 156 * S)],
    [
      "after 6 restarts: capped at 300 s",
      { entry: backedOff(6, 4 * S) },
      defer("backoff", NOW + 296 * S),
    ],
    [
      "after 40 restarts: still 300 s",
      { entry: backedOff(40, 4 * S) },
      defer("backoff", NOW + 296 * S),
    ],
    [
      "1 ms before the backoff ends: defer",
      { entry: backedOff(1, 10 * S - 1) },
      defer("backoff", NOW + 1),
    ],
    ["exactly when the backoff ends: restart", { entry: backedOff(1, 10 * S) }, RESTART],
    ["after the backoff: restart", { entry: backedOff(6, 301 * S) }, RESTART],
    [
      "a consecutive count without lastRestartAt waits for nothing",
      { entry: entry({ consecutiveRestarts: 3 }) },
      RESTART,
    ],
    [
      "the backoff counts from lastRestartAt, not from the history",
      {
        entry: entry({
          consecutiveRestarts: 1,
          lastRestartAt: iso(NOW - 2 * S),
          restarts: [restartAt(NOW - 60 * S)],
        }),
      },
      defer("backoff", NOW + 8 * S),
    ],
    [
      "custom backoff: initial 5 s, max 12 s",
      {
        entry: backedOff(3, 0),
        policy: policy({ backoff: { initialSeconds: 5, maxSeconds: 12 } }),
      },
      defer("backoff", NOW + 12 * S),
    ],
    [
      "the backoff applies to exits",
      { trigger: "exit", entry: backedOff(1, S) },
      defer("backoff", NOW + 9 * S),
    ],
    [
      "the backoff wins over dry-run",
      { entry: backedOff(1, S), policy: policy({ dryRun: true }) },
      defer("backoff", NOW + 9 * S),
    ],

    // --- dry-run and restart
    [
      "dry-run decides without restarting",
      { policy: policy({ dryRun: true }) },
      { kind: "dry-run" },
    ],
    [
      "dry-run for exits",
      { trigger: "exit", policy: policy({ dryRun: true }) },
      { kind: "dry-run" },
    ],
    ["everything clear: restart", {}, RESTART],
    ["everything clear for an exit: restart", { trigger: "exit" }, RESTART],
  ])("%s", (_name, patch, expected) => {
    expect(summary(evaluateHeal(input(patch)))).toEqual(expected);
  });

  it("explains each verdict in its message", () => {
    expect(evaluateHeal(input({ eventTime: NOW - 400 * S }))).toEqual({
      kind: "skip",
      code: "stale-event",
      message: "the trigger is 400s old; not acting on history",
    });
    expect(
      evaluateHeal(
        input({
          entry: entry({ quarantine: { since: "2026-11-27T11:59:00.000Z", reason: "flapping" } }),
        }),
      ),
    ).toEqual({
      kind: "skip",
      code: "quarantined",
      message: "quarantined since 2026-11-27T11:59:00.000Z: flapping",
    });
    expect(evaluateHeal(input({ policy: policy({ paused: true }) }))).toEqual({
      kind: "defer",
      code: "paused",
      message: "healing is paused fleet-wide",
      untilMs: NOW + PAUSE_RECHECK_MS,
    });
    expect(
      evaluateHeal(
        input({
          policy: policy({ maintenance: [window(-S, 60 * S, { reason: "kernel upgrade" })] }),
        }),
      ),
    ).toMatchObject({
      message: "maintenance window until 2026-11-27T12:01:00.000Z: kernel upgrade",
    });
    expect(
      evaluateHeal(input({ policy: policy({ maintenance: [window(-S, 60 * S)] }) })),
    ).toMatchObject({ message: "maintenance window until 2026-11-27T12:01:00.000Z" });
    expect(
      evaluateHeal(input({ startedAt: NOW - 30 * S, policy: policy({ startPeriodSeconds: 120 }) })),
    ).toMatchObject({ message: "started 30s ago; start period is 120s" });
    expect(
      evaluateHeal(input({ eventTime: NOW - 10 * S, policy: policy({ unhealthyForSeconds: 30 }) })),
    ).toMatchObject({ message: "unhealthy for 10s; acting after 30s" });
    expect(
      evaluateHeal(
        input({
          eventTime: NOW - 10 * S,
          entry: entry({ healthySince: "2026-11-27T11:59:55.000Z" }),
        }),
      ),
    ).toMatchObject({ message: "healthy again since 2026-11-27T11:59:55.000Z" });
    expect(evaluateHeal(input({ entry: backedOff(2, 4 * S) }))).toMatchObject({
      message: "restart 3 waits 16s (backoff)",
    });
    expect(
      evaluateHeal(
        input({
          policy: policy({ budget: { restarts: 1, windowSeconds: 600 } }),
          entry: entry({ restarts: [restartAt(NOW - S)] }),
        }),
      ),
    ).toEqual({
      kind: "quarantine",
      message:
        "1 restarts in 600s spend the budget of 1; quarantined until healthy for 600s or released by hand",
    });
    expect(evaluateHeal(input({ policy: policy({ dryRun: true }) }))).toEqual({
      kind: "dry-run",
      message: "container is unhealthy; would restart (dry-run)",
    });
    expect(evaluateHeal(input({ trigger: "exit", policy: policy({ dryRun: true }) }))).toEqual({
      kind: "dry-run",
      message: "container exited with an error; would restart (dry-run)",
    });
    expect(evaluateHeal(input())).toEqual({
      kind: "restart",
      message: "container is unhealthy; restarting it",
    });
    expect(evaluateHeal(input({ trigger: "exit" }))).toEqual({
      kind: "restart",
      message: "container exited with an error; restarting it",
    });
  });

  it("keeps a hold's own end when the look-again is capped, and gives a pause none", () => {
    const long = evaluateHeal(input({ policy: policy({ maintenance: [window(-S, 86_400 * S)] }) }));
    expect(long).toMatchObject({ untilMs: NOW + MAX_DEFER_MS, endsMs: NOW + 86_400 * S });
    const short = evaluateHeal(input({ policy: policy({ maintenance: [window(-S, 60 * S)] }) }));
    expect(short).toMatchObject({ untilMs: NOW + 60 * S, endsMs: NOW + 60 * S });
    const paused = evaluateHeal(input({ policy: policy({ paused: true }) }));
    expect(paused.kind === "defer" && paused.endsMs).toBeUndefined();
  });

  it("never defers longer than MAX_DEFER_MS", () => {
    const verdicts = [
      evaluateHeal(input({ policy: policy({ maintenance: [window(-S, 86_400 * S)] }) })),
      evaluateHeal(input({ startedAt: NOW, policy: policy({ startPeriodSeconds: 86_400 }) })),
      evaluateHeal(input({ eventTime: NOW, policy: policy({ unhealthyForSeconds: 86_400 }) })),
      evaluateHeal(
        input({
          entry: backedOff(20, 0),
          policy: policy({ backoff: { initialSeconds: 3_600, maxSeconds: 86_400 } }),
        }),
      ),
    ];
    for (const v of verdicts) {
      expect(v.kind).toBe("defer");
      if (v.kind === "defer") expect(v.untilMs).toBe(NOW + MAX_DEFER_MS);
    }
  });
});

describe("backoffUntil", () => {
  it("is undefined before the first restart", () => {
    expect(backoffUntil(undefined, DEFAULT_HEAL_POLICY)).toBeUndefined();
    expect(backoffUntil(entry(), DEFAULT_HEAL_POLICY)).toBeUndefined();
    expect(backoffUntil(entry({ consecutiveRestarts: 2 }), DEFAULT_HEAL_POLICY)).toBeUndefined();
  });

  it("doubles from initial up to max, from lastRestartAt", () => {
    const delays = [1, 2, 3, 4, 5, 6, 7, 30].map(
      (n) => (backoffUntil(backedOff(n, 0), DEFAULT_HEAL_POLICY) ?? 0) - NOW,
    );
    expect(delays).toEqual([10, 20, 40, 80, 160, 300, 300, 300].map((s) => s * S));
  });

  it("an initial of 0 never waits", () => {
    const p = policy({ backoff: { initialSeconds: 0 } });
    expect(backoffUntil(backedOff(5, 0), p)).toBe(NOW);
  });
});

describe("restartsWithin", () => {
  const history = entry({
    restarts: [
      restartAt(NOW - 10 * S, "pending"),
      restartAt(NOW - 20 * S, "restarted"),
      restartAt(NOW - 30 * S, "failed"),
      restartAt(NOW - 40 * S, "refused"),
      restartAt(NOW - 50 * S, "skipped"),
      restartAt(NOW - 60 * S, "restarted"),
    ],
  });

  it("counts pending, restarted and failed restarts since the given time", () => {
    expect(restartsWithin(history, NOW - 60 * S)).toBe(4);
    expect(restartsWithin(history, NOW - 59 * S)).toBe(3);
    expect(restartsWithin(history, NOW - 10 * S)).toBe(1);
    expect(restartsWithin(history, NOW)).toBe(0);
  });

  it("is 0 without a ledger entry", () => {
    expect(restartsWithin(undefined, 0)).toBe(0);
  });
});

describe("observeTrouble", () => {
  const P = DEFAULT_HEAL_POLICY; // reset after 600 s

  it("records the first trouble and keeps the rest of the entry", () => {
    const before = entry({
      consecutiveRestarts: 2,
      lastRestartAt: iso(NOW - 100 * S),
      restarts: [restartAt(NOW - 100 * S)],
      quarantine: { since: iso(NOW - 50 * S), reason: "x" },
    });
    const after = observeTrouble(before, NOW, P);
    expect(after).toEqual({ ...before, lastTroubleAt: iso(NOW) });
    expect(LedgerEntry.parse(after)).toEqual(after);
    expect(before.lastTroubleAt).toBeUndefined(); // not mutated
  });

  it("ends a healthy stretch shorter than resetAfter, keeping the backoff", () => {
    const before = entry({
      consecutiveRestarts: 3,
      lastTroubleAt: iso(NOW - 700 * S),
      healthySince: iso(NOW - 599 * S),
    });
    const after = observeTrouble(before, NOW, P);
    expect(after).toEqual({
      v: 1,
      host: HOST,
      containerId: CID,
      restarts: [],
      consecutiveRestarts: 3,
      lastTroubleAt: iso(NOW),
    });
    expect("healthySince" in after).toBe(false);
  });

  it("a stretch of exactly resetAfter starts the backoff over", () => {
    const before = entry({ consecutiveRestarts: 3, healthySince: iso(NOW - 600 * S) });
    const after = observeTrouble(before, NOW, P);
    expect(after.consecutiveRestarts).toBe(0);
    expect(after.healthySince).toBeUndefined();
    expect(after.lastTroubleAt).toBe(iso(NOW));
  });

  it("a longer stretch starts the backoff over; resetAfter comes from the policy", () => {
    const before = entry({ consecutiveRestarts: 3, healthySince: iso(NOW - 61 * S) });
    expect(observeTrouble(before, NOW, P).consecutiveRestarts).toBe(3);
    const short = policy({ backoff: { resetAfterSeconds: 60 } });
    expect(observeTrouble(before, NOW, short).consecutiveRestarts).toBe(0);
  });

  it("without a healthy stretch the consecutive count stays", () => {
    const before = entry({ consecutiveRestarts: 4, lastTroubleAt: iso(NOW - 3_600 * S) });
    expect(observeTrouble(before, NOW, P)).toEqual({ ...before, lastTroubleAt: iso(NOW) });
  });

  it("a duplicate (same time as the last trouble) changes nothing: same object", () => {
    const before = entry({ consecutiveRestarts: 1, lastTroubleAt: iso(NOW) });
    expect(observeTrouble(before, NOW, P)).toBe(before);
  });

  it("a late event (older than the last trouble) changes nothing: same object", () => {
    const before = entry({
      consecutiveRestarts: 1,
      lastTroubleAt: iso(NOW),
      healthySince: iso(NOW + 700 * S),
    });
    expect(observeTrouble(before, NOW - 1, P)).toBe(before);
  });

  it("an event older than the running healthy stretch changes nothing: same object", () => {
    const before = entry({
      consecutiveRestarts: 2,
      lastTroubleAt: iso(NOW - 100 * S),
      healthySince: iso(NOW - 10 * S),
    });
    expect(observeTrouble(before, NOW - 20 * S, P)).toBe(before);
  });
});

describe("observeHealthy", () => {
  it("starts a healthy stretch", () => {
    const before = entry({ lastTroubleAt: iso(NOW - 10 * S), consecutiveRestarts: 2 });
    const after = observeHealthy(before, NOW);
    expect(after).toEqual({ ...before, healthySince: iso(NOW) });
    expect(LedgerEntry.parse(after)).toEqual(after);
    expect(before.healthySince).toBeUndefined();
  });

  it("starts a stretch without any trouble seen", () => {
    expect(observeHealthy(entry(), NOW).healthySince).toBe(iso(NOW));
  });

  it("starts it once: a later healthy event keeps the start (same object)", () => {
    const before = entry({ healthySince: iso(NOW - 60 * S) });
    expect(observeHealthy(before, NOW)).toBe(before);
  });

  it("not when the event is older than the last trouble, or at the same time", () => {
    const before = entry({ lastTroubleAt: iso(NOW) });
    expect(observeHealthy(before, NOW - 1)).toBe(before);
    expect(observeHealthy(before, NOW)).toBe(before);
    expect(observeHealthy(before, NOW + 1).healthySince).toBe(iso(NOW + 1));
  });
});

describe("evaluateRelease", () => {
  const P = DEFAULT_HEAL_POLICY; // release after 600 s healthy
  const quarantine = { since: iso(NOW - 3_600 * S), reason: "budget spent" };

  it("is undefined when not quarantined", () => {
    expect(evaluateRelease(entry({ healthySince: iso(NOW - 3_600 * S) }), P, NOW)).toBeUndefined();
  });

  it("is undefined while quarantined and not healthy", () => {
    expect(evaluateRelease(entry({ quarantine }), P, NOW)).toBeUndefined();
  });

  it("releases at healthySince + releaseAfter", () => {
    const e = entry({ quarantine, healthySince: iso(NOW - 600 * S) });
    expect(evaluateRelease(e, P, NOW)).toEqual({
      kind: "release",
      message: `healthy since ${iso(NOW - 600 * S)} (600s); released from quarantine`,
    });
    expect(evaluateRelease(e, P, NOW + 3_600 * S)?.kind).toBe("release");
  });

  it("waits until then otherwise", () => {
    const e = entry({ quarantine, healthySince: iso(NOW - 599 * S) });
    expect(evaluateRelease(e, P, NOW)).toEqual({ kind: "wait", untilMs: NOW + S });
  });

  it("waits at most MAX_DEFER_MS at a time", () => {
    const e = entry({ quarantine, healthySince: iso(NOW) });
    expect(evaluateRelease(e, P, NOW)).toEqual({ kind: "wait", untilMs: NOW + MAX_DEFER_MS });
  });

  it("uses the policy's releaseAfterHealthySeconds", () => {
    const e = entry({ quarantine, healthySince: iso(NOW - 30 * S) });
    const p = policy({ budget: { releaseAfterHealthySeconds: 30 } });
    expect(evaluateRelease(e, p, NOW)?.kind).toBe("release");
  });
});
