import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { encode, type LedgerEntry } from "../../contracts/index.js";
import { ledgerEntry, remediationRecord, restartDraft } from "../../test/support/fixtures.js";
import {
  InMemoryHandlerIo,
  restartedReply,
  runnerOn,
} from "../../test/support/in-memory-handler-io.js";
import type { Decision, UpdateDecision } from "../decisions.js";
import type { RunMessage } from "./decision-runner.js";

const log = pino({ level: "silent" });
const CID = "c1".repeat(6);
const KEY = `h1.${CID}`;
const FIRST: RunMessage = { log, deliveryCount: 1, lastDelivery: false };

function ledger(patch: Partial<LedgerEntry> = {}): LedgerEntry {
  return ledgerEntry({ host: "h1", containerId: CID, ...patch });
}

const record = (phase: "decided" | "restarting" | "restarted" | "skipped"): Decision =>
  recordWithCode(phase, "x");

const recordWithCode = (
  phase: "decided" | "restarting" | "restarted" | "skipped",
  code: string,
): Decision => ({
  kind: "remediation",
  record: remediationRecord({
    id: `heal:e1:${phase}:${code}`,
    remediationId: "heal:e1",
    host: "h1",
    containerId: CID,
    containerName: "web",
    phase,
    code,
    message: "x",
    actor: "handler:heal",
    at: "2026-11-28T00:00:00.000Z",
  }),
});

const countRestart: UpdateDecision = {
  kind: "update",
  store: "ledger",
  key: KEY,
  update: (current) => {
    const entry = current as LedgerEntry;
    return { ...entry, consecutiveRestarts: entry.consecutiveRestarts + 1 };
  },
};

const command = restartDraft({
  commandId: "heal-0001",
  host: "h1",
  containerId: CID,
  reason: "unhealthy",
  requestedBy: "handler:heal",
});

const claimAt = (expectedRevision: number, patch: Partial<LedgerEntry> = {}): Decision => ({
  kind: "claim",
  store: "ledger",
  key: KEY,
  expectedRevision,
  value: ledger(patch),
});

/** A lease on the only fleet slot, which another replica holds. */
function deniedLease(io: InMemoryHandlerIo, onDenied: Decision[] = []): Decision {
  io.buckets.inflight.put("fleet.0", "someone");
  return {
    kind: "lease",
    holder: "heal-0001",
    leases: [{ bucket: "inflight", prefix: "fleet", cap: 1, label: "one at once" }],
    onDenied: () => onDenied,
  };
}

describe("DecisionRunner: applying decisions", () => {
  it("an update after a claim of the same key starts from the claimed value, without reading it", async () => {
    const io = new InMemoryHandlerIo();
    const runner = runnerOn(io);
    await runner.run(() => [claimAt(0)], FIRST);
    io.buckets.ledger.calls.length = 0;
    await runner.run(() => [claimAt(1, { lastIncident: "i1" }), countRestart], FIRST);
    expect(io.buckets.ledger.calls).toEqual([`update ${KEY}@1`, `update ${KEY}@2`]);
    expect(io.value("ledger", KEY)).toMatchObject({ lastIncident: "i1", consecutiveRestarts: 1 });
    await runner.stop();
  });

  it("if someone wrote the key in between, the update reads it and writes on top", async () => {
    const io = new InMemoryHandlerIo();
    const runner = runnerOn(io);
    let raced = false;
    const racing: Decision = {
      ...countRestart,
      update: (current) => {
        // Another writer gets in just before this update's first write.
        if (!raced) {
          raced = true;
          io.buckets.ledger.beforeWrite = () =>
            io.buckets.ledger.put(KEY, encode(ledger({ consecutiveRestarts: 5 })));
        }
        return countRestart.update(current);
      },
    };
    await runner.run(() => [claimAt(0), racing], FIRST);
    expect(io.buckets.ledger.calls).toEqual([
      `create ${KEY}`,
      `update ${KEY}@1`,
      `get ${KEY}`,
      `update ${KEY}@2`,
    ]);
    expect(io.value("ledger", KEY)?.consecutiveRestarts).toBe(6);
    await runner.stop();
  });

  it("writes what goes along a lease even when the lease is refused, and skips the rest", async () => {
    const io = new InMemoryHandlerIo();
    const runner = runnerOn(io);
    const lease = deniedLease(io);
    await runner.run(
      () => [
        {
          ...lease,
          alongside: [
            {
              kind: "claim",
              store: "breakers",
              key: "img",
              expectedRevision: 0,
              value: { v: 1, image: "nginx", failures: [] },
            },
          ],
          onDenied: (denial) => [recordWithCode("decided", denial.cap)],
        },
        claimAt(0),
      ],
      FIRST,
    );
    expect(io.buckets.breakers.calls).toEqual(["create img"]);
    expect(io.buckets.ledger.calls).toEqual([]);
    expect(io.takeRecords()).toEqual(["decided:one at once"]);
    await runner.stop();
  });

  it("records and the restart that follow one another are sent together, the ack waits for all", async () => {
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    /** Stores records only when the test says so. */
    class SlowIo extends InMemoryHandlerIo {
      override publishRecord(r: Parameters<InMemoryHandlerIo["publishRecord"]>[0]) {
        return super.publishRecord(r).then((stored) => held.then(() => stored));
      }
    }
    const io = new SlowIo();
    const runner = runnerOn(io);
    let done = false;
    const run = runner
      .run(
        () => [
          record("decided"),
          record("restarting"),
          { kind: "command", command, onReply: () => [record("restarted")] },
        ],
        FIRST,
      )
      .then((outcome) => {
        done = true;
        return outcome;
      });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(io.sent).toEqual([
      "publish decided",
      "publish restarting",
      "request heal-0001",
      "publish restarted",
    ]);
    // Everything is applied, but nothing is stored yet: no ack.
    expect(done).toBe(false);
    release();
    expect(await run).toEqual({ kind: "applied" });
    await runner.stop();
  });

  it("a restart waits for the agent at least as long as it asks, and at least the configured timeout", async () => {
    const io = new InMemoryHandlerIo();
    const runner = runnerOn(io, { commandTimeoutMs: 5_000 });
    const restart = (minTimeoutMs?: number): Decision => ({
      kind: "command",
      command,
      ...(minTimeoutMs === undefined ? {} : { minTimeoutMs }),
      onReply: () => [],
    });
    await runner.run(() => [restart(40_000), restart(1_000), restart()], FIRST);
    expect(io.commands.map((c) => c.timeoutMs)).toEqual([40_000, 5_000, 5_000]);
    await runner.stop();
  });
});

describe("DecisionRunner: what ends a list early", () => {
  it("a lost claim drops the rest and decides again, from the entry as it is now", async () => {
    const io = new InMemoryHandlerIo();
    const runner = runnerOn(io);
    // Another replica claimed the entry since this one read it.
    io.put("ledger", KEY, ledger({ lastIncident: "theirs" }));
    const lost: number[] = [];
    const seen: (string | undefined)[] = [];
    const outcome = await runner.run(
      async (ctx) => {
        const current = await ctx.read("ledger", KEY);
        seen.push(current?.value.lastIncident);
        // The first attempt decides from a stale read: the key absent.
        const revision = seen.length === 1 ? 0 : (current?.revision ?? 0);
        return [record("decided"), claimAt(revision, { lastIncident: "mine" }), record("skipped")];
      },
      { ...FIRST, onLostClaim: () => lost.push(1) },
    );
    expect(outcome).toEqual({ kind: "applied" });
    expect(lost).toHaveLength(1);
    expect(seen).toEqual(["theirs", "theirs"]);
    // What came before the claim was applied on both attempts (a record's copy is dropped by
    // JetStream's dedup); what came after it, once.
    expect(io.takeRecords()).toEqual(["decided:x", "decided:x", "skipped:x"]);
    expect(io.value("ledger", KEY)?.lastIncident).toBe("mine");
    await runner.stop();
  });

  it("claims lost on every attempt fail the message", async () => {
    const io = new InMemoryHandlerIo();
    const runner = runnerOn(io);
    io.put("ledger", KEY, ledger());
    let attempts = 0;
    const run = runner.run(() => {
      attempts++;
      return [claimAt(0)];
    }, FIRST);
    await expect(run).rejects.toThrow(/no longer at revision 0/);
    expect(attempts).toBe(5);
    await runner.stop();
  });

  it("a retry ends the whole message, from whatever list it is in", async () => {
    const io = new InMemoryHandlerIo();
    const runner = runnerOn(io);
    const outcome = await runner.run(
      () => [
        {
          kind: "command",
          command,
          onReply: () => [{ kind: "retry", reason: "agent unreachable", delayMs: 2_000 }],
        },
        record("restarted"),
      ],
      FIRST,
    );
    expect(outcome).toEqual({ kind: "retry", reason: "agent unreachable", delayMs: 2_000 });
    expect(io.records).toEqual([]);
    await runner.stop();
  });

  it("a lease denied in an update's onStored also skips the rest of the list holding the update", async () => {
    const io = new InMemoryHandlerIo();
    const runner = runnerOn(io);
    const lease = deniedLease(io, [recordWithCode("skipped", "storm-cap")]);
    await runner.run(
      () => [
        claimAt(0),
        { ...countRestart, onStored: () => [lease, record("decided")] },
        record("restarting"),
      ],
      FIRST,
    );
    expect(io.takeRecords()).toEqual(["skipped:storm-cap"]);
    await runner.stop();
  });

  it("a lease denied in a restart's onReply stops only that list", async () => {
    const io = new InMemoryHandlerIo();
    const runner = runnerOn(io);
    const lease = deniedLease(io, [recordWithCode("skipped", "storm-cap")]);
    await runner.run(
      () => [
        { kind: "command", command, onReply: () => [lease, record("decided")] },
        record("restarted"),
      ],
      FIRST,
    );
    expect(io.takeRecords()).toEqual(["skipped:storm-cap", "restarted:x"]);
    await runner.stop();
  });

  it("a failure of the agent's answer does not fail the message; the handler decides", async () => {
    const io = new InMemoryHandlerIo();
    io.agent = (c) => restartedReply(c, { outcome: "failed", code: "docker-error" });
    const runner = runnerOn(io);
    const replies: string[] = [];
    await runner.run(
      () => [
        {
          kind: "command",
          command,
          onReply: (result) => {
            replies.push(result.ok ? result.reply.code : result.code);
            return [];
          },
        },
      ],
      FIRST,
    );
    expect(replies).toEqual(["docker-error"]);
    await runner.stop();
  });
});

describe("DecisionRunner: what handlers read", () => {
  it("a corrupt store entry is removed, and read as absent", async () => {
    const io = new InMemoryHandlerIo();
    const runner = runnerOn(io);
    io.buckets.ledger.put(KEY, "{not json");
    const ctx = runner.context(FIRST);
    expect(await ctx.read("ledger", KEY)).toBeUndefined();
    expect(io.buckets.ledger.keys()).toEqual([]);
  });

  it("the context carries the delivery, the policy and the runner's clock", async () => {
    const io = new InMemoryHandlerIo();
    const now = new Date("2026-11-28T00:00:00.000Z");
    const runner = runnerOn(io, { now: () => now });
    const ctx = runner.context({ log, deliveryCount: 3, lastDelivery: true });
    expect(ctx).toMatchObject({ now, deliveryCount: 3, lastDelivery: true });
    io.buckets.hosts.put("h1", "{}");
    expect(await ctx.severalHosts?.()).toBe(false);
    expect(await ctx.hostSnapshot?.("h1")).toBeUndefined();
  });
});
