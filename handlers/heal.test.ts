import { pino } from "pino";
import { describe, expect, it } from "vitest";
import type { ContainerCommandDraft } from "../common/agent-commands.js";
import {
  type CommandReply,
  ContainerEvent,
  HealPolicy,
  ImageFailures,
  LedgerEntry,
  RECREATE_COMMAND_TYPE,
  RESTART_COMMAND_TYPE,
  RecreateCommand,
  RemediationRecord,
  RestartCommand,
  STOP_COMMAND_TYPE,
  StopCommand,
  SUBJECTS,
} from "../contracts/index.js";
import { imageKey } from "../policy/image-breaker.js";
import {
  commandReply,
  containerEvent,
  ledgerEntry as fixtureLedgerEntry,
  imageFailures,
} from "../test/support/fixtures.js";
import { fakeHandlerContext } from "../test/support/handler-context.js";
import { InMemoryHandlerIo, runnerOn } from "../test/support/in-memory-handler-io.js";
import type { CommandResult, Decision, StoreName, Stores, Versioned } from "./decisions.js";
import type { HandlerContext } from "./handler.js";
import { decideHeal, type HealOptions, healHandler } from "./heal.js";
import { commandIdFor } from "./heal-command.js";
import { stormLeases, stormRetryDelayMs } from "./storm-slots.js";

/** Commands as a handler decides them: the runtime stamps their lifetime when it sends them. */
const DRAFT_SCHEMAS = {
  [RESTART_COMMAND_TYPE]: RestartCommand.omit({ issuedAt: true, expiresAt: true }),
  [STOP_COMMAND_TYPE]: StopCommand.omit({ issuedAt: true, expiresAt: true }),
  [RECREATE_COMMAND_TYPE]: RecreateCommand.omit({ issuedAt: true, expiresAt: true }),
};

const HOST = "host-a";
const CID = "4f1c2b3a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a";
const KEY = `${HOST}.${CID}`;
const STARTED_AT = "2026-11-27T19:41:29.98123456Z";
const NOW = new Date("2026-11-27T19:41:35.000Z");
const EVENT_TIME = "2026-11-27T19:41:34.172Z";
const OPTIONS: HealOptions = { maxEventAgeMs: 300_000, retryDelayMs: 2_000 };
const S = 1_000;
const iso = (ms: number) => new Date(ms).toISOString();

/** A policy from a partial JSON document, as the KV watcher would load it. */
/**
 * Policies for these tests: the image breaker is off unless a test turns it on, so that decision
 * lists stay about the rule under test (the breaker has its own tests below).
 */
const policyOf = (doc: Record<string, unknown> = {}) =>
  HealPolicy.parse({
    ...doc,
    storm: {
      imageBreaker: { failures: 0, windowSeconds: 60 },
      ...((doc.storm as Record<string, unknown> | undefined) ?? {}),
    },
  });
const BASE_POLICY = policyOf();

function unhealthy(
  patch: {
    timeNano?: string;
    optedIn?: boolean;
    startedAt?: string | null;
    time?: string;
    labels?: Record<string, string>;
    host?: string;
    source?: ContainerEvent["source"];
    unhealthySince?: string;
    healthOutput?: string;
    name?: string;
    image?: string;
  } = {},
): ContainerEvent {
  const timeNano = patch.timeNano ?? "1795808494172958659";
  const host = patch.host ?? HOST;
  const startedAt = patch.startedAt === undefined ? STARTED_AT : patch.startedAt;
  return containerEvent({
    id: `${host}:${CID}:${timeNano}:unhealthy`,
    host,
    action: "unhealthy",
    timeNano,
    time: patch.time ?? EVENT_TIME,
    ...(patch.source ? { source: patch.source } : {}),
    ...(patch.unhealthySince ? { unhealthySince: patch.unhealthySince } : {}),
    ...(patch.healthOutput ? { healthOutput: patch.healthOutput } : {}),
    container: {
      id: CID,
      name: patch.name ?? "web",
      image: patch.image ?? "nginx:1.27",
      labels: patch.labels ?? { autoheal: "true" },
      optedIn: patch.optedIn ?? true,
      ...(startedAt === null ? {} : { startedAt }),
    },
  });
}

/** Any event at `atMs` (Docker's time), for the whole-flow scenarios. */
function eventAt(
  action: ContainerEvent["action"],
  atMs: number,
  patch: {
    startedAtMs?: number;
    exitCode?: number;
    stopped?: boolean;
    labels?: Record<string, string>;
    optedIn?: boolean;
  } = {},
): ContainerEvent {
  const timeNano = `${BigInt(atMs) * 1_000_000n}`;
  return containerEvent({
    id: `${HOST}:${CID}:${timeNano}:${action}`,
    host: HOST,
    action,
    timeNano,
    time: iso(atMs),
    container: {
      id: CID,
      name: "web",
      image: "nginx:1.27",
      labels: patch.labels ?? { autoheal: "true" },
      optedIn: patch.optedIn ?? true,
      ...(patch.startedAtMs === undefined ? {} : { startedAt: iso(patch.startedAtMs) }),
    },
    ...(patch.exitCode === undefined ? {} : { exitCode: patch.exitCode }),
    ...(patch.stopped === undefined ? {} : { stopped: patch.stopped }),
  });
}

function fakeContext(
  options: {
    ledger?: Versioned<LedgerEntry>;
    lastDelivery?: boolean;
    deliveryCount?: number;
    now?: Date;
    policy?: HealPolicy;
    breakers?: Versioned<ImageFailures>;
    /** The fleet has several hosts; one host (host-a) unless a test says otherwise. */
    severalHosts?: boolean;
  } = {},
): HandlerContext & { reads: string[] } {
  const reads: string[] = [];
  const read = async <S extends StoreName>(
    store: S,
    key: string,
  ): Promise<Versioned<Stores[S]> | undefined> => {
    reads.push(`${store}/${key}`);
    if (store === "ledger" && key.endsWith(`.${CID}`))
      return options.ledger as Versioned<Stores[S]> | undefined;
    if (store === "breakers") return options.breakers as Versioned<Stores[S]> | undefined;
    return undefined;
  };
  return {
    ...fakeHandlerContext({
      now: options.now ?? NOW,
      deliveryCount: options.deliveryCount ?? 1,
      lastDelivery: options.lastDelivery ?? false,
      policy: options.policy ?? BASE_POLICY,
      read,
      severalHosts: async () => options.severalHosts ?? false,
    }),
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

const kinds = (decisions: Decision[]) => decisions.map((d) => d.kind);
const records = (decisions: Decision[]) => ofKind(decisions, "remediation").map((d) => d.record);
const claimed = (decisions: Decision[]) => first(decisions, "claim").value as LedgerEntry;

/** Every remediation record, claim value and command must satisfy its wire schema. */
function validateAll(decisions: Decision[]): void {
  for (const d of decisions) {
    if (d.kind === "remediation") expect(RemediationRecord.parse(d.record)).toEqual(d.record);
    if (d.kind === "claim") {
      const schema = d.store === "breakers" ? ImageFailures : LedgerEntry;
      expect(schema.parse(d.value)).toEqual(d.value);
    }
    if (d.kind === "command") {
      expect(DRAFT_SCHEMAS[d.command.type].parse(d.command)).toEqual(d.command);
    }
    if (d.kind === "lease") {
      validateAll(d.alongside ?? []);
      validateAll(d.onDenied({ cap: "some cap" }));
    }
  }
}

/** decideHeal, with every decision validated. */
async function decide(event: ContainerEvent, ctx: HandlerContext = fakeContext()) {
  const decisions = await decideHeal(event, ctx, OPTIONS);
  validateAll(decisions);
  return decisions;
}

function reply(patch: Partial<CommandReply>): CommandReply {
  return commandReply({
    commandId: "x",
    host: HOST,
    containerId: CID,
    startedAt: "2026-11-27T19:41:35.010Z",
    durationMs: 640,
    ...patch,
  });
}

function ledgerEntry(patch: Partial<LedgerEntry> = {}): LedgerEntry {
  return fixtureLedgerEntry({ host: HOST, containerId: CID, ...patch });
}

function pendingLedger(commandId: string, patch: Partial<LedgerEntry> = {}): LedgerEntry {
  return ledgerEntry({
    lastIncident: STARTED_AT,
    lastCommandId: commandId,
    lastRestartAt: "2026-11-27T19:41:34.500Z",
    consecutiveRestarts: 1,
    restarts: [
      { at: "2026-11-27T19:41:34.500Z", incident: STARTED_AT, commandId, outcome: "pending" },
    ],
    ...patch,
  });
}

/** A container restarted `consecutive` times in a row, the last at `lastRestartAt`. */
function previous(lastRestartAt: string, consecutive = 1): Versioned<LedgerEntry> {
  return {
    value: ledgerEntry({
      lastIncident: "2026-11-27T19:00:00.000Z",
      lastCommandId: "heal-prev0000000000000",
      lastRestartAt,
      consecutiveRestarts: consecutive,
      restarts: [
        {
          at: lastRestartAt,
          incident: "2026-11-27T19:00:00.000Z",
          commandId: "heal-prev0000000000000",
          outcome: "restarted",
        },
      ],
    }),
    revision: 7,
  };
}

/** Runs decideHeal on a fresh ledger and returns its restart decision. */
async function firstRestart(ctx = fakeContext()) {
  const decisions = await decide(unhealthy(), ctx);
  return { decisions, restart: first(decisions, "command") };
}

const RESTART_KINDS = ["lease", "claim", "remediation", "remediation", "command"];

describe("healHandler", () => {
  it("subscribes to every container event, with room for long deferrals", () => {
    const h = healHandler(OPTIONS);
    expect(h.name).toBe("heal");
    expect(h.subject).toBe("fleetheal.v1.evt.>");
    expect(h.subject).toBe(SUBJECTS.events);
    expect(h.schema).toBe(ContainerEvent);
    expect(h.maxDeliver).toBe(10_000);
    expect(h.concurrency).toBe(32);
  });

  it("handle() is decideHeal", async () => {
    const event = unhealthy({ optedIn: false });
    const h = healHandler(OPTIONS);
    expect(await h.handle(event, fakeContext())).toEqual(
      await decideHeal(event, fakeContext(), OPTIONS),
    );
  });
});

describe("decideHeal", () => {
  it.each([
    "create",
    "start",
    "stop",
    "kill",
    "restart",
    "oom",
    "destroy",
    "pause",
    "unpause",
    "starting",
  ] as const)("ignores %s events without reading anything", async (action) => {
    const ctx = fakeContext();
    expect(await decideHeal({ ...unhealthy(), action }, ctx, OPTIONS)).toEqual([]);
    expect(ctx.reads).toEqual([]);
  });

  it("not opted in -> one skipped record, no ledger read", async () => {
    const ctx = fakeContext();
    const event = unhealthy({ optedIn: false });
    const decisions = await decide(event, ctx);
    expect(decisions).toEqual([
      {
        kind: "remediation",
        record: {
          type: "fleetheal.act.v1.remediation",
          v: 1,
          id: `heal:${event.id}:skipped:not-opted-in`,
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
  });

  it("not opted in: die and healthy events -> nothing at all", async () => {
    const ctx = fakeContext({ policy: policyOf({ restartOnExit: true }) });
    const die = { ...unhealthy({ optedIn: false }), action: "die" as const, exitCode: 1 };
    const healthy = { ...unhealthy({ optedIn: false }), action: "healthy" as const };
    expect(await decideHeal(die, ctx, OPTIONS)).toEqual([]);
    expect(await decideHeal(healthy, ctx, OPTIONS)).toEqual([]);
    expect(ctx.reads).toEqual([]);
  });

  it("stale event -> skipped stale-event (the trouble is still remembered)", async () => {
    const event = unhealthy({ time: "2026-11-27T19:36:34.999Z" }); // 300.001 s old
    const decisions = await decide(event);
    expect(kinds(decisions)).toEqual(["claim", "remediation"]);
    expect(first(decisions, "remediation").record).toMatchObject({
      id: `heal:${event.id}:skipped:stale-event`,
      phase: "skipped",
      code: "stale-event",
      message: "the trigger is 300s old; not acting on history",
    });
    expect(claimed(decisions)).toEqual(ledgerEntry({ lastTroubleAt: "2026-11-27T19:36:34.999Z" }));
  });

  it("a late redelivery of a claimed, pending incident still resends its command", async () => {
    const commandId = "heal-0123456789abcdef0123456789abcdef";
    const ledger = { value: pendingLedger(commandId), revision: 4 };
    const event = unhealthy({ time: "2026-11-27T19:36:34.999Z" }); // older than maxEventAgeMs
    const decisions = await decide(event, fakeContext({ ledger }));
    expect(kinds(decisions)).toEqual(["remediation", "command"]);
    expect(first(decisions, "command").command.commandId).toBe(commandId);
  });

  it("an event exactly maxEventAgeMs old is still acted on", async () => {
    const event = unhealthy({ time: "2026-11-27T19:36:35.000Z" });
    expect(kinds(await decide(event))).toEqual(RESTART_KINDS);
  });

  it("no ledger -> lease, claim, decided, restarting, restart", async () => {
    const ctx = fakeContext();
    const event = unhealthy();
    const decisions = await decide(event, ctx);
    expect(ctx.reads).toEqual([`ledger/${KEY}`]);
    expect(kinds(decisions)).toEqual(RESTART_KINDS);

    const restart = first(decisions, "command");
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

    expect(first(decisions, "claim")).toEqual({
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
        lastTroubleAt: EVENT_TIME,
        consecutiveRestarts: 1,
        restarts: [
          { at: "2026-11-27T19:41:35.000Z", incident: STARTED_AT, commandId, outcome: "pending" },
        ],
      },
    });

    const rs = records(decisions);
    expect(rs.map((r) => [r.phase, r.code, r.message, r.commandId])).toEqual([
      ["decided", "unhealthy", "container is unhealthy; restarting it", commandId],
      ["restarting", "restart-sent", "restart command sent to the agent", commandId],
    ]);
    for (const r of rs) {
      expect(r.remediationId).toBe(`heal:${event.id}`);
      expect(r.id).toBe(`heal:${event.id}:${r.phase}:${r.code}`);
      expect(r.incident).toBe(STARTED_AT);
      expect(r.triggerEventId).toBe(event.id);
      expect(r.dryRun).toBe(false);
    }
  });

  it("without a StartedAt the event id names the incident and the command carries none", async () => {
    const event = unhealthy({ startedAt: null });
    const decisions = await decide(event);
    expect(claimed(decisions).lastIncident).toBe(event.id);
    expect(claimed(decisions).restarts[0]?.incident).toBe(event.id);
    expect("incident" in first(decisions, "command").command).toBe(false);
    for (const r of records(decisions)) expect("incident" in r).toBe(false);
  });

  it("command ids are deterministic per event and differ between events", async () => {
    const a1 = first(await decide(unhealthy()), "command");
    const a2 = first(await decide(unhealthy()), "command");
    const b = first(await decide(unhealthy({ timeNano: "1795808494172958660" })), "command");
    expect(a1.command.commandId).toBe(a2.command.commandId);
    expect(b.command.commandId).not.toBe(a1.command.commandId);
  });

  it("same incident still pending -> resends the same command id without a claim", async () => {
    const commandId = "heal-0123456789abcdef0123456789abcdef";
    const ledger = { value: pendingLedger(commandId), revision: 4 };
    // A different event (a later health transition) for the same run of the container.
    const event = unhealthy({ timeNano: "1795808499000000000" });
    const decisions = await decide(event, fakeContext({ ledger }));
    expect(kinds(decisions)).toEqual(["remediation", "command"]);
    expect(first(decisions, "remediation").record).toMatchObject({
      phase: "restarting",
      code: "restart-sent",
      commandId,
    });
    expect(first(decisions, "command").command).toMatchObject({
      commandId,
      incident: STARTED_AT,
      containerId: CID,
      host: HOST,
      requireUnhealthy: true,
    });
  });

  it("same incident still pending, while paused and quarantined -> still resent", async () => {
    // The resume comes before every guard: a decided restart must get its answer.
    const commandId = "heal-0123456789abcdef0123456789abcdef";
    const ledger = {
      value: pendingLedger(commandId, { quarantine: { since: EVENT_TIME, reason: "x" } }),
      revision: 4,
    };
    const ctx = fakeContext({ ledger, policy: policyOf({ paused: true, dryRun: true }) });
    const decisions = await decide(unhealthy(), ctx);
    expect(kinds(decisions)).toEqual(["remediation", "command"]);
  });

  it.each([["restarted"], ["stopped"], ["recreated"]] as const)(
    "same incident already %s -> only a log decision",
    async (outcome) => {
      const commandId = "heal-0123456789abcdef0123456789abcdef";
      const base = pendingLedger(commandId);
      const ledger = {
        value: { ...base, restarts: base.restarts.map((r) => ({ ...r, outcome })) },
        revision: 5,
      };
      const event = unhealthy();
      expect(await decide(event, fakeContext({ ledger }))).toEqual([
        { kind: "log", level: "debug", msg: "incident already handled", fields: { id: event.id } },
      ]);
    },
  );

  it.each([["refused"], ["failed"], ["skipped"]] as const)(
    "same incident's attempt %s -> attempt 2, under the backoff",
    async (outcome) => {
      const commandId = "heal-0123456789abcdef0123456789abcdef";
      const base = pendingLedger(commandId);
      const ledger = {
        value: { ...base, restarts: base.restarts.map((r) => ({ ...r, outcome })) },
        revision: 5,
      };
      const event = unhealthy();
      const held = await decide(event, fakeContext({ ledger }));
      expect(kinds(held)).toEqual(["claim", "remediation", "retry"]);
      expect(first(held, "remediation").record).toMatchObject({
        id: `heal:${event.id}#2:skipped:backoff`,
        code: "backoff",
        attempt: 2,
      });
      const later = new Date(Date.parse("2026-11-27T19:41:34.500Z") + 10_000);
      const acted = await decide(event, fakeContext({ ledger, now: later, deliveryCount: 2 }));
      expect(kinds(acted)).toEqual(RESTART_KINDS);
      const sent = first(acted, "command").command;
      expect(sent.commandId).not.toBe(commandId);
      expect(sent.commandId).toBe(commandIdFor(event, 2));
      expect(claimed(acted).restarts.map((r) => r.outcome)).toEqual(["pending", outcome]);
      expect(records(acted)[0]).toMatchObject({ phase: "decided", attempt: 2 });
    },
  );

  it("same incident pending under another command id -> only a log decision", async () => {
    const ledger = {
      value: pendingLedger("heal-aaaaaaaaaaaaaaaa", { lastCommandId: "heal-bbbbbbbbbbbbbbbb" }),
      revision: 5,
    };
    expect(kinds(await decide(unhealthy(), fakeContext({ ledger })))).toEqual(["log"]);
  });

  it("keeps at most 50 restarts in the history", async () => {
    const base = previous("2026-11-27T18:00:00.000Z"); // outside the budget's window
    const old = base.value.restarts[0];
    if (!old) throw new Error("fixture");
    const ledger = {
      ...base,
      value: { ...base.value, restarts: Array.from({ length: 50 }, () => old) },
    };
    const value = claimed(await decide(unhealthy(), fakeContext({ ledger })));
    expect(value.restarts).toHaveLength(50);
    expect(value.restarts[0]?.outcome).toBe("pending");
  });

  it("a bad policy label is logged and the fleet default is used", async () => {
    const labels = { autoheal: "true", "autoheal.unhealthy_for": "soon" };
    const decisions = await decide(unhealthy({ labels }));
    expect(decisions[0]).toEqual({
      kind: "log",
      level: "warn",
      msg: 'ignoring a policy label on web: autoheal.unhealthy_for="soon": must be a duration from 0s to 24h',
      fields: { containerId: CID },
    });
    expect(kinds(decisions.slice(1))).toEqual(RESTART_KINDS);
  });

  it("records keep within the schema with the longest host id", async () => {
    const host = "h".repeat(128);
    const decisions = await decide(unhealthy({ host }));
    const { restart } = { restart: first(decisions, "command") };
    const after = [
      ...restart.onReply({
        ok: true,
        reply: reply({ host, outcome: "skipped", code: "already-restarting" }),
      }),
      ...restart.onReply({ ok: false, code: "no-responders", message: "no agent" }),
    ];
    validateAll(after);
    expect(records(after).every((r) => r.id.length <= 256)).toBe(true);
  });
});

describe("decideHeal: the policy", () => {
  it("within the backoff -> keeps the trouble, skipped backoff, retry when it ends", async () => {
    const ledger = previous("2026-11-27T19:41:31.000Z"); // 4 s ago; 1 restart: 10 s
    const event = unhealthy();
    const decisions = await decide(event, fakeContext({ ledger }));
    expect(kinds(decisions)).toEqual(["claim", "remediation", "retry"]);
    expect(first(decisions, "claim")).toMatchObject({ expectedRevision: 7, key: KEY });
    expect(claimed(decisions)).toEqual({
      ...ledger.value,
      lastTroubleAt: EVENT_TIME,
      notHealing: {
        reason: "held",
        code: "backoff",
        message: "restart 2 waits 6s (backoff); will look again",
        since: NOW.toISOString(),
        until: "2026-11-27T19:41:41.000Z",
        incident: STARTED_AT,
      },
    });
    expect(first(decisions, "remediation").record).toMatchObject({
      id: `heal:${event.id}:skipped:backoff`,
      phase: "skipped",
      code: "backoff",
      message: "restart 2 waits 6s (backoff); will look again",
    });
    expect(first(decisions, "retry")).toEqual({ kind: "retry", reason: "backoff", delayMs: 6_000 });
  });

  it("a redelivery within the backoff that teaches nothing new writes nothing", async () => {
    const base = previous("2026-11-27T19:41:31.000Z");
    const notHealing = {
      reason: "held" as const,
      code: "backoff",
      message: "restart 2 waits 6s (backoff); will look again",
      since: NOW.toISOString(),
      incident: STARTED_AT,
    };
    const ledger = { ...base, value: { ...base.value, lastTroubleAt: EVENT_TIME, notHealing } };
    const decisions = await decide(
      unhealthy(),
      fakeContext({ ledger, now: new Date("2026-11-27T19:41:38.000Z"), deliveryCount: 2 }),
    );
    expect(kinds(decisions)).toEqual(["retry"]);
    expect(first(decisions, "retry").delayMs).toBe(3_000);
  });

  it("the backoff doubles: 20 s after 2 restarts, 40 s after 3", async () => {
    const after2 = await decide(
      unhealthy(),
      fakeContext({ ledger: previous("2026-11-27T19:41:31.000Z", 2) }),
    );
    expect(first(after2, "retry").delayMs).toBe(16_000);
    const after3 = await decide(
      unhealthy(),
      fakeContext({ ledger: previous("2026-11-27T19:41:31.000Z", 3) }),
    );
    expect(first(after3, "retry").delayMs).toBe(36_000);
  });

  it("a deferral is retried after at least 50 ms", async () => {
    const ledger = previous("2026-11-27T19:41:25.010Z"); // the backoff ends in 10 ms
    const decisions = await decide(unhealthy(), fakeContext({ ledger }));
    expect(first(decisions, "retry").delayMs).toBe(50);
  });

  it("after the backoff -> claim at the read revision, history kept, one more in a row", async () => {
    const ledger = previous("2026-11-27T19:41:24.000Z"); // 11 s ago
    const decisions = await decide(unhealthy(), fakeContext({ ledger }));
    expect(kinds(decisions)).toEqual(RESTART_KINDS);
    expect(first(decisions, "claim").expectedRevision).toBe(7);
    const value = claimed(decisions);
    expect(value.consecutiveRestarts).toBe(2);
    expect(value.lastRestartAt).toBe(NOW.toISOString());
    expect(value.restarts.map((r) => [r.commandId, r.outcome])).toEqual([
      [first(decisions, "command").command.commandId, "pending"],
      ["heal-prev0000000000000", "restarted"],
    ]);
  });

  it("exactly at the end of the backoff -> acts", async () => {
    const ledger = previous("2026-11-27T19:41:25.000Z"); // 10 s ago
    expect(kinds(await decide(unhealthy(), fakeContext({ ledger })))).toEqual(RESTART_KINDS);
  });

  it("paused -> skipped paused, look again in 30 s", async () => {
    const event = unhealthy();
    const decisions = await decide(event, fakeContext({ policy: policyOf({ paused: true }) }));
    expect(kinds(decisions)).toEqual(["claim", "remediation", "retry"]);
    expect(first(decisions, "remediation").record).toMatchObject({
      id: `heal:${event.id}:skipped:paused`,
      code: "paused",
      message: "healing is paused fleet-wide; will look again",
    });
    expect(first(decisions, "retry")).toEqual({ kind: "retry", reason: "paused", delayMs: 30_000 });
  });

  it("maintenance window on this host -> deferred until it ends", async () => {
    const policy = policyOf({
      maintenance: [
        { start: "2026-11-27T19:00:00Z", end: "2026-11-27T19:42:00Z", hosts: [HOST], reason: "os" },
      ],
    });
    const decisions = await decide(unhealthy(), fakeContext({ policy }));
    expect(first(decisions, "remediation").record).toMatchObject({
      code: "maintenance",
      message: "maintenance window until 2026-11-27T19:42:00.000Z: os; will look again",
    });
    expect(first(decisions, "retry")).toEqual({
      kind: "retry",
      reason: "maintenance",
      delayMs: 25_000,
    });
  });

  it("start period -> deferred until startedAt + period", async () => {
    const labels = { autoheal: "true", "autoheal.start_period": "1m" };
    const decisions = await decide(unhealthy({ labels }));
    expect(first(decisions, "remediation").record.code).toBe("start-period");
    // started 19:41:29.981, now 19:41:35.000
    expect(first(decisions, "retry").delayMs).toBe(54_981);
  });

  it("unhealthy_for label -> deferred until the event is old enough", async () => {
    const labels = { autoheal: "true", "autoheal.unhealthy_for": "30s" };
    const decisions = await decide(unhealthy({ labels }));
    expect(first(decisions, "remediation").record).toMatchObject({
      code: "unhealthy-for",
      message: "unhealthy for 1s; acting after 30s; will look again",
    });
    expect(first(decisions, "retry").delayMs).toBe(29_172);
  });

  it("healthy again since the event -> skipped recovered, no retry", async () => {
    const ledger = {
      value: ledgerEntry({ healthySince: "2026-11-27T19:41:34.900Z" }),
      revision: 3,
    };
    const decisions = await decide(unhealthy(), fakeContext({ ledger }));
    expect(kinds(decisions)).toEqual(["remediation"]);
    expect(first(decisions, "remediation").record).toMatchObject({
      phase: "skipped",
      code: "recovered",
    });
  });

  it("quarantined -> skipped quarantined, no retry, no restart", async () => {
    const ledger = {
      value: ledgerEntry({
        lastTroubleAt: "2026-11-27T19:40:00.000Z",
        quarantine: { since: "2026-11-27T19:40:00.000Z", reason: "budget spent" },
      }),
      revision: 9,
    };
    const event = unhealthy();
    const decisions = await decide(event, fakeContext({ ledger }));
    expect(kinds(decisions)).toEqual(["claim", "remediation"]);
    expect(first(decisions, "remediation").record).toMatchObject({
      id: `heal:${event.id}:skipped:quarantined`,
      code: "quarantined",
      message: "quarantined since 2026-11-27T19:40:00.000Z: budget spent",
    });
  });

  it("budget spent -> quarantine claimed and recorded, nothing restarted", async () => {
    const policy = policyOf({ budget: { restarts: 1, windowSeconds: 600 } });
    const ledger = previous("2026-11-27T19:40:00.000Z"); // 95 s ago, well past its backoff
    const event = unhealthy();
    const decisions = await decide(event, fakeContext({ ledger, policy }));
    expect(kinds(decisions)).toEqual(["claim", "remediation"]);
    const message =
      "1 restarts in 600s spend the budget of 1; quarantined until healthy for 600s or released by hand";
    expect(first(decisions, "claim").expectedRevision).toBe(7);
    expect(claimed(decisions).quarantine).toEqual({ since: NOW.toISOString(), reason: message });
    expect(claimed(decisions).restarts).toEqual(ledger.value.restarts);
    expect(first(decisions, "remediation").record).toMatchObject({
      id: `heal:${event.id}:quarantined:budget-spent`,
      phase: "quarantined",
      code: "budget-spent",
      message,
    });
  });

  it.each([
    ["fleet-wide", { autoheal: "true" }, policyOf({ dryRun: true })],
    ["by label", { autoheal: "true", "autoheal.dry_run": "true" }, BASE_POLICY],
  ])(
    "dry-run %s -> claims the incident and records, sends nothing",
    async (_how, labels, policy) => {
      const event = unhealthy({ labels });
      const decisions = await decide(event, fakeContext({ policy }));
      expect(kinds(decisions)).toEqual(["claim", "remediation"]);
      expect(claimed(decisions)).toEqual(
        ledgerEntry({
          lastIncident: STARTED_AT,
          lastTroubleAt: EVENT_TIME,
          notHealing: {
            reason: "held",
            code: "dry-run",
            message: "container is unhealthy; would restart (dry-run)",
            since: NOW.toISOString(),
            incident: STARTED_AT,
          },
        }),
      );
      const record = first(decisions, "remediation").record;
      expect(record).toMatchObject({
        id: `heal:${event.id}:decided:dry-run`,
        phase: "decided",
        code: "dry-run",
        message: "container is unhealthy; would restart (dry-run)",
        dryRun: true,
      });
      expect("commandId" in record).toBe(false);
    },
  );

  it("a second event of a dry-run incident, the same decision -> writes nothing", async () => {
    const ledger = {
      value: ledgerEntry({
        lastIncident: STARTED_AT,
        lastTroubleAt: EVENT_TIME,
        notHealing: {
          reason: "held",
          code: "dry-run",
          message: "container is unhealthy; would restart (dry-run)",
          since: NOW.toISOString(),
          incident: STARTED_AT,
        },
      }),
      revision: 2,
    };
    const decisions = await decide(
      unhealthy({ source: "resync", unhealthySince: EVENT_TIME, timeNano: "1795808499000000000" }),
      fakeContext({ ledger, policy: policyOf({ dryRun: true }) }),
    );
    expect(decisions).toEqual([]);
  });
});

describe("decideHeal: the storm guard", () => {
  it("a restart first takes a slot under every storm cap", async () => {
    const decisions = await decide(unhealthy());
    const lease = first(decisions, "lease");
    expect(decisions[0]).toBe(lease);
    expect(lease.holder).toBe(first(decisions, "command").command.commandId);
    expect(lease.leases).toEqual(stormLeases(HOST, BASE_POLICY));
    expect(lease.leases).toEqual([
      {
        bucket: "inflight",
        prefix: "host.host-a",
        cap: 5,
        label: "at most 5 restarts at once on host host-a",
      },
      {
        bucket: "inflight",
        prefix: "fleet",
        cap: 20,
        label: "at most 20 restarts at once in the fleet",
      },
      {
        bucket: "rate",
        prefix: "host.host-a",
        cap: 30,
        label: "at most 30 restarts a minute on host host-a",
      },
      {
        bucket: "rate",
        prefix: "fleet",
        cap: 120,
        label: "at most 120 restarts a minute in the fleet",
      },
    ]);
  });

  it("caps come from the policy", async () => {
    const policy = policyOf({ storm: { maxConcurrentPerHost: 1, maxPerMinuteFleet: 0 } });
    const lease = first(await decide(unhealthy(), fakeContext({ policy })), "lease");
    expect(lease.leases.map((l) => l.cap)).toEqual([1, 20, 30, 0]);
  });

  it("a full cap -> skipped storm-cap and a retry within 0.5-1.5 s, the same for an event", async () => {
    const event = unhealthy();
    const lease = first(await decide(event), "lease");
    const denied = lease.onDenied({ cap: "at most 5 restarts at once on host host-a" });
    expect(kinds(denied)).toEqual(["claim", "remediation", "retry"]);
    expect(claimed(denied).notHealing).toMatchObject({ reason: "held", code: "storm-cap" });
    expect(first(denied, "remediation").record).toMatchObject({
      id: `heal:${event.id}:skipped:storm-cap`,
      phase: "skipped",
      code: "storm-cap",
      message: "storm guard: at most 5 restarts at once on host host-a; waiting for a slot",
    });
    const retry = first(denied, "retry");
    expect(retry.reason).toBe("storm-cap");
    expect(retry.delayMs).toBeGreaterThanOrEqual(500);
    expect(retry.delayMs).toBeLessThan(1_500);
    expect(first(lease.onDenied({ cap: "x" }), "retry").delayMs).toBe(retry.delayMs);
  });

  it("a full rate cap -> no retry before its oldest slot expires, then spread by a quarter of that", async () => {
    const lease = first(await decide(unhealthy()), "lease");
    const retry = first(lease.onDenied({ cap: "x", freeInMs: 40_000 }), "retry");
    expect(retry.delayMs).toBeGreaterThanOrEqual(40_000 + 5_000);
    expect(retry.delayMs).toBeLessThan(40_000 + 15_000);
  });

  it("held back again and again -> the wait doubles with each delivery, up to about 5 minutes", async () => {
    const event = unhealthy();
    const waits = await Promise.all(
      [1, 2, 3, 4, 5, 10, 20, 9_999].map(async (deliveryCount) => {
        const lease = first(await decide(event, fakeContext({ deliveryCount })), "lease");
        return first(lease.onDenied({ cap: "x" }), "retry").delayMs;
      }),
    );
    const bounds = [1, 2, 4, 8, 16, 300, 300, 300].map((s) => [s * 500, s * 1_500]);
    waits.forEach((w, i) => {
      const [lo, hi] = bounds[i] as [number, number];
      expect(w).toBeGreaterThanOrEqual(lo);
      expect(w).toBeLessThan(hi);
    });
    expect(stormRetryDelayMs(event.id, 3, { cap: "x" })).toBe(waits[2]);
  });

  it("held-back restarts are spread: a thousand events do not come back in the same second", () => {
    const delays = Array.from({ length: 1_000 }, (_, i) =>
      stormRetryDelayMs(`host-a:${i}:1:unhealthy`, 6, { cap: "x", freeInMs: 60_000 }),
    );
    const seconds = new Map<number, number>();
    for (const d of delays)
      seconds.set(Math.floor(d / 1000), (seconds.get(Math.floor(d / 1000)) ?? 0) + 1);
    // 15 s doubled five times passes the 300 s cap.
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(60_000 + 150_000);
    expect(Math.max(...delays)).toBeLessThan(60_000 + 450_000);
    expect(Math.max(...seconds.values())).toBeLessThan(15);
  });

  it("no slot is taken to resend a pending command, nor in dry-run", async () => {
    const commandId = "heal-0123456789abcdef0123456789abcdef";
    const ledger = { value: pendingLedger(commandId), revision: 4 };
    expect(ofKind(await decide(unhealthy(), fakeContext({ ledger })), "lease")).toEqual([]);
    const dry = await decide(unhealthy(), fakeContext({ policy: policyOf({ dryRun: true }) }));
    expect(ofKind(dry, "lease")).toEqual([]);
  });
});

describe("decideHeal: crashes (die)", () => {
  const RUN = Date.parse(STARTED_AT);
  const DIED = Date.parse(EVENT_TIME);
  const onExit = policyOf({ restartOnExit: true });

  it("non-zero exit, not stopped, restartOnExit -> restart without requireUnhealthy", async () => {
    const event = eventAt("die", DIED, { startedAtMs: RUN, exitCode: 1, stopped: false });
    const decisions = await decide(event, fakeContext({ policy: onExit }));
    expect(kinds(decisions)).toEqual(RESTART_KINDS);
    const { command } = first(decisions, "command");
    expect(command).toEqual({
      type: "fleetheal.cmd.v1.restart",
      v: 1,
      commandId: command.commandId,
      host: HOST,
      containerId: CID,
      reason: "exited with code 1",
      requestedBy: "handler:heal",
      incident: iso(RUN),
    });
    expect("requireUnhealthy" in command).toBe(false);
    expect(records(decisions).map((r) => [r.phase, r.code, r.message])).toEqual([
      ["decided", "exit", "container exited with an error; restarting it"],
      ["restarting", "restart-sent", "restart command sent to the agent"],
    ]);
    expect(records(decisions)[0]?.id).toBe(`heal:${event.id}:decided:exit`);
  });

  it("the label restart_on_exit=true turns it on for one container", async () => {
    const labels = { autoheal: "true", "autoheal.restart_on_exit": "true" };
    const event = eventAt("die", DIED, { startedAtMs: RUN, exitCode: 137, labels });
    const decisions = await decide(event);
    expect(first(decisions, "command").command.reason).toBe("exited with code 137");
  });

  it("a crash is acted on at once, whatever unhealthy_for says", async () => {
    const labels = { autoheal: "true", "autoheal.unhealthy_for": "5m" };
    const event = eventAt("die", DIED, { startedAtMs: RUN, exitCode: 2, labels });
    expect(kinds(await decide(event, fakeContext({ policy: onExit })))).toEqual(RESTART_KINDS);
  });

  it.each([
    ["stopped by someone", { exitCode: 1, stopped: true }, onExit],
    ["exit code 0", { exitCode: 0 }, onExit],
    ["no exit code", {}, onExit],
    ["restartOnExit off (the default)", { exitCode: 1 }, BASE_POLICY],
  ] as const)("%s -> no decisions, nothing read", async (_why, patch, policy) => {
    const ctx = fakeContext({ policy });
    expect(await decide(eventAt("die", DIED, { startedAtMs: RUN, ...patch }), ctx)).toEqual([]);
    expect(ctx.reads).toEqual([]);
  });

  it("the label restart_on_exit=false turns it off for one container", async () => {
    const labels = { autoheal: "true", "autoheal.restart_on_exit": "false" };
    const event = eventAt("die", DIED, { startedAtMs: RUN, exitCode: 1, labels });
    expect(await decide(event, fakeContext({ policy: onExit }))).toEqual([]);
  });

  it("a pending crash restart is resent without requireUnhealthy", async () => {
    const commandId = "heal-0123456789abcdef0123456789abcdef";
    const ledger = { value: pendingLedger(commandId), revision: 4 };
    const event: ContainerEvent = {
      ...unhealthy(),
      id: `${HOST}:${CID}:1795808494172958659:die`,
      action: "die",
      exitCode: 1,
    };
    const decisions = await decide(event, fakeContext({ ledger, policy: onExit }));
    expect(kinds(decisions)).toEqual(["remediation", "command"]);
    const { command } = first(decisions, "command");
    expect(command.commandId).toBe(commandId);
    expect("requireUnhealthy" in command).toBe(false);
  });
});

describe("decideHeal: healthy events", () => {
  const HEALTHY_AT = Date.parse("2026-11-27T19:41:34.000Z");
  const healthy = () => eventAt("healthy", HEALTHY_AT, { startedAtMs: Date.parse(STARTED_AT) });
  const quarantine = { since: "2026-11-27T19:00:00.000Z", reason: "budget spent" };

  it("without a ledger entry -> no decisions", async () => {
    const ctx = fakeContext();
    expect(await decide(healthy(), ctx)).toEqual([]);
    expect(ctx.reads).toEqual([`ledger/${KEY}`]);
  });

  it("starts a healthy stretch", async () => {
    const value = ledgerEntry({
      consecutiveRestarts: 2,
      lastTroubleAt: "2026-11-27T19:41:00.000Z",
    });
    const decisions = await decide(healthy(), fakeContext({ ledger: { value, revision: 3 } }));
    expect(decisions).toEqual([
      {
        kind: "claim",
        store: "ledger",
        key: KEY,
        expectedRevision: 3,
        value: { ...value, healthySince: iso(HEALTHY_AT) },
      },
    ]);
  });

  it("a stretch already running, or an event older than the last trouble -> nothing", async () => {
    const running = ledgerEntry({ healthySince: "2026-11-27T19:30:00.000Z" });
    expect(
      await decide(healthy(), fakeContext({ ledger: { value: running, revision: 3 } })),
    ).toEqual([]);
    const late = ledgerEntry({ lastTroubleAt: "2026-11-27T19:41:34.500Z" });
    expect(await decide(healthy(), fakeContext({ ledger: { value: late, revision: 3 } }))).toEqual(
      [],
    );
  });

  it("quarantined and not healthy long enough -> stretch started, look again when due", async () => {
    const value = ledgerEntry({ quarantine });
    const decisions = await decide(healthy(), fakeContext({ ledger: { value, revision: 3 } }));
    expect(kinds(decisions)).toEqual(["claim", "retry"]);
    expect(claimed(decisions).healthySince).toBe(iso(HEALTHY_AT));
    // release due at 19:51:34, but a deferral is at most 300 s
    expect(first(decisions, "retry")).toEqual({
      kind: "retry",
      reason: "quarantine-release",
      delayMs: 300_000,
    });
  });

  it("quarantined and healthy for releaseAfter -> released, backoff starts over", async () => {
    const value = ledgerEntry({
      quarantine,
      consecutiveRestarts: 4,
      healthySince: "2026-11-27T19:31:35.000Z", // 600 s before NOW
    });
    const event = healthy();
    const decisions = await decide(event, fakeContext({ ledger: { value, revision: 3 } }));
    expect(kinds(decisions)).toEqual(["claim", "remediation"]);
    const { quarantine: _gone, ...rest } = value;
    expect(claimed(decisions)).toEqual({
      ...rest,
      consecutiveRestarts: 0,
      // A release starts a fresh restart budget.
      releasedAt: new Date(NOW).toISOString(),
    });
    expect(first(decisions, "remediation").record).toMatchObject({
      id: `heal:${event.id}:released:healthy`,
      phase: "released",
      code: "healthy",
      message: "healthy since 2026-11-27T19:31:35.000Z (600s); released from quarantine",
    });
  });

  it("the release time follows the container's release_after label", async () => {
    const value = ledgerEntry({ quarantine, healthySince: "2026-11-27T19:41:00.000Z" });
    const event = eventAt("healthy", HEALTHY_AT, {
      labels: { autoheal: "true", "autoheal.budget.release_after": "30s" },
    });
    const decisions = await decide(event, fakeContext({ ledger: { value, revision: 3 } }));
    expect(records(decisions).map((r) => r.phase)).toEqual(["released"]);
  });
});

describe("after the agent answers", () => {
  it("the answer to a command resent by another trigger of the incident is the same record", async () => {
    const { restart } = await firstRestart();
    const commandId = restart.command.commandId;
    const ledger = { value: pendingLedger(commandId), revision: 4 };
    // A later trigger of the same run (a deferred Docker event, back after another claimed).
    const later = unhealthy({ timeNano: "1795808499000000000" });
    const resent = first(await decide(later, fakeContext({ ledger })), "command");
    expect(resent.command.commandId).toBe(commandId);
    const answer = (c: typeof restart) =>
      first(c.onReply({ ok: true, reply: reply({ commandId }) }), "remediation").record.id;
    expect(answer(resent)).toBe(answer(restart));
  });

  it("restarted -> ledger outcome restarted and a restarted record", async () => {
    const { restart } = await firstRestart();
    const commandId = restart.command.commandId;
    const after = restart.onReply({ ok: true, reply: reply({ commandId }) });
    expect(kinds(after)).toEqual(["update", "remediation"]);
    validateAll(after);
    expect(first(after, "remediation").record).toMatchObject({
      phase: "restarted",
      code: "restarted",
      message: "restarted (stop timeout 10s)",
      commandId,
      id: `heal:${commandId}:restarted:restarted`,
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
    const mine = pendingLedger(commandId).restarts[0];
    if (!mine) throw new Error("fixture");
    const before = pendingLedger(commandId, { restarts: [mine, older], consecutiveRestarts: 3 });
    const updated = update.update(before) as LedgerEntry;
    expect(LedgerEntry.parse(updated)).toEqual(updated);
    expect(updated.restarts.map((r) => [r.commandId, r.outcome])).toEqual([
      [commandId, "restarted"],
      ["heal-old", "pending"],
    ]);
    expect(updated.lastIncident).toBe(STARTED_AT);
    expect(updated.consecutiveRestarts).toBe(3);
    // An entry an operator deleted starts a new, empty history.
    expect(update.update(undefined)).toEqual({
      v: 1,
      host: HOST,
      containerId: CID,
      restarts: [],
      consecutiveRestarts: 0,
    });
  });

  it.each([
    ["refused", "not-opted-in", "skipped"],
    ["refused", "not-found", "skipped"],
    ["skipped", "not-unhealthy", "skipped"],
    ["skipped", "stale-incident", "skipped"],
    ["skipped", "already-restarting", "skipped"],
  ] as const)("reply %s/%s -> record %s with the agent's code", async (outcome, code, phase) => {
    const { restart } = await firstRestart();
    const commandId = restart.command.commandId;
    const after = restart.onReply({
      ok: true,
      reply: reply({ commandId, outcome, code, message: `agent says ${code}` }),
    });
    expect(kinds(after)).toEqual(["update", "remediation"]);
    validateAll(after);
    expect(first(after, "remediation").record).toMatchObject({
      id: `heal:${commandId}:${phase}:${code}`,
      phase,
      code,
      message: `agent says ${code}`,
    });
    const updated = first(after, "update").update(pendingLedger(commandId)) as LedgerEntry;
    expect(LedgerEntry.parse(updated)).toEqual(updated);
    expect(updated.restarts[0]?.outcome).toBe(outcome);
  });

  it("reply failed/docker-error -> stuck with the failure, tried again when the backoff ends", async () => {
    const { restart } = await firstRestart();
    const commandId = restart.command.commandId;
    const after = restart.onReply({
      ok: true,
      reply: reply({ commandId, outcome: "failed", code: "docker-error", message: "no mount" }),
    });
    expect(kinds(after)).toEqual(["update", "remediation", "retry"]);
    validateAll(after);
    expect(first(after, "remediation").record).toMatchObject({
      id: `heal:${commandId}:failed:docker-error`,
      phase: "failed",
      code: "docker-error",
      message: "no mount",
    });
    // The first restart makes the next one wait the backoff's initial 10 s.
    expect(first(after, "retry")).toMatchObject({ delayMs: 10_000 });
    const updated = first(after, "update").update(pendingLedger(commandId)) as LedgerEntry;
    expect(LedgerEntry.parse(updated)).toEqual(updated);
    expect(updated.restarts[0]?.outcome).toBe("failed");
    expect(updated.notHealing).toEqual({
      reason: "stuck",
      code: "docker-error",
      message: "no mount",
      since: NOW.toISOString(),
      incident: STARTED_AT,
    });
    const succeeded = first(
      restart.onReply({ ok: true, reply: reply({ commandId }) }),
      "update",
    ).update(updated) as LedgerEntry;
    expect(succeeded.notHealing).toBeUndefined();
  });

  it("a failure on the last delivery is recorded with no retry", async () => {
    const { restart } = await firstRestart(fakeContext({ lastDelivery: true }));
    const after = restart.onReply({
      ok: true,
      reply: reply({ outcome: "failed", code: "docker-error", message: "x" }),
    });
    expect(kinds(after)).toEqual(["update", "remediation"]);
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
    expect(kinds(after)).toEqual(["update", "remediation"]);
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

  it.each(["bad-reply", "command-refused", "error"] as const)(
    "%s fails at once, even before the last delivery, and is tried again under the backoff",
    async (code) => {
      const { restart } = await firstRestart(fakeContext({ lastDelivery: false }));
      const after = restart.onReply({ ok: false, code, message: "schema mismatch" });
      expect(kinds(after)).toEqual(["update", "remediation", "retry"]);
      validateAll(after);
      expect(first(after, "remediation").record).toMatchObject({ phase: "failed", code });
    },
  );

  it("a resent pending command's answer updates the ledger the same way", async () => {
    const commandId = "heal-0123456789abcdef0123456789abcdef";
    const ledger = { value: pendingLedger(commandId), revision: 4 };
    const restart = first(await decide(unhealthy(), fakeContext({ ledger })), "command");
    const after = restart.onReply({ ok: true, reply: reply({ commandId, duplicate: true }) });
    validateAll(after);
    const updated = first(after, "update").update(ledger.value) as LedgerEntry;
    expect(updated.restarts[0]?.outcome).toBe("restarted");
  });
});

describe("restart deadline (minTimeoutMs)", () => {
  async function deadline(labels: Record<string, string>) {
    return first(await decide(unhealthy({ labels })), "command").minTimeoutMs;
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
    const restart = first(await decide(event, fakeContext({ ledger })), "command");
    expect(restart.command.commandId).toBe(commandId);
    expect(restart.minTimeoutMs).toBe(75_000);
  });
});

/**
 * Whole-flow scenarios: each delivery decides with decideHeal at a time of the test's choosing,
 * and the real DecisionRunner applies the decisions to an in-memory ledger, storm guard and
 * agent (which restarts unless a test says otherwise).
 */
function fleetWith(initial: HealPolicy) {
  const io = new InMemoryHandlerIo();
  let policy = initial;
  let now = 0;
  const runner = runnerOn(io, { policy: () => policy, now: () => new Date(now) });
  const retries: number[] = [];
  return {
    io,
    retries,
    set policy(next: HealPolicy) {
      policy = next;
    },
    /** Delivers `event` at `nowMs`; returns the kinds of the decisions, as decided. */
    async deliver(event: ContainerEvent, nowMs: number, deliveryCount = 1): Promise<string[]> {
      now = nowMs;
      let decided: Decision[] = [];
      let lostClaims = 0;
      const outcome = await runner.run(
        async (ctx) => {
          decided = await decideHeal(event, ctx, OPTIONS);
          validateAll(decided);
          return decided;
        },
        {
          log: pino({ level: "silent" }),
          deliveryCount,
          lastDelivery: false,
          onLostClaim: () => lostClaims++,
        },
      );
      // One replica, one message at a time: every claim is made at the revision it read.
      expect(lostClaims).toBe(0);
      if (outcome.kind === "retry") retries.push(outcome.delayMs);
      return kinds(decided);
    },
    /** Records' `phase:code`, and forgets them. */
    take: () => io.takeRecords(),
    /** Restarts sent to the agent, in order. */
    get commands(): ContainerCommandDraft[] {
      return io.commands.map((c) => c.command);
    },
    get entry(): LedgerEntry {
      const entry = io.value("ledger", KEY);
      if (!entry) throw new Error("no ledger entry");
      return entry;
    },
    /** Replaces the ledger entry, as an operator or another replica would. */
    setLedger(value: LedgerEntry): void {
      io.put("ledger", KEY, value);
    },
  };
}
type Fleet = ReturnType<typeof fleetWith>;

describe("whole flows", () => {
  const T0 = Date.parse("2026-11-27T19:00:00.000Z");

  it("always unhealthy: restart at once, back off 10 s, 20 s, 40 s, quarantine, release", async () => {
    const fleet = fleetWith(
      policyOf({ budget: { restarts: 4, windowSeconds: 3_600, releaseAfterHealthySeconds: 600 } }),
    );
    // Each restart starts a new run (a new incident), which turns unhealthy 4 s later.
    const runs = [T0 - 120 * S, T0 + 2 * S, T0 + 12 * S, T0 + 32 * S, T0 + 72 * S];
    const sick = (run: number, at: number) => eventAt("unhealthy", at, { startedAtMs: run });

    // Run 1: first restart, immediately.
    expect(await fleet.deliver(sick(runs[0] ?? 0, T0 - S), T0)).toEqual(RESTART_KINDS);
    expect(fleet.take()).toEqual([
      "decided:unhealthy",
      "restarting:restart-sent",
      "restarted:restarted",
    ]);
    expect(fleet.entry).toMatchObject({ consecutiveRestarts: 1, lastRestartAt: iso(T0) });

    // Runs 2-4: each waits for its backoff (10 s, 20 s, 40 s after the last restart).
    const backoffs: [number, number, number][] = [
      // [run start, event time, restart due]
      [runs[1] ?? 0, T0 + 6 * S, T0 + 10 * S],
      [runs[2] ?? 0, T0 + 16 * S, T0 + 30 * S],
      [runs[3] ?? 0, T0 + 36 * S, T0 + 70 * S],
    ];
    for (const [i, [run, at, due]] of backoffs.entries()) {
      const event = sick(run, at);
      expect(await fleet.deliver(event, at)).toEqual(["claim", "remediation", "retry"]);
      expect(fleet.retries.at(-1)).toBe(due - at);
      expect(fleet.io.records.at(-1)?.message).toBe(
        `restart ${i + 2} waits ${(due - at) / S}s (backoff); will look again`,
      );
      // JetStream redelivers the same message when the backoff ends.
      expect(await fleet.deliver(event, due, 2)).toEqual(RESTART_KINDS);
      expect(fleet.take()).toEqual([
        "skipped:backoff",
        "decided:unhealthy",
        "restarting:restart-sent",
        "restarted:restarted",
      ]);
      expect(fleet.entry).toMatchObject({ consecutiveRestarts: i + 2, lastRestartAt: iso(due) });
    }
    expect(fleet.retries).toEqual([4 * S, 14 * S, 34 * S]);

    // Run 5: four restarts in the hour spend the budget.
    const run5 = runs[4] ?? 0;
    expect(await fleet.deliver(sick(run5, T0 + 76 * S), T0 + 76 * S)).toEqual([
      "claim",
      "remediation",
    ]);
    expect(fleet.take()).toEqual(["quarantined:budget-spent"]);
    expect(fleet.entry.quarantine).toEqual({
      since: iso(T0 + 76 * S),
      reason:
        "4 restarts in 3600s spend the budget of 4; quarantined until healthy for 600s or released by hand",
    });
    expect(fleet.commands).toHaveLength(4);
    expect(fleet.commands.map((c) => c.incident)).toEqual(runs.slice(0, 4).map(iso));
    expect(fleet.commands.every((c) => c.requireUnhealthy === true)).toBe(true);
    expect(new Set(fleet.commands.map((c) => c.commandId)).size).toBe(4);

    // It recovers on its own; the healthy event comes back until the release is due.
    const healthy = eventAt("healthy", T0 + 100 * S, { startedAtMs: run5 });
    expect(await fleet.deliver(healthy, T0 + 100 * S)).toEqual(["claim", "retry"]);
    expect(fleet.entry.healthySince).toBe(iso(T0 + 100 * S));
    expect(await fleet.deliver(healthy, T0 + 400 * S, 2)).toEqual(["retry"]);
    expect(fleet.retries.slice(3)).toEqual([300 * S, 300 * S]);
    expect(fleet.take()).toEqual([]);
    expect(await fleet.deliver(healthy, T0 + 700 * S, 3)).toEqual(["claim", "remediation"]);
    expect(fleet.take()).toEqual(["released:healthy"]);
    expect(fleet.entry.quarantine).toBeUndefined();
    expect(fleet.entry.consecutiveRestarts).toBe(0);
    expect(fleet.entry.restarts.map((r) => r.outcome)).toEqual([
      "restarted",
      "restarted",
      "restarted",
      "restarted",
    ]);
    expect(fleet.commands).toHaveLength(4);
  });

  it("a crash loop with restartOnExit: restart, ignore the agent's own stop, back off", async () => {
    const fleet = fleetWith(policyOf({ restartOnExit: true }));
    const run1 = T0 - 60 * S;
    expect(
      await fleet.deliver(eventAt("die", T0 - S, { startedAtMs: run1, exitCode: 1 }), T0),
    ).toEqual(RESTART_KINDS);
    const [command] = fleet.commands;
    expect(command?.reason).toBe("exited with code 1");
    expect(command?.requireUnhealthy).toBeUndefined();
    expect(fleet.take()).toEqual([
      "decided:exit",
      "restarting:restart-sent",
      "restarted:restarted",
    ]);

    // Someone stops run 2: not a crash, nothing read.
    const run2 = T0 + S;
    expect(
      await fleet.deliver(
        eventAt("die", T0 + 2 * S, { startedAtMs: run2, exitCode: 143, stopped: true }),
        T0 + 2 * S,
      ),
    ).toEqual([]);
    // Run 2 crashes 3 s after the restart: the 10 s backoff applies to crashes too.
    const crash = eventAt("die", T0 + 3 * S, { startedAtMs: run2, exitCode: 1 });
    expect(await fleet.deliver(crash, T0 + 3 * S)).toEqual(["claim", "remediation", "retry"]);
    expect(fleet.retries).toEqual([7 * S]);
    expect(await fleet.deliver(crash, T0 + 10 * S, 2)).toEqual(RESTART_KINDS);
    expect(fleet.take()).toEqual([
      "skipped:backoff",
      "decided:exit",
      "restarting:restart-sent",
      "restarted:restarted",
    ]);
    expect(fleet.entry.consecutiveRestarts).toBe(2);
    // A redelivery of the handled crash does nothing more.
    expect(await fleet.deliver(crash, T0 + 11 * S, 3)).toEqual(["log"]);
    expect(fleet.commands).toHaveLength(2);
  });

  it("ten healthy minutes after a restart start the backoff over", async () => {
    const fleet = fleetWith(BASE_POLICY);
    const run1 = T0 - 60 * S;
    await fleet.deliver(eventAt("unhealthy", T0 - S, { startedAtMs: run1 }), T0);
    const run2 = T0 + 2 * S;
    await fleet.deliver(eventAt("healthy", T0 + 5 * S, { startedAtMs: run2 }), T0 + 5 * S);
    expect(fleet.entry.healthySince).toBe(iso(T0 + 5 * S));
    // Unhealthy again 600 s into the healthy stretch: restarted at once, counting from 1 again.
    const at = T0 + 605 * S;
    expect(await fleet.deliver(eventAt("unhealthy", at, { startedAtMs: run2 }), at)).toEqual(
      RESTART_KINDS,
    );
    expect(fleet.entry.consecutiveRestarts).toBe(1);
    expect(fleet.entry.healthySince).toBeUndefined();
  });

  it("a healthy event that beat the trouble it follows starts no stretch", async () => {
    const fleet = fleetWith(BASE_POLICY);
    const run = T0 - 60 * S;
    await fleet.deliver(eventAt("unhealthy", T0 - S, { startedAtMs: run }), T0);
    // A late copy of an older healthy event.
    expect(
      await fleet.deliver(eventAt("healthy", T0 - 2 * S, { startedAtMs: run }), T0 + S),
    ).toEqual([]);
    expect(fleet.entry.healthySince).toBeUndefined();
  });
});

/*
 * Product bugs: these tests state the correct behaviour and fail until heal.ts is fixed (see the
 * report that came with them).
 */
describe("regressions (heal.ts)", () => {
  const T0 = Date.parse("2026-11-27T19:00:00.000Z");
  const RUN = T0 - 600 * S; // the quarantined run: nothing restarts it
  const small = policyOf({
    budget: { restarts: 1, windowSeconds: 60, releaseAfterHealthySeconds: 120 },
  });

  /** A fleet whose container was restarted once (an earlier run), then quarantined in RUN. */
  async function quarantinedFleet(): Promise<Fleet> {
    const fleet = fleetWith(small);
    await fleet.deliver(
      eventAt("unhealthy", T0 - 700 * S, { startedAtMs: T0 - 900 * S }),
      T0 - 700 * S,
    );
    // RUN turns unhealthy within the budget's 60 s window of that restart.
    fleet.setLedger({
      ...fleet.entry,
      lastRestartAt: iso(T0 - 30 * S),
      restarts: fleet.entry.restarts.map((r) => ({ ...r, at: iso(T0 - 30 * S) })),
    });
    expect(await fleet.deliver(eventAt("unhealthy", T0, { startedAtMs: RUN }), T0)).toEqual([
      "claim",
      "remediation",
    ]);
    expect(fleet.take()).toEqual([
      "decided:unhealthy",
      "restarting:restart-sent",
      "restarted:restarted",
      "quarantined:budget-spent",
    ]);
    return fleet;
  }

  it("trouble in the quarantined run ends the healthy stretch: no release", async () => {
    const fleet = await quarantinedFleet();
    const healthy = eventAt("healthy", T0 + 10 * S, { startedAtMs: RUN });
    expect(await fleet.deliver(healthy, T0 + 10 * S)).toEqual(["claim", "retry"]);
    // Unhealthy again, same run, before the release is due.
    await fleet.deliver(eventAt("unhealthy", T0 + 60 * S, { startedAtMs: RUN }), T0 + 60 * S);
    expect(fleet.entry.healthySince).toBeUndefined();
    // The healthy event comes back when the release was due: the stretch was broken.
    await fleet.deliver(healthy, T0 + 130 * S, 2);
    expect(fleet.take()).not.toContain("released:healthy");
    expect(fleet.entry.quarantine).toBeDefined();
  });

  it("after a release, the container is healed again even in the quarantined run", async () => {
    const fleet = await quarantinedFleet();
    const healthy = eventAt("healthy", T0 + 10 * S, { startedAtMs: RUN });
    await fleet.deliver(healthy, T0 + 10 * S);
    await fleet.deliver(healthy, T0 + 130 * S, 2);
    expect(fleet.take()).toEqual(["released:healthy"]);
    // Unhealthy again, same run (nothing restarted it while it was quarantined).
    const at = T0 + 200 * S;
    const decisions = await fleet.deliver(eventAt("unhealthy", at, { startedAtMs: RUN }), at);
    expect(decisions).toEqual(RESTART_KINDS);
    expect(fleet.commands.at(-1)?.incident).toBe(iso(RUN));
  });

  it.each([
    // [why, policy at the first delivery, policy at the redelivery, seconds, deliveries]
    [
      "unhealthy_for longer than maxEventAgeMs",
      { unhealthyForSeconds: 600 },
      { unhealthyForSeconds: 600 },
      600,
      3,
    ],
    ["a 20-minute pause", { paused: true }, {}, 1_200, 81],
    [
      "a 1-hour maintenance window",
      { maintenance: [{ start: iso(T0 - 3_700 * S), end: iso(T0) }] },
      {},
      3_600,
      13,
    ],
  ])(
    "%s: the deferred event is acted on when it comes back",
    async (_why, before, after, seconds, count) => {
      const eventTime = T0 - seconds * S;
      const event = eventAt("unhealthy", eventTime, { startedAtMs: eventTime - 3_600 * S });
      const fleet = fleetWith(policyOf(before));
      // Fresh on its first delivery: deferred.
      expect(await fleet.deliver(event, eventTime)).toEqual(["claim", "remediation", "retry"]);
      // Redelivered (after more deferrals) once nothing holds it back any more.
      fleet.policy = policyOf(after);
      const decisions = await fleet.deliver(event, T0, count);
      expect(fleet.take().slice(1)).not.toContain("skipped:stale-event");
      expect(decisions).toEqual(RESTART_KINDS);
    },
  );

  it("a first delivery that is already stale is still skipped", async () => {
    const event = eventAt("unhealthy", T0 - 600 * S, { startedAtMs: T0 - 3_600 * S });
    const decisions = await decide(event, fakeContext({ now: new Date(T0) }));
    expect(records(decisions).map((r) => r.code)).toEqual(["stale-event"]);
  });

  /** Incident A's restart is still pending (its replica died); then incident B comes. */
  function pendingA(): Versioned<LedgerEntry> {
    const A = iso(T0 - 900 * S);
    return {
      value: ledgerEntry({
        lastIncident: A,
        lastCommandId: "heal-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        lastRestartAt: iso(T0 - 30 * S),
        consecutiveRestarts: 1,
        restarts: [
          {
            at: iso(T0 - 30 * S),
            incident: A,
            commandId: "heal-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            outcome: "pending",
          },
        ],
      }),
      revision: 4,
    };
  }

  it.each([
    ["dry-run", policyOf({ dryRun: true })],
    ["quarantine", small],
  ])(
    "a redelivery after a %s decision never resends another incident's command",
    async (_d, policy) => {
      const fleet = fleetWith(policy);
      fleet.setLedger(pendingA().value);
      const eventB = eventAt("unhealthy", T0 - S, { startedAtMs: T0 - 20 * S });
      const first = await fleet.deliver(eventB, T0);
      expect(first).not.toContain("restart");
      // The same event again (say the record's publish failed after the claim).
      const again = await fleet.deliver(eventB, T0 + S, 2);
      expect(again).not.toContain("restart");
      expect(fleet.commands).toEqual([]);
      expect(fleet.take()).not.toContain("restarting:restart-sent");
    },
  );
});

/** The image breaker's count that goes along with the storm slots of a restart. */
function breakerCount(lease: Of<"lease">): Of<"update"> {
  const counted = lease.alongside?.find((d) => d.kind === "update" && d.store === "breakers");
  if (counted?.kind !== "update") throw new Error("no breaker count alongside the lease");
  expect(counted.onStored).toBeTypeOf("function");
  return counted;
}

describe("decideHeal: the image breaker", () => {
  it("counts each restart against its image, and holds back when the breaker opens", async () => {
    const breakerOn = policyOf({ storm: { imageBreaker: { failures: 2, windowSeconds: 60 } } });
    const ctx0 = fakeContext({ policy: breakerOn });
    const initial = await decide(unhealthy(), ctx0);
    // Both read before anything is decided: a restart waits for one round trip of reads.
    expect(ctx0.reads).toEqual([`breakers/${imageKey({ name: "nginx:1.27" })}`, `ledger/${KEY}`]);
    // Counted while the storm slots are taken, before the ledger claim.
    const lease = first(initial, "lease");
    const counted = breakerCount(lease);
    // Read with the ledger and absent: the first count creates the key without reading again.
    expect(counted.read).toBeNull();
    expect(kinds(initial)).toEqual(RESTART_KINDS);
    const stored = counted.update(undefined) as ImageFailures;
    expect(stored.failures.map((f) => f.containerId)).toEqual([CID]);
    // As stored, alone, it leaves the breaker closed: the restart goes on.
    expect(counted.onStored?.(stored)).toEqual([]);

    // A second container of the same image fails while the first is still counted.
    const base = unhealthy({ timeNano: "1795808494172958700" });
    const otherId = "cd".repeat(32);
    const other: ContainerEvent = {
      ...base,
      id: base.id.replace(CID, otherId),
      container: { ...base.container, id: otherId, name: "other" },
    };
    const ctx = fakeContext({ policy: breakerOn, breakers: { value: stored, revision: 7 } });
    const held = await decide(other, ctx);
    expect(ctx.reads).toContain(`breakers/${imageKey({ name: base.container.image })}`);
    expect(held.some((d) => d.kind === "command")).toBe(false);
    expect(records(held).map((r) => [r.phase, r.code])).toEqual([["quarantined", "image-breaker"]]);
    const retry = first(held, "retry");
    expect(retry.reason).toBe("image-breaker");
    // The window first, then the same growing spread as a storm-capped restart.
    expect(retry.delayMs).toBeGreaterThanOrEqual(60_000 + 7_500);
    expect(retry.delayMs).toBeLessThan(60_000 + 22_500);
    // Counted with a plain update from what was read: whatever another replica counts
    // meanwhile, this restart is held back, so a conflict need not re-decide.
    const tally = first(held, "update");
    expect(tally).toMatchObject({ store: "breakers", read: { revision: 7 } });
    expect(held.filter((d) => d.kind === "claim" && d.store === "breakers")).toEqual([]);
    const recounted = tally.update(stored) as ImageFailures;
    expect(ImageFailures.parse(recounted)).toEqual(recounted);
    expect(recounted.failures.map((f) => f.containerId)).toEqual([otherId, CID]);
    // Applied to what another replica wrote meanwhile, it keeps theirs too (here of another
    // host: one host keeps no more containers than the threshold).
    const third = {
      ...recounted.failures[0],
      host: "host-b",
      containerId: "ef".repeat(32),
    } as ImageFailures["failures"][number];
    const raced = tally.update({
      ...stored,
      failures: [third, ...stored.failures],
    }) as ImageFailures;
    expect(raced.failures.map((f) => f.containerId)).toEqual([otherId, "ef".repeat(32), CID]);

    // Its redelivery counts nothing new: the open breaker is left as it is.
    const again = await decide(
      other,
      fakeContext({
        policy: breakerOn,
        breakers: { value: recounted, revision: 8 },
        deliveryCount: 2,
      }),
    );
    expect(records(again).map((r) => [r.phase, r.code])).toEqual([
      ["quarantined", "image-breaker"],
    ]);
    const breakerWrites = again.filter(
      (d) => (d.kind === "claim" || d.kind === "update") && d.store === "breakers",
    );
    expect(breakerWrites).toEqual([]);
    expect(first(again, "retry").delayMs).toBeGreaterThanOrEqual(60_000 + 15_000);
  });

  it("a trigger it held back, looked at again after the window, finds the failures aged out", async () => {
    const breakerOn = policyOf({ storm: { imageBreaker: { failures: 2, windowSeconds: 60 } } });
    const failedAt = Date.parse(EVENT_TIME);
    const otherId = "cd".repeat(32);
    const both = imageFailures({
      image: "nginx:1.27",
      failures: [otherId, CID].map((containerId) => ({
        at: iso(failedAt),
        host: HOST,
        containerId,
        incident: STARTED_AT,
      })),
    });
    const breakers = { value: both, revision: 4 };
    // Within the window: still held back.
    const held = await decide(
      unhealthy(),
      fakeContext({
        policy: breakerOn,
        breakers,
        now: new Date(failedAt + 59 * S),
        deliveryCount: 2,
      }),
    );
    expect(records(held).map((r) => r.code)).toEqual(["image-breaker"]);
    // After it, counted from now: only this container is failing.
    const later = await decide(
      unhealthy(),
      fakeContext({
        policy: breakerOn,
        breakers,
        now: new Date(failedAt + 61 * S),
        deliveryCount: 2,
      }),
    );
    expect(kinds(later)).toEqual(RESTART_KINDS);
    const counted = breakerCount(first(later, "lease"));
    expect(counted).toMatchObject({ read: breakers });
    const stored = counted.update(both) as ImageFailures;
    expect(stored.failures.map((f) => f.containerId)).toEqual([CID]);
  });

  it("a restart is held back when the count as stored opened the breaker meanwhile", async () => {
    const breakerOn = policyOf({ storm: { imageBreaker: { failures: 2, windowSeconds: 60 } } });
    // Read while closed: this container goes for a restart, counting itself.
    const decisions = await decide(unhealthy(), fakeContext({ policy: breakerOn }));
    const counted = breakerCount(first(decisions, "lease"));
    // Another container of the image was counted first (another message, another replica).
    const otherId = "cd".repeat(32);
    const theirs = imageFailures({
      image: "nginx:1.27",
      failures: [{ at: EVENT_TIME, host: HOST, containerId: otherId, incident: STARTED_AT }],
    });
    const stored = counted.update(theirs) as ImageFailures;
    expect(stored.failures.map((f) => f.containerId).sort()).toEqual([CID, otherId].sort());
    const after = counted.onStored?.(stored) ?? [];
    validateAll(after);
    expect(records(after).map((r) => [r.phase, r.code])).toEqual([
      ["quarantined", "image-breaker"],
    ]);
    expect(records(after)[0]?.message).toMatch(/^2 containers of image nginx:1\.27/);
    expect(first(after, "retry").reason).toBe("image-breaker");
    expect(after.some((d) => d.kind === "command")).toBe(false);
  });

  it("a closed breaker is written even when it counts nothing new, so that its count is current", async () => {
    const breakerOn = policyOf({ storm: { imageBreaker: { failures: 5, windowSeconds: 60 } } });
    const initial = await decide(unhealthy(), fakeContext({ policy: breakerOn }));
    const stored = breakerCount(first(initial, "lease")).update(undefined) as ImageFailures;
    const redelivered = await decide(
      unhealthy(),
      fakeContext({
        policy: breakerOn,
        breakers: { value: stored, revision: 3 },
        deliveryCount: 2,
      }),
    );
    const again = breakerCount(first(redelivered, "lease"));
    expect(again).toMatchObject({ read: { revision: 3 } });
    expect(again.update(stored)).toEqual(stored);
  });

  it("the breaker is not read when it is off", async () => {
    const ctx = fakeContext();
    await decide(unhealthy(), ctx);
    expect(ctx.reads).toEqual([`ledger/${KEY}`]);
  });
});

/** Failures of the image within the window, `count` containers on each of `hosts`. */
function failuresOn(hosts: string[], count: number, image = "nginx:1.27"): ImageFailures {
  return imageFailures({
    image,
    failures: hosts.flatMap((host, h) =>
      Array.from({ length: count }, (_, n) => ({
        at: EVENT_TIME,
        host,
        containerId: `${h}${n}`.padStart(64, "e"),
        incident: STARTED_AT,
      })),
    ),
  });
}

const IMAGE_ID = `sha256:${"5a".repeat(32)}`;

/** The unhealthy event of a container whose agent knows its image's id. */
function withImageId(event = unhealthy()): ContainerEvent {
  return ContainerEvent.parse({ ...event, container: { ...event.container, imageId: IMAGE_ID } });
}

describe("decideHeal: the image breaker across hosts", () => {
  const breakerOn = policyOf({ storm: { imageBreaker: { failures: 4, windowSeconds: 60 } } });

  it("in a fleet of several hosts, one host's failures alone do not open it", async () => {
    // Ten containers of the image fail on host-a (or host-a says so): it counts for 2 of 4.
    const breakers = { value: failuresOn([HOST], 10), revision: 5 };
    const ctx = fakeContext({ policy: breakerOn, breakers, severalHosts: true });
    const decisions = await decide(unhealthy(), ctx);
    expect(kinds(decisions)).toEqual(RESTART_KINDS);
    const counted = breakerCount(first(decisions, "lease"));
    const stored = counted.update(breakers.value) as ImageFailures;
    // Kept up to the threshold per host, newest first: this container is among them.
    expect(stored.failures).toHaveLength(4);
    expect(stored.failures[0]?.containerId).toBe(CID);
    expect(counted.onStored?.(stored)).toEqual([]);
  });

  it("failures on a second host open it", async () => {
    const breakers = { value: failuresOn([HOST, "host-b"], 2), revision: 5 };
    const ctx = fakeContext({ policy: breakerOn, breakers, severalHosts: true });
    const held = await decide(unhealthy(), ctx);
    expect(held.some((d) => d.kind === "command")).toBe(false);
    expect(records(held).map((r) => [r.phase, r.code])).toEqual([["quarantined", "image-breaker"]]);
    expect(records(held)[0]?.message).toMatch(/^5 containers of image nginx:1\.27 .* on 2 hosts/);
  });

  it("on a one-host fleet, that host opens it alone, as before", async () => {
    const breakers = { value: failuresOn([HOST], 3), revision: 5 };
    const ctx = fakeContext({ policy: breakerOn, breakers, severalHosts: false });
    const held = await decide(unhealthy(), ctx);
    expect(records(held).map((r) => r.code)).toEqual(["image-breaker"]);
    expect(records(held)[0]?.message).toMatch(/^4 containers of image nginx:1\.27 .* on 1 host:/);
  });

  it("a context that cannot tell is taken for several hosts", async () => {
    const breakers = { value: failuresOn([HOST], 3), revision: 5 };
    const ctx = {
      ...fakeContext({ policy: breakerOn, breakers }),
      severalHosts: () => Promise.reject(new Error("the hosts could not be counted")),
    };
    expect(kinds(await decide(unhealthy(), ctx))).toEqual(RESTART_KINDS);
  });

  it("counts by the image's id when the event has one", async () => {
    const ctx = fakeContext({ policy: breakerOn, severalHosts: true });
    const decisions = await decide(withImageId(), ctx);
    const key = imageKey({ id: IMAGE_ID, name: "nginx:1.27" });
    expect(ctx.reads).toEqual([`breakers/${key}`, `ledger/${KEY}`]);
    const counted = breakerCount(first(decisions, "lease"));
    expect(counted.key).toBe(key);
    expect(counted.update(undefined)).toMatchObject({ image: "nginx:1.27", imageId: IMAGE_ID });

    // Held back by failures of the same id on two hosts, whatever names they ran under.
    const breakers = { value: failuresOn([HOST, "host-b"], 2, "nginx:latest"), revision: 2 };
    const held = await decide(
      withImageId(),
      fakeContext({ policy: breakerOn, breakers, severalHosts: true }),
    );
    expect(records(held)[0]?.message).toContain(`nginx:1.27 (${IMAGE_ID})`);
  });

  it("falls back to the image's name for an event without an id", async () => {
    const ctx = fakeContext({ policy: breakerOn });
    const decisions = await decide(unhealthy(), ctx);
    const key = imageKey({ name: "nginx:1.27" });
    expect(ctx.reads).toEqual([`breakers/${key}`, `ledger/${KEY}`]);
    const stored = breakerCount(first(decisions, "lease")).update(undefined);
    expect(stored).toMatchObject({ image: "nginx:1.27" });
    expect(stored).not.toHaveProperty("imageId");
  });
});

describe("decideHeal: copies of earlier incidents", () => {
  it("leaves alone a copy of an older run's trigger that arrives after a newer run was claimed", async () => {
    const newer = "2026-11-27T19:45:00.000000000Z";
    const ledger = {
      value: ledgerEntry({
        lastIncident: newer,
        lastCommandId: "heal-newer",
        lastRestartAt: "2026-11-27T19:45:01.000Z",
        consecutiveRestarts: 2,
        restarts: [
          {
            at: "2026-11-27T19:45:01.000Z",
            incident: newer,
            commandId: "heal-newer",
            outcome: "restarted",
          },
          {
            at: "2026-11-27T19:41:30.000Z",
            incident: STARTED_AT,
            commandId: "heal-older",
            outcome: "restarted",
          },
        ],
      }),
      revision: 9,
    };
    const decisions = await decide(unhealthy(), fakeContext({ ledger }));
    expect(kinds(decisions)).toEqual(["log"]);
  });
});

describe("level-triggered: resyncs, attempts and holds", () => {
  const resync = (patch: Parameters<typeof unhealthy>[0] = {}) =>
    unhealthy({
      source: "resync",
      timeNano: "1795808494900000000",
      time: "2026-11-27T19:41:34.900Z",
      unhealthySince: EVENT_TIME,
      ...patch,
    });
  const held = (code: string, message: string, reason: "held" | "stuck" = "held") => ({
    reason,
    code,
    message,
    since: NOW.toISOString(),
    incident: STARTED_AT,
  });

  it("a stale re-assertion is dropped quietly: the next resync supersedes it", async () => {
    const old = resync({ time: "2026-11-27T19:30:00.000Z", timeNano: "1795807800000000000" });
    const decisions = await decide(old);
    expect(records(decisions)).toEqual([]);
    expect(kinds(decisions)).toEqual(["claim", "log"]);
  });

  it("a stale Docker trigger is still recorded as stale, once", async () => {
    const old = unhealthy({ time: "2026-11-27T19:30:00.000Z", timeNano: "1795807800000000000" });
    expect(records(await decide(old)).map((r) => r.code)).toEqual(["stale-event"]);
  });

  it("a re-assertion acts like a fresh trigger, counting the unhealthy time from the transition", async () => {
    const policy = policyOf({ unhealthyForSeconds: 60 });
    const since = "2026-11-27T19:39:00.000Z"; // 2 minutes unhealthy
    const decisions = await decide(resync({ unhealthySince: since }), fakeContext({ policy }));
    expect(kinds(decisions)).toEqual(RESTART_KINDS);
    expect(claimed(decisions).lastTroubleAt).toBe("2026-11-27T19:39:00.000Z");
  });

  it("a held re-assertion records the hold once and is not redelivered", async () => {
    const policy = policyOf({ paused: true });
    const decisions = await decide(resync(), fakeContext({ policy }));
    expect(kinds(decisions)).toEqual(["claim", "remediation"]);
    const stored = claimed(decisions);
    expect(stored.notHealing).toMatchObject({ reason: "held", code: "paused" });
    const again = await decide(
      resync({ timeNano: "1795808554900000000", time: "2026-11-27T19:42:34.900Z" }),
      fakeContext({ policy, ledger: { value: stored, revision: 3 } }),
    );
    expect(again).toEqual([]);
  });

  it("a re-assertion leaves an attempt in flight alone, unless it was lost long ago", async () => {
    const commandId = "heal-0123456789abcdef0123456789abcdef";
    const ledger = { value: pendingLedger(commandId), revision: 4 };
    expect(kinds(await decide(resync(), fakeContext({ ledger })))).toEqual(["log"]);
    const later = new Date(NOW.getTime() + 16 * 60_000);
    const current = resync({ time: iso(later.getTime() - 100), timeNano: "1795809454900000000" });
    const lost = await decide(current, fakeContext({ ledger, now: later }));
    expect(kinds(lost)).toEqual(RESTART_KINDS);
    expect(first(lost, "command").command.commandId).toBe(commandIdFor(current, 2));
  });

  it("a failed attempt keeps the container stuck with its failure while the backoff runs", async () => {
    const commandId = "heal-0123456789abcdef0123456789abcdef";
    const base = pendingLedger(commandId);
    const stuck = held("docker-error", "bind source path does not exist", "stuck");
    const value = {
      ...base,
      restarts: base.restarts.map((r) => ({ ...r, outcome: "failed" as const })),
      lastTroubleAt: EVENT_TIME,
      notHealing: stuck,
    };
    const decisions = await decide(resync(), fakeContext({ ledger: { value, revision: 5 } }));
    // The same hold as stored: nothing to write, and a re-assertion is not redelivered.
    expect(decisions).toEqual([]);
  });

  it("a container whose healing is switched off is held, by host and name", async () => {
    const policy = policyOf({
      disabled: [{ host: HOST, name: "web", since: EVENT_TIME, by: "gateway:admin" }],
    });
    const decisions = await decide(unhealthy(), fakeContext({ policy }));
    expect(kinds(decisions)).toEqual(["claim", "remediation"]);
    expect(records(decisions)[0]).toMatchObject({ phase: "skipped", code: "disabled" });
    expect(claimed(decisions).notHealing).toMatchObject({ reason: "held", code: "disabled" });
    const other = await decide(unhealthy({ name: "api" }), fakeContext({ policy }));
    expect(kinds(other)).toEqual(RESTART_KINDS);
  });

  it("include and exclude patterns select by name and image", async () => {
    const policy = policyOf({ exclude: { names: [], images: ["nginx:*"] } });
    const excluded = await decide(unhealthy(), fakeContext({ policy }));
    expect(records(excluded)[0]).toMatchObject({ code: "excluded" });
    const include = policyOf({ include: { names: ["db-*"], images: [] } });
    const notIncluded = await decide(unhealthy(), fakeContext({ policy: include }));
    expect(records(notIncluded)[0]).toMatchObject({ code: "not-included" });
  });

  it.each([
    ["stop", STOP_COMMAND_TYPE],
    ["recreate", RECREATE_COMMAND_TYPE],
  ] as const)("the %s action sends that command, guarded like a restart", async (action, type) => {
    const labels = {
      autoheal: "true",
      "autoheal.action": action,
      "autoheal.recreate.pull": "true",
    };
    const decisions = await decide(unhealthy({ labels }));
    expect(kinds(decisions)).toEqual(RESTART_KINDS);
    const { command } = first(decisions, "command");
    expect(command).toMatchObject({ type, incident: STARTED_AT, requireUnhealthy: true });
    expect("pull" in command).toBe(action === "recreate");
    expect(records(decisions).map((r) => [r.phase, r.code, r.action])).toEqual([
      ["decided", "unhealthy", action],
      ["restarting", `${action}-sent`, action],
    ]);
    expect(claimed(decisions).restarts[0]).toMatchObject({ outcome: "pending", action });
  });

  it.each([
    ["stopped", "stopped"],
    ["recreated", "recreated"],
  ] as const)("the agent's %s answer is recorded as %s", async (outcome, phase) => {
    const labels = {
      autoheal: "true",
      "autoheal.action": outcome === "stopped" ? "stop" : "recreate",
    };
    const { command, onReply } = first(await decide(unhealthy({ labels })), "command");
    const after = onReply({
      ok: true,
      reply: reply({ commandId: command.commandId, outcome, code: outcome }),
    });
    validateAll(after);
    expect(records(after)[0]).toMatchObject({ phase, code: outcome });
  });

  it("the notify action alerts once per incident and sends nothing", async () => {
    const labels = { autoheal: "true", "autoheal.action": "notify" };
    const decisions = await decide(unhealthy({ labels }));
    expect(kinds(decisions)).toEqual(["claim", "remediation"]);
    expect(records(decisions)[0]).toMatchObject({ phase: "alerted", action: "notify" });
    const stored = claimed(decisions);
    expect(stored).toMatchObject({ lastIncident: STARTED_AT, notHealing: { code: "notify-only" } });
    const again = await decide(
      resync({ labels }),
      fakeContext({ ledger: { value: stored, revision: 2 } }),
    );
    expect(again).toEqual([]);
  });

  it("a crashed container whose action is stop is left stopped", async () => {
    const policy = policyOf({ restartOnExit: true, action: "stop" });
    const died = eventAt("die", NOW.getTime() - 100, {
      exitCode: 3,
      startedAtMs: NOW.getTime() - 60_000,
    });
    const decisions = await decide(died, fakeContext({ policy }));
    expect(records(decisions).map((r) => r.code)).toEqual(["already-stopped"]);
  });

  it("alerts `unhealed` once per incident when unhealthy too long and not healed", async () => {
    const policy = policyOf({ paused: true, notifyUnhealedAfterSeconds: 60 });
    const since = "2026-11-27T19:39:00.000Z";
    const decisions = await decide(resync({ unhealthySince: since }), fakeContext({ policy }));
    expect(records(decisions).map((r) => [r.phase, r.code])).toEqual([
      ["skipped", "paused"],
      ["unhealed", "unhealthy-too-long"],
    ]);
    expect(records(decisions)[1]?.message).toMatch(/^unhealthy for 2 min and not being healed/);
    const stored = claimed(decisions);
    expect(stored.unhealedNotified).toBe(STARTED_AT);
    const again = await decide(
      resync({ unhealthySince: since }),
      fakeContext({ policy, ledger: { value: stored, revision: 9 } }),
    );
    expect(again).toEqual([]);
    const early = await decide(resync(), fakeContext({ policy }));
    expect(records(early).map((r) => r.phase)).toEqual(["skipped"]);
  });

  it("records carry the health check's output, as the agent escaped it", async () => {
    const healthOutput = "\\u001b[31mbad\\u0001";
    const decisions = await decide(unhealthy({ healthOutput }));
    expect(records(decisions).every((r) => r.healthOutput === healthOutput)).toBe(true);
  });

  it("a healthy event ends a hold", async () => {
    const value = ledgerEntry({ notHealing: held("paused", "healing is paused") });
    const healthyAt = eventAt("healthy", NOW.getTime() - 10, {
      startedAtMs: Date.parse(STARTED_AT),
    });
    const decisions = await decide(healthyAt, fakeContext({ ledger: { value, revision: 1 } }));
    expect(claimed(decisions).notHealing).toBeUndefined();
  });
});
