import { createHash } from "node:crypto";
import type { ContainerCommandDraft } from "../common/agent-commands.js";
import { remediationRecord } from "../common/remediation-record.js";
import {
  type ContainerSnapshot,
  type HostSnapshot,
  RECREATE_COMMAND_TYPE,
  RESTART_COMMAND_TYPE,
  type RemediationPhase,
} from "../contracts/index.js";
import type { Decision } from "./decisions.js";
import type { PlannedDependent } from "./dependency-plan.js";

/*
 * What one round of the dependents handlers sends (dependents-round.ts): its commands and
 * records, with ids that are deterministic per run of the parent and dependent.
 */

export const DEPENDENTS_HANDLER = "dependents";
export const DEPENDENTS_ACTOR = `handler:${DEPENDENTS_HANDLER}`;

/** How a record of a round is written. */
export interface RecordOptions {
  commandId?: string;
  dryRun?: boolean;
  /** Written when the agent answered, which may be long after the round began. */
  afterReply?: boolean;
  /** About a recreate (`action: recreate`). */
  recreate?: boolean;
  /** When a hold ends (backoff). */
  until?: Date;
}

/** The commands and records of one round. */
export class RoundOutput {
  private names: Map<string, string> | undefined;

  constructor(
    /** The triggering record's or event's id. */
    private readonly triggerId: string,
    private readonly parent: ContainerSnapshot,
    private readonly snapshot: HostSnapshot,
    /** The snapshot shows the parent's new run. */
    private readonly snapshotFresh: boolean,
    private readonly now: Date,
  ) {}

  /**
   * Deterministic per run of the parent and dependent, so that a redelivery, and a round of the
   * same parent run from the other trigger, send the same commands and records. Without the
   * parent's new run (a snapshot that does not show it), per trigger.
   */
  digest(dependentId: string): string {
    const run =
      this.snapshotFresh && this.parent.startedAt
        ? `${this.snapshot.host}|${this.parent.id}|${this.parent.startedAt}`
        : this.triggerId;
    return createHash("sha256").update(`${run}|${dependentId}`).digest("hex").slice(0, 32);
  }

  /** The command id for a dependent. */
  commandId(dependentId: string): string {
    return `dependents-${this.digest(dependentId)}`;
  }

  /**
   * A restart, or a recreate onto the new container of a network parent that was recreated:
   * the parent of the round (an edge marked `reattach`), or a dependent recreated before it
   * (`replaced`: old id → new id).
   */
  command(node: PlannedDependent, replaced: ReadonlyMap<string, string>): ContainerCommandDraft {
    const dep = node.container;
    const common = {
      v: 1 as const,
      commandId: this.commandId(dep.id),
      host: this.snapshot.host,
      containerId: dep.id,
      requestedBy: DEPENDENTS_ACTOR,
      // If the dependent has been started again since the snapshot, the agent leaves it alone.
      ...(dep.startedAt ? { incident: dep.startedAt } : {}),
    };
    for (const edge of node.edges) {
      if (edge.kind !== "network") continue;
      const networkParent = edge.reattach ? edge.parent : replaced.get(edge.parent);
      if (networkParent) {
        return {
          ...common,
          type: RECREATE_COMMAND_TYPE,
          reason: `network parent ${this.nameOf(edge.parent)} was recreated`.slice(0, 512),
          networkParent,
        };
      }
    }
    return {
      ...common,
      type: RESTART_COMMAND_TYPE,
      reason: `dependent of ${this.parent.name}`.slice(0, 512),
    };
  }

  nameOf(id: string): string {
    // Indexed on first use: a round of thousands of dependents names their parents each time.
    if (!this.names) {
      this.names = new Map();
      for (const c of this.snapshot.containers)
        if (!this.names.has(c.id)) this.names.set(c.id, c.name);
    }
    return this.names.get(id) ?? id.slice(0, 12);
  }

  record(
    dep: ContainerSnapshot,
    phase: RemediationPhase,
    code: string,
    message: string,
    options: RecordOptions = {},
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
      // The parent's record or `start` event: what triggered this one.
      triggerEventId: this.triggerId,
      commandId: options.commandId,
      actor: DEPENDENTS_ACTOR,
      at: options.afterReply ? new Date() : this.now,
      dryRun: options.dryRun ?? false,
      action: options.recreate ? "recreate" : undefined,
      until: options.until,
    });
    return { kind: "remediation", record };
  }
}
