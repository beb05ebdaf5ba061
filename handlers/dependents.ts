import { compareInstants } from "../common/nanosecond-time.js";
import {
  type ContainerSnapshot,
  RemediationRecord,
  remediationSubjectMismatch,
  SUBJECT_ROOT,
} from "../contracts/index.js";
import { effectivePolicy } from "../policy/policy-labels.js";
import type { Decision } from "./decisions.js";
import { DependencyFreeHosts } from "./dependency-free-hosts.js";
import { buildDependencyGraph, DEPENDENTS_LABEL, planDependents } from "./dependency-graph.js";
import {
  DEPENDENTS_ACTOR,
  DEPENDENTS_HANDLER,
  type DependentsOptions,
  DependentsRound,
} from "./dependents-round.js";
import type { HandlerContext, HandlerDefinition } from "./handler.js";

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
  const run = new DependentsRound(
    parentRecord,
    parent,
    snapshot,
    plan,
    ctx,
    options,
    fresh === true,
  );
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

function snapshotWait(ctx: HandlerContext): number {
  return Math.min(
    SNAPSHOT_WAIT_BASE_MS * 2 ** Math.max(0, ctx.deliveryCount - 1),
    SNAPSHOT_WAIT_MAX_MS,
  );
}

function log(level: "debug" | "info" | "warn", msg: string, fields: object): Decision {
  return { kind: "log", level, msg, fields };
}
