import { pino } from "pino";
import { describe, expect, it } from "vitest";
import {
  type CommandReply,
  type ContainerEvent,
  LedgerEntry,
  RemediationRecord,
  RestartCommand,
} from "../contracts/index.js";
import type {
  CommandResult,
  Decision,
  HandlerContext,
  StoreName,
  Stores,
  Versioned,
} from "./handler.js";
import { decideHeal, type HealOptions, healHandler } from "./heal.js";

const HOST = "host-a";
const CID = "4f1c2b3a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a";
const KEY = `${HOST}.${CID}`;
const STARTED_AT = "2026-11-27T19:41:29.98123456Z";
const NOW = new Date("2026-11-27T19:41:35.000Z");
const OPTIONS: HealOptions = { cooldownMs: 10_000, maxEventAgeMs: 300_000, retryDelayMs: 2_000 };

function unhealthy(
  patch: {
    timeNano?: string;
    optedIn?: boolean;
    startedAt?: string | null;
    time?: string;
    labels?: Record<string, string>;
  } = {},
): ContainerEvent {
  const timeNano = patch.timeNano ?? "1795808494172958659";
  const startedAt = patch.startedAt === undefined ? STARTED_AT : patch.startedAt;
  return {
    type: "fleetheal.evt.v1.container",
    v: 1,
    id: `${HOST}:${CID}:${timeNano}:unhealthy`,
    host: HOST,
    action: "unhealthy",
    timeNano,
    time: patch.time ?? "2026-11-27T19:41:34.172Z",
    container: {
      id: CID,
      name: "web",
      image: "nginx:1.27",
      labels: patch.labels ?? { autoheal: "true" },
      optedIn: patch.optedIn ?? true,
      ...(startedAt === null ? {} : { startedAt }),
    },
    source: "docker",
  };
}

function fakeContext(
  options: { ledger?: Versioned<LedgerEntry>; lastDelivery?: boolean; now?: Date } = {},
): HandlerContext & { reads: string[] } {
  const reads: string[] = [];
  const read = async <S extends StoreName>(
    store: S,
    key: string,
  ): Promise<Versioned<Stores[S]> | undefined> => {
    reads.push(`${store}/${key}`);
    if (store === "ledger" && key === KEY)
      return options.ledger as Versioned<Stores[S]> | undefined;
    return undefined;
  };
  return {
    now: options.now ?? NOW,
    log: pino({ level: "silent" }),
    deliveryCount: 1,
    lastDelivery: options.lastDelivery ?? false,
    read,
    reads,
  };
}

type Kind = Decision["kind"];
type Of<K extends Kind> = Extract<Decision, { kind: K }>;

function ofKind<K extends Kind>(decisions: Decision[], kind: K): Of<K>[] {
  return decisions.filter((d): d is Of<K> => d.kind === kind);
}

function first<K extends Kind>(decisions: Decision[], kind: K): Of<K> {
  const found = ofKind(decisions, kind)[0];
  if (!found)
    throw new Error(`no ${kind} decision in [${decisions.map((d) => d.kind).join(", ")}]`);
  return found;
}

/** Every remediation record and claim value must satisfy its wire schema. */
function validateAll(decisions: Decision[]): void {
  for (const d of decisions) {
    if (d.kind === "remediation") expect(RemediationRecord.parse(d.record)).toEqual(d.record);
    if (d.kind === "claim") expect(LedgerEntry.parse(d.value)).toEqual(d.value);
    if (d.kind === "restart") expect(RestartCommand.parse(d.command)).toEqual(d.command);
  }
}

function reply(patch: Partial<CommandReply>): CommandReply {
  return {
    type: "fleetheal.cmd.v1.reply",
    v: 1,
    verb: "restart",
    commandId: "x",
    host: HOST,
    containerId: CID,
    outcome: "restarted",
    code: "restarted",
    message: "restarted (stop timeout 10s)",
    duplicate: false,
    startedAt: "2026-11-27T19:41:35.010Z",
    durationMs: 640,
    ...patch,
  };
}

function pendingLedger(commandId: string, patch: Partial<LedgerEntry> = {}): LedgerEntry {
  return {
    v: 1,
    host: HOST,
    containerId: CID,
    lastIncident: STARTED_AT,
    lastCommandId: commandId,
    lastRestartAt: "2026-11-27T19:41:34.500Z",
    restarts: [
      { at: "2026-11-27T19:41:34.500Z", incident: STARTED_AT, commandId, outcome: "pending" },
    ],
    ...patch,
  };
}

/** Runs decideHeal on a fresh ledger and returns its restart decision. */
async function firstRestart(ctx = fakeContext()) {
  const decisions = await decideHeal(unhealthy(), ctx, OPTIONS);
  return { decisions, restart: first(decisions, "restart") };
}

describe("healHandler", () => {
  it("subscribes to unhealthy events", () => {
    const h = healHandler(OPTIONS);
    expect(h.name).toBe("heal");
    expect(h.subject).toBe("fleetheal.v1.evt.*.*.unhealthy");
  });
});

describe("decideHeal", () => {
  it("ignores other actions", async () => {
    const event = { ...unhealthy(), action: "healthy" as const };
    expect(await decideHeal(event, fakeContext(), OPTIONS)).toEqual([]);
  });

  it("not opted in -> one skipped record, no ledger read", async () => {
    const ctx = fakeContext();
    const event = unhealthy({ optedIn: false });
    const decisions = await decideHeal(event, ctx, OPTIONS);
    expect(decisions).toEqual([
      {
        kind: "remediation",
        record: {
          type: "fleetheal.act.v1.remediation",
          v: 1,
          id: `heal:${event.id}:skipped`,
          remediationId: `heal:${event.id}`,
          host: HOST,
          containerId: CID,
          containerName: "web",
          phase: "skipped",
          code: "not-opted-in",
          message: "container has not opted in to healing",
          incident: STARTED_AT,
          triggerEventId: event.id,
          actor: "handler:heal",
          at: "2026-11-27T19:41:35.000Z",
          dryRun: false,
        },
      },
    ]);
    expect(ctx.reads).toEqual([]);
    validateAll(decisions);
  });

  it("stale event -> skipped stale-event", async () => {
    const event = unhealthy({ time: "2026-11-27T19:36:34.999Z" }); // 300.001 s old
    const decisions = await decideHeal(event, fakeContext(), OPTIONS);
    expect(decisions).toHaveLength(1);
    const { record } = first(decisions, "remediation");
    expect(record).toMatchObject({
      phase: "skipped",
      code: "stale-event",
      message: "event is 300s old",
    });
    validateAll(decisions);
  });

  it("a late redelivery of a claimed, pending incident still resends its command", async () => {
    const commandId = "heal-0123456789abcdef0123456789abcdef";
    const ledger = { value: pendingLedger(commandId), revision: 4 };
    const event = unhealthy({ time: "2026-11-27T19:36:34.999Z" }); // older than maxEventAgeMs
    const decisions = await decideHeal(event, fakeContext({ ledger }), OPTIONS);
    expect(decisions.map((d) => d.kind)).toEqual(["remediation", "restart"]);
    expect(first(decisions, "restart").command.commandId).toBe(commandId);
  });

  it("an event exactly maxEventAgeMs old is still acted on", async () => {
    const event = unhealthy({ time: "2026-11-27T19:36:35.000Z" });
    const decisions = await decideHeal(event, fakeContext(), OPTIONS);
    expect(decisions.map((d) => d.kind)).toEqual([
      "claim",
      "remediation",
      "remediation",
      "restart",
    ]);
  });

  it("no ledger -> claim, decided, restarting, restart", async () => {
    const ctx = fakeContext();
    const event = unhealthy();
    const decisions = await decideHeal(event, ctx, OPTIONS);
    expect(ctx.reads).toEqual([`ledger/${KEY}`]);
    expect(decisions.map((d) => d.kind)).toEqual([
      "claim",
      "remediation",
      "remediation",
      "restart",
    ]);
    validateAll(decisions);

    const restart = first(decisions, "restart");
    const commandId = restart.command.commandId;
    expect(commandId).toMatch(/^heal-[0-9a-f]{32}$/);
    expect(restart.command).toEqual({
      type: "fleetheal.cmd.v1.restart",
      v: 1,
      commandId,
      host: HOST,
      containerId: CID,
      reason: "unhealthy",
      requestedBy: "handler:heal",
      requireUnhealthy: true,
      incident: STARTED_AT,
    });
    // Docker's default stop timeout (10 s) plus 30 s to start it again.
    expect(restart.minTimeoutMs).toBe(40_000);

    const claim = first(decisions, "claim");
    expect(claim).toEqual({
      kind: "claim",
      store: "ledger",
      key: KEY,
      expectedRevision: 0,
      value: {
        v: 1,
        host: HOST,
        containerId: CID,
        lastIncident: STARTED_AT,
        lastCommandId: commandId,
        lastRestartAt: "2026-11-27T19:41:35.000Z",
        restarts: [
          { at: "2026-11-27T19:41:35.000Z", incident: STARTED_AT, commandId, outcome: "pending" },
        ],
      },
    });

    const records = ofKind(decisions, "remediation").map((d) => d.record);
    expect(records.map((r) => [r.phase, r.code, r.message, r.commandId])).toEqual([
      ["decided", "unhealthy", "container is unhealthy; restarting it", commandId],
      ["restarting", "restart-sent", "restart command sent to the agent", commandId],
    ]);
    for (const r of records) {
      expect(r.remediationId).toBe(`heal:${event.id}`);
      expect(r.id).toBe(`heal:${event.id}:${r.phase}`);
      expect(r.incident).toBe(STARTED_AT);
      expect(r.triggerEventId).toBe(event.id);
    }
  });

  it("without a StartedAt the event id names the incident and the command carries none", async () => {
    const event = unhealthy({ startedAt: null });
    const decisions = await decideHeal(event, fakeContext(), OPTIONS);
    validateAll(decisions);
    const claim = first(decisions, "claim");
    expect((claim.value as LedgerEntry).lastIncident).toBe(event.id);
    expect((claim.value as LedgerEntry).restarts[0]?.incident).toBe(event.id);
    expect("incident" in first(decisions, "restart").command).toBe(false);
    for (const d of ofKind(decisions, "remediation")) expect("incident" in d.record).toBe(false);
  });

  it("command ids are deterministic per event and differ between events", async () => {
    const a1 = first(await decideHeal(unhealthy(), fakeContext(), OPTIONS), "restart");
    const a2 = first(await decideHeal(unhealthy(), fakeContext(), OPTIONS), "restart");
    const b = first(
      await decideHeal(unhealthy({ timeNano: "1795808494172958660" }), fakeContext(), OPTIONS),
      "restart",
    );
    expect(a1.command.commandId).toBe(a2.command.commandId);
    expect(b.command.commandId).not.toBe(a1.command.commandId);
  });

  it("same incident still pending -> resends the same command id without a claim", async () => {
    const commandId = "heal-0123456789abcdef0123456789abcdef";
    const ledger = { value: pendingLedger(commandId), revision: 4 };
    // A different event (a later health transition) for the same run of the container.
    const event = unhealthy({ timeNano: "1795808499000000000" });
    const decisions = await decideHeal(event, fakeContext({ ledger }), OPTIONS);
    expect(decisions.map((d) => d.kind)).toEqual(["remediation", "restart"]);
    validateAll(decisions);
    expect(first(decisions, "remediation").record).toMatchObject({
      phase: "restarting",
      commandId,
    });
    expect(first(decisions, "restart").command).toMatchObject({
      commandId,
      incident: STARTED_AT,
      containerId: CID,
      host: HOST,
    });
  });

  it.each([
    ["restarted", "restarted"],
    ["refused", "refused"],
    ["failed", "failed"],
  ] as const)("same incident already %s -> only a log decision", async (_why, outcome) => {
    const commandId = "heal-0123456789abcdef0123456789abcdef";
    const base = pendingLedger(commandId);
    const ledger = {
      value: { ...base, restarts: base.restarts.map((r) => ({ ...r, outcome })) },
      revision: 5,
    };
    const event = unhealthy();
    const decisions = await decideHeal(event, fakeContext({ ledger }), OPTIONS);
    expect(decisions).toEqual([
      { kind: "log", level: "debug", msg: "incident already handled", fields: { id: event.id } },
    ]);
  });

  it("same incident pending under another command id -> only a log decision", async () => {
    const ledger = {
      value: pendingLedger("heal-aaaaaaaaaaaaaaaa", { lastCommandId: "heal-bbbbbbbbbbbbbbbb" }),
      revision: 5,
    };
    const decisions = await decideHeal(unhealthy(), fakeContext({ ledger }), OPTIONS);
    expect(decisions.map((d) => d.kind)).toEqual(["log"]);
  });

  describe("cooldown", () => {
    const previous = (lastRestartAt: string): Versioned<LedgerEntry> => ({
      value: {
        v: 1,
        host: HOST,
        containerId: CID,
        lastIncident: "2026-11-27T19:00:00.000Z",
        lastCommandId: "heal-prev0000000000000",
        lastRestartAt,
        restarts: [
          {
            at: lastRestartAt,
            incident: "2026-11-27T19:00:00.000Z",
            commandId: "heal-prev0000000000000",
            outcome: "restarted",
          },
        ],
      },
      revision: 7,
    });

    it("within cooldown -> skipped cooldown and a retry when the cooldown ends", async () => {
      const ledger = previous("2026-11-27T19:41:31.000Z"); // 4 s ago
      const decisions = await decideHeal(unhealthy(), fakeContext({ ledger }), OPTIONS);
      expect(decisions.map((d) => d.kind)).toEqual(["remediation", "retry"]);
      validateAll(decisions);
      expect(first(decisions, "remediation").record).toMatchObject({
        phase: "skipped",
        code: "cooldown",
        message: "restarted 4s ago; cooldown is 10s; will check again in 6s",
      });
      expect(first(decisions, "retry")).toEqual({
        kind: "retry",
        reason: "cooldown",
        delayMs: 6_050,
      });
    });

    it("within cooldown on the last delivery -> skipped cooldown, no retry", async () => {
      const ledger = previous("2026-11-27T19:41:31.000Z");
      const decisions = await decideHeal(
        unhealthy(),
        fakeContext({ ledger, lastDelivery: true }),
        OPTIONS,
      );
      expect(decisions).toHaveLength(1);
      expect(first(decisions, "remediation").record).toMatchObject({
        phase: "skipped",
        code: "cooldown",
        message: "restarted 4s ago; cooldown is 10s; giving up",
      });
    });

    it("after cooldown -> claim at the read revision, history kept", async () => {
      const ledger = previous("2026-11-27T19:41:24.000Z"); // 11 s ago
      const decisions = await decideHeal(unhealthy(), fakeContext({ ledger }), OPTIONS);
      expect(decisions.map((d) => d.kind)).toEqual([
        "claim",
        "remediation",
        "remediation",
        "restart",
      ]);
      validateAll(decisions);
      const claim = first(decisions, "claim");
      expect(claim.expectedRevision).toBe(7);
      const value = claim.value as LedgerEntry;
      expect(value.restarts.map((r) => [r.commandId, r.outcome])).toEqual([
        [first(decisions, "restart").command.commandId, "pending"],
        ["heal-prev0000000000000", "restarted"],
      ]);
    });

    it("exactly at the end of the cooldown -> acts", async () => {
      const ledger = previous("2026-11-27T19:41:25.000Z"); // 10 s ago
      const decisions = await decideHeal(unhealthy(), fakeContext({ ledger }), OPTIONS);
      expect(decisions[0]?.kind).toBe("claim");
    });

    it("keeps at most 50 restarts in the history", async () => {
      const base = previous("2026-11-27T18:00:00.000Z");
      const old = base.value.restarts[0];
      if (!old) throw new Error("fixture");
      const ledger = {
        ...base,
        value: { ...base.value, restarts: Array.from({ length: 50 }, () => old) },
      };
      const decisions = await decideHeal(unhealthy(), fakeContext({ ledger }), OPTIONS);
      validateAll(decisions);
      const value = first(decisions, "claim").value as LedgerEntry;
      expect(value.restarts).toHaveLength(50);
      expect(value.restarts[0]?.outcome).toBe("pending");
    });
  });

  describe("after the agent answers", () => {
    it("restarted -> ledger outcome restarted and a restarted record", async () => {
      const { restart } = await firstRestart();
      const commandId = restart.command.commandId;
      const after = restart.onReply({ ok: true, reply: reply({ commandId }) });
      expect(after.map((d) => d.kind)).toEqual(["update", "remediation"]);
      validateAll(after);
      expect(first(after, "remediation").record).toMatchObject({
        phase: "restarted",
        code: "restarted",
        message: "restarted (stop timeout 10s)",
        commandId,
        id: `heal:${unhealthy().id}:restarted`,
      });

      const update = first(after, "update");
      expect(update.store).toBe("ledger");
      expect(update.key).toBe(KEY);
      const older = {
        at: "2026-11-27T18:00:00.000Z",
        incident: "x",
        commandId: "heal-old",
        outcome: "pending" as const,
      };
      const before = pendingLedger(commandId, {
        restarts: [pendingLedger(commandId).restarts[0] as LedgerEntry["restarts"][number], older],
      });
      const updated = update.update(before) as LedgerEntry;
      expect(LedgerEntry.parse(updated)).toEqual(updated);
      expect(updated.restarts.map((r) => [r.commandId, r.outcome])).toEqual([
        [commandId, "restarted"],
        ["heal-old", "pending"],
      ]);
      expect(updated.lastIncident).toBe(STARTED_AT);
      // An entry an operator deleted starts a new, empty history.
      expect(update.update(undefined)).toEqual({
        v: 1,
        host: HOST,
        containerId: CID,
        restarts: [],
      });
    });

    it.each([
      ["refused", "not-opted-in", "skipped"],
      ["refused", "not-found", "skipped"],
      ["skipped", "not-unhealthy", "skipped"],
      ["skipped", "stale-incident", "skipped"],
      ["failed", "docker-error", "failed"],
    ] as const)("reply %s/%s -> record %s with the agent's code", async (outcome, code, phase) => {
      const { restart } = await firstRestart();
      const commandId = restart.command.commandId;
      const after = restart.onReply({
        ok: true,
        reply: reply({ commandId, outcome, code, message: `agent says ${code}` }),
      });
      expect(after.map((d) => d.kind)).toEqual(["update", "remediation"]);
      validateAll(after);
      expect(first(after, "remediation").record).toMatchObject({
        phase,
        code,
        message: `agent says ${code}`,
      });
      const updated = first(after, "update").update(pendingLedger(commandId)) as LedgerEntry;
      expect(updated.restarts[0]?.outcome).toBe(outcome);
    });

    it.each(["timeout", "no-responders"] as const)(
      "%s before the last delivery -> retry",
      async (code) => {
        const { restart } = await firstRestart(fakeContext({ lastDelivery: false }));
        const result: CommandResult = { ok: false, code, message: "request timed out" };
        expect(restart.onReply(result)).toEqual([
          { kind: "retry", reason: "agent unreachable: request timed out", delayMs: 2_000 },
        ]);
      },
    );

    it("timeout on the last delivery -> ledger failed and a failed record", async () => {
      const { restart } = await firstRestart(fakeContext({ lastDelivery: true }));
      const commandId = restart.command.commandId;
      const after = restart.onReply({ ok: false, code: "timeout", message: "request timed out" });
      expect(after.map((d) => d.kind)).toEqual(["update", "remediation"]);
      validateAll(after);
      expect(first(after, "remediation").record).toMatchObject({
        phase: "failed",
        code: "timeout",
        message: "request timed out",
        commandId,
      });
      const updated = first(after, "update").update(pendingLedger(commandId)) as LedgerEntry;
      expect(updated.restarts[0]?.outcome).toBe("failed");
    });

    it("a bad reply fails at once, even before the last delivery", async () => {
      const { restart } = await firstRestart(fakeContext({ lastDelivery: false }));
      const after = restart.onReply({ ok: false, code: "bad-reply", message: "schema mismatch" });
      expect(after.map((d) => d.kind)).toEqual(["update", "remediation"]);
      expect(first(after, "remediation").record).toMatchObject({
        phase: "failed",
        code: "bad-reply",
      });
    });
  });
});

describe("restart deadline (minTimeoutMs)", () => {
  async function deadline(labels: Record<string, string>) {
    const decisions = await decideHeal(unhealthy({ labels }), fakeContext(), OPTIONS);
    validateAll(decisions);
    return first(decisions, "restart").minTimeoutMs;
  }

  it("is the stop-timeout label plus 30 s", async () => {
    expect(await deadline({ autoheal: "true", "autoheal.stop.timeout": "120" })).toBe(150_000);
  });

  it("a label of 0 leaves only the 30 s to start again", async () => {
    expect(await deadline({ autoheal: "true", "autoheal.stop.timeout": "0" })).toBe(30_000);
  });

  it("without the label, Docker's default of 10 s plus 30 s", async () => {
    expect(await deadline({ autoheal: "true" })).toBe(40_000);
  });

  it.each(["abc", "-1", "99999", "2.5", "", " "])(
    "a bad label %j counts as no label",
    async (value) => {
      expect(await deadline({ autoheal: "true", "autoheal.stop.timeout": value })).toBe(40_000);
    },
  );

  it("a resent pending command carries the deadline too", async () => {
    const commandId = "heal-0123456789abcdef0123456789abcdef";
    const ledger = { value: pendingLedger(commandId), revision: 4 };
    const event = unhealthy({
      timeNano: "1795808499000000000",
      labels: { autoheal: "true", "autoheal.stop.timeout": "45" },
    });
    const decisions = await decideHeal(event, fakeContext({ ledger }), OPTIONS);
    const restart = first(decisions, "restart");
    expect(restart.command.commandId).toBe(commandId);
    expect(restart.minTimeoutMs).toBe(75_000);
  });
});
