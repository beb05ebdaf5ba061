// The fixture builders give valid contract messages by default, keep what a test sets, derive
// the ids from it, and refuse a message the contract refuses.

import { describe, expect, it } from "vitest";
import {
  ContainerEvent,
  HostSnapshot,
  LedgerEntry,
  RemediationRecord,
  RestartCommand,
  StopCommand,
} from "../../contracts/index.js";
import {
  containerEvent,
  FIXTURE_CONTAINER_ID,
  FIXTURE_HOST,
  fixtureContainerId,
  hostSnapshot,
  inspectRequest,
  isoOfNano,
  ledgerEntry,
  nowNano,
  remediationRecord,
  restartCommand,
  restartDraft,
  snapshotRequest,
  stopCommand,
  stopDraft,
} from "./fixtures.js";

describe("contract fixtures", () => {
  it("are valid by default", () => {
    expect(ContainerEvent.safeParse(containerEvent()).success).toBe(true);
    expect(HostSnapshot.safeParse(hostSnapshot({ containers: [{}] })).success).toBe(true);
    expect(RemediationRecord.safeParse(remediationRecord()).success).toBe(true);
    expect(LedgerEntry.safeParse(ledgerEntry()).success).toBe(true);
    expect(RestartCommand.safeParse(restartCommand()).success).toBe(true);
    expect(StopCommand.safeParse(stopCommand()).success).toBe(true);
    expect(snapshotRequest().host).toBe(FIXTURE_HOST);
    expect(inspectRequest().containerId).toBe(FIXTURE_CONTAINER_ID);
  });

  it("derive an event's id and time from what the test sets", () => {
    const timeNano = "1795808494172958659";
    const cid = fixtureContainerId(7);
    const e = containerEvent({ host: "h1", action: "die", timeNano, container: { id: cid } });
    expect(e.id).toBe(`h1:${cid}:${timeNano}:die`);
    expect(e.time).toBe(isoOfNano(timeNano));
    expect(e.container).toMatchObject({ id: cid, name: "web", optedIn: true });
    expect(remediationRecord({ phase: "restarted" }).id).toMatch(/:restarted$/);
  });

  it("give each event and command an id of its own", () => {
    expect(nowNano()).not.toBe(nowNano());
    expect(containerEvent().id).not.toBe(containerEvent().id);
    expect(restartDraft().commandId).not.toBe(stopDraft().commandId);
    expect(fixtureContainerId(1)).not.toBe(fixtureContainerId(2));
  });

  it("refuse what the contract refuses", () => {
    expect(() => containerEvent({ host: "not a token" })).toThrow();
    expect(() => hostSnapshot({ containers: [{ id: "nothex" }] })).toThrow();
    expect(() => restartDraft({ commandId: "short" })).toThrow();
  });
});
