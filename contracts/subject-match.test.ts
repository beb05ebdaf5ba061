import { describe, expect, it } from "vitest";
import type { ContainerEvent } from "./container-event.js";
import type { RemediationRecord } from "./remediation.js";
import { eventSubjectMismatch, remediationSubjectMismatch } from "./subject-match.js";

const CID = "ab".repeat(32);
const event: ContainerEvent = {
  type: "fleetheal.evt.v1.container",
  v: 1,
  id: `a:${CID}:1:unhealthy`,
  host: "host-a",
  action: "unhealthy",
  timeNano: "1",
  time: "2026-11-27T20:00:00.000Z",
  source: "docker",
  container: { id: CID, name: "web", image: "busybox", labels: {}, optedIn: true },
};
const record: RemediationRecord = {
  type: "fleetheal.act.v1.remediation",
  v: 1,
  id: "r1",
  remediationId: "r1",
  host: "host-a",
  containerId: CID,
  containerName: "web",
  phase: "restarted",
  code: "unhealthy",
  message: "m",
  actor: "handler",
  at: "2026-11-27T20:00:00.000Z",
  dryRun: false,
};

describe("subject and payload must agree", () => {
  it("accepts an event on its own subject", () => {
    expect(eventSubjectMismatch(`fleetheal.v1.evt.host-a.${CID}.unhealthy`, event)).toBeUndefined();
  });

  it.each([
    [`fleetheal.v1.evt.host-b.${CID}.unhealthy`, "another host's subject"],
    [`fleetheal.v1.evt.host-a.${"cd".repeat(32)}.unhealthy`, "another container"],
    [`fleetheal.v1.evt.host-a.${CID}.healthy`, "another action"],
    [`fleetheal.v1.evt.host-a.${CID}.unhealthy.extra`, "extra tokens"],
    [`fleetheal.v1.act.host-a.${CID}.restarted`, "a remediation subject"],
  ])("rejects an event on %s (%s)", (subject) => {
    expect(eventSubjectMismatch(subject, event)).toMatch(subject);
  });

  it("accepts a record on its own subject and rejects it elsewhere", () => {
    expect(
      remediationSubjectMismatch(`fleetheal.v1.act.host-a.${CID}.restarted`, record),
    ).toBeUndefined();
    expect(remediationSubjectMismatch(`fleetheal.v1.act.host-b.${CID}.restarted`, record)).toMatch(
      /does not match the record \(host host-a/,
    );
    expect(remediationSubjectMismatch(`fleetheal.v1.act.host-a.${CID}.failed`, record)).toMatch(
      /phase restarted/,
    );
  });
});
