import { describe, expect, it } from "vitest";
import { ContainerAction, HEALTH_ACTIONS, LIFECYCLE_ACTIONS } from "./container-event.js";
import { RemediationPhase } from "./remediation.js";
import {
  COMMAND_VERBS,
  commandSubject,
  eventSubject,
  InvalidSubjectTokenError,
  parseCommandSubject,
  parseEventSubject,
  parseRemediationSubject,
  parseSnapshotSubject,
  remediationSubject,
  SUBJECT_ROOT,
  SUBJECTS,
  snapshotSubject,
} from "./subjects.js";

const CID = "4f1c2b3a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a";

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error("expected the call to throw");
}

describe("subject builders", () => {
  it("build the documented v1 subjects", () => {
    expect(SUBJECT_ROOT).toBe("fleetheal.v1");
    expect(eventSubject("host-a", CID, "unhealthy")).toBe(
      `fleetheal.v1.evt.host-a.${CID}.unhealthy`,
    );
    expect(snapshotSubject("host-a")).toBe("fleetheal.v1.host.host-a.snapshot");
    expect(commandSubject("host-a", "restart")).toBe("fleetheal.v1.cmd.host-a.restart");
    expect(remediationSubject("host-a", CID, "restarted")).toBe(
      `fleetheal.v1.act.host-a.${CID}.restarted`,
    );
  });

  it("wildcards for subscribers", () => {
    expect(SUBJECTS.all).toBe("fleetheal.v1.>");
    expect(SUBJECTS.events).toBe("fleetheal.v1.evt.>");
    expect(SUBJECTS.remediations).toBe("fleetheal.v1.act.>");
    expect(SUBJECTS.snapshots).toBe("fleetheal.v1.host.*.snapshot");
    expect(SUBJECTS.eventsWithAction("start")).toBe("fleetheal.v1.evt.*.*.start");
    expect(SUBJECTS.remediationsWithPhase("restarted")).toBe("fleetheal.v1.act.*.*.restarted");
    expect(SUBJECTS.hostEvents("h1")).toBe("fleetheal.v1.evt.h1.>");
  });

  const badTokens = ["", "a.b", "*", ">", "a b", "hôst", "x".repeat(129)];

  it.each(badTokens)("every builder rejects host %j with FLEETHEAL_ERR_SUBJECT_TOKEN", (bad) => {
    const builders: (() => unknown)[] = [
      () => eventSubject(bad, CID, "start"),
      () => snapshotSubject(bad),
      () => commandSubject(bad, "restart"),
      () => remediationSubject(bad, CID, "decided"),
      () => SUBJECTS.hostEvents(bad),
    ];
    for (const build of builders) {
      const error = thrown(build);
      expect(error).toBeInstanceOf(InvalidSubjectTokenError);
      const e = error as InvalidSubjectTokenError;
      expect(e.code).toBe("FLEETHEAL_ERR_SUBJECT_TOKEN");
      expect(e.name).toBe("InvalidSubjectTokenError");
      expect(e.part).toBe("host");
      expect(e.value).toBe(bad);
      expect(e.message).toBe(
        `invalid host ${JSON.stringify(bad)}: may contain only letters, digits, '_' and '-'`,
      );
    }
  });

  it.each(["", "abc.def", "*", ">", "abc def"])("rejects container id %j", (bad) => {
    for (const build of [
      () => eventSubject("h1", bad, "start"),
      () => remediationSubject("h1", bad, "decided"),
    ]) {
      const error = thrown(build) as InvalidSubjectTokenError;
      expect(error).toBeInstanceOf(InvalidSubjectTokenError);
      expect(error.code).toBe("FLEETHEAL_ERR_SUBJECT_TOKEN");
      expect(error.part).toBe("container id");
      expect(error.value).toBe(bad);
    }
  });
});

describe("subject parsers round-trip", () => {
  it.each(ContainerAction.options)("event action %s", (action) => {
    expect(parseEventSubject(eventSubject("host_1", CID, action))).toEqual({
      host: "host_1",
      containerId: CID,
      action,
    });
  });

  it("covers every lifecycle and health action", () => {
    expect(ContainerAction.options).toEqual([...LIFECYCLE_ACTIONS, ...HEALTH_ACTIONS]);
  });

  it.each(RemediationPhase.options)("remediation phase %s", (phase) => {
    expect(parseRemediationSubject(remediationSubject("h-2", CID, phase))).toEqual({
      host: "h-2",
      containerId: CID,
      phase,
    });
  });

  it("snapshot", () => {
    expect(parseSnapshotSubject(snapshotSubject("host-a"))).toBe("host-a");
  });

  it("the agent serves restart, stop, recreate, inspect and snapshot", () => {
    expect(COMMAND_VERBS).toEqual(["restart", "stop", "recreate", "inspect", "snapshot"]);
    expect(commandSubject("host-a", "stop")).toBe("fleetheal.v1.cmd.host-a.stop");
  });

  it.each(COMMAND_VERBS)("command verb %s", (verb) => {
    expect(parseCommandSubject(commandSubject("host-a", verb))).toEqual({ host: "host-a", verb });
  });
});

describe("subject parsers reject", () => {
  it.each([
    ["wrong root", `fleetheal.v2.evt.h1.${CID}.start`],
    ["wrong kind", `fleetheal.v1.act.h1.${CID}.start`],
    ["no prefix", `evt.h1.${CID}.start`],
    ["too few tokens", "fleetheal.v1.evt.h1.start"],
    ["too many tokens", `fleetheal.v1.evt.h1.${CID}.start.extra`],
    ["unknown action", `fleetheal.v1.evt.h1.${CID}.exploded`],
    ["health_status literal", `fleetheal.v1.evt.h1.${CID}.health_status`],
    ["wildcard host", `fleetheal.v1.evt.*.${CID}.start`],
    ["wildcard id", "fleetheal.v1.evt.h1.*.start"],
    ["full wildcard", "fleetheal.v1.evt.>"],
    ["empty token", `fleetheal.v1.evt..${CID}.start`],
    ["empty", ""],
  ])("event: %s", (_why, subject) => {
    expect(parseEventSubject(subject)).toBeUndefined();
  });

  it.each([
    ["wrong kind", `fleetheal.v1.evt.h1.${CID}.decided`],
    ["unknown phase", `fleetheal.v1.act.h1.${CID}.pondering`],
    ["too few tokens", "fleetheal.v1.act.h1.decided"],
    ["too many tokens", `fleetheal.v1.act.h1.${CID}.decided.x`],
    ["wildcard", "fleetheal.v1.act.*.*.decided"],
    ["full wildcard", "fleetheal.v1.act.>"],
  ])("remediation: %s", (_why, subject) => {
    expect(parseRemediationSubject(subject)).toBeUndefined();
  });

  it.each([
    ["wrong last token", "fleetheal.v1.host.h1.status"],
    ["too few tokens", "fleetheal.v1.host.snapshot"],
    ["too many tokens", "fleetheal.v1.host.h1.snapshot.x"],
    ["wildcard host", "fleetheal.v1.host.*.snapshot"],
    ["wrong kind", "fleetheal.v1.cmd.h1.snapshot"],
  ])("snapshot: %s", (_why, subject) => {
    expect(parseSnapshotSubject(subject)).toBeUndefined();
  });

  it.each([
    ["unknown verb", "fleetheal.v1.cmd.h1.explode"],
    ["too many tokens", "fleetheal.v1.cmd.h1.restart.now"],
    ["too few tokens", "fleetheal.v1.cmd.restart"],
    ["wildcard host", "fleetheal.v1.cmd.*.restart"],
    ["full wildcard", "fleetheal.v1.cmd.h1.>"],
    ["wrong kind", "fleetheal.v1.evt.h1.restart"],
  ])("command: %s", (_why, subject) => {
    expect(parseCommandSubject(subject)).toBeUndefined();
  });
});
