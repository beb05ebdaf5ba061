import { describe, expect, it } from "vitest";
import type { LedgerRestart } from "../contracts/index.js";
import {
  c,
  type Decide,
  family,
  HOST,
  idOf,
  ledgerOf,
  NEW_RUN,
  NOW,
  nanosAfter,
  OPTIONS,
  onStart,
  play,
  reply,
  restartedRecord,
  startEvent,
  summary,
} from "../test/support/dependents-kit.js";
import type { CommandResult } from "./decisions.js";
import { decideDependents } from "./dependents.js";
import { dependentsRecreatedHandler } from "./dependents-recreated.js";
import { dependentsStartHandler, showsRun } from "./dependents-start.js";

const onRestarted =
  (record = restartedRecord()): Decide =>
  (ctx) =>
    decideDependents(record, ctx, OPTIONS);

describe("dependents on Docker's start events", () => {
  it("binds the start events and the recreated records", () => {
    expect(dependentsStartHandler(OPTIONS)).toMatchObject({
      name: "dependents-start",
      subject: "fleetheal.v1.evt.*.*.start",
    });
    expect(dependentsRecreatedHandler(OPTIONS)).toMatchObject({
      name: "dependents-recreated",
      subject: "fleetheal.v1.act.*.*.recreated",
    });
  });

  it("restarts the dependents after a restart fleetheal did not make (docker restart)", async () => {
    const event = startEvent("web");
    const { records, commands, io } = await play(family(), { decide: onStart(event) });
    expect(commands.map((x) => x.containerId)).toEqual([idOf("api"), idOf("worker")]);
    expect(summary(records)).toEqual([
      "api restarting dependent",
      "api restarted restarted",
      "worker restarting dependent",
      "worker restarted restarted",
    ]);
    expect(records[0]).toMatchObject({ triggerEventId: event.id });
    expect(records[0]?.message).toContain("because web started again");
    // Each restart is in the dependent's ledger, as heal's are.
    const api = await ledgerOf(io, "api");
    expect(api.restarts).toEqual([
      expect.objectContaining({ commandId: commands[0]?.commandId, outcome: "restarted" }),
    ]);
    expect(api).toMatchObject({ consecutiveRestarts: 1, lastRestartAt: NOW.toISOString() });
  });

  it("leaves alone dependents that started after the parent (compose up), without records", async () => {
    const later = "2026-11-27T19:41:36Z";
    const { records, commands } = await play(
      [
        c("web", { startedAt: NEW_RUN }),
        c("api", { net: "web", startedAt: later }),
        c("off", { net: "web", startedAt: later, labels: { "autoheal.dependents": "false" } }),
        c("created", { net: "web", state: "created" }),
      ],
      { decide: onStart() },
    );
    expect(commands).toEqual([]);
    expect(records).toEqual([]);
  });

  it("waits for a snapshot with the new run, and for one with a container it does not show", async () => {
    const stale = await play(family({ startedAt: "2026-11-27T19:30:00Z" }), {
      decide: onStart(),
    });
    expect(stale.outcome).toMatchObject({ kind: "retry" });
    // A container the snapshot (at 19:41:36) does not show: it predates a start at 19:41:37.
    const early = await play(family(), {
      decide: onStart(startEvent("new", NEW_RUN, "1795808497000000000")),
    });
    expect(early.outcome).toMatchObject({ kind: "retry" });
    // A snapshot from after the start without the container: it is gone (a one-off).
    const done = await play(family(), {
      decide: onStart(startEvent("new", NEW_RUN, nanosAfter("2026-11-27T19:41:30Z", 0n))),
    });
    expect(done.outcome).toEqual({ kind: "applied" });
    expect(done.decisions).toEqual([expect.objectContaining({ kind: "log", level: "info" })]);
  });

  it("tells the run a start event began by the event's time, Docker's StartedAt a moment before", () => {
    const event = startEvent("web", NEW_RUN, nanosAfter(NEW_RUN, 499_999_999n));
    const after = { at: "2026-11-27T19:41:36.000Z" };
    expect(showsRun(c("web", { startedAt: NEW_RUN }), event, after)).toBe(true);
    expect(showsRun(c("web", { startedAt: "2026-11-27T19:41:35.4Z" }), event, after)).toBe(false);
    // A snapshot taken before the start shows an earlier run, however recent.
    const before = { at: "2026-11-27T19:41:35.9Z" };
    expect(showsRun(c("web", { startedAt: NEW_RUN }), event, before)).toBe(false);
    // Down: the agent may not have seen the new run yet; two seconds on, the run is over.
    const down = c("web", { startedAt: NEW_RUN, state: "exited" });
    expect(showsRun(down, event, after)).toBe(false);
    expect(showsRun(down, event, { at: "2026-11-27T19:41:38.1Z" })).toBe(true);
    // Not started yet in the snapshot.
    const created = { ...c("web"), state: "created" as const, startedAt: undefined };
    expect(showsRun(created, event, after)).toBe(false);
    // A start the agent made up after a gap names the run itself.
    const synthesized = { ...event, container: { ...event.container, startedAt: NEW_RUN } };
    const earlier = c("web", { startedAt: "2026-11-27T19:41:35.5Z" });
    expect(showsRun(earlier, synthesized, after)).toBe(false);
  });

  it("leaves a start to fleetheal's own restart, whose record starts the round", async () => {
    const pending: LedgerRestart = {
      at: "2026-11-27T19:41:34.000Z",
      incident: "2026-11-27T19:30:00.123456789Z",
      commandId: "heal-0123456789abcdef",
      outcome: "pending",
    };
    const { commands, records } = await play(family(), {
      decide: onStart(),
      ledgers: { web: { restarts: [pending] } },
    });
    expect(commands).toEqual([]);
    expect(records).toEqual([]);
  });
});

describe("one round per parent run", () => {
  it("the record's round and the start's round of one run restart each dependent once", async () => {
    for (const [first, second] of [
      [onStart(), onRestarted()],
      [onRestarted(), onStart()],
    ] as const) {
      const a = await play(family(), { decide: first });
      expect(a.commands).toHaveLength(2);
      const b = await play(undefined, { io: a.io, decide: second });
      expect(b.commands).toEqual([]);
      expect(b.records).toEqual([]);
      // A redelivery of either does nothing more.
      const again = await play(undefined, { io: a.io, decide: first });
      expect(again.commands).toEqual([]);
      expect((await ledgerOf(a.io, "api")).restarts).toHaveLength(1);
    }
  });

  it("two replicas at once: one claim per dependent, one restart each", async () => {
    const first = await play(family(), { decide: async () => [] });
    const io = first.io;
    const executed = new Map<string, number>();
    io.agent = async (cmd) => {
      await new Promise((resolve) => setImmediate(resolve));
      executed.set(cmd.commandId, (executed.get(cmd.commandId) ?? 0) + 1);
      return reply(cmd, { duplicate: (executed.get(cmd.commandId) ?? 0) > 1 });
    };
    await Promise.all([
      play(undefined, { io, decide: onStart() }),
      play(undefined, { io, decide: onRestarted() }),
    ]);
    expect((await ledgerOf(io, "api")).restarts).toHaveLength(1);
    expect((await ledgerOf(io, "worker")).restarts).toHaveLength(1);
    // A resent command has the same id: the agent runs it once and answers the repeat.
    expect(new Set(io.commands.map((x) => x.command.commandId)).size).toBe(2);
  });

  it("waits for the other round's answer rather than send its command again", async () => {
    const timeout = (): CommandResult => ({ ok: false, code: "timeout", message: "timeout" });
    const first = await play(family(), { decide: onStart(), answer: timeout });
    expect(first.outcome).toMatchObject({ kind: "retry" });
    const pending = (await ledgerOf(first.io, "api")).restarts[0];
    expect(pending).toMatchObject({ outcome: "pending", commandId: first.commands[0]?.commandId });
    // The record's round of the same run finds the claim moments old: it looks again later.
    const second = await play(undefined, { io: first.io, decide: onRestarted() });
    expect(second.outcome).toMatchObject({ kind: "retry", delayMs: 2_000 });
    expect(second.commands).toEqual([]);
    // On its last delivery it sends the same command: the agent answers it once.
    const last = await play(undefined, {
      io: first.io,
      decide: onRestarted(),
      lastDelivery: true,
      answer: (cmd) => reply(cmd),
    });
    expect(last.commands.map((x) => x.commandId)).toEqual([
      first.commands[0]?.commandId,
      expect.any(String),
    ]);
    expect((await ledgerOf(first.io, "api")).restarts).toHaveLength(1);
  });

  it("leaves a dependent another command is acting on to that command, and what follows it", async () => {
    const heal: LedgerRestart = {
      at: "2026-11-27T19:41:39.000Z",
      incident: "2026-11-27T19:30:01.5Z",
      commandId: "heal-api",
      outcome: "pending",
    };
    const { commands, records } = await play(family(), {
      decide: onStart(),
      ledgers: { api: { restarts: [heal] } },
    });
    expect(commands).toEqual([]);
    expect(records).toEqual([]);
  });
});

describe("the fleet's selection", () => {
  it("leaves alone a dependent switched off, or excluded, with a record", async () => {
    const off = {
      disabled: [{ host: HOST, name: "api", since: "2026-11-27T19:00:00Z", by: "gateway:ops" }],
    };
    const switched = await play(family(), { decide: onStart(), policy: off });
    expect(switched.commands).toEqual([]);
    expect(summary(switched.records)).toEqual([
      "api skipped disabled",
      "worker skipped parent-not-restarted",
    ]);
    const excluded = await play(family(), {
      decide: onStart(),
      policy: { exclude: { names: ["work*"], images: [] } },
    });
    expect(excluded.commands.map((x) => x.containerId)).toEqual([idOf("api")]);
    expect(summary(excluded.records).at(-1)).toBe("worker skipped excluded");
  });
});

describe("a parent in a crash loop", () => {
  it("skips a dependent in backoff until the parent's next run, and one whose budget is spent", async () => {
    const recent = (n: number): LedgerRestart[] =>
      Array.from({ length: n }, (_, i) => ({
        at: new Date(NOW.getTime() - (i + 1) * 60_000).toISOString(),
        incident: `run-${i}`,
        commandId: `dependents-${i}`,
        outcome: "restarted" as const,
      }));
    const backoff = await play(family(), {
      decide: onStart(),
      ledgers: {
        api: {
          restarts: recent(1),
          consecutiveRestarts: 3,
          lastRestartAt: "2026-11-27T19:41:10.000Z",
        },
      },
    });
    expect(backoff.commands).toEqual([]);
    expect(summary(backoff.records)).toEqual([
      "api skipped backoff",
      "worker skipped parent-not-restarted",
    ]);
    // Three in a row: 10 s doubled twice after the last.
    expect(backoff.records[0]?.until).toBe("2026-11-27T19:41:50.000Z");
    expect(backoff.outcome).toEqual({ kind: "applied" });

    const spent = await play(family(), {
      decide: onStart(),
      ledgers: { api: { restarts: recent(5), consecutiveRestarts: 0 } },
    });
    expect(spent.commands).toEqual([]);
    expect(summary(spent.records)[0]).toBe("api skipped budget-spent");
  });

  it("backs off across the parent's runs, as heal does", async () => {
    const first = await play(family(), { decide: onStart() });
    expect(first.commands).toHaveLength(2);
    // The parent starts again right after the round restarted its dependents.
    const run = "2026-11-27T19:41:35.9Z";
    const again = await play(
      [
        c("web", { startedAt: run }),
        c("api", { net: "web", startedAt: "2026-11-27T19:41:35.6Z" }),
        c("worker", { net: "api", startedAt: "2026-11-27T19:41:35.7Z" }),
      ],
      { io: first.io, decide: onStart(startEvent("web", run)) },
    );
    expect(again.commands).toEqual([]);
    expect(summary(again.records)).toEqual([
      "api skipped backoff",
      "worker skipped parent-not-restarted",
    ]);
  });
});
