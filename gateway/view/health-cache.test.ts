import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  INITIAL_POLICY_STATE,
  nextPolicyState,
  type PolicyState,
} from "../../policy/policy-state.js";
import { ledgerEntry } from "../../test/support/fixtures.js";
import { hostSnapshot } from "../../test/support/gateway-fakes.js";
import { FleetView } from "./fleet-view.js";
import { HealthCache } from "./health-cache.js";
import { buildHealthReport, policyHealth } from "./health-report.js";

const POLICY = { staleAfterHeartbeats: 3, downAfterHeartbeats: 12 };
const HEALTH = ["healthy", "unhealthy", "starting", "none"] as const;
const T0 = Date.parse("2026-11-27T20:00:00.000Z");

/** One thing that can happen to the view, or to the clock. */
const step = fc.oneof(
  fc.record({
    kind: fc.constant("snapshot" as const),
    host: fc.constantFrom("a", "b", "c", "d"),
    health: fc.array(fc.constantFrom(...HEALTH), { maxLength: 6 }),
    dockerDown: fc.boolean(),
  }),
  fc.record({ kind: fc.constant("remove" as const), host: fc.constantFrom("a", "b", "c", "d") }),
  fc.record({
    kind: fc.constant("quarantine" as const),
    host: fc.constantFrom("a", "b", "c", "d"),
    index: fc.nat(5),
    on: fc.boolean(),
    notHealing: fc.constantFrom(undefined, "held" as const, "stuck" as const),
  }),
  fc.record({ kind: fc.constant("advance" as const), ms: fc.integer({ min: 0, max: 8_000 }) }),
  fc.record({
    kind: fc.constant("policy" as const),
    value: fc.constantFrom('{"dryRun":true}', '{"stream":"FLEETHEAL_EVENTS","seq":1}', "[]"),
  }),
);

describe("HealthCache", () => {
  it("always serves exactly the report buildHealthReport would build now", () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 40 }), (steps) => {
        const view = new FleetView();
        let policy: PolicyState = INITIAL_POLICY_STATE;
        const cache = new HealthCache(view, POLICY, () => policy);
        let now = T0;
        for (const s of steps) {
          if (s.kind === "snapshot") {
            view.apply(
              hostSnapshot(s.host, [...s.health], {
                docker: s.dockerDown ? { status: "down", error: "gone" } : { status: "up" },
              }),
              now,
            );
          } else if (s.kind === "remove") view.remove(s.host);
          else if (s.kind === "quarantine") {
            const id = view.get(s.host)?.snapshot.containers[s.index]?.id;
            if (id) {
              view.applyLedger(
                s.host,
                id,
                s.on
                  ? ledgerEntry({
                      host: s.host,
                      containerId: id,
                      quarantine: { since: new Date(now).toISOString(), reason: "budget" },
                      ...(s.notHealing
                        ? {
                            notHealing: {
                              reason: s.notHealing,
                              code: s.notHealing === "held" ? "quarantined" : "docker-error",
                              message: "not now",
                              since: new Date(now).toISOString(),
                            },
                          }
                        : {}),
                    })
                  : undefined,
              );
            }
          } else if (s.kind === "policy") {
            policy = nextPolicyState(policy, {
              operation: "PUT",
              revision: policy.seen + 1,
              value: s.value,
            }).state;
          } else now += s.ms;
          const served = cache.get(now);
          const expected = JSON.stringify(
            buildHealthReport(
              view.list(),
              now,
              POLICY,
              (r) => view.quarantinedOn(r),
              policyHealth(policy),
              (r) => view.notHealingOn(r),
            ),
          );
          expect(served.json).toBe(expected);
          expect(served.body.toString("utf8")).toBe(expected);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("serves the same object while nothing changes, and rebuilds when a status comes due", () => {
    const view = new FleetView();
    view.apply(hostSnapshot("a", ["healthy"]), T0);
    const cache = new HealthCache(view, POLICY);
    const first = cache.get(T0);
    expect(cache.get(T0 + 3_000)).toBe(first);
    const stale = cache.get(T0 + 3_001);
    expect(stale).not.toBe(first);
    expect(stale.totals.hosts.stale).toBe(1);
  });

  it("rebuilds when the policy state changes, and only then", () => {
    const view = new FleetView();
    view.apply(hostSnapshot("a", ["healthy"]), T0);
    let policy: PolicyState = INITIAL_POLICY_STATE;
    const cache = new HealthCache(view, POLICY, () => policy);
    const first = cache.get(T0);
    expect(first.status).toBe("healthy");
    // A replayed revision is the same state object: nothing to rebuild.
    policy = nextPolicyState(policy, { operation: "PUT", revision: 0, value: "{}" }).state;
    expect(cache.get(T0)).toBe(first);
    policy = nextPolicyState(policy, { operation: "PUT", revision: 1, value: '{"x":1}' }).state;
    const invalid = cache.get(T0);
    expect(invalid.status).toBe("degraded");
    expect(invalid.policy).toMatchObject({ status: "invalid", invalid: { revision: 1 } });
    expect(cache.get(T0)).toBe(invalid);
  });
});
