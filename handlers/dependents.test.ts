import { describe, expect, it } from "vitest";
import { type ContainerSnapshot, DEFAULT_HEAL_POLICY } from "../contracts/index.js";
import {
  c,
  compose,
  contextOf,
  DEP_RUN,
  family,
  HOST,
  idOf,
  NEW_RUN,
  OLD_RUN,
  OPTIONS,
  play,
  reply,
  restartedRecord,
  snapshotOf,
  summary,
} from "../test/support/dependents-kit.js";
import type { CommandResult, Decision } from "./decisions.js";
import { DependencyFreeHosts } from "./dependency-free-hosts.js";
import { MAX_EDGES_PER_CONTAINER, MAX_EDGES_PER_HOST } from "./dependency-graph.js";
import { decideDependents, dependentsHandler } from "./dependents.js";
import type { HandlerContext } from "./handler.js";
import { stormLeases } from "./storm-slots.js";

async function decide(ctx: HandlerContext, record = restartedRecord()) {
  return decideDependents(record, ctx, OPTIONS);
}

describe("dependentsHandler", () => {
  it("listens to restarted records", () => {
    const def = dependentsHandler(OPTIONS);
    expect(def.name).toBe("dependents");
    expect(def.subject).toBe("fleetheal.v1.act.*.*.restarted");
  });
});

describe("decideDependents", () => {
  it("restarts dependents one after another, parents first, each after the previous reply", async () => {
    const { decisions, records: published, commands, io } = await play(family());
    // Only the first restart is sent up front, with its storm-guard slots and its claim in the
    // dependent's ledger; the next one follows from its reply.
    expect(decisions.map((d) => d.kind)).toEqual(["lease", "claim", "remediation", "command"]);
    expect(commands.map((cmd) => cmd.containerId)).toEqual([idOf("api"), idOf("worker")]);
    expect(summary(published)).toEqual([
      "api restarting dependent",
      "api restarted restarted",
      "worker restarting dependent",
      "worker restarted restarted",
    ]);
    const [first] = commands;
    expect(first).toMatchObject({
      host: HOST,
      requestedBy: "handler:dependents",
      reason: "dependent of web",
      incident: DEP_RUN,
    });
    expect(first?.requireUnhealthy).toBeUndefined();
    const restarting = published[0];
    expect(restarting).toMatchObject({
      actor: "handler:dependents",
      triggerEventId: restartedRecord().id,
      commandId: first?.commandId,
      incident: DEP_RUN,
      dryRun: false,
    });
    expect(restarting?.message).toContain("network_mode container:web");
    expect(restarting?.message).toContain(restartedRecord().remediationId);
    // Waits at least the dependent's stop timeout plus 30 s.
    const restart = decisions[3] as Extract<Decision, { kind: "command" }>;
    expect(restart.minTimeoutMs).toBe(40_000);
    expect(io.commands.map((c) => c.timeoutMs)).toEqual([40_000, 40_000]);
    // Each restart takes the storm guard's slots, held by its own command id.
    const lease = decisions[0] as Extract<Decision, { kind: "lease" }>;
    expect(lease.leases).toEqual(stormLeases(HOST, DEFAULT_HEAL_POLICY));
    expect(io.buckets.rate.held("fleet").sort()).toEqual(commands.map((c) => c.commandId).sort());
  });

  it("stops the round where the storm guard has no slot, and records the dependents left", async () => {
    const {
      records: published,
      commands,
      outcome,
    } = await play(family(), {
      policy: { storm: { maxPerMinuteFleet: 1 } },
    });
    expect(commands.map((cmd) => cmd.containerId)).toEqual([idOf("api")]);
    expect(summary(published)).toEqual([
      "api restarting dependent",
      "api restarted restarted",
      "worker skipped storm-cap",
    ]);
    expect(published.at(-1)?.message).toContain("at most 1 restarts a minute in the fleet");
    expect(outcome).toEqual({ kind: "applied" });
  });

  it("derives command and record ids from the parent's new run and the dependent", async () => {
    const a = await play(family());
    const b = await play(family());
    expect(b.commands.map((x) => x.commandId)).toEqual(a.commands.map((x) => x.commandId));
    expect(b.records.map((r) => r.id)).toEqual(a.records.map((r) => r.id));
    expect(new Set(a.commands.map((x) => x.commandId)).size).toBe(2);
    // Another trigger of the same run (another record, a start event) sends the same commands.
    const same = await play(family(), {
      record: restartedRecord({ id: "heal:another:restarted" }),
    });
    expect(same.commands[0]?.commandId).toBe(a.commands[0]?.commandId);
    const later = await play(family({ startedAt: "2026-11-27T19:41:39Z" }));
    expect(later.commands[0]?.commandId).not.toBe(a.commands[0]?.commandId);
    // A snapshot that cannot show the new run: per record, as before.
    const unknown = await play(family(), {
      record: restartedRecord({ id: "heal:another:restarted", incident: undefined }),
    });
    expect(unknown.commands[0]?.commandId).not.toBe(a.commands[0]?.commandId);
  });

  it("ignores its own records, dry-run records and other phases, without reading anything", async () => {
    const ctx = contextOf(undefined);
    for (const record of [
      restartedRecord({ actor: "handler:dependents" }),
      restartedRecord({ dryRun: true }),
      restartedRecord({ phase: "restarting" }),
    ]) {
      expect(await decide(ctx, record)).toEqual([]);
    }
  });

  it("reacts to restarts by other actors, such as the gateway", async () => {
    const { commands } = await play(family(), {
      record: restartedRecord({ actor: "gateway:alice" }),
    });
    expect(commands).toHaveLength(2);
  });

  it("does nothing but log for a container without dependents", async () => {
    const decisions = await decide(contextOf([c("web", { startedAt: NEW_RUN }), c("other")]));
    expect(decisions.map((d) => d.kind)).toEqual(["log"]);
  });

  describe("hosts without dependencies", () => {
    /** A context whose snapshot has the given revision, counting how often it is decoded. */
    function counting(containers: ContainerSnapshot[], revision: () => number) {
      const decoded = { count: 0 };
      const ctx: HandlerContext = {
        ...contextOf(containers),
        hostSnapshotEntry: async () => ({
          revision: revision(),
          snapshot: () => {
            decoded.count++;
            return snapshotOf(containers);
          },
        }),
      };
      return { ctx, decoded };
    }

    it("decode a snapshot revision once; a new revision is decoded again", async () => {
      let revision = 4;
      const { ctx, decoded } = counting([c("web", { startedAt: NEW_RUN }), c("other")], () => {
        return revision;
      });
      const memo = new DependencyFreeHosts();
      for (let i = 0; i < 3; i++) {
        const decisions = await decideDependents(restartedRecord(), ctx, OPTIONS, memo);
        expect(decisions.map((d) => d.kind)).toEqual(["log"]);
      }
      expect(decoded.count).toBe(1);
      revision = 5;
      await decideDependents(restartedRecord(), ctx, OPTIONS, memo);
      expect(decoded.count).toBe(2);
    });

    it("a host with a dependency is decoded every time", async () => {
      const { ctx, decoded } = counting(family(), () => 4);
      const memo = new DependencyFreeHosts();
      for (let i = 0; i < 2; i++) {
        const decisions = await decideDependents(restartedRecord(), ctx, OPTIONS, memo);
        expect(decisions.some((d) => d.kind === "command")).toBe(true);
      }
      expect(decoded.count).toBe(2);
      expect(memo.has(HOST, 4)).toBe(false);
    });

    it("reports a snapshot's edges beyond the caps once per revision, with the count", async () => {
      // p-api-1 shares web's network and names a service of 40 replicas: 41 edges, 9 beyond the
      // cap of 32 per container.
      const replicas = Array.from({ length: MAX_EDGES_PER_CONTAINER + 8 }, (_, i) =>
        c(`p-db-${i}`, { labels: compose("db") }),
      );
      let revision = 4;
      const containers = [
        ...family(),
        c("p-api-1", { net: "web", labels: compose("api", "db") }),
        ...replicas,
      ];
      const { ctx } = counting(containers, () => revision);
      const memo = new DependencyFreeHosts();
      const capped = (decisions: Decision[]) =>
        decisions.filter((d) => d.kind === "log" && d.msg.startsWith("dependency graph capped"));
      const first = await decideDependents(restartedRecord(), ctx, OPTIONS, memo);
      expect(capped(first)).toEqual([
        {
          kind: "log",
          level: "warn",
          msg: `dependency graph capped: 9 edge(s) of 1 container(s) ignored (at most ${MAX_EDGES_PER_CONTAINER} per container and ${MAX_EDGES_PER_HOST} per host)`,
          fields: expect.objectContaining({ host: HOST, revision: 4, ignoredEdges: 9 }),
        },
      ]);
      // The round itself goes on with the edges kept.
      expect(first.some((d) => d.kind === "command")).toBe(true);
      expect(capped(await decideDependents(restartedRecord(), ctx, OPTIONS, memo))).toEqual([]);
      revision = 5;
      expect(capped(await decideDependents(restartedRecord(), ctx, OPTIONS, memo))).toHaveLength(1);
    });

    it("a revision that gains a dependency replaces the note", () => {
      const memo = new DependencyFreeHosts();
      memo.note(HOST, 4, true);
      memo.note(HOST, 5, false);
      expect(memo.has(HOST, 4)).toBe(false);
      expect(memo.has(HOST, 5)).toBe(false);
    });

    it("keeps at most its maximum of hosts, forgetting the oldest first", () => {
      const memo = new DependencyFreeHosts(2);
      memo.note("a", 1, true);
      memo.note("b", 1, true);
      memo.note("c", 1, true);
      expect([memo.has("a", 1), memo.has("b", 1), memo.has("c", 1)]).toEqual([false, true, true]);
    });
  });

  it("waits for a snapshot, and gives up on the last delivery", async () => {
    const [retry] = await decide(contextOf(undefined, { deliveryCount: 3 }));
    expect(retry).toMatchObject({ kind: "retry", delayMs: 1_000 });
    const last = await decide(contextOf(undefined, { lastDelivery: true }));
    expect(last.map((d) => d.kind)).toEqual(["log"]);
  });

  it("logs and stops when the restarted container is gone", async () => {
    const decisions = await decide(contextOf([c("api", { net: "web" })]));
    expect(decisions).toEqual([expect.objectContaining({ kind: "log", level: "info" })]);
  });

  it("waits while the snapshot still shows the parent's old run", async () => {
    const stale = family({ startedAt: OLD_RUN });
    const [retry] = await decide(contextOf(stale, { deliveryCount: 1 }));
    expect(retry).toMatchObject({ kind: "retry", delayMs: 250 });
    const [later] = await decide(contextOf(stale, { deliveryCount: 20 }));
    expect(later).toMatchObject({ kind: "retry", delayMs: 5_000 });
    // On the last delivery it goes ahead with what it has, and says so.
    const last = await play(stale, { lastDelivery: true });
    expect(last.decisions[0]).toMatchObject({ kind: "log", level: "warn" });
    expect(last.commands).toHaveLength(2);
  });

  it("goes ahead when the record names no incident", async () => {
    const { commands } = await play(family({ startedAt: OLD_RUN }), {
      record: restartedRecord({ incident: undefined }),
    });
    expect(commands).toHaveLength(2);
  });

  it("does nothing when the parent is labelled autoheal.dependents=false", async () => {
    const decisions = await decide(
      contextOf(family({ labels: { "autoheal.dependents": "false" } })),
    );
    expect(decisions).toEqual([expect.objectContaining({ kind: "log", level: "info" })]);
  });

  it("follows the fleet policy's dependents switch, which a parent's label overrides", async () => {
    const off = { policy: { dependents: false } };
    expect((await decide(contextOf(family(), off))).map((d) => d.kind)).toEqual(["log"]);
    const optedIn = family({ labels: { "autoheal.dependents": "true" } });
    expect((await play(optedIn, off)).commands).toHaveLength(2);
  });

  it("records dependents that are left out, and does not restart behind them", async () => {
    const { records: published, commands } = await play([
      c("web", { startedAt: NEW_RUN }),
      c("api", { net: "web", labels: { "autoheal.dependents": "false" } }),
      c("worker", { net: "api" }),
      c("shy", { net: "web", optedIn: false }),
      c("stopped", { net: "web", state: "exited" }),
    ]);
    expect(commands).toEqual([]);
    expect(summary(published)).toEqual([
      "api skipped dependents-disabled",
      "shy skipped not-opted-in",
      "stopped skipped not-running",
    ]);
  });

  it("skips the dependents of a dependent whose restart did not happen", async () => {
    // worker and cache both follow api only.
    const containers = [...family(), c("cache", { net: "api" })];
    const { records: published, commands } = await play(containers, {
      answer: (cmd) => reply(cmd, { outcome: "failed", code: "docker-error", message: "boom" }),
    });
    expect(commands.map((x) => x.containerId)).toEqual([idOf("api")]);
    expect(summary(published)).toEqual([
      "api restarting dependent",
      "api failed docker-error",
      "cache skipped parent-not-restarted",
      "worker skipped parent-not-restarted",
    ]);
  });

  it("still restarts a dependent that has another parent restarted in the round", async () => {
    const containers = [
      c("p-web-1", { startedAt: NEW_RUN, labels: compose("web") }),
      c("p-api-1", { net: "p-web-1", labels: compose("api") }),
      c("p-ui-1", { labels: compose("ui", "web:service_started:false,api:service_started:false") }),
    ];
    const record = restartedRecord({ containerId: idOf("p-web-1"), containerName: "p-web-1" });
    const { records: published, commands } = await play(containers, {
      record,
      answer: (cmd) =>
        cmd.containerId === idOf("p-api-1")
          ? reply(cmd, { outcome: "skipped", code: "paused", message: "paused" })
          : reply(cmd),
    });
    expect(commands.map((x) => x.containerId)).toEqual([idOf("p-api-1"), idOf("p-ui-1")]);
    expect(summary(published)).toEqual([
      "p-api-1 restarting dependent",
      "p-api-1 skipped paused",
      "p-ui-1 restarting dependent",
      "p-ui-1 restarted restarted",
    ]);
  });

  it("counts a duplicate reply (a redelivered round) as restarted", async () => {
    const { commands } = await play(family(), {
      answer: (cmd) => reply(cmd, { duplicate: true }),
    });
    expect(commands).toHaveLength(2);
  });

  it("leaves alone a dependent that started after the parent's new run", async () => {
    // A late redelivery: api was restarted by the first round, so worker too.
    const later = "2026-11-27T19:41:36.000000001Z";
    const { records: published, commands } = await play([
      c("web", { startedAt: NEW_RUN }),
      c("api", { net: "web", startedAt: later }),
      c("worker", { net: "api", startedAt: later }),
    ]);
    expect(commands).toEqual([]);
    expect(summary(published)).toEqual([
      "api skipped already-current",
      "worker skipped parent-not-restarted",
    ]);
  });

  it("compares start times to the nanosecond", async () => {
    const { commands } = await play([
      c("web", { startedAt: NEW_RUN }),
      c("api", { net: "web", startedAt: "2026-11-27T19:41:35.500000000Z" }),
    ]);
    expect(commands).toHaveLength(1);
  });

  it("retries the round while the agent is unreachable, and records a failure on the last try", async () => {
    const unreachable = (): CommandResult => ({ ok: false, code: "timeout", message: "timeout" });
    const first = await play(family(), { answer: unreachable });
    expect(first.outcome).toMatchObject({ kind: "retry", delayMs: 2_000 });
    const last = await play(family(), { lastDelivery: true, answer: unreachable });
    expect(summary(last.records)).toEqual([
      "api restarting dependent",
      "api failed timeout",
      "worker skipped parent-not-restarted",
    ]);
  });

  it("records but does not restart while healing is paused or in maintenance", async () => {
    const paused = await play(family(), { policy: { paused: true } });
    expect(paused.commands).toEqual([]);
    expect(summary(paused.records)).toEqual(["api skipped paused", "worker skipped paused"]);
    const window = {
      start: "2026-11-27T19:00:00Z",
      end: "2026-11-27T20:00:00Z",
      hosts: [HOST],
      reason: "db upgrade",
    };
    const maintenance = await play(family(), { policy: { maintenance: [window] } });
    expect(maintenance.commands).toEqual([]);
    expect(maintenance.records[0]?.message).toContain("db upgrade");
    const elsewhere = await play(family(), {
      policy: { maintenance: [{ ...window, hosts: ["host-b"] }] },
    });
    expect(elsewhere.commands).toHaveLength(2);
  });

  it("skips everything when the parent is down again", async () => {
    const { records: published, commands } = await play(family({ state: "exited" }));
    expect(commands).toEqual([]);
    expect(summary(published)).toEqual([
      "api skipped parent-not-running",
      "worker skipped parent-not-running",
    ]);
  });

  it("only records a dependent in dry-run", async () => {
    const containers = family();
    containers[1] = c("api", { net: "web", labels: { "autoheal.dry_run": "true" } });
    const { records: published, commands } = await play(containers);
    expect(commands).toEqual([]);
    expect(published[0]).toMatchObject({ phase: "skipped", code: "dry-run", dryRun: true });
  });

  it("goes through a round as large as the host's cap on edges, one dependent after another", async () => {
    // Every dependent is in dry-run, so the round records each one without a command: a round
    // that recursed once per dependent would run out of stack here.
    const dependents = Array.from({ length: MAX_EDGES_PER_HOST }, (_, i) =>
      c(`d${i}`, { net: "web", labels: { "autoheal.dry_run": "true" } }),
    );
    const { records: published, commands } = await play([
      c("web", { startedAt: NEW_RUN }),
      ...dependents,
    ]);
    expect(commands).toEqual([]);
    expect(published).toHaveLength(MAX_EDGES_PER_HOST);
    expect(published.every((r) => r.phase === "skipped" && r.code === "dry-run")).toBe(true);
  }, 60_000);

  it("logs a dependency cycle as a warning and restarts each container once", async () => {
    const containers = [
      c("p-web-1", { startedAt: NEW_RUN, labels: compose("web") }),
      c("p-a-1", { labels: compose("a", "web,b") }),
      c("p-b-1", { labels: compose("b", "a") }),
    ];
    const record = restartedRecord({ containerId: idOf("p-web-1"), containerName: "p-web-1" });
    const { decisions, commands } = await play(containers, { record });
    expect(decisions[0]).toMatchObject({ kind: "log", level: "warn" });
    expect(commands.map((x) => x.containerId)).toEqual([idOf("p-a-1"), idOf("p-b-1")]);
  });
});
