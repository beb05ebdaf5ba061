import {
  type HealAction,
  REMEDIATION_TYPE,
  type RemediationPhase,
  RemediationRecord,
} from "../contracts/index.js";

/** What a remediation record says; {@link remediationRecord} fills in the rest. */
export interface RemediationFacts {
  /** The record's own id, its JetStream message id: deterministic, so a repeat is dropped. */
  id: string;
  remediationId: string;
  host: string;
  containerId: string;
  containerName: string;
  phase: RemediationPhase;
  code: string;
  message: string;
  incident?: string | undefined;
  triggerEventId?: string | undefined;
  commandId?: string | undefined;
  actor: string;
  at: Date;
  dryRun?: boolean;
  /** What the remediation does; left out for a restart. */
  action?: HealAction | undefined;
  /** Which try within the incident; left out for the first. */
  attempt?: number | undefined;
  /** When a hold is due to end. */
  until?: Date | undefined;
  /** The tail of the health check's output, already in the contract's escaped form. */
  healthOutput?: string | undefined;
}

/** The text fields that carry what people or agents wrote, and may be longer than the contract. */
const TEXT_FIELDS = ["containerName", "code", "message", "actor"] as const;

/**
 * The one way every role builds a remediation record (handlers, the gateway, the CLI's
 * release). Text longer than the contract allows (an agent's message, a client's reason) is
 * cut to the contract's bound rather than rejected: the record is the audit trail of something
 * that happened, and losing it over a long sentence would be worse than a shortened one. Ids
 * are not cut; they are built from bounded parts.
 */
export function remediationRecord(facts: RemediationFacts): RemediationRecord {
  const record: RemediationRecord = {
    type: REMEDIATION_TYPE,
    v: 1,
    id: facts.id,
    remediationId: facts.remediationId,
    host: facts.host,
    containerId: facts.containerId,
    containerName: facts.containerName,
    phase: facts.phase,
    code: facts.code,
    message: facts.message,
    ...(facts.incident ? { incident: facts.incident } : {}),
    ...(facts.triggerEventId ? { triggerEventId: facts.triggerEventId } : {}),
    ...(facts.commandId ? { commandId: facts.commandId } : {}),
    actor: facts.actor,
    at: facts.at.toISOString(),
    dryRun: facts.dryRun ?? false,
    ...(facts.action && facts.action !== "restart" ? { action: facts.action } : {}),
    ...(facts.attempt && facts.attempt > 1 ? { attempt: facts.attempt } : {}),
    ...(facts.until ? { until: facts.until.toISOString() } : {}),
    ...(facts.healthOutput ? { healthOutput: facts.healthOutput } : {}),
  };
  for (const field of TEXT_FIELDS) record[field] = cut(record[field], MAX_LENGTH[field]);
  return record;
}

/** Each text field's bound, from the contract itself so that the two cannot drift apart. */
const MAX_LENGTH = Object.fromEntries(
  TEXT_FIELDS.map((field) => [field, RemediationRecord.shape[field].maxLength ?? Infinity]),
) as Record<(typeof TEXT_FIELDS)[number], number>;

function cut(text: string, max: number): string {
  return text.length <= max ? text : text.slice(0, max);
}
