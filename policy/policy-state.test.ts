import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DEFAULT_HEAL_POLICY, decode, HealPolicy } from "../contracts/index.js";
import {
  INITIAL_POLICY_STATE,
  initialPolicyState,
  MAX_POLICY_ERROR,
  nextPolicyState,
  PAUSED_FALLBACK_POLICY,
  type PolicyEntry,
  type PolicyState,
} from "./policy-state.js";

/** What the issue saw stored under the key: a JetStream ack echoed into it. */
const ECHOED_ACK = { stream: "FLEETHEAL_EVENTS", seq: 1 };

function put(revision: number, value: unknown): PolicyEntry {
  return {
    operation: "PUT",
    revision,
    value: typeof value === "string" ? value : JSON.stringify(value),
  };
}

function del(revision: number, operation: "DEL" | "PURGE" = "DEL"): PolicyEntry {
  return { operation, revision, value: "" };
}

/** Feeds entries after a start on `first`, returning every state and log line. */
function run(first: PolicyEntry | undefined, ...later: PolicyEntry[]) {
  const start = initialPolicyState(first);
  const states = [start.state];
  const logs = start.log ? [start.log] : [];
  for (const entry of later) {
    const t = nextPolicyState(states.at(-1) as PolicyState, entry);
    states.push(t.state);
    if (t.log) logs.push(t.log);
  }
  return { states, logs, last: states.at(-1) as PolicyState };
}

describe("HealPolicy decoding", () => {
  it.each([
    ["the JetStream ack the issue found stored", ECHOED_ACK, "(root)"],
    ["an unknown top-level field", { paused: true, pause: true }, "(root)"],
    ["an unknown field in a group", { backoff: { maxSecond: 5 } }, "backoff"],
    [
      "an unknown field two levels down",
      { storm: { imageBreaker: { failure: 3 } } },
      "storm.imageBreaker",
    ],
    [
      "an unknown field in a maintenance window",
      { maintenance: [{ start: "2026-12-01T02:00:00Z", end: "2026-12-01T03:00:00Z", host: "a" }] },
      "maintenance.0",
    ],
  ])("rejects %s", (_why, doc, path) => {
    const decoded = decode(HealPolicy, JSON.stringify(doc));
    expect(decoded.ok).toBe(false);
    if (decoded.ok) return;
    expect(decoded.error.issues.map((i) => i.path)).toContain(path);
    expect(decoded.error.message).toMatch(/Unrecognized key/);
  });

  it.each([
    ["a wrong type", { paused: "yes" }],
    ["a value out of range", { budget: { restarts: 0 } }],
    ["an array for an object", []],
    ["null", null],
    [
      "a window that ends before it starts",
      { maintenance: [{ start: "2026-11-28T00:00:00Z", end: "2026-11-27T00:00:00Z" }] },
    ],
  ])("rejects %s", (_why, doc) => {
    expect(decode(HealPolicy, JSON.stringify(doc)).ok).toBe(false);
  });

  it("accepts a partial document, filling in the defaults", () => {
    const decoded = decode(HealPolicy, '{"paused":true,"backoff":{"maxSeconds":120}}');
    expect(decoded).toEqual({
      ok: true,
      value: {
        ...DEFAULT_HEAL_POLICY,
        paused: true,
        backoff: { ...DEFAULT_HEAL_POLICY.backoff, maxSeconds: 120 },
      },
    });
  });

  it("accepts every complete policy it produces", () => {
    expect(HealPolicy.parse(JSON.parse(JSON.stringify(DEFAULT_HEAL_POLICY)))).toEqual(
      DEFAULT_HEAL_POLICY,
    );
  });
});

describe("the policy state at start", () => {
  it("no key: the defaults, with nothing to log", () => {
    expect(initialPolicyState(undefined)).toEqual({ state: INITIAL_POLICY_STATE });
    expect(INITIAL_POLICY_STATE).toMatchObject({ origin: "defaults", revision: 0 });
  });

  it.each(["DEL", "PURGE"] as const)("a %s marker: the defaults", (op) => {
    const { last } = run(del(4, op));
    expect(last).toEqual({ policy: DEFAULT_HEAL_POLICY, origin: "defaults", revision: 0, seen: 4 });
  });

  it("a valid policy: in force, at its revision", () => {
    const { last, logs } = run(put(3, { dryRun: true }));
    expect(last).toEqual({
      policy: HealPolicy.parse({ dryRun: true }),
      origin: "stored",
      revision: 3,
      seen: 3,
    });
    expect(logs).toEqual([{ level: "info", msg: "fleet policy loaded", fields: { revision: 3 } }]);
  });

  it.each([
    ["unknown fields", ECHOED_ACK],
    ["an invalid value", { paused: "yes" }],
    ["not JSON", "{paused: yes"],
  ])("an invalid policy (%s): paused, never the defaults, and an error", (_why, value) => {
    const { last, logs } = run(put(7, value));
    expect(last.policy).toEqual({ ...DEFAULT_HEAL_POLICY, paused: true });
    expect(last.policy).toBe(PAUSED_FALLBACK_POLICY);
    expect(last).toMatchObject({ origin: "paused", revision: 0, seen: 7 });
    expect(last.invalid).toEqual({ revision: 7, error: expect.any(String) });
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatchObject({ level: "error", fields: { revision: 7 } });
    expect(logs[0]?.msg).toMatch(/invalid.*PAUSED/);
  });
});

describe("the policy state as the key changes", () => {
  it("bounds the error it keeps, whatever the stored document's keys", () => {
    const { last } = run(put(1, { ["k".repeat(100_000)]: 1 }));
    expect(last.invalid?.error.length).toBe(MAX_POLICY_ERROR);
    expect(last.invalid?.error.endsWith("…")).toBe(true);
  });

  it("a valid policy replaces the one in force", () => {
    const { last } = run(put(1, { dryRun: true }), put(2, { restartOnExit: true }));
    expect(last).toEqual({
      policy: HealPolicy.parse({ restartOnExit: true }),
      origin: "stored",
      revision: 2,
      seen: 2,
    });
  });

  it("an invalid policy keeps the last good one in force, and says which", () => {
    const { states, last, logs } = run(put(1, { paused: true }), put(2, ECHOED_ACK));
    expect(last.policy).toBe(states[0]?.policy);
    expect(last).toMatchObject({ origin: "stored", revision: 1, seen: 2 });
    expect(last.invalid?.revision).toBe(2);
    expect(last.invalid?.error).toMatch(/stream/);
    expect(logs.at(-1)).toMatchObject({
      level: "error",
      msg: "stored fleet policy is invalid; keeping the previous one",
      fields: { revision: 2, inForce: "stored", inForceRevision: 1 },
    });
  });

  it("an invalid policy after the defaults keeps the defaults (a fresh fleet stays as it was)", () => {
    const { last } = run(undefined, put(1, ECHOED_ACK));
    expect(last).toMatchObject({ policy: DEFAULT_HEAL_POLICY, origin: "defaults", revision: 0 });
    expect(last.invalid?.revision).toBe(1);
  });

  it("a pause for lack of a valid policy lasts through more invalid ones", () => {
    const { last, logs } = run(put(1, ECHOED_ACK), put(2, { paused: false, extra: 1 }));
    expect(last).toMatchObject({ policy: PAUSED_FALLBACK_POLICY, origin: "paused", seen: 2 });
    expect(last.invalid?.revision).toBe(2);
    expect(logs.map((l) => l.level)).toEqual(["error", "error"]);
  });

  it("a valid policy ends the invalid state and the pause", () => {
    const { last, logs } = run(put(1, ECHOED_ACK), put(2, { paused: false }));
    expect(last).toEqual({ policy: DEFAULT_HEAL_POLICY, origin: "stored", revision: 2, seen: 2 });
    expect(logs.at(-1)).toEqual({
      level: "info",
      msg: "fleet policy loaded",
      fields: { revision: 2, replacesInvalid: 1 },
    });
  });

  it.each(["DEL", "PURGE"] as const)("a %s brings back the defaults, also from a pause", (op) => {
    const { last } = run(put(1, ECHOED_ACK), del(2, op));
    expect(last).toEqual({ policy: DEFAULT_HEAL_POLICY, origin: "defaults", revision: 0, seen: 2 });
  });

  it("a replayed revision changes nothing and logs nothing: each bad revision is logged once", () => {
    const start = initialPolicyState(put(5, ECHOED_ACK));
    for (const revision of [5, 4, 1]) {
      const again = nextPolicyState(start.state, put(revision, { dryRun: true }));
      expect(again.state).toBe(start.state);
      expect(again.log).toBeUndefined();
    }
  });

  it("every change is a new object, and no change keeps the same one", () => {
    const a = initialPolicyState(put(1, {})).state;
    const b = nextPolicyState(a, put(2, ECHOED_ACK)).state;
    expect(b).not.toBe(a);
    expect(nextPolicyState(b, put(2, {})).state).toBe(b);
  });
});

/** A random entry of the key: valid, invalid, or a delete. */
const entry = fc.oneof(
  fc.constant({ kind: "valid" as const, doc: { paused: true } }),
  fc.constant({ kind: "valid" as const, doc: { dryRun: true, maintenance: [] } }),
  fc.constant({ kind: "invalid" as const, doc: ECHOED_ACK }),
  fc.constant({ kind: "invalid" as const, doc: { budget: { restarts: 0 } } }),
  fc.constant({ kind: "delete" as const, doc: undefined }),
);

describe("the policy state machine, on random histories", () => {
  it("never holds the defaults after an invalid start until a valid policy or a delete", () => {
    fc.assert(
      fc.property(fc.array(entry, { minLength: 1, maxLength: 12 }), (history) => {
        const entries = history.map((e, i) =>
          e.kind === "delete" ? del(i + 1) : put(i + 1, e.doc),
        );
        const { states } = run(...(entries as [PolicyEntry, ...PolicyEntry[]]));
        let lastValid: HealPolicy | undefined;
        let cleared = history[0]?.kind !== "invalid";
        history.forEach((e, i) => {
          const s = states[i] as PolicyState;
          if (e.kind === "valid") lastValid = HealPolicy.parse(e.doc);
          if (e.kind !== "invalid") cleared = true;
          // The policy in force is the last valid one, the defaults after a delete, or the
          // pause while nothing valid has been seen since an invalid start.
          if (!cleared) expect(s.policy).toBe(PAUSED_FALLBACK_POLICY);
          else if (e.kind === "delete") expect(s.policy).toBe(DEFAULT_HEAL_POLICY);
          else if (e.kind === "valid") expect(s.policy).toEqual(lastValid);
          else expect(s.policy).toBe((states[i - 1] as PolicyState).policy);
          expect(s.invalid !== undefined).toBe(e.kind === "invalid");
          expect(s.seen).toBe(i + 1);
        });
      }),
      { seed: 13, numRuns: 300 },
    );
  });
});
