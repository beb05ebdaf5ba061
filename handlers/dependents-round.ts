import type { ContainerCommandDraft } from "../common/agent-commands.js";
import { compareInstants } from "../common/nanosecond-time.js";
import {
  type ContainerSnapshot,
  type HealPolicy,
  type HostSnapshot,
  type LedgerEntry,
  RECREATE_COMMAND_TYPE,
  type RemediationPhase,
} from "../contracts/index.js";
import { effectivePolicy } from "../policy/policy-labels.js";
import { selectionHold } from "../policy/selection.js";
import type { CommandResult, Decision, Versioned } from "./decisions.js";
import type { DependentsPlan, PlannedDependent } from "./dependency-plan.js";
import { claimDependent, claimOf, dependentBound, settleDependent } from "./dependents-ledger.js";
import { type RecordOptions, RoundOutput } from "./dependents-output.js";
import type { HandlerContext } from "./handler.js";
import { restartDeadlineMs } from "./restart-deadline.js";
import { stormLeases } from "./storm-slots.js";

/*
 * One round of the dependents handlers (dependents.ts): the dependents of one new run of a
 * parent, restarted (or recreated onto a recreated parent) one after another in the planned
 * order, each claimed in its own ledger entry and recorded.
 */

/** Settings of the dependents handlers. */
export interface DependentsOptions {
  /** Delay before a restart that could not reach the agent is tried again. */
  retryDelayMs: number;
}

export { DEPENDENTS_ACTOR, DEPENDENTS_HANDLER } from "./dependents-output.js";

/** What started a round: a `restarted` or `recreated` record of fleetheal, or a `start` event. */
export interface RoundTrigger {
  kind: "restarted" | "recreated" | "started";
  /** The record's or the event's id: the records' `triggerEventId`. */
  id: string;
  /** The remediation that restarted or recreated the parent, when fleetheal did. */
  remediationId?: string;
}

/** What the round has done so far, for the dependents still to come. */
interface Progress {
  /** The parent and the dependents restarted or recreated in this round (their old ids). */
  restarted: ReadonlySet<string>;
  /** Dependents another command is acting on (heal, another round): theirs to follow up. */
  covered: ReadonlySet<string>;
  /** Old id → new id of the dependents recreated in this round. */
  replaced: ReadonlyMap<string, string>;
}

/** {@link Progress} as one pass of the round's loop adds to it. */
interface Mutable {
  restarted: Set<string>;
  covered: Set<string>;
  replaced: ReadonlyMap<string, string>;
}

/** One round of dependent restarts for one run of one parent. */
export class DependentsRound {
  private readonly parentName: string;
  private readonly why: string;
  private readonly output: RoundOutput;

  constructor(
    private readonly trigger: RoundTrigger,
    private readonly parent: ContainerSnapshot,
    private readonly snapshot: HostSnapshot,
    private readonly plan: DependentsPlan,
    private readonly ctx: HandlerContext,
    private readonly options: DependentsOptions,
    /** The dependents' ledger entries, as read before the round. */
    private readonly ledgers: ReadonlyMap<string, Versioned<LedgerEntry> | undefined>,
    /** The snapshot shows the parent's new run, so start times can be compared with it. */
    private readonly snapshotFresh: boolean,
  ) {
    this.parentName = parent.name;
    this.output = new RoundOutput(trigger.id, parent, snapshot, snapshotFresh, ctx.now);
    this.why = { restarted: "was restarted", recreated: "was recreated", started: "started again" }[
      trigger.kind
    ];
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
        message: `${this.parentName} is ${this.parent.state} again after it ${this.why}`,
      };
    }
    return undefined;
  }

  /**
   * Whether the parent's new run left `dep` behind: it started before that run. A round that a
   * `start` event began reports only on such dependents, so that `docker compose up`, whose
   * dependents start after their parent, writes no records.
   */
  private affected(dep: ContainerSnapshot): boolean {
    if (this.trigger.kind !== "started") return true;
    return dep.state === "running" && this.startedBefore(dep);
  }

  private startedBefore(dep: ContainerSnapshot): boolean {
    if (!this.snapshotFresh || !dep.startedAt || !this.parent.startedAt) return true;
    return (compareInstants(dep.startedAt, this.parent.startedAt) ?? -1) < 0;
  }

  ineligibleRecords(): Decision[] {
    return this.plan.ineligible.map((d) =>
      this.affected(d.container) && !this.handled(d.container)
        ? this.record(d.container, "skipped", d.code, `not restarted: ${d.message}`)
        : this.note(d.container, `left alone: ${d.message}`),
    );
  }

  /**
   * This parent run's command for `dep` is in its ledger: a round of the other trigger acted on
   * it (the old container of a recreated dependent lingers in the snapshot a moment, stopped).
   */
  private handled(dep: ContainerSnapshot): boolean {
    const entry = this.ledgers.get(dep.id)?.value;
    return claimOf(entry, dep, this.output.commandId(dep.id)).kind === "ours";
  }

  skipAll(code: string, message: string): Decision[] {
    return this.skipFrom(0, code, message);
  }

  /** `skipped` records for the dependents of the round from `index` on. */
  private skipFrom(index: number, code: string, message: string): Decision[] {
    return this.plan.order
      .slice(index)
      .filter((n) => this.affected(n.container))
      .map((n) => this.record(n.container, "skipped", code, `not restarted: ${message}`));
  }

  /** The decisions of the round, from its first dependent on. */
  start(): Decision[] {
    const root = new Set([this.parent.id]);
    return this.step(0, { restarted: root, covered: new Set(), replaced: new Map() });
  }

  /**
   * The decisions for the dependents from `index` on: one after another while nothing is sent,
   * up to the first command, whose reply goes on with the rest (each command waits for the
   * previous one's answer). A loop, not a recursion: a round can have thousands of dependents.
   */
  private step(index: number, progress: Progress): Decision[] {
    // The loop's own copy, added to in place: nothing holds it until a command's reply does,
    // and the loop ends there.
    const mine: Mutable = {
      restarted: new Set(progress.restarted),
      covered: new Set(progress.covered),
      replaced: progress.replaced,
    };
    const decisions: Decision[] = [];
    for (let i = index; i < this.plan.order.length; i++) {
      const node = this.plan.order[i] as PlannedDependent;
      const { out, goOn } = this.one(node, i, mine);
      for (const d of out) decisions.push(d);
      if (!goOn) break;
    }
    return decisions;
  }

  /** The decisions for one dependent, and whether the round goes straight on with the next. */
  private one(
    node: PlannedDependent,
    index: number,
    progress: Mutable,
  ): { out: Decision[]; goOn: boolean } {
    const next = (p: Progress) => this.step(index + 1, p);
    const goOn = (...out: Decision[]) => ({ out, goOn: true });
    const stop = (out: Decision[]) => ({ out, goOn: false });
    const dep = node.container;
    const command = this.output.command(node, progress.replaced);
    const read = this.ledgers.get(dep.id);
    const claim = claimOf(read?.value, dep, command.commandId);
    if (claim.kind === "ours") {
      // An earlier delivery of this round, or a round of the same parent run from the other
      // trigger, claimed it. A restart that was answered is done.
      const { outcome, at } = claim.restart;
      if (outcome !== "pending" && outcome !== "recreated") {
        if (outcome === "restarted") progress.restarted.add(dep.id);
        return goOn(this.note(dep, `already ${outcome} for this run`));
      }
      // Claimed moments ago: the round that claimed it is waiting for the answer; look again
      // once it is in rather than send the command a second time.
      const deadline = Date.parse(at) + restartDeadlineMs(dep.labels);
      if (outcome === "pending" && this.ctx.now.getTime() < deadline && !this.ctx.lastDelivery) {
        return stop([
          {
            kind: "retry",
            reason: "another round is waiting for its command",
            delayMs: this.options.retryDelayMs,
          },
        ]);
      }
      // Otherwise (that round is gone, or a recreate, whose new id only the reply tells) the
      // same command again: the agent answers it with its first reply.
      return stop(this.send(node, command, progress, next));
    }
    if (claim.kind === "taken") {
      progress.covered.add(dep.id);
      return goOn(
        this.note(dep, `command ${claim.commandId} is acting on it; that one follows up`),
      );
    }
    const freshParents = node.parents.filter((p) => progress.restarted.has(p));
    if (freshParents.length === 0) {
      if (node.parents.some((p) => progress.covered.has(p))) {
        progress.covered.add(dep.id);
        return goOn(this.note(dep, "its parent is another command's to follow up"));
      }
      const names = node.parents.map((p) => this.nameOf(p)).join(", ");
      return goOn(
        this.record(
          dep,
          "skipped",
          "parent-not-restarted",
          `not restarted: ${names} ${node.parents.length > 1 ? "were" : "was"} not restarted in this round`,
        ),
      );
    }
    // After the parent alone, a dependent that started after the parent's new run is already
    // in step with it: a first start (compose up), or someone restarted it meanwhile.
    if (freshParents.every((p) => p === this.parent.id) && !this.startedBefore(dep)) {
      const message = `not restarted: it started at ${dep.startedAt}, after ${this.parentName} did at ${this.parent.startedAt}`;
      return goOn(
        this.trigger.kind === "started"
          ? this.note(dep, message)
          : this.record(dep, "skipped", "already-current", message),
      );
    }
    // The fleet's selection and run-time switch leave a dependent alone as they leave it unhealed.
    const host = this.snapshot.host;
    const hold = selectionHold(this.ctx.policy, { host, name: dep.name, image: dep.image });
    if (hold) {
      return goOn(this.record(dep, "skipped", hold.code, `not restarted: ${hold.message}`));
    }
    const policy = effectivePolicy(this.ctx.policy, dep.labels).policy;
    if (policy.dryRun) {
      return goOn(
        this.record(dep, "skipped", "dry-run", `would act after ${this.parentName} (dry-run)`, {
          dryRun: true,
        }),
      );
    }
    const bound = dependentBound(read?.value, policy, this.ctx.now.getTime());
    if (bound) {
      return goOn(
        this.record(dep, "skipped", bound.code, `not restarted: ${bound.message}`, {
          ...(bound.until ? { until: bound.until } : {}),
        }),
      );
    }
    return stop([
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
      claimDependent(read, dep, command, policy, this.ctx.now),
      ...this.send(node, command, progress, next),
    ]);
  }

  /** The `restarting` record and the command, whose reply goes on with the round. */
  private send(
    node: PlannedDependent,
    command: ContainerCommandDraft,
    progress: Progress,
    next: (p: Progress) => Decision[],
  ): Decision[] {
    const dep = node.container;
    const recreate = command.type === RECREATE_COMMAND_TYPE;
    const what = recreate
      ? `recreating it onto ${this.parentName}'s new container`
      : "restarting it";
    const from = this.trigger.remediationId ? `; remediation ${this.trigger.remediationId}` : "";
    return [
      this.record(
        dep,
        "restarting",
        "dependent",
        `${what} because ${this.parentName} ${this.why} (${node.reasons.join("; ")}${from})`,
        { commandId: command.commandId, recreate },
      ),
      {
        kind: "command",
        command,
        minTimeoutMs: restartDeadlineMs(dep.labels),
        onReply: (result) => this.afterReply(result, dep, command, progress, next),
      },
    ];
  }

  private afterReply(
    result: CommandResult,
    dep: ContainerSnapshot,
    command: ContainerCommandDraft,
    progress: Progress,
    next: (p: Progress) => Decision[],
  ): Decision[] {
    const recreate = command.type === RECREATE_COMMAND_TYPE;
    const options = { commandId: command.commandId, recreate, afterReply: true };
    if (!result.ok) {
      const unreachable = result.code === "no-responders" || result.code === "timeout";
      if (unreachable && !this.ctx.lastDelivery) {
        // The whole round is redelivered; the ledger holds the pending claims, and the same
        // command ids make the agent answer the commands it already ran without running them.
        return [
          {
            kind: "retry",
            reason: `agent unreachable: ${result.message}`,
            delayMs: this.options.retryDelayMs,
          },
        ];
      }
      return [
        settleDependent(command, "failed"),
        this.record(dep, "failed", result.code, result.message, options),
        ...next(progress),
      ];
    }
    const { reply } = result;
    const acted = reply.outcome === "restarted" || reply.outcome === "recreated";
    const phase: RemediationPhase =
      reply.outcome === "restarted" || reply.outcome === "recreated" || reply.outcome === "failed"
        ? reply.outcome
        : "skipped";
    const replaced = new Map(progress.replaced);
    if (reply.outcome === "recreated" && reply.newContainerId) {
      replaced.set(dep.id, reply.newContainerId);
    }
    const restarted = acted ? new Set([...progress.restarted, dep.id]) : progress.restarted;
    return [
      settleDependent(command, reply.outcome),
      this.record(dep, phase, reply.code, reply.message, options),
      ...next({ ...progress, restarted, replaced }),
    ];
  }

  private nameOf(id: string): string {
    return this.output.nameOf(id);
  }

  private note(dep: ContainerSnapshot, msg: string): Decision {
    return {
      kind: "log",
      level: "debug",
      msg: `${dep.name}: ${msg}`,
      fields: { host: this.snapshot.host, containerId: dep.id, trigger: this.trigger.id },
    };
  }

  private record(
    dep: ContainerSnapshot,
    phase: RemediationPhase,
    code: string,
    message: string,
    options: RecordOptions = {},
  ): Decision {
    return this.output.record(dep, phase, code, message, options);
  }
}
