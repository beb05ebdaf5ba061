import {
  type Labels,
  type RemediationPhase,
  RemediationRecord,
  remediationSubjectMismatch,
  SUBJECTS,
} from "../../contracts/index.js";
import type { Decision } from "../decisions.js";
import type { HandlerContext, HandlerDefinition } from "../handler.js";
import { buildPayload } from "./payloads.js";
import type { NotifyTarget } from "./targets.js";

/**
 * The container label that mutes notifications for one container: `autoheal.notify=false`.
 * Named like `autoheal.stop.timeout`, so that it sits with the labels of the popular autoheal
 * tool that fleetheal reads.
 */
export const NOTIFY_MUTE_LABEL = "autoheal.notify";
const MUTING_VALUES = new Set(["false", "0", "no", "off"]);

export interface NotifyOptions {
  targets: readonly NotifyTarget[];
  events: readonly RemediationPhase[];
  maxAgeMs: number;
}

/**
 * Sends remediation records to webhooks: every configured target gets each record whose phase
 * is selected, unless the container mutes notifications by label. See docs/NOTIFY.md.
 */
export function notifyHandler(options: NotifyOptions): HandlerDefinition<RemediationRecord> {
  return {
    name: "notify",
    subject: SUBJECTS.remediations,
    schema: RemediationRecord,
    subjectMismatch: remediationSubjectMismatch,
    concurrency: 8,
    // With the runtime's redelivery backoff (1 s doubling to 60 s), about 10 minutes of tries.
    maxDeliver: 15,
    handle: (record, ctx) => decideNotify(record, ctx, options),
  };
}

/** True when the labels mute notifications (`autoheal.notify` is false, 0, no or off). */
export function isMuted(labels: Labels): boolean {
  const value = labels[NOTIFY_MUTE_LABEL];
  return value !== undefined && MUTING_VALUES.has(value.trim().toLowerCase());
}

/** The notify decision for one record; exported for unit tests. */
export async function decideNotify(
  record: RemediationRecord,
  ctx: HandlerContext,
  options: NotifyOptions,
): Promise<Decision[]> {
  if (!options.events.includes(record.phase)) return [];
  const fields = { host: record.host, containerId: record.containerId, phase: record.phase };
  const ageMs = ctx.now.getTime() - Date.parse(record.at);
  if (ageMs > options.maxAgeMs) {
    return [
      {
        kind: "log",
        level: "info",
        msg: "remediation record too old to notify",
        fields: { ...fields, ageMs },
      },
    ];
  }
  // The record carries no labels; the host's latest snapshot has them. A container the snapshot
  // does not know (removed since, or no snapshot yet) is not muted.
  const snapshot = await ctx.hostSnapshot(record.host);
  const container = snapshot?.containers.find((c) => c.id === record.containerId);
  if (container && isMuted(container.labels)) {
    return [
      {
        kind: "log",
        level: "debug",
        msg: `notification muted by label ${NOTIFY_MUTE_LABEL}`,
        fields,
      },
    ];
  }
  return options.targets.map((target) => ({
    kind: "notify",
    key: `${record.id}:${target.index}`,
    target,
    payload: buildPayload(target.kind, record),
  }));
}
