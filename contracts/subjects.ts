import type { ContainerAction } from "./container-event.js";
import { ContainerAction as ContainerActionSchema } from "./container-event.js";
import type { RemediationPhase } from "./remediation.js";
import { RemediationPhase as RemediationPhaseSchema } from "./remediation.js";
import { isToken } from "./tokens.js";

/** Every fleetheal subject starts with this; the version changes only with a breaking change. */
export const SUBJECT_ROOT = "fleetheal.v1";

/** The verbs an agent serves on `fleetheal.v1.cmd.<host>.<verb>`. */
export const COMMAND_VERBS = ["restart", "stop", "recreate", "inspect", "snapshot"] as const;
export type CommandVerb = (typeof COMMAND_VERBS)[number];
/** The verbs that change a container: signed by the control plane, and answered with a CommandReply. */
export const CONTAINER_COMMAND_VERBS = ["restart", "stop", "recreate"] as const;
export type ContainerCommandVerb = (typeof CONTAINER_COMMAND_VERBS)[number];

/** Raised when a subject cannot be built from the given tokens. */
export class InvalidSubjectTokenError extends Error {
  override readonly name = "InvalidSubjectTokenError";
  readonly code = "FLEETHEAL_ERR_SUBJECT_TOKEN";
  constructor(
    readonly part: string,
    readonly value: string,
  ) {
    super(
      `invalid ${part} ${JSON.stringify(value)}: may contain only letters, digits, '_' and '-'`,
    );
  }
}

function token(part: string, value: string): string {
  if (!isToken(value)) throw new InvalidSubjectTokenError(part, value);
  return value;
}

/** `fleetheal.v1.evt.<host>.<cid>.<action>` */
export function eventSubject(host: string, containerId: string, action: ContainerAction): string {
  return `${SUBJECT_ROOT}.evt.${token("host", host)}.${token("container id", containerId)}.${action}`;
}

/** `fleetheal.v1.host.<host>.snapshot` */
export function snapshotSubject(host: string): string {
  return `${SUBJECT_ROOT}.host.${token("host", host)}.snapshot`;
}

/** `fleetheal.v1.cmd.<host>.<verb>` */
export function commandSubject(host: string, verb: CommandVerb): string {
  return `${SUBJECT_ROOT}.cmd.${token("host", host)}.${verb}`;
}

/** `fleetheal.v1.handler.<replica>.stats`: a handler replica's counters (request/reply). */
export function handlerStatsSubject(replica: string): string {
  return `${SUBJECT_ROOT}.handler.${token("replica", replica)}.stats`;
}

/** `fleetheal.v1.act.<host>.<cid>.<phase>` */
export function remediationSubject(
  host: string,
  containerId: string,
  phase: RemediationPhase,
): string {
  return `${SUBJECT_ROOT}.act.${token("host", host)}.${token("container id", containerId)}.${phase}`;
}

/** `fleetheal.v1.dlq.<handler>`: dead letters of one handler (see DLQ_STREAM). */
export function deadLetterSubject(handler: string): string {
  return `${SUBJECT_ROOT}.dlq.${token("handler", handler)}`;
}

/** Headers on a dead letter; its data is the original message's, unchanged. */
export const DEAD_LETTER_HEADERS = {
  subject: "Fleetheal-Dlq-Subject",
  reason: "Fleetheal-Dlq-Reason",
  handler: "Fleetheal-Dlq-Handler",
  deliveries: "Fleetheal-Dlq-Deliveries",
  streamSeq: "Fleetheal-Dlq-Stream-Seq",
} as const;

/** Wildcards for subscribers. */
export const SUBJECTS = {
  all: `${SUBJECT_ROOT}.>`,
  events: `${SUBJECT_ROOT}.evt.>`,
  remediations: `${SUBJECT_ROOT}.act.>`,
  deadLetters: `${SUBJECT_ROOT}.dlq.>`,
  snapshots: `${SUBJECT_ROOT}.host.*.snapshot`,
  eventsWithAction: (action: ContainerAction) => `${SUBJECT_ROOT}.evt.*.*.${action}`,
  remediationsWithPhase: (phase: RemediationPhase) => `${SUBJECT_ROOT}.act.*.*.${phase}`,
  hostEvents: (host: string) => `${SUBJECT_ROOT}.evt.${token("host", host)}.>`,
} as const;

/** The parts of an event subject. */
export interface EventSubjectParts {
  host: string;
  containerId: string;
  action: ContainerAction;
}

/** Parses `fleetheal.v1.evt.<host>.<cid>.<action>`; returns undefined for anything else. */
export function parseEventSubject(subject: string): EventSubjectParts | undefined {
  const parts = splitUnder(subject, "evt", 3);
  if (!parts) return undefined;
  const [host, containerId, action] = parts as [string, string, string];
  const parsed = ContainerActionSchema.safeParse(action);
  return parsed.success ? { host, containerId, action: parsed.data } : undefined;
}

/** The parts of a remediation subject. */
export interface RemediationSubjectParts {
  host: string;
  containerId: string;
  phase: RemediationPhase;
}

/** Parses `fleetheal.v1.act.<host>.<cid>.<phase>`; returns undefined for anything else. */
export function parseRemediationSubject(subject: string): RemediationSubjectParts | undefined {
  const parts = splitUnder(subject, "act", 3);
  if (!parts) return undefined;
  const [host, containerId, phase] = parts as [string, string, string];
  const parsed = RemediationPhaseSchema.safeParse(phase);
  return parsed.success ? { host, containerId, phase: parsed.data } : undefined;
}

/** Parses `fleetheal.v1.host.<host>.snapshot`; returns the host or undefined. */
export function parseSnapshotSubject(subject: string): string | undefined {
  const parts = splitUnder(subject, "host", 2);
  return parts?.[1] === "snapshot" ? parts[0] : undefined;
}

/** Parses `fleetheal.v1.cmd.<host>.<verb>`. */
export function parseCommandSubject(
  subject: string,
): { host: string; verb: CommandVerb } | undefined {
  const parts = splitUnder(subject, "cmd", 2);
  if (!parts) return undefined;
  const [host, verb] = parts as [string, string];
  return (COMMAND_VERBS as readonly string[]).includes(verb)
    ? { host, verb: verb as CommandVerb }
    : undefined;
}

function splitUnder(subject: string, kind: string, count: number): string[] | undefined {
  const prefix = `${SUBJECT_ROOT}.${kind}.`;
  if (!subject.startsWith(prefix)) return undefined;
  const rest = subject.slice(prefix.length).split(".");
  if (rest.length !== count || !rest.every(isToken)) return undefined;
  return rest;
}
