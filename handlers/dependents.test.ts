import { createHash } from "node:crypto";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import type { RestartDraft } from "../common/agent-commands.js";
import {
  type CommandReply,
  ContainerSnapshot,
  DEFAULT_HEAL_POLICY,
  type HealPolicy,
  HostSnapshot,
  RemediationRecord,
  RestartCommand,
} from "../contracts/index.js";
import { DependencyFreeHosts, decideDependents, dependentsHandler } from "./dependents.js";
import type { CommandResult, Decision, HandlerContext } from "./handler.js";
import { stormLeases } from "./heal.js";
import type { LeaseDenial } from "./leases.js";

/** A restart as a handler decides it: the runtime stamps its lifetime when it sends it. */
const RestartDraftSchema = RestartCommand.omit({ issuedAt: true, expiresAt: true });

const HOST = "host-a";
const idOf = (name: string) => createHash("sha256").update(name).digest("hex");
const OPTIONS = { retryDelayMs: 2_000 };
const NOW = new Date("2026-11-27T19:41:40.000Z");
/** The parent's run that became unhealthy, and the run its restart began. */
const OLD_RUN = "2026-11-27T19:30:00.123456789Z";
const NEW_RUN = "2026-11-27T19:41:35.500000001Z";
/** When the dependents last started: after the parent's old run, before its new one. */
const DEP_RUN = "2026-11-27T19:30:01.5Z";

interface Spec {
  labels?: Record<string, string>;
  optedIn?: boolean;
  state?: ContainerSnapshot["state"];
  startedAt?: string;
  net?: string;
}

function c(name: string, spec: Spec = {}): ContainerSnapshot {
  return ContainerSnapshot.parse({
    id: idOf(name),
    name,
    image: "busybox",
    state: spec.state ?? "running",
    health: "none",
    optedIn: spec.optedIn ?? true,
    labels: { autoheal: "true", ...spec.labels },
    startedAt: spec.startedAt ?? DEP_RUN,
    restartCount: 0,
    failingStreak: 0,
    healthSource: "none",
    networkMode: spec.net ? `container:${idOf(spec.net)}` : "none",
  });
}

/** web is the parent; api shares its network, and worker shares api's. */
function family(parent: Spec = {}): ContainerSnapshot[] {
  return [
    c("web", { startedAt: NEW_RUN, ...parent }),
    c("api", { net: "web" }),
    c("worker", { net: "api" }),
  ];
}

function snapshotOf(containers: ContainerSnapshot[]): HostSnapshot {
  return HostSnapshot.parse({
    type: "fleetheal.snapshot.v1.host",
    v: 1,
    host: HOST,
    seq: 7,
    at: "2026-11-27T19:41:36.000Z",
    heartbeatMs: 5000,
    agent: {
      version: "0.1.0",
      startedAt: "2026-11-27T19:00:00.000Z",
      label: "autoheal",
      watchAll: false,
      uptimeSeconds: 2500,
    },
    outbox: { depth: 0, capacity: 10000, published: 10, dropped: 0 },
    docker: { status: "up", version: "20.10.24" },
    containers,
  });
}

function restartedRecord(patch: Partial<RemediationRecord> = {}): RemediationRecord {
  const remediationId = `heal:${HOST}:${idOf("web")}:1795808494172958659:unhealthy`;
  return RemediationRecord.parse({
    type: "fleetheal.act.v1.remediation",
    v: 1,
    id: `${remediationId}:restarted`,
    remediationId,
    host: HOST,
    containerId: idOf("web"),
    containerName: "web",
    phase: "restarted",
    code: "restarted",
    message: "restarted (stop timeout 10s)",
    incident: OLD_RUN,
    commandId: "heal-0123456789abcdef",
    actor: "handler:heal",
    at: "2026-11-27T19:41:34.000Z",
    dryRun: false,
    ...patch,
  });
}

function fakeContext(
  containers: ContainerSnapshot[] | undefined,
  opts: { lastDelivery?: boolean; deliveryCount?: number; policy?: Partial<HealPolicy> } = {},
): HandlerContext {
  return {
    now: NOW,
    log: pino({ level: "silent" }),
    deliveryCount: opts.deliveryCount ?? 1,
    lastDelivery: opts.lastDelivery ?? false,
    policy: { ...DEFAULT_HEAL_POLICY, ...opts.policy },
    read: async () => undefined,
    hostSnapshot: async (host) =>
      host === HOST && containers ? snapshotOf(containers) : undefined,
    hostSnapshotEntry: async (host) =>
      host === HOST && containers
        ? { revision: 1, snapshot: () => snapshotOf(containers) }
        : undefined,
  };
}

function reply(command: RestartDraft, patch: Partial<CommandReply> = {}): CommandResult {
  return {
    ok: true,
    reply: {
      type: "fleetheal.cmd.v1.reply",
      v: 1,
      verb: "restart",
      commandId: command.commandId,
      host: HOST,
      containerId: command.containerId,
      outcome: "restarted",
      code: "restarted",
      message: "restarted (stop timeout 10s)",
      duplicate: false,
      startedAt: "2026-11-27T19:41:41.000Z",
      durationMs: 300,
      ...patch,
    },
  };
}

const okReply = (command: RestartDraft) => reply(command);

/**
 * Plays the decisions like the runtime: each restart's reply (from `answer`) yields the next
 * decisions. Returns everything else in order, and the commands in the order they were sent.
 */
function drive(
  decisions: Decision[],
  answer: (command: RestartDraft) => CommandResult = okReply,
  storm: (lease: Extract<Decision, { kind: "lease" }>) => LeaseDenial | undefined = () => undefined,
): { applied: Decision[]; commands: RestartDraft[] } {
  const applied: Decision[] = [];
  const commands: RestartDraft[] = [];
  const walk = (list: Decision[]) => {
    for (const d of list) {
      if (d.kind === "lease") {
        applied.push(d);
        const denial = storm(d);
        // As in the runtime: a denied lease applies its onDenied, and nothing after it.
        if (denial) {
          walk(d.onDenied(denial));
          return;
        }
      } else if (d.kind === "restart") {
        expect(RestartDraftSchema.parse(d.command)).toEqual(d.command);
        commands.push(d.command);
        walk(d.onReply(answer(d.command)));
      } else {
        if (d.kind === "remediation") {
          expect(RemediationRecord.parse(d.record)).toEqual(d.record);
        }
        applied.push(d);
        if (d.kind === "retry") return;
      }
    }
  };
  walk(decisions);
  return { applied, commands };
}

const records = (decisions: Decision[]) =>
  decisions.flatMap((d) => (d.kind === "remediation" ? [d.record] : []));
const summary = (decisions: Decision[]) =>
  records(decisions).map((r) => `${r.containerName} ${r.phase} ${r.code}`);

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
    const decisions = await decide(fakeContext(family()));
    // Only the first restart is sent up front, with its storm-guard slots; the next one follows
    // from its reply.
    expect(decisions.map((d) => d.kind)).toEqual(["lease", "remediation", "restart"]);
    const { applied, commands } = drive(decisions);
    expect(commands.map((cmd) => cmd.containerId)).toEqual([idOf("api"), idOf("worker")]);
    expect(summary(applied)).toEqual([
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
    const restarting = records(applied)[0];
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
    const restart = decisions[2] as Extract<Decision, { kind: "restart" }>;
    expect(restart.minTimeoutMs).toBe(40_000);
    // Each restart takes the storm guard's slots, held by its own command id.
    const leases = applied.filter((d) => d.kind === "lease");
    expect(leases.map((l) => l.holder)).toEqual(commands.map((c) => c.commandId));
    expect(leases[0]?.leases).toEqual(stormLeases(HOST, DEFAULT_HEAL_POLICY));
  });

  it("stops the round where the storm guard has no slot, and records the dependents left", async () => {
    const decisions = await decide(fakeContext(family()));
    let leases = 0;
    const { applied, commands } = drive(decisions, okReply, () =>
      ++leases === 2 ? { cap: "at most 20 restarts at once in the fleet" } : undefined,
    );
    expect(commands.map((cmd) => cmd.containerId)).toEqual([idOf("api")]);
    expect(summary(applied)).toEqual([
      "api restarting dependent",
      "api restarted restarted",
      "worker skipped storm-cap",
    ]);
    expect(records(applied).at(-1)?.message).toContain("at most 20 restarts at once in the fleet");
    expect(applied.some((d) => d.kind === "retry")).toBe(false);
  });

  it("derives command and record ids from the parent record and the dependent", async () => {
    const a = drive(await decide(fakeContext(family())));
    const b = drive(await decide(fakeContext(family())));
    expect(b.commands.map((x) => x.commandId)).toEqual(a.commands.map((x) => x.commandId));
    expect(records(b.applied).map((r) => r.id)).toEqual(records(a.applied).map((r) => r.id));
    expect(new Set(a.commands.map((x) => x.commandId)).size).toBe(2);
    const other = drive(
      await decide(fakeContext(family()), restartedRecord({ id: "heal:another:restarted" })),
    );
    expect(other.commands[0]?.commandId).not.toBe(a.commands[0]?.commandId);
  });

  it("ignores its own records, dry-run records and other phases, without reading anything", async () => {
    const ctx = fakeContext(undefined);
    for (const record of [
      restartedRecord({ actor: "handler:dependents" }),
      restartedRecord({ dryRun: true }),
      restartedRecord({ phase: "restarting" }),
    ]) {
      expect(await decide(ctx, record)).toEqual([]);
    }
  });

  it("reacts to restarts by other actors, such as the gateway", async () => {
    const { commands } = drive(
      await decide(fakeContext(family()), restartedRecord({ actor: "gateway:alice" })),
    );
    expect(commands).toHaveLength(2);
  });

  it("does nothing but log for a container without dependents", async () => {
    const decisions = await decide(fakeContext([c("web", { startedAt: NEW_RUN }), c("other")]));
    expect(decisions.map((d) => d.kind)).toEqual(["log"]);
  });

  describe("hosts without dependencies", () => {
    /** A context whose snapshot has the given revision, counting how often it is decoded. */
    function counting(containers: ContainerSnapshot[], revision: () => number) {
      const decoded = { count: 0 };
      const ctx: HandlerContext = {
        ...fakeContext(containers),
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
        expect(decisions.some((d) => d.kind === "restart")).toBe(true);
      }
      expect(decoded.count).toBe(2);
      expect(memo.has(HOST, 4)).toBe(false);
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
    const [retry] = await decide(fakeContext(undefined, { deliveryCount: 3 }));
    expect(retry).toMatchObject({ kind: "retry", delayMs: 1_000 });
    const last = await decide(fakeContext(undefined, { lastDelivery: true }));
    expect(last.map((d) => d.kind)).toEqual(["log"]);
  });

  it("logs and stops when the restarted container is gone", async () => {
    const decisions = await decide(fakeContext([c("api", { net: "web" })]));
    expect(decisions).toEqual([expect.objectContaining({ kind: "log", level: "info" })]);
  });

  it("waits while the snapshot still shows the parent's old run", async () => {
    const stale = family({ startedAt: OLD_RUN });
    const [retry] = await decide(fakeContext(stale, { deliveryCount: 1 }));
    expect(retry).toMatchObject({ kind: "retry", delayMs: 250 });
    const [later] = await decide(fakeContext(stale, { deliveryCount: 20 }));
    expect(later).toMatchObject({ kind: "retry", delayMs: 5_000 });
    // On the last delivery it goes ahead with what it has, and says so.
    const last = await decide(fakeContext(stale, { lastDelivery: true }));
    expect(last[0]).toMatchObject({ kind: "log", level: "warn" });
    expect(drive(last).commands).toHaveLength(2);
  });

  it("goes ahead when the record names no incident", async () => {
    const { commands } = drive(
      await decide(
        fakeContext(family({ startedAt: OLD_RUN })),
        restartedRecord({ incident: undefined }),
      ),
    );
    expect(commands).toHaveLength(2);
  });

  it("does nothing when the parent is labelled autoheal.dependents=false", async () => {
    const decisions = await decide(
      fakeContext(family({ labels: { "autoheal.dependents": "false" } })),
    );
    expect(decisions).toEqual([expect.objectContaining({ kind: "log", level: "info" })]);
  });

  it("follows the fleet policy's dependents switch, which a parent's label overrides", async () => {
    const off = { policy: { dependents: false } };
    expect((await decide(fakeContext(family(), off))).map((d) => d.kind)).toEqual(["log"]);
    const optedIn = family({ labels: { "autoheal.dependents": "true" } });
    expect(drive(await decide(fakeContext(optedIn, off))).commands).toHaveLength(2);
  });

  it("records dependents that are left out, and does not restart behind them", async () => {
    const { applied, commands } = drive(
      await decide(
        fakeContext([
          c("web", { startedAt: NEW_RUN }),
          c("api", { net: "web", labels: { "autoheal.dependents": "false" } }),
          c("worker", { net: "api" }),
          c("shy", { net: "web", optedIn: false }),
          c("stopped", { net: "web", state: "exited" }),
        ]),
      ),
    );
    expect(commands).toEqual([]);
    expect(summary(applied)).toEqual([
      "api skipped dependents-disabled",
      "shy skipped not-opted-in",
      "stopped skipped not-running",
    ]);
  });

  it("skips the dependents of a dependent whose restart did not happen", async () => {
    // worker and cache both follow api only.
    const containers = [...family(), c("cache", { net: "api" })];
    const { applied, commands } = drive(await decide(fakeContext(containers)), (cmd) =>
      reply(cmd, { outcome: "failed", code: "docker-error", message: "boom" }),
    );
    expect(commands.map((x) => x.containerId)).toEqual([idOf("api")]);
    expect(summary(applied)).toEqual([
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
    const { applied, commands } = drive(await decide(fakeContext(containers), record), (cmd) =>
      cmd.containerId === idOf("p-api-1")
        ? reply(cmd, { outcome: "skipped", code: "paused", message: "paused" })
        : okReply(cmd),
    );
    expect(commands.map((x) => x.containerId)).toEqual([idOf("p-api-1"), idOf("p-ui-1")]);
    expect(summary(applied)).toEqual([
      "p-api-1 restarting dependent",
      "p-api-1 skipped paused",
      "p-ui-1 restarting dependent",
      "p-ui-1 restarted restarted",
    ]);
  });

  it("counts a duplicate reply (a redelivered round) as restarted", async () => {
    const { commands } = drive(await decide(fakeContext(family())), (cmd) =>
      reply(cmd, { duplicate: true }),
    );
    expect(commands).toHaveLength(2);
  });

  it("leaves alone a dependent that started after the parent's new run", async () => {
    // A late redelivery: api was restarted by the first round, so worker too.
    const later = "2026-11-27T19:41:36.000000001Z";
    const { applied, commands } = drive(
      await decide(
        fakeContext([
          c("web", { startedAt: NEW_RUN }),
          c("api", { net: "web", startedAt: later }),
          c("worker", { net: "api", startedAt: later }),
        ]),
      ),
    );
    expect(commands).toEqual([]);
    expect(summary(applied)).toEqual([
      "api skipped already-current",
      "worker skipped parent-not-restarted",
    ]);
  });

  it("compares start times to the nanosecond", async () => {
    const { commands } = drive(
      await decide(
        fakeContext([
          c("web", { startedAt: NEW_RUN }),
          c("api", { net: "web", startedAt: "2026-11-27T19:41:35.500000000Z" }),
        ]),
      ),
    );
    expect(commands).toHaveLength(1);
  });

  it("retries the round while the agent is unreachable, and records a failure on the last try", async () => {
    const unreachable = (): CommandResult => ({ ok: false, code: "timeout", message: "timeout" });
    const first = drive(await decide(fakeContext(family())), unreachable);
    expect(first.applied.at(-1)).toMatchObject({ kind: "retry", delayMs: 2_000 });
    const last = drive(await decide(fakeContext(family(), { lastDelivery: true })), unreachable);
    expect(summary(last.applied)).toEqual([
      "api restarting dependent",
      "api failed timeout",
      "worker skipped parent-not-restarted",
    ]);
  });

  it("records but does not restart while healing is paused or in maintenance", async () => {
    const paused = drive(await decide(fakeContext(family(), { policy: { paused: true } })));
    expect(paused.commands).toEqual([]);
    expect(summary(paused.applied)).toEqual(["api skipped paused", "worker skipped paused"]);
    const window = {
      start: "2026-11-27T19:00:00Z",
      end: "2026-11-27T20:00:00Z",
      hosts: [HOST],
      reason: "db upgrade",
    };
    const maintenance = drive(
      await decide(fakeContext(family(), { policy: { maintenance: [window] } })),
    );
    expect(maintenance.commands).toEqual([]);
    expect(records(maintenance.applied)[0]?.message).toContain("db upgrade");
    const elsewhere = drive(
      await decide(
        fakeContext(family(), { policy: { maintenance: [{ ...window, hosts: ["host-b"] }] } }),
      ),
    );
    expect(elsewhere.commands).toHaveLength(2);
  });

  it("skips everything when the parent is down again", async () => {
    const { applied, commands } = drive(await decide(fakeContext(family({ state: "exited" }))));
    expect(commands).toEqual([]);
    expect(summary(applied)).toEqual([
      "api skipped parent-not-running",
      "worker skipped parent-not-running",
    ]);
  });

  it("only records a dependent in dry-run", async () => {
    const containers = family();
    containers[1] = c("api", { net: "web", labels: { "autoheal.dry_run": "true" } });
    const { applied, commands } = drive(await decide(fakeContext(containers)));
    expect(commands).toEqual([]);
    expect(records(applied)[0]).toMatchObject({ phase: "skipped", code: "dry-run", dryRun: true });
  });

  it("logs a dependency cycle as a warning and restarts each container once", async () => {
    const containers = [
      c("p-web-1", { startedAt: NEW_RUN, labels: compose("web") }),
      c("p-a-1", { labels: compose("a", "web,b") }),
      c("p-b-1", { labels: compose("b", "a") }),
    ];
    const record = restartedRecord({ containerId: idOf("p-web-1"), containerName: "p-web-1" });
    const decisions = await decide(fakeContext(containers), record);
    expect(decisions[0]).toMatchObject({ kind: "log", level: "warn" });
    const { commands } = drive(decisions);
    expect(commands.map((x) => x.containerId)).toEqual([idOf("p-a-1"), idOf("p-b-1")]);
  });
});

function compose(service: string, dependsOn?: string): Record<string, string> {
  return {
    "com.docker.compose.project": "p",
    "com.docker.compose.service": service,
    ...(dependsOn !== undefined ? { "com.docker.compose.depends_on": dependsOn } : {}),
  };
}
