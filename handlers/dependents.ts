import { createHash } from "node:crypto";
import type { RestartDraft } from "../common/agent-commands.js";
import {
  type ContainerSnapshot,
  type HealPolicy,
  type HostSnapshot,
  REMEDIATION_TYPE,
  RESTART_COMMAND_TYPE,
  type RemediationPhase,
  RemediationRecord,
  remediationSubjectMismatch,
  SUBJECT_ROOT,
  stopTimeoutFromLabels,
} from "../contracts/index.js";
import { effectivePolicy } from "../policy/policy-labels.js";
import {
  buildDependencyGraph,
  DEPENDENTS_LABEL,
  type DependentsPlan,
  type PlannedDependent,
  planDependents,
} from "./dependency-graph.js";
import type { CommandResult, Decision, HandlerContext, HandlerDefinition } from "./handler.js";
import { stormLeases } from "./heal.js";

/** Settings of the dependents handler. */
export interface DependentsOptions {
  /** Delay before a restart that could not reach the agent is tried again. */
  retryDelayMs: number;
}

export const DEPENDENTS_HANDLER = "dependents";
export const DEPENDENTS_ACTOR = `handler:${DEPENDENTS_HANDLER}`;
/** Docker's own default, used when the container has no stop-timeout label. */
const DEFAULT_STOP_TIMEOUT_SECONDS = 10;
/** Waits for a snapshot that shows the parent's new run: 250 ms doubling to 5 s. */
const SNAPSHOT_WAIT_BASE_MS = 250;
const SNAPSHOT_WAIT_MAX_MS = 5_000;

/**
 * After a container is restarted, restarts the containers that depend on it (network namespace
 * shared with `network_mode: container:`, compose `depends_on`), transitively and in order,
 * one after another. Bound to `restarted` remediation records; see docs/DEPENDENTS.md.
 */
export function dependentsHandler(
  options: DependentsOptions,
): HandlerDefinition<RemediationRecord> {
  const withoutDependencies = new DependencyFreeHosts();
  return {
    name: DEPENDENTS_HANDLER,
    subject: `${SUBJECT_ROOT}.act.*.*.restarted`,
    schema: RemediationRecord,
    subjectMismatch: remediationSubjectMismatch,
    concurrency: 8,
    // Most deliveries beyond the first wait for a fresh snapshot (about 1.5 minutes in all).
    maxDeliver: 20,
    handle: (record, ctx) => decideDependents(record, ctx, options, withoutDependencies),
  };
}

/**
 * Hosts whose snapshot, at the revision noted, has no container that depends on another: most
 * hosts. A `restarted` record of such a host needs no decoding of its snapshot (some 50 KB of
 * JSON for 50 containers; a third of a handler's CPU in a burst of restarts) as long as the
 * snapshot has not changed. A revision stands for one content, so this never goes stale.
 */
export class DependencyFreeHosts {
  private readonly revisions = new Map<string, number>();

  constructor(private readonly max = 100_000) {}

  has(host: string, revision: number): boolean {
    return this.revisions.get(host) === revision;
  }

  note(host: string, revision: number, dependencyFree: boolean): void {
    this.revisions.delete(host);
    if (!dependencyFree) return;
    // The oldest noted host makes room: the Map keeps insertion order.
    if (this.revisions.size >= this.max) {
      const oldest = this.revisions.keys().next();
      if (!oldest.done) this.revisions.delete(oldest.value);
    }
    this.revisions.set(host, revision);
  }
}

/** The decisions for one `restarted` record; exported for unit tests. */
export async function decideDependents(
  parentRecord: RemediationRecord,
  ctx: HandlerContext,
  options: DependentsOptions,
  withoutDependencies = new DependencyFreeHosts(),
): Promise<Decision[]> {
  if (parentRecord.phase !== "restarted" || parentRecord.dryRun) return [];
  // A dependent's restart does not start another round: the first round already covered the
  // dependents of dependents, so following our own records could only repeat it (or loop).
  if (parentRecord.actor === DEPENDENTS_ACTOR) return [];
  const fields = {
    host: parentRecord.host,
    containerId: parentRecord.containerId,
    parentRecord: parentRecord.id,
  };
  if (!ctx.hostSnapshotEntry) throw new Error("the handler runtime provides no host snapshots");
  const entry = await ctx.hostSnapshotEntry(parentRecord.host);
  if (entry && withoutDependencies.has(parentRecord.host, entry.revision)) {
    return [log("debug", "no container on the host depends on another", fields)];
  }
  const snapshot = entry?.snapshot();
  if (!entry || !snapshot) {
    if (ctx.lastDelivery) {
      return [log("warn", "no snapshot of the host; dependents not restarted", fields)];
    }
    return [{ kind: "retry", reason: "no snapshot of the host yet", delayMs: snapshotWait(ctx) }];
  }
  const graph = buildDependencyGraph(snapshot.containers);
  withoutDependencies.note(parentRecord.host, entry.revision, graph.dependents.size === 0);
  const parent = snapshot.containers.find((c) => c.id === parentRecord.containerId);
  if (!parent)
    return [log("info", "restarted container is gone; no dependents to restart", fields)];

  const plan = planDependents(graph, parent.id);
  if (plan.order.length === 0 && plan.ineligible.length === 0) {
    return [log("debug", "restarted container has no dependents", fields)];
  }
  const parentPolicy = effectivePolicy(ctx.policy, parent.labels).policy;
  if (!parentPolicy.dependents) {
    return [
      log(
        "info",
        `dependents of ${parent.name} are not restarted: turned off (${DEPENDENTS_LABEL} or the fleet policy)`,
        fields,
      ),
    ];
  }

  // The snapshot must show the parent's new run, or the graph's states and start times are
  // from before the restart. The agent publishes one within moments; wait for it.
  const fresh = isAfterIncident(parent, parentRecord.incident);
  if (fresh === false && !ctx.lastDelivery) {
    return [
      {
        kind: "retry",
        reason: "host snapshot predates the restart",
        delayMs: snapshotWait(ctx),
      },
    ];
  }
  const decisions: Decision[] = plan.warnings.map((w) => log("warn", w, fields));
  if (fresh === false) {
    decisions.push(
      log("warn", "host snapshot still predates the restart; using it anyway", fields),
    );
  }
  const run = new Run(parentRecord, parent, snapshot, plan, ctx, options, fresh === true);
  decisions.push(...run.ineligibleRecords());
  const blocked = run.blockedBy();
  decisions.push(
    ...(blocked ? run.skipAll(blocked.code, blocked.message) : run.step(0, new Set([parent.id]))),
  );
  return decisions;
}

/**
 * Whether the snapshot shows a run of the parent that started after the incident its record
 * names: true, false, or undefined when that cannot be told (no incident, no start time).
 */
function isAfterIncident(
  parent: ContainerSnapshot,
  incident: string | undefined,
): boolean | undefined {
  if (!incident || !parent.startedAt) return undefined;
  const order = compareInstants(parent.startedAt, incident);
  return order === undefined ? undefined : order > 0;
}

/** One round of dependent restarts for one parent record. */
class Run {
  private readonly parentName: string;

  constructor(
    private readonly parentRecord: RemediationRecord,
    private readonly parent: ContainerSnapshot,
    private readonly snapshot: HostSnapshot,
    private readonly plan: DependentsPlan,
    private readonly ctx: HandlerContext,
    private readonly options: DependentsOptions,
    /** The snapshot shows the parent's new run, so start times can be compared with it. */
    private readonly snapshotFresh: boolean,
  ) {
    this.parentName = parent.name;
  }

  /** A fleet-wide reason not to restart anything now. */
  blockedBy(): { code: string; message: string } | undefined {
    const policy: HealPolicy = this.ctx.policy;
    if (policy.paused) return { code: "paused", message: "healing is paused fleet-wide" };
    const now = this.ctx.now.getTime();
    const window = policy.maintenance.find(
      (w) =>
        now >= Date.parse(w.start) &&
        now < Date.parse(w.end) &&
        (!w.hosts || w.hosts.includes(this.snapshot.host)),
    );
    if (window) {
      return {
        code: "maintenance",
        message: `maintenance window until ${new Date(window.end).toISOString()}${window.reason ? `: ${window.reason}` : ""}`,
      };
    }
    if (this.snapshotFresh && this.parent.state !== "running") {
      return {
        code: "parent-not-running",
        message: `${this.parentName} is ${this.parent.state} again after its restart`,
      };
    }
    return undefined;
  }

  ineligibleRecords(): Decision[] {
    return this.plan.ineligible.map((d) =>
      this.record(
        d.container,
        "skipped",
        d.code,
        `not restarted after ${this.nameOf(d.parent)}: ${d.message}`,
      ),
    );
  }

  skipAll(code: string, message: string): Decision[] {
    return this.skipFrom(0, code, message);
  }

  /** `skipped` records for the dependents of the round from `index` on. */
  private skipFrom(index: number, code: string, message: string): Decision[] {
    return this.plan.order
      .slice(index)
      .map((n) =>
        this.record(
          n.container,
          "skipped",
          code,
          `not restarted after ${this.parentName}: ${message}`,
        ),
      );
  }

  /**
   * The decisions for the dependent at `index` and, through the restart's reply, for the rest:
   * each restart waits for the previous one's answer. `restarted` holds the parent and the
   * dependents restarted in this round so far.
   */
  step(index: number, restarted: ReadonlySet<string>): Decision[] {
    const node = this.plan.order[index];
    if (!node) return [];
    const next = (set: ReadonlySet<string>) => this.step(index + 1, set);
    const dep = node.container;
    const freshParents = node.parents.filter((p) => restarted.has(p));
    if (freshParents.length === 0) {
      const names = node.parents.map((p) => this.nameOf(p)).join(", ");
      return [
        this.record(
          dep,
          "skipped",
          "parent-not-restarted",
          `not restarted: ${names} ${node.parents.length > 1 ? "were" : "was"} not restarted in this round`,
        ),
        ...next(restarted),
      ];
    }
    // After the parent alone, a dependent that started after the parent's new run is already
    // in step with it: a redelivered round, or someone restarted it meanwhile.
    const onlyRoot = freshParents.every((p) => p === this.parent.id);
    if (
      onlyRoot &&
      this.snapshotFresh &&
      dep.startedAt &&
      this.parent.startedAt &&
      (compareInstants(dep.startedAt, this.parent.startedAt) ?? -1) >= 0
    ) {
      return [
        this.record(
          dep,
          "skipped",
          "already-current",
          `not restarted: it started at ${dep.startedAt}, after ${this.parentName} did at ${this.parent.startedAt}`,
        ),
        ...next(restarted),
      ];
    }
    if (effectivePolicy(this.ctx.policy, dep.labels).policy.dryRun) {
      return [
        this.record(
          dep,
          "skipped",
          "dry-run",
          `would restart it after ${this.parentName} (dry-run)`,
          undefined,
          true,
        ),
        ...next(restarted),
      ];
    }
    const command = this.command(node);
    return [
      // The storm guard counts a dependent's restart like any other. A round that finds a cap
      // full is not queued: its remaining dependents are skipped (each with a record), as their
      // own health checks still heal the ones that need it.
      {
        kind: "lease",
        holder: command.commandId,
        leases: stormLeases(this.snapshot.host, this.ctx.policy),
        onDenied: (denial) =>
          this.skipFrom(index, "storm-cap", `storm guard: ${denial.cap}; the round stops here`),
      },
      this.record(
        dep,
        "restarting",
        "dependent",
        `restarting it because ${this.parentName} was restarted (${node.reasons.join("; ")}; remediation ${this.parentRecord.remediationId})`,
        command.commandId,
      ),
      {
        kind: "restart",
        command,
        minTimeoutMs: restartDeadlineMs(dep),
        onReply: (result) => this.afterRestart(result, node, command, restarted, next),
      },
    ];
  }

  private afterRestart(
    result: CommandResult,
    node: PlannedDependent,
    command: RestartDraft,
    restarted: ReadonlySet<string>,
    next: (set: ReadonlySet<string>) => Decision[],
  ): Decision[] {
    const dep = node.container;
    if (!result.ok) {
      const unreachable = result.code === "no-responders" || result.code === "timeout";
      if (unreachable && !this.ctx.lastDelivery) {
        // The whole round is redelivered; the same command ids make the agent answer the
        // restarts it already made without making them again.
        return [
          {
            kind: "retry",
            reason: `agent unreachable: ${result.message}`,
            delayMs: this.options.retryDelayMs,
          },
        ];
      }
      return [
        this.record(dep, "failed", result.code, result.message, command.commandId, false, true),
        ...next(restarted),
      ];
    }
    const { reply } = result;
    const phase: RemediationPhase =
      reply.outcome === "restarted"
        ? "restarted"
        : reply.outcome === "failed"
          ? "failed"
          : "skipped";
    const after = phase === "restarted" ? new Set([...restarted, dep.id]) : restarted;
    return [
      this.record(dep, phase, reply.code, reply.message, command.commandId, false, true),
      ...next(after),
    ];
  }

  private command(node: PlannedDependent): RestartDraft {
    const dep = node.container;
    return {
      type: RESTART_COMMAND_TYPE,
      v: 1,
      commandId: `dependents-${this.digest(dep.id)}`,
      host: this.snapshot.host,
      containerId: dep.id,
      reason: `dependent of ${this.parentName}`.slice(0, 512),
      requestedBy: DEPENDENTS_ACTOR,
      // If the dependent has been started again since the snapshot, the agent leaves it alone.
      ...(dep.startedAt ? { incident: dep.startedAt } : {}),
    };
  }

  /** Deterministic per parent record and dependent, so that a redelivery repeats it exactly. */
  private digest(dependentId: string): string {
    return createHash("sha256")
      .update(`${this.parentRecord.id}|${dependentId}`)
      .digest("hex")
      .slice(0, 32);
  }

  private nameOf(id: string): string {
    return this.snapshot.containers.find((c) => c.id === id)?.name ?? id.slice(0, 12);
  }

  private record(
    dep: ContainerSnapshot,
    phase: RemediationPhase,
    code: string,
    message: string,
    commandId?: string,
    dryRun = false,
    afterReply = false,
  ): Decision {
    const remediationId = `${DEPENDENTS_HANDLER}:${this.digest(dep.id)}`;
    const record: RemediationRecord = {
      type: REMEDIATION_TYPE,
      v: 1,
      // Deterministic per phase, so JetStream drops the copy a redelivery would publish.
      id: `${remediationId}:${phase}`,
      remediationId,
      host: this.snapshot.host,
      containerId: dep.id,
      containerName: dep.name,
      phase,
      code: code.slice(0, 64),
      message: message.slice(0, 2048),
      ...(dep.startedAt ? { incident: dep.startedAt } : {}),
      // The parent's `restarted` record: what triggered this one.
      triggerEventId: this.parentRecord.id,
      ...(commandId ? { commandId } : {}),
      actor: DEPENDENTS_ACTOR,
      // A reply may come long after the round began.
      at: (afterReply ? new Date() : this.ctx.now).toISOString(),
      dryRun,
    };
    return { kind: "remediation", record };
  }
}

/**
 * A restart takes up to the container's stop timeout plus the time to start it again; waiting
 * less would report a restart that is merely slow as failed.
 */
function restartDeadlineMs(c: ContainerSnapshot): number {
  return ((stopTimeoutFromLabels(c.labels) ?? DEFAULT_STOP_TIMEOUT_SECONDS) + 30) * 1000;
}

function snapshotWait(ctx: HandlerContext): number {
  return Math.min(
    SNAPSHOT_WAIT_BASE_MS * 2 ** Math.max(0, ctx.deliveryCount - 1),
    SNAPSHOT_WAIT_MAX_MS,
  );
}

function log(level: "debug" | "info" | "warn", msg: string, fields: object): Decision {
  return { kind: "log", level, msg, fields };
}

const INSTANT = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/i;

/**
 * Compares two RFC 3339 times to the nanosecond (Docker's StartedAt has nanoseconds, which a
 * Date loses): negative, zero or positive, or undefined if either cannot be parsed.
 */
export function compareInstants(a: string, b: string): number | undefined {
  const na = instantNanos(a);
  const nb = instantNanos(b);
  if (na === undefined || nb === undefined) return undefined;
  return na < nb ? -1 : na > nb ? 1 : 0;
}

function instantNanos(value: string): bigint | undefined {
  const m = INSTANT.exec(value.trim());
  if (!m) return undefined;
  const seconds = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(seconds)) return undefined;
  return BigInt(seconds) * 1_000_000n + BigInt((m[2] ?? "").padEnd(9, "0"));
}
