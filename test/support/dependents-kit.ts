import { createHash } from "node:crypto";
import { pino } from "pino";
import type { ContainerCommandDraft } from "../../common/agent-commands.js";
import { parseInstant } from "../../common/nanosecond-time.js";
import {
  type CommandReply,
  type ContainerSnapshot,
  containerKey,
  encode,
  type HostSnapshot,
  type LedgerEntry,
  type RemediationRecord,
} from "../../contracts/index.js";
import type { CommandResult, Decision } from "../../handlers/decisions.js";
import { decideDependents } from "../../handlers/dependents.js";
import { decideDependentsOnStart } from "../../handlers/dependents-start.js";
import type { HandlerContext } from "../../handlers/handler.js";
import {
  containerEvent,
  containerSnapshot,
  healPolicy,
  hostSnapshot,
  ledgerEntry,
  remediationRecord,
} from "./fixtures.js";
import {
  type InMemoryAgent,
  InMemoryHandlerIo,
  restartedReply,
  runnerOn,
} from "./in-memory-handler-io.js";

/*
 * The dependents handlers' unit tests (handlers/dependents*.test.ts) share one host: a parent
 * `web` whose restart began NEW_RUN, its dependents started at DEP_RUN before it, and the real
 * DecisionRunner on an in-memory HandlerIo.
 */

export const HOST = "host-a";
export const idOf = (name: string) => createHash("sha256").update(name).digest("hex");
export const OPTIONS = { retryDelayMs: 2_000 };
export const NOW = new Date("2026-11-27T19:41:40.000Z");
/** The parent's run that became unhealthy, and the run its restart began. */
export const OLD_RUN = "2026-11-27T19:30:00.123456789Z";
export const NEW_RUN = "2026-11-27T19:41:35.500000001Z";
/** When the dependents last started: after the parent's old run, before its new one. */
export const DEP_RUN = "2026-11-27T19:30:01.5Z";

export interface Spec {
  labels?: Record<string, string>;
  optedIn?: boolean;
  state?: ContainerSnapshot["state"];
  startedAt?: string;
  /** The name of the container whose network namespace it shares (`container:<its id>`). */
  net?: string;
  id?: string;
}

/** A container of the host, named `name`, with the id {@link idOf} its name unless given. */
export function c(name: string, spec: Spec = {}): ContainerSnapshot {
  return containerSnapshot({
    id: spec.id ?? idOf(name),
    name,
    state: spec.state ?? "running",
    health: "none",
    optedIn: spec.optedIn ?? true,
    labels: { autoheal: "true", ...spec.labels },
    startedAt: spec.startedAt ?? DEP_RUN,
    healthSource: "none",
    networkMode: spec.net ? `container:${idOf(spec.net)}` : "none",
  });
}

/** web is the parent; api shares its network, and worker shares api's. */
export function family(parent: Spec = {}): ContainerSnapshot[] {
  return [
    c("web", { startedAt: NEW_RUN, ...parent }),
    c("api", { net: "web" }),
    c("worker", { net: "api" }),
  ];
}

export function snapshotOf(containers: ContainerSnapshot[]): HostSnapshot {
  return hostSnapshot({
    host: HOST,
    seq: 7,
    at: "2026-11-27T19:41:36.000Z",
    heartbeatMs: 5000,
    agent: { version: "0.1.0", startedAt: "2026-11-27T19:00:00.000Z", uptimeSeconds: 2500 },
    outbox: { depth: 0, capacity: 10000, published: 10, dropped: 0 },
    docker: { status: "up", version: "20.10.24" },
    containers,
  });
}

/** heal's `restarted` record of web's restart. */
export function restartedRecord(patch: Partial<RemediationRecord> = {}): RemediationRecord {
  const remediationId = `heal:${HOST}:${idOf("web")}:1795808494172958659:unhealthy`;
  return remediationRecord({
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
    ...patch,
  });
}

export interface Setup {
  lastDelivery?: boolean;
  deliveryCount?: number;
  /** The fleet policy, every field left out at its default. */
  policy?: Parameters<typeof healPolicy>[0];
  /** Ledger entries already stored, by container name. */
  ledgers?: Record<string, Partial<LedgerEntry>>;
}

/**
 * An in-memory fleet whose host has a snapshot of `containers` (none if undefined), with the real
 * DecisionRunner on it, and the context it gives a delivery.
 */
export function fleetOf(containers: ContainerSnapshot[] | undefined, opts: Setup = {}) {
  const io = new InMemoryHandlerIo();
  if (containers) io.putHostSnapshot(snapshotOf(containers));
  for (const [name, entry] of Object.entries(opts.ledgers ?? {})) {
    putLedger(io, ledgerEntry({ host: HOST, containerId: idOf(name), ...entry }));
  }
  const policy = healPolicy(opts.policy);
  const runner = runnerOn(io, {
    policy: () => policy,
    now: () => NOW,
  });
  const message = {
    log: pino({ level: "silent" }),
    deliveryCount: opts.deliveryCount ?? 1,
    lastDelivery: opts.lastDelivery ?? false,
  };
  return { io, runner, message, ctx: runner.context(message) };
}

export function putLedger(io: InMemoryHandlerIo, entry: LedgerEntry): void {
  io.buckets.ledger.put(containerKey(entry.host, entry.containerId), encode(entry));
}

/** The ledger entry of `name`'s container, as stored. */
export async function ledgerOf(io: InMemoryHandlerIo, name: string): Promise<LedgerEntry> {
  const stored = await io.buckets.ledger.get(containerKey(HOST, idOf(name)));
  if (!stored) throw new Error(`no ledger entry for ${name}`);
  return JSON.parse(new TextDecoder().decode(stored.value)) as LedgerEntry;
}

export function contextOf(
  containers: ContainerSnapshot[] | undefined,
  opts: Setup = {},
): HandlerContext {
  return fleetOf(containers, opts).ctx;
}

export function reply(
  command: ContainerCommandDraft,
  patch: Partial<CommandReply> = {},
): CommandResult {
  return restartedReply(command, {
    startedAt: "2026-11-27T19:41:41.000Z",
    durationMs: 300,
    ...patch,
  });
}

export type Decide = (ctx: HandlerContext) => Promise<Decision[]>;

/**
 * Decides with `decide` (the dependents handler on the parent's `restarted` record, `record`, by
 * default) and applies the decisions with the real DecisionRunner: each command's answer, from
 * `answer`, yields the next decisions. Returns what was decided first, how the message ended,
 * and the records and commands sent. `io` reuses a fleet of an earlier play (its snapshot is
 * replaced when `containers` is given).
 */
export async function play(
  containers: ContainerSnapshot[] | undefined,
  opts: Setup & {
    record?: RemediationRecord;
    answer?: InMemoryAgent;
    decide?: Decide;
    io?: InMemoryHandlerIo;
  } = {},
) {
  const fleet = fleetOf(opts.io ? undefined : containers, opts);
  const io = opts.io ?? fleet.io;
  if (opts.io && containers) io.putHostSnapshot(snapshotOf(containers));
  const runner = opts.io
    ? runnerOn(io, { policy: () => healPolicy(opts.policy), now: () => NOW })
    : fleet.runner;
  if (opts.answer) io.agent = opts.answer;
  const firstRecord = io.records.length;
  const firstCommand = io.commands.length;
  let decisions: Decision[] = [];
  const decide: Decide =
    opts.decide ?? ((ctx) => decideDependents(opts.record ?? restartedRecord(), ctx, OPTIONS));
  const outcome = await runner.run(async (ctx) => {
    decisions = await decide(ctx);
    return decisions;
  }, fleet.message);
  await runner.stop();
  return {
    decisions,
    outcome,
    records: io.records.slice(firstRecord),
    commands: io.commands.slice(firstCommand).map((x) => x.command),
    io,
  };
}

export const summary = (published: RemediationRecord[]) =>
  published.map((r) => `${r.containerName} ${r.phase} ${r.code}`);

export function compose(service: string, dependsOn?: string): Record<string, string> {
  return {
    "com.docker.compose.project": "p",
    "com.docker.compose.service": service,
    ...(dependsOn !== undefined ? { "com.docker.compose.depends_on": dependsOn } : {}),
  };
}

/**
 * Docker's `start` event of `name`'s run that began at `run`: a moment after it, and without
 * its StartedAt (the agent knows only the previous run's).
 */
export function startEvent(name: string, run = NEW_RUN, timeNano = nanosAfter(run, 3_000_000n)) {
  return containerEvent({
    host: HOST,
    action: "start",
    timeNano,
    container: { id: idOf(name), name, labels: { autoheal: "true" } },
  });
}

export function nanosAfter(instant: string, nanos: bigint): string {
  return ((parseInstant(instant)?.epochNanos ?? 0n) + nanos).toString();
}

export const onStart =
  (event = startEvent("web")): Decide =>
  (ctx) =>
    decideDependentsOnStart(event, ctx, OPTIONS);
