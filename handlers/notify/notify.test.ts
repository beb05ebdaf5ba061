import { describe, expect, it } from "vitest";
import type {
  HostSnapshot,
  Labels,
  RemediationPhase,
  RemediationRecord,
} from "../../contracts/index.js";
import { hostSnapshot, remediationRecord } from "../../test/support/fixtures.js";
import { fakeHandlerContext } from "../../test/support/handler-context.js";
import type { Decision } from "../decisions.js";
import { decideNotify, isMuted, type NotifyOptions, notifyHandler } from "./notify.js";
import { buildPayload } from "./payloads.js";
import { parseTargets } from "./targets.js";

const HOST = "host-a";
const LOUD = "4f1c2b3a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a";
const QUIET = "aaaabbbbccccddddeeeeffff0000111122223333444455556666777788889999";
const NOW = new Date("2026-11-27T19:41:40.000Z");

const { targets } = parseTargets("json+http://127.0.0.1:9/a slack+http://127.0.0.1:9/b");
const OPTIONS: NotifyOptions = {
  targets,
  events: ["restarted", "failed", "quarantined", "released"],
  maxAgeMs: 3_600_000,
};

function record(patch: Partial<RemediationRecord> = {}): RemediationRecord {
  return remediationRecord({
    id: `heal:${HOST}:${LOUD}:restarted`,
    remediationId: `heal:${HOST}:${LOUD}`,
    host: HOST,
    containerId: LOUD,
    containerName: "web",
    phase: "restarted",
    code: "restarted",
    message: "restarted",
    actor: "heal",
    at: "2026-11-27T19:41:35.000Z",
    ...patch,
  });
}

function snapshot(containers: { id: string; labels: Labels }[]): HostSnapshot {
  return hostSnapshot({
    host: HOST,
    at: NOW.toISOString(),
    agent: { version: "0.1.0", startedAt: NOW.toISOString() },
    containers: containers.map((c, i) => ({ id: c.id, name: `c${i}`, labels: c.labels })),
  });
}

const SNAPSHOT = snapshot([
  { id: LOUD, labels: { autoheal: "true" } },
  { id: QUIET, labels: { autoheal: "true", "autoheal.notify": "false" } },
]);

/** The parts of a context the notify handler uses (the rest belongs to other handlers). */
function context(snap: HostSnapshot | undefined = SNAPSHOT) {
  const lookups: string[] = [];
  const ctx = fakeHandlerContext({
    now: NOW,
    hostSnapshot: async (host: string) => {
      lookups.push(host);
      return snap;
    },
  });
  return { ctx, lookups };
}

describe("notifyHandler", () => {
  it("consumes remediation records", () => {
    const def = notifyHandler(OPTIONS);
    expect(def.name).toBe("notify");
    expect(def.subject).toBe("fleetheal.v1.act.>");
    expect(def.maxDeliver).toBeGreaterThan(1);
  });
});

describe("decideNotify", () => {
  it("sends the record to every target, keyed by record id and target index", async () => {
    const r = record();
    const { ctx, lookups } = context();
    const decisions = await decideNotify(r, ctx, OPTIONS);
    expect(decisions).toEqual([
      {
        kind: "notify",
        key: `${r.id}:1`,
        target: targets[0],
        payload: buildPayload("json", r),
      },
      {
        kind: "notify",
        key: `${r.id}:2`,
        target: targets[1],
        payload: buildPayload("slack", r),
      },
    ]);
    expect(lookups).toEqual([HOST]);
  });

  it("sends only the selected phases, without reading the snapshot for the others", async () => {
    const sent: RemediationPhase[] = [];
    for (const phase of [
      "decided",
      "restarting",
      "restarted",
      "failed",
      "skipped",
      "quarantined",
      "released",
    ] as const) {
      const { ctx, lookups } = context();
      const decisions = await decideNotify(record({ phase }), ctx, OPTIONS);
      if (decisions.length > 0) sent.push(phase);
      else expect(lookups).toEqual([]);
    }
    expect(sent).toEqual(["restarted", "failed", "quarantined", "released"]);
  });

  it("mutes a container labelled autoheal.notify=false", async () => {
    const { ctx } = context();
    const decisions = await decideNotify(
      record({ containerId: QUIET, id: "quiet-1" }),
      ctx,
      OPTIONS,
    );
    expect(decisions).toEqual([
      {
        kind: "log",
        level: "debug",
        msg: "notification muted by label autoheal.notify",
        fields: { host: HOST, containerId: QUIET, phase: "restarted" },
      },
    ]);
  });

  it("sends when the snapshot does not know the container, or there is none", async () => {
    const unknown = await decideNotify(record(), context(snapshot([])).ctx, OPTIONS);
    expect(unknown.map((d) => d.kind)).toEqual(["notify", "notify"]);
    const none = await decideNotify(record(), context(undefined).ctx, OPTIONS);
    expect(none.map((d) => d.kind)).toEqual(["notify", "notify"]);
  });

  it("does not send records older than the maximum age", async () => {
    const { ctx, lookups } = context();
    const old = record({ at: "2026-11-27T18:41:39.000Z" });
    const decisions: Decision[] = await decideNotify(old, ctx, OPTIONS);
    expect(decisions).toEqual([
      {
        kind: "log",
        level: "info",
        msg: "remediation record too old to notify",
        fields: { host: HOST, containerId: LOUD, phase: "restarted", ageMs: 3_601_000 },
      },
    ]);
    expect(lookups).toEqual([]);
  });
});

describe("isMuted", () => {
  it.each([
    [{ "autoheal.notify": "false" }, true],
    [{ "autoheal.notify": " FALSE " }, true],
    [{ "autoheal.notify": "0" }, true],
    [{ "autoheal.notify": "no" }, true],
    [{ "autoheal.notify": "off" }, true],
    [{ "autoheal.notify": "true" }, false],
    [{ "autoheal.notify": "" }, false],
    [{ "fleetheal.notify": "false" }, false],
    [{}, false],
  ])("%j -> %s", (labels, muted) => {
    expect(isMuted(labels)).toBe(muted);
  });
});
