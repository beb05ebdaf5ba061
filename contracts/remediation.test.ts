import { describe, expect, it } from "vitest";
import { RemediationRecord } from "./remediation.js";

const record = {
  type: "fleetheal.act.v1.remediation",
  v: 1,
  id: "heal:host-a:4f1c2b3a9d8e:1795808494172958659:unhealthy:decided",
  remediationId: "heal:host-a:4f1c2b3a9d8e:1795808494172958659:unhealthy",
  host: "host-a",
  containerId: "4f1c2b3a9d8e",
  containerName: "web",
  phase: "decided",
  code: "unhealthy",
  message: "container is unhealthy; restarting it",
  incident: "2026-11-27T19:41:29.98123456Z",
  triggerEventId: "host-a:4f1c2b3a9d8e:1795808494172958659:unhealthy",
  commandId: "heal-0123456789abcdef0123456789abcdef",
  actor: "handler:heal",
  at: "2026-11-27T19:41:34.180Z",
  dryRun: false,
};

describe("RemediationRecord", () => {
  it("accepts a realistic record", () => {
    expect(RemediationRecord.parse(record)).toEqual(record);
  });

  it("defaults dryRun to false", () => {
    const { dryRun: _d, ...withoutDryRun } = record;
    expect(RemediationRecord.parse(withoutDryRun).dryRun).toBe(false);
  });

  it.each([
    ["unknown phase", { phase: "thinking" }],
    ["empty id", { id: "" }],
    ["empty actor", { actor: "" }],
    ["code too long", { code: "c".repeat(65) }],
    ["at without zone", { at: "2026-11-27T19:41:34" }],
    ["dotted host", { host: "a.b" }],
  ])("rejects %s", (_why, patch) => {
    expect(RemediationRecord.safeParse({ ...record, ...patch }).success).toBe(false);
  });
});
