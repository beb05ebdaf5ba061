import { createHash } from "node:crypto";
import type { RestartDraft } from "../common/agent-commands.js";
import { compareInstants } from "../common/nanosecond-time.js";
import { remediationRecord } from "../common/remediation-record.js";
import {
  type ContainerSnapshot,
  type HealPolicy,
  type HostSnapshot,
  RESTART_COMMAND_TYPE,
  type RemediationPhase,
  type RemediationRecord,
} from "../contracts/index.js";
import { effectivePolicy } from "../policy/policy-labels.js";
import type { CommandResult, Decision } from "./decisions.js";
import type { DependentsPlan, PlannedDependent } from "./dependency-graph.js";
import type { HandlerContext } from "./handler.js";
import { restartDeadlineMs } from "./restart-deadline.js";
import { stormLeases } from "./storm-slots.js";

/*
 * One round of the dependents handler (dependents.ts): the dependents of one restarted
 * container, restarted one after another in the planned order, each with its records.
 */

/** Settings of the dependents handler. */
export interface DependentsOptions {
  /** Delay before a restart that could not reach the agent is tried again. */
  retryDelayMs: number;
}

export const DEPENDENTS_HANDLER = "dependents";
export const DEPENDENTS_ACTOR = `handler:${DEPENDENTS_HANDLER}`;

/** One round of dependent restarts for one parent record. */
export class DependentsRound {
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
        kind: "command",
        command,
        minTimeoutMs: restartDeadlineMs(dep.labels),
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
    const record = remediationRecord({
      // Deterministic per phase, so JetStream drops the copy a redelivery would publish.
      id: `${remediationId}:${phase}`,
      remediationId,
      host: this.snapshot.host,
      containerId: dep.id,
      containerName: dep.name,
      phase,
      code,
      message,
      incident: dep.startedAt,
      // The parent's `restarted` record: what triggered this one.
      triggerEventId: this.parentRecord.id,
      commandId,
      actor: DEPENDENTS_ACTOR,
      // A reply may come long after the round began.
      at: afterReply ? new Date() : this.ctx.now,
      dryRun,
    });
    return { kind: "remediation", record };
  }
}
