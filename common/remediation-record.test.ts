import { describe, expect, it } from "vitest";
import { RemediationRecord } from "../contracts/index.js";
import { remediationRecord } from "./remediation-record.js";

const facts = {
  id: "heal:e1:restarted:restarted",
  remediationId: "heal:e1",
  host: "h1",
  containerId: "c".repeat(64),
  containerName: "web",
  phase: "restarted" as const,
  code: "restarted",
  message: "restarted",
  actor: "handler:heal",
  at: new Date("2026-01-02T03:04:05.000Z"),
};

describe("remediationRecord", () => {
  it("builds a record the contract accepts, with optional fields only when given", () => {
    const record = remediationRecord(facts);
    expect(RemediationRecord.parse(record)).toEqual(record);
    expect(record).toMatchObject({ at: "2026-01-02T03:04:05.000Z", dryRun: false });
    expect(record).not.toHaveProperty("incident");
    expect(record).not.toHaveProperty("commandId");
    expect(remediationRecord({ ...facts, commandId: "cmd", incident: "i" })).toMatchObject({
      commandId: "cmd",
      incident: "i",
    });
  });

  it("cuts text longer than the contract allows to its bound, and leaves ids alone", () => {
    const record = remediationRecord({
      ...facts,
      code: "x".repeat(100),
      message: "m".repeat(5_000),
      containerName: "n".repeat(300),
      actor: `gateway:${"a".repeat(200)}`,
    });
    expect(record.code).toHaveLength(64);
    expect(record.message).toHaveLength(2_048);
    expect(record.containerName).toHaveLength(256);
    expect(record.actor).toHaveLength(128);
    expect(record.id).toBe(facts.id);
    expect(RemediationRecord.safeParse(record).success).toBe(true);
  });
});
