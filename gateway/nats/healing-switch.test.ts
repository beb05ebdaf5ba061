import { describe, expect, it } from "vitest";
import { DEFAULT_HEAL_POLICY, type HealPolicy, RemediationRecord } from "../../contracts/index.js";
import { containerSnapshot } from "../../test/support/fixtures.js";
import { ApiError } from "../http/api-errors.js";
import { switchedPolicy, switchRecord, switchState } from "./healing-switch.js";
import type { ManualHealingSwitch } from "./ports.js";

const AT = new Date("2026-11-27T20:00:00.000Z");
const actor = { name: "gateway:ops", address: "192.0.2.7" };
const off: ManualHealingSwitch = {
  host: "web-1",
  name: "api",
  container: containerSnapshot({ name: "api" }),
  enabled: false,
  reason: "noisy",
  actor,
};
const on: ManualHealingSwitch = { ...off, enabled: true };

describe("switchedPolicy", () => {
  it("adds the name once, keeps the rest of the policy, and removes it again", () => {
    const policy: HealPolicy = { ...DEFAULT_HEAL_POLICY, paused: true };
    const switched = switchedPolicy(policy, off, AT);
    expect(switched).toEqual({
      ...policy,
      disabled: [
        { host: "web-1", name: "api", since: AT.toISOString(), by: "gateway:ops", reason: "noisy" },
      ],
    });
    if (!switched) throw new Error("not switched");
    expect(switchedPolicy(switched, { ...off, reason: "again" }, AT)).toBeUndefined();
    // The same name on another host is another switch.
    expect(switchedPolicy(switched, { ...off, host: "web-2" }, AT)?.disabled).toHaveLength(2);
    expect(switchedPolicy(switched, on, AT)).toEqual({ ...policy, disabled: [] });
    expect(switchedPolicy(policy, on, AT)).toBeUndefined();
  });

  it("refuses a full list (409) and a name the policy cannot hold (400)", () => {
    const full: HealPolicy = {
      ...DEFAULT_HEAL_POLICY,
      disabled: Array.from({ length: 10_000 }, (_, i) => ({
        host: "h",
        name: `c${i}`,
        since: AT.toISOString(),
        by: "cli",
      })),
    };
    expect(() => switchedPolicy(full, off, AT)).toThrow(
      expect.objectContaining({ code: "FLEETHEAL_ERR_CONFLICT" }),
    );
    expect(() => switchedPolicy(DEFAULT_HEAL_POLICY, { ...off, name: "-odd" }, AT)).toThrow(
      ApiError,
    );
  });
});

describe("switchState and switchRecord", () => {
  it("answer the state, and 404 for switching on a name that names nothing", () => {
    const doc = { policy: DEFAULT_HEAL_POLICY, revision: 3 };
    expect(switchState(on, doc, false)).toMatchObject({ enabled: true, changed: false });
    const { container: _, ...gone } = on;
    expect(() => switchState(gone, doc, false)).toThrow(
      expect.objectContaining({ code: "FLEETHEAL_ERR_NOT_FOUND" }),
    );
  });

  it("records on the current container, or a stand-in id stable for the name", () => {
    const record = RemediationRecord.parse(switchRecord(off, 4, AT));
    expect(record).toMatchObject({
      id: expect.stringMatching(/:4:disabled$/),
      phase: "disabled",
      containerId: off.container?.id,
      containerName: "api",
      actor: "gateway:ops",
      code: "by-hand",
    });
    expect(record.message).toContain("192.0.2.7");
    const { container: _, ...gone } = on;
    const a = RemediationRecord.parse(switchRecord(gone, 5, AT));
    const b = RemediationRecord.parse(switchRecord(gone, 9, AT));
    expect(a.containerId).toBe(b.containerId);
    expect(a.id).not.toBe(b.id);
    expect(
      RemediationRecord.parse(switchRecord({ ...gone, host: "web-2" }, 5, AT)).containerId,
    ).not.toBe(a.containerId);
  });
});
