/**
 * fleetheal's public wire API: every subject, payload and JetStream resource that agents,
 * handlers, the gateway and external subscribers share. Nothing outside this file is public.
 */

export type { Decoded } from "./codec.js";
export { ContractViolationError, decode, encode } from "./codec.js";
export {
  COMMAND_REFUSAL_CODES,
  COMMAND_SIGNATURE_HEADERS,
  type CommandRefusalCode,
  MAX_COMMAND_LIFETIME_MS,
} from "./command-auth.js";
export {
  COMMAND_REPLY_TYPE,
  CommandOutcome,
  CommandReply,
  INSPECT_REPLY_TYPE,
  INSPECT_REQUEST_TYPE,
  InspectReply,
  InspectRequest,
  RECREATE_COMMAND_TYPE,
  RESTART_COMMAND_TYPE,
  RecreateCommand,
  RestartCommand,
  SNAPSHOT_REQUEST_TYPE,
  SnapshotRequest,
  STOP_COMMAND_TYPE,
  StopCommand,
} from "./commands.js";
export {
  CONTAINER_EVENT_TYPE,
  ContainerAction,
  ContainerEvent,
  containerEventId,
  HEALTH_ACTIONS,
  HealthOutput,
  HealthStatus,
  ImageId,
  LIFECYCLE_ACTIONS,
  MAX_HEALTH_OUTPUT,
} from "./container-event.js";
export { formatDuration, parseDuration } from "./duration.js";
export { HANDLER_STATS_TYPE, HandlerCounters, HandlerStats } from "./handler-stats.js";
export {
  CONFIG_BUCKET,
  ContainerSelector,
  DEFAULT_HEAL_POLICY,
  DisabledContainer,
  HealAction,
  HealPolicy,
  MaintenanceWindow,
  POLICY_KEY,
  POLICY_RANGES,
  type PolicyRange,
  SelectionPattern,
} from "./heal-policy.js";
export {
  AgentCounters,
  CommandRefusals,
  ContainerSnapshot,
  ContainerState,
  HOST_SNAPSHOT_TYPE,
  HostSnapshot,
  PROBE_RESULTS,
  type ProbeResultKind,
} from "./host-snapshot.js";
export {
  BREAKERS_BUCKET,
  containerKey,
  DLQ_STREAM,
  EVENTS_STREAM,
  HOSTS_BUCKET,
  INFLIGHT_BUCKET,
  LEDGER_BUCKET,
  MONITORED_BUCKET,
  parseContainerKey,
  RATE_BUCKET,
} from "./jetstream.js";
export {
  LABEL_TRUNCATION_MARKER,
  Labels,
  LabelsCut,
  labelsSize,
  MAX_LABEL_KEY,
  MAX_LABEL_VALUE,
  MAX_LABELS,
  MAX_LABELS_TOTAL,
  STOP_TIMEOUT_LABEL,
  stopTimeoutFromLabels,
} from "./labels.js";
export { ImageFailures, LedgerEntry, LedgerRestart, MonitoredContainer } from "./ledger.js";
export { REMEDIATION_TYPE, RemediationPhase, RemediationRecord } from "./remediation.js";
export { eventSubjectMismatch, remediationSubjectMismatch } from "./subject-match.js";
export type {
  CommandVerb,
  ContainerCommandVerb,
  EventSubjectParts,
  RemediationSubjectParts,
} from "./subjects.js";
export {
  COMMAND_VERBS,
  CONTAINER_COMMAND_VERBS,
  commandSubject,
  DEAD_LETTER_HEADERS,
  deadLetterSubject,
  eventSubject,
  handlerStatsSubject,
  InvalidSubjectTokenError,
  parseCommandSubject,
  parseEventSubject,
  parseRemediationSubject,
  parseSnapshotSubject,
  remediationSubject,
  SUBJECT_ROOT,
  SUBJECTS,
  snapshotSubject,
} from "./subjects.js";
export {
  ContainerId,
  HostId,
  isToken,
  MAX_TOKEN_LENGTH,
  TOKEN_PATTERN,
  Token,
  toToken,
} from "./tokens.js";
