import {
  type HostSnapshot,
  RemediationRecord,
  remediationSubjectMismatch,
  SUBJECT_ROOT,
} from "../contracts/index.js";
import type { Decision } from "./decisions.js";
import { DependencyFreeHosts } from "./dependency-free-hosts.js";
import { DEPENDENTS_MAX_DELIVER, decideRound, type LocatedParent } from "./dependents.js";
import {
  DEPENDENTS_ACTOR,
  DEPENDENTS_HANDLER,
  type DependentsOptions,
} from "./dependents-round.js";
import type { HandlerContext, HandlerDefinition } from "./handler.js";

/**
 * After fleetheal recreates a container, restarts its dependents, and recreates the children in
 * its network namespace onto the new container. Bound to `recreated` remediation records, whose
 * container is the old one; the new one is found by name. See docs/DEPENDENTS.md.
 */
export function dependentsRecreatedHandler(
  options: DependentsOptions,
): HandlerDefinition<RemediationRecord> {
  const withoutDependencies = new DependencyFreeHosts();
  return {
    name: `${DEPENDENTS_HANDLER}-recreated`,
    subject: `${SUBJECT_ROOT}.act.*.*.recreated`,
    schema: RemediationRecord,
    subjectMismatch: remediationSubjectMismatch,
    concurrency: 8,
    maxDeliver: DEPENDENTS_MAX_DELIVER,
    handle: (record, ctx) => decideDependentsOnRecreate(record, ctx, options, withoutDependencies),
  };
}

/** The decisions for one `recreated` record; exported for unit tests. */
export async function decideDependentsOnRecreate(
  record: RemediationRecord,
  ctx: HandlerContext,
  options: DependentsOptions,
  withoutDependencies = new DependencyFreeHosts(),
): Promise<Decision[]> {
  // A dependent recreated by a round is followed by that round (see dependents.ts).
  if (record.phase !== "recreated" || record.dryRun || record.actor === DEPENDENTS_ACTOR) return [];
  const oldId = record.containerId;
  const locate = (snapshot: HostSnapshot): LocatedParent => {
    // The new container has the old one's name. Until the snapshot shows it started, it
    // predates the recreate (the old one may linger a moment, stopped under another name).
    const parent = snapshot.containers.find((c) => c.name === record.containerName);
    if (!parent || parent.id === oldId) return { parent: undefined, fresh: false };
    return { parent, fresh: parent.state !== "created", replaced: new Map([[oldId, parent.id]]) };
  };
  return decideRound(
    {
      trigger: { kind: "recreated", id: record.id, remediationId: record.remediationId },
      host: record.host,
      containerId: oldId,
      locate,
    },
    ctx,
    options,
    withoutDependencies,
  );
}
