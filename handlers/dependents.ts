import { compareInstants } from "../common/nanosecond-time.js";
import {
  type ContainerSnapshot,
  type HostSnapshot,
  RemediationRecord,
  remediationSubjectMismatch,
  SUBJECT_ROOT,
} from "../contracts/index.js";
import { effectivePolicy } from "../policy/policy-labels.js";
import type { Decision } from "./decisions.js";
import { DependencyFreeHosts } from "./dependency-free-hosts.js";
import {
  buildDependencyGraph,
  DEPENDENTS_LABEL,
  type DependencyGraph,
  MAX_EDGES_PER_CONTAINER,
  MAX_EDGES_PER_HOST,
} from "./dependency-graph.js";
import { danglingNetworkRefs } from "./dependency-orphans.js";
import { planDependents } from "./dependency-plan.js";
import { readLedgers } from "./dependents-ledger.js";
import {
  DEPENDENTS_ACTOR,
  DEPENDENTS_HANDLER,
  type DependentsOptions,
  DependentsRound,
  type RoundTrigger,
} from "./dependents-round.js";
import type { HandlerContext, HandlerDefinition } from "./handler.js";

/** Waits for a snapshot that shows the parent's new run: 250 ms doubling to 5 s. */
const SNAPSHOT_WAIT_BASE_MS = 250;
const SNAPSHOT_WAIT_MAX_MS = 5_000;
/** Most deliveries beyond the first wait for a fresh snapshot (about 1.5 minutes in all). */
export const DEPENDENTS_MAX_DELIVER = 20;

/**
 * After a container is restarted, restarts the containers that depend on it (network namespace
 * shared with `network_mode: container:`, compose `depends_on`), transitively and in order,
 * one after another. Bound to `restarted` remediation records; dependents-start.ts and
 * dependents-recreated.ts bind the other triggers. See docs/DEPENDENTS.md.
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
    maxDeliver: DEPENDENTS_MAX_DELIVER,
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
  return decideRound(
    {
      trigger: {
        kind: "restarted",
        id: parentRecord.id,
        remediationId: parentRecord.remediationId,
      },
      host: parentRecord.host,
      containerId: parentRecord.containerId,
      locate: (snapshot) => {
        const parent = snapshot.containers.find((c) => c.id === parentRecord.containerId);
        return { parent, fresh: parent && isAfter(parent, parentRecord.incident) };
      },
    },
    ctx,
    options,
    withoutDependencies,
  );
}

/** The parent of a round, as a trigger finds it in a host snapshot. */
export interface LocatedParent {
  /** The parent's container now; undefined when the snapshot has none. */
  parent: ContainerSnapshot | undefined;
  /**
   * Whether the snapshot shows the parent's new run: true, false (too old: wait for the next),
   * or undefined when that cannot be told.
   */
  fresh: boolean | undefined;
  /** Old id → the parent's id, for a parent that replaced a container that is gone. */
  replaced?: ReadonlyMap<string, string>;
}

/** One trigger of a round, whatever its message. */
export interface RoundInput {
  trigger: RoundTrigger;
  host: string;
  /** The container the message is about, for the log. */
  containerId: string;
  locate(
    snapshot: HostSnapshot,
    dangling: ReadonlyMap<string, readonly ContainerSnapshot[]>,
  ): LocatedParent | Promise<LocatedParent>;
  /**
   * Decisions in place of the round when another trigger's round covers this run; asked only
   * once the parent is known to have dependents.
   */
  ownedElsewhere?(): Promise<Decision[] | undefined>;
}

/** The decisions of one round, whichever message triggered it. */
export async function decideRound(
  input: RoundInput,
  ctx: HandlerContext,
  options: DependentsOptions,
  withoutDependencies: DependencyFreeHosts,
): Promise<Decision[]> {
  const { host, trigger } = input;
  const fields = { host, containerId: input.containerId, trigger: trigger.id };
  const entry = await ctx.hostSnapshotEntry(host);
  if (entry && withoutDependencies.has(host, entry.revision)) {
    return [log("debug", "no container on the host depends on another", fields)];
  }
  const snapshot = entry?.snapshot();
  if (!entry || !snapshot) {
    if (ctx.lastDelivery) {
      return [log("warn", "no snapshot of the host; dependents not restarted", fields)];
    }
    return [{ kind: "retry", reason: "no snapshot of the host yet", delayMs: snapshotWait(ctx) }];
  }
  const dangling = danglingNetworkRefs(snapshot.containers);
  const { parent, fresh, replaced } = await input.locate(snapshot, dangling);
  if (!parent) {
    withoutDependencies.note(host, entry.revision, isDependencyFree(snapshot, dangling));
    if (fresh === false && !ctx.lastDelivery) {
      return [{ kind: "retry", reason: "host snapshot predates it", delayMs: snapshotWait(ctx) }];
    }
    return [log("info", "the container is gone; no dependents to restart", fields)];
  }
  const graph = buildDependencyGraph(snapshot.containers, replaced);
  // A host with a child left in a gone container's namespace is not free of dependencies: the
  // gone container's successor may start any moment.
  withoutDependencies.note(
    host,
    entry.revision,
    graph.dependents.size === 0 && dangling.size === 0,
  );
  const { edges, containers } = graph.overflow;
  const overflow =
    edges > 0 && withoutDependencies.firstOverflowReport(host, entry.revision)
      ? [
          log(
            "warn",
            `dependency graph capped: ${edges} edge(s) of ${containers} container(s) ignored (at most ${MAX_EDGES_PER_CONTAINER} per container and ${MAX_EDGES_PER_HOST} per host)`,
            { ...fields, revision: entry.revision, ignoredEdges: edges },
          ),
        ]
      : [];
  const round = await roundOf({ input, parent, fresh, graph, snapshot }, ctx, options);
  return [...overflow, ...round];
}

/** A round whose parent and graph are known. */
interface RoundSetting {
  input: RoundInput;
  parent: ContainerSnapshot;
  fresh: boolean | undefined;
  graph: DependencyGraph;
  snapshot: HostSnapshot;
}

/** The decisions of a round, from its plan on. */
async function roundOf(
  { input, parent, fresh, graph, snapshot }: RoundSetting,
  ctx: HandlerContext,
  options: DependentsOptions,
): Promise<Decision[]> {
  const { host, trigger } = input;
  const fields = { host, containerId: input.containerId, trigger: trigger.id };
  const plan = planDependents(graph, parent.id);
  if (plan.order.length === 0 && plan.ineligible.length === 0) {
    return [log("debug", "the container has no dependents", fields)];
  }
  const elsewhere = await input.ownedElsewhere?.();
  if (elsewhere) return elsewhere;
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
  // from before it. The agent publishes one within moments; wait for it.
  if (fresh === false && !ctx.lastDelivery) {
    return [
      { kind: "retry", reason: "host snapshot predates the new run", delayMs: snapshotWait(ctx) },
    ];
  }
  const decisions: Decision[] = plan.warnings.map((w) => log("warn", w, fields));
  if (fresh === false) {
    decisions.push(
      log("warn", "host snapshot still predates the new run; using it anyway", fields),
    );
  }
  const ledgers = await readLedgers(
    (key) => ctx.read("ledger", key),
    host,
    [...plan.order, ...plan.ineligible].map((n) => n.container.id),
  );
  const round = new DependentsRound(
    trigger,
    parent,
    snapshot,
    plan,
    ctx,
    options,
    ledgers,
    fresh === true,
  );
  decisions.push(...round.ineligibleRecords());
  const blocked = round.blockedBy();
  if (blocked) {
    decisions.push(
      log("info", `dependents of ${parent.name} not restarted: ${blocked.message}`, fields),
    );
    decisions.push(...round.skipAll(blocked.code, blocked.message));
  } else {
    decisions.push(...round.start());
  }
  return decisions;
}

function isDependencyFree(snapshot: HostSnapshot, dangling: ReadonlyMap<string, unknown>): boolean {
  return dangling.size === 0 && buildDependencyGraph(snapshot.containers).dependents.size === 0;
}

/**
 * Whether the snapshot shows a run of `c` that started after `instant` (a run that ended): true,
 * false, or undefined when that cannot be told (no instant, no start time).
 */
export function isAfter(c: ContainerSnapshot, instant: string | undefined): boolean | undefined {
  if (!instant || !c.startedAt) return undefined;
  const order = compareInstants(c.startedAt, instant);
  return order === undefined ? undefined : order > 0;
}

function snapshotWait(ctx: HandlerContext): number {
  return Math.min(
    SNAPSHOT_WAIT_BASE_MS * 2 ** Math.max(0, ctx.deliveryCount - 1),
    SNAPSHOT_WAIT_MAX_MS,
  );
}

export function log(level: "debug" | "info" | "warn", msg: string, fields: object): Decision {
  return { kind: "log", level, msg, fields };
}
