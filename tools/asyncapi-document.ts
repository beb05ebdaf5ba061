// Builds fleetheal's AsyncAPI 3.0 document from the contracts. Everything a subscriber can rely on
// comes from contracts/: subjects from the subject builders, parameter patterns and payload schemas
// from the zod schemas (through zod's own z.toJSONSchema), names from contracts/jetstream.ts. What
// is written here by hand is prose, examples (validated against the schemas when the document is
// built) and the JetStream limits, which live in common/jetstream-resources.ts and are compared
// with a real server's by test/example-subscriber.test.ts.

import { z } from "zod";
import {
  DEFAULT_HOST_EVENTS_MAX_BYTES,
  DEFAULT_HOST_EVENTS_WINDOW_MS,
  hostEventsStream,
} from "../common/host-event-streams.js";
import { DEFAULT_STREAM_LIMITS } from "../common/jetstream-resources.js";
import { VERSION } from "../common/version.js";
import * as contracts from "../contracts/index.js";
import {
  BREAKERS_BUCKET,
  COMMAND_REPLY_TYPE,
  COMMAND_SIGNATURE_HEADERS,
  COMMAND_VERBS,
  CONFIG_BUCKET,
  CONTAINER_EVENT_TYPE,
  CommandReply,
  type ContainerAction,
  ContainerEvent,
  ContainerId,
  commandSubject,
  containerEventId,
  containerKey,
  DEAD_LETTER_HEADERS,
  DLQ_STREAM,
  deadLetterSubject,
  EVENTS_STREAM,
  eventSubject,
  HANDLER_STATS_TYPE,
  HandlerStats,
  HealPolicy,
  HOST_SNAPSHOT_TYPE,
  HOSTS_BUCKET,
  HostId,
  HostSnapshot,
  handlerStatsSubject,
  ImageFailures,
  INFLIGHT_BUCKET,
  INSPECT_REPLY_TYPE,
  INSPECT_REQUEST_TYPE,
  InspectReply,
  InspectRequest,
  LEDGER_BUCKET,
  LedgerEntry,
  MONITORED_BUCKET,
  MonitoredContainer,
  POLICY_KEY,
  RATE_BUCKET,
  RECREATE_COMMAND_TYPE,
  REMEDIATION_TYPE,
  RESTART_COMMAND_TYPE,
  RecreateCommand,
  type RemediationPhase,
  RemediationRecord,
  RestartCommand,
  remediationSubject,
  SNAPSHOT_REQUEST_TYPE,
  SnapshotRequest,
  STOP_COMMAND_TYPE,
  StopCommand,
  SUBJECT_ROOT,
  SUBJECTS,
  snapshotSubject,
  Token,
} from "../contracts/index.js";

/** A JSON value as it goes into the document. */
type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

/**
 * How the payload schemas are produced. `io: "input"` describes what the contracts' `decode()`
 * accepts, which is what every fleetheal process enforces at its boundary: objects stay open
 * (fields added later in v1 are allowed) and fields with a default are optional, with the default
 * shown. `io: "output"` would close every object (`additionalProperties: false`) and make the
 * defaulted fields required, which is what fleetheal's producers happen to send today but is a
 * stricter promise than v1 makes, and would make a consumer reject a message with a new field.
 * Draft-07 is the JSON Schema dialect that AsyncAPI's default schema format extends.
 */
export const JSON_SCHEMA_OPTIONS = { io: "input", target: "draft-07" } as const;

const SCHEMA_REF = "#/components/schemas/";

/** The name of every zod schema that contracts/index.ts exports, by schema. */
function exportedSchemaNames(): Map<z.ZodType, string> {
  const names = new Map<z.ZodType, string>();
  for (const [name, value] of Object.entries(contracts)) {
    if (value instanceof z.ZodType) names.set(value, name);
  }
  return names;
}

/**
 * Every exported contract schema as JSON Schema, keyed by its export name. Schemas that refer to
 * another exported schema do so with a `$ref` into components.schemas (zod's registry output), so
 * that `HostId`'s pattern, for example, is written once.
 */
export function contractJsonSchemas(): Record<string, JsonObject> {
  const registry = z.registry<{ id: string }>();
  for (const [schema, name] of exportedSchemaNames()) registry.add(schema, { id: name });
  const { schemas } = z.toJSONSchema(registry, {
    ...JSON_SCHEMA_OPTIONS,
    uri: (id) => `${SCHEMA_REF}${id}`,
  });
  const out: Record<string, JsonObject> = {};
  for (const name of Object.keys(schemas).sort()) {
    // `$schema` and `$id` are for standalone files; inside the document they would only confuse
    // resolvers (a `$id` of `#/components/...` is not a valid plain-name fragment).
    const { $schema: _dialect, $id: _id, ...schema } = schemas[name] as JsonObject;
    out[name] = schema;
  }
  return out;
}

function schemaName(schema: z.ZodType): string {
  const name = exportedSchemaNames().get(schema);
  if (!name) throw new Error("a message payload must be a schema exported by contracts/index.ts");
  return name;
}

/** The `type` discriminator of a message schema, if it has one (every wire message does). */
export function typeLiteral(schema: z.ZodType): string | undefined {
  if (!(schema instanceof z.ZodObject)) return undefined;
  const type = schema.shape.type;
  return type instanceof z.ZodLiteral && typeof type.value === "string" ? type.value : undefined;
}

// --- Subjects -----------------------------------------------------------------------------------

/**
 * A token that stands for a channel parameter while a subject builder runs: it is a valid token
 * (so the builder's validation accepts it) and is then replaced by `{name}`. Building the address
 * with the real builder means a change of subject layout changes this document too.
 */
const slot = (name: string) => `__${name}__`;

function template(subject: string): string {
  const address = subject.replace(/__([A-Za-z]+)__/g, "{$1}");
  if (address.includes("__")) throw new Error(`unreplaced parameter slot in ${subject}`);
  return address;
}

// The builders type `action` and `phase` as enums but check only the host and container tokens at
// run time, so a slot passes through; if they ever check it, generation fails loudly here.
const ADDRESSES = {
  event: template(
    eventSubject(slot("host"), slot("containerId"), slot("action") as ContainerAction),
  ),
  snapshot: template(snapshotSubject(slot("host"))),
  remediation: template(
    remediationSubject(slot("host"), slot("containerId"), slot("phase") as RemediationPhase),
  ),
  deadLetter: template(deadLetterSubject(slot("handler"))),
  handlerStats: template(handlerStatsSubject(slot("replica"))),
  kv: (bucket: string, key: string) => template(`$KV.${bucket}.${key}`),
};

/** A wildcard of SUBJECTS as a pattern, with `{name}` for the arguments of the functions. */
function wildcard(value: string | ((arg: never) => string), parameter?: string): string {
  if (typeof value === "string") return value;
  if (!parameter) throw new Error("a wildcard function needs its parameter's name");
  return template((value as (arg: string) => string)(slot(parameter)));
}

const WILDCARDS: Record<keyof typeof SUBJECTS, { subject: string; description: string }> = {
  all: {
    subject: wildcard(SUBJECTS.all),
    description:
      "Everything fleetheal publishes, commands and dead letters included; an operator's view. The `reader` user subscribes to no fleetheal subject: as a consumer's filter on its mirror of FLEETHEAL_EVENTS, it gives every event and record.",
  },
  events: {
    subject: wildcard(SUBJECTS.events),
    description: "Every container event of every host.",
  },
  remediations: {
    subject: wildcard(SUBJECTS.remediations),
    description: "Every remediation record of every host.",
  },
  deadLetters: {
    subject: wildcard(SUBJECTS.deadLetters),
    description: "Every dead letter of every handler (stored in FLEETHEAL_DLQ).",
  },
  snapshots: {
    subject: wildcard(SUBJECTS.snapshots),
    description: "Every host's snapshot, as each agent publishes it.",
  },
  eventsWithAction: {
    subject: wildcard(SUBJECTS.eventsWithAction, "action"),
    description: "One kind of container event across the fleet, e.g. every `unhealthy`.",
  },
  hostEvents: {
    subject: wildcard(SUBJECTS.hostEvents, "host"),
    description: "Every container event of one host.",
  },
  remediationsWithPhase: {
    subject: wildcard(SUBJECTS.remediationsWithPhase, "phase"),
    description: "One phase of remediation across the fleet, e.g. every `quarantined`.",
  },
};

// --- Parameters ---------------------------------------------------------------------------------

/** The pattern and length limits of a token schema, read from its JSON Schema. */
function tokenRules(schema: z.ZodType): {
  pattern: string;
  minLength?: number;
  maxLength?: number;
} {
  const { pattern, minLength, maxLength } = z.toJSONSchema(
    schema,
    JSON_SCHEMA_OPTIONS,
  ) as JsonObject;
  if (typeof pattern !== "string") throw new Error("a subject token schema must have a pattern");
  return {
    pattern,
    ...(typeof minLength === "number" ? { minLength } : {}),
    ...(typeof maxLength === "number" ? { maxLength } : {}),
  };
}

/**
 * AsyncAPI 3 parameters have no schema (only enum, default, description, examples and location),
 * so a token's pattern is stated in the description and, machine-readably, in `x-fleetheal-*`.
 */
function tokenParameter(schema: z.ZodType, description: string, examples: string[]): JsonObject {
  const rules = tokenRules(schema);
  const length =
    rules.maxLength === undefined ? "" : `, ${rules.minLength ?? 1} to ${rules.maxLength} long`;
  return {
    description: `${description} Matches \`${rules.pattern}\`${length}.`,
    examples,
    "x-fleetheal-pattern": rules.pattern,
    ...(rules.maxLength === undefined ? {} : { "x-fleetheal-max-length": rules.maxLength }),
    "x-fleetheal-schema": schemaName(schema),
  };
}

function enumParameter(schema: z.ZodEnum, description: string): JsonObject {
  return {
    description,
    enum: [...schema.options] as string[],
    "x-fleetheal-schema": schemaName(schema),
  };
}

const PARAMETERS: Record<string, JsonObject> = {
  host: tokenParameter(
    HostId,
    "The host id, chosen by the operator (FLEETHEAL_HOST_ID) and validated when the agent starts.",
    ["web-1"],
  ),
  containerId: tokenParameter(
    ContainerId,
    "The Docker container id (never its name, which may contain dots).",
    ["3f4e5d6c7b8a9f0e1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b6a7f8e9d0c1b2a3f4e"],
  ),
  action: enumParameter(
    contracts.ContainerAction,
    "What happened to the container: a Docker lifecycle action or a health transition.",
  ),
  phase: enumParameter(contracts.RemediationPhase, "The step of the remediation."),
  handler: tokenParameter(
    Token,
    "The name of the handler that dead-lettered the message (for example `heal`, `auto-monitor`, `dependents`, `notify`).",
    ["heal"],
  ),
  replica: tokenParameter(
    Token,
    "A handler replica's name: its NATS connection name (`fleetheal-handler-<hostname>-<pid>`) as a subject token. `$SRV.INFO.fleetheal-handler` lists the replicas (in each one's metadata).",
    ["fleetheal-handler-node-1-4242"],
  ),
  imageKey: tokenParameter(
    Token,
    "A hash of the image id (`imgid-…`), or of the image name for events without an id (`img-…`), chosen by the heal handler; the image itself is in the value.",
    ["imgid-0123456789abcdef0123456789abcdef"],
  ),
};

const parameterRefs = (address: string): JsonObject => {
  const names = [...address.matchAll(/\{([A-Za-z]+)\}/g)].map((m) => m[1] as string);
  return Object.fromEntries(
    names.map((name) => {
      if (!PARAMETERS[name]) throw new Error(`no parameter ${name} (in ${address})`);
      return [name, { $ref: `#/components/parameters/${name}` }];
    }),
  );
};

// --- Examples -----------------------------------------------------------------------------------

const HOST = "web-1";
const CID = "3f4e5d6c7b8a9f0e1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b6a7f8e9d0c1b2a3f4e";
const STARTED_AT = "2025-01-15T09:58:02.123456789Z";
const EVENT_ID = containerEventId(HOST, CID, "1736935094512000000", "unhealthy");
const COMMAND_ID = "heal-5b0e2f9a1c3d4e6f7a8b9c0d1e2f3a4b";
/** An operator public key, as the handlers' and gateway's signing key would have. */
const SIGNING_KEY = "ODHTBUWRFY3477GFKTINZEFCNSHUJIDMJU5OZ5PMUKR4JHJKPCW5EQQU";
const REMEDIATION_ID = `heal:${EVENT_ID}`;
const LABELS = { autoheal: "true", "com.docker.compose.project": "shop" };
const IMAGE_ID = "sha256:9b2a4c1d7e3f5a6b8c0d2e4f6a8b0c1d3e5f7a9b1c3d5e7f9a0b2c4d6e8f0a1b";

const CONTAINER_SNAPSHOT = {
  id: CID,
  name: "api",
  image: "registry.example/shop/api:1.4.2",
  imageId: IMAGE_ID,
  state: "running",
  health: "unhealthy",
  optedIn: true,
  labels: LABELS,
  startedAt: STARTED_AT,
  restartCount: 0,
  failingStreak: 3,
  lastHealthOutput: "curl: (7) Failed to connect to localhost port 8080",
  healthSource: "docker",
  networkMode: "bridge",
};

/** One example payload per message; each is parsed with its schema when the document is built. */
const EXAMPLES = {
  containerEvent: {
    type: CONTAINER_EVENT_TYPE,
    v: 1,
    id: EVENT_ID,
    host: HOST,
    action: "unhealthy",
    timeNano: "1736935094512000000",
    time: "2025-01-15T09:58:14.512Z",
    container: {
      id: CID,
      name: "api",
      image: "registry.example/shop/api:1.4.2",
      imageId: IMAGE_ID,
      labels: LABELS,
      optedIn: true,
      startedAt: STARTED_AT,
    },
    source: "docker",
  },
  hostSnapshot: {
    type: HOST_SNAPSHOT_TYPE,
    v: 1,
    host: HOST,
    seq: 42,
    at: "2025-01-15T09:58:14.530Z",
    heartbeatMs: 10_000,
    agent: {
      version: VERSION,
      startedAt: "2025-01-15T08:00:00.000Z",
      label: "autoheal",
      watchAll: false,
      uptimeSeconds: 7094,
      commandKeys: [SIGNING_KEY],
      acceptsUnsignedCommands: false,
      commandRefusals: {
        refused: {
          unsigned: 0,
          "untrusted-key": 0,
          "bad-signature": 0,
          "issued-in-future": 0,
          expired: 1,
          "bad-lifetime": 0,
          "issued-before-start": 0,
          "no-trusted-keys": 0,
          "replay-window": 0,
        },
        malformed: { restart: 0, stop: 0, inspect: 0, snapshot: 0 },
        last: "expired: expired at 2025-01-15T09:40:02.000Z, 61412 ms ago (skew allowed: 30000 ms)",
      },
    },
    outbox: { depth: 0, capacity: 10_000, published: 1234, dropped: 0 },
    lastEventTimeNano: "1736935094512000000",
    docker: { status: "up", version: "26.1.5" },
    containers: [CONTAINER_SNAPSHOT],
  },
  remediationRecord: {
    type: REMEDIATION_TYPE,
    v: 1,
    id: `${REMEDIATION_ID}:restarted:restarted`,
    remediationId: REMEDIATION_ID,
    host: HOST,
    containerId: CID,
    containerName: "api",
    phase: "restarted",
    code: "restarted",
    message: "restarted after being unhealthy (restart 1 of 5 in the last hour)",
    incident: STARTED_AT,
    triggerEventId: EVENT_ID,
    commandId: COMMAND_ID,
    actor: "heal",
    at: "2025-01-15T09:58:15.002Z",
    dryRun: false,
  },
  restartCommand: {
    type: RESTART_COMMAND_TYPE,
    v: 1,
    commandId: COMMAND_ID,
    host: HOST,
    containerId: CID,
    reason: "unhealthy since 2025-01-15T09:58:14.512Z",
    requestedBy: "heal",
    stopTimeoutSeconds: 10,
    incident: STARTED_AT,
    requireUnhealthy: true,
    issuedAt: "2025-01-15T09:58:14.520Z",
    expiresAt: "2025-01-15T09:58:44.520Z",
  },
  stopCommand: {
    type: STOP_COMMAND_TYPE,
    v: 1,
    commandId: "cli-0f1e2d3c4b5a",
    host: HOST,
    containerId: CID,
    reason: "operator asked",
    requestedBy: "cli",
    issuedAt: "2025-01-15T10:02:00.000Z",
    expiresAt: "2025-01-15T10:02:30.000Z",
  },
  recreateCommand: {
    type: RECREATE_COMMAND_TYPE,
    v: 1,
    commandId: "heal-1c9a7f3e2b6d4a80",
    host: HOST,
    containerId: CID,
    reason: "unhealthy",
    requestedBy: "handler:heal",
    incident: STARTED_AT,
    requireUnhealthy: true,
    pull: true,
    issuedAt: "2025-01-15T09:58:14.520Z",
    expiresAt: "2025-01-15T09:58:44.520Z",
  },
  commandReply: {
    type: COMMAND_REPLY_TYPE,
    v: 1,
    verb: "restart",
    commandId: COMMAND_ID,
    host: HOST,
    containerId: CID,
    outcome: "restarted",
    code: "restarted",
    message: "container restarted",
    duplicate: false,
    startedAt: "2025-01-15T09:58:14.530Z",
    durationMs: 412.7,
  },
  inspectRequest: { type: INSPECT_REQUEST_TYPE, v: 1, host: HOST, containerId: CID },
  inspectReply: { type: INSPECT_REPLY_TYPE, v: 1, host: HOST, container: CONTAINER_SNAPSHOT },
  snapshotRequest: { type: SNAPSHOT_REQUEST_TYPE, v: 1, host: HOST },
  handlerStats: {
    type: HANDLER_STATS_TYPE,
    v: 1,
    replica: "fleetheal-handler-node-1-4242",
    handlers: {
      heal: { handled: 1204, rejected: 1, retried: 3, deferred: 57, failed: 0, conflicts: 2 },
      "auto-monitor": {
        handled: 310,
        rejected: 0,
        retried: 0,
        deferred: 0,
        failed: 0,
        conflicts: 0,
      },
      dependents: { handled: 12, rejected: 0, retried: 0, deferred: 4, failed: 0, conflicts: 0 },
    },
  },
  ledgerEntry: {
    v: 1,
    host: HOST,
    containerId: CID,
    lastIncident: STARTED_AT,
    lastCommandId: COMMAND_ID,
    lastRestartAt: "2025-01-15T09:58:14.530Z",
    restarts: [
      {
        at: "2025-01-15T09:58:14.530Z",
        incident: STARTED_AT,
        commandId: COMMAND_ID,
        outcome: "restarted",
      },
    ],
    consecutiveRestarts: 1,
    lastTroubleAt: "2025-01-15T09:58:14.512Z",
  },
  monitoredContainer: {
    v: 1,
    host: HOST,
    containerId: CID,
    name: "api",
    image: "registry.example/shop/api:1.4.2",
    firstSeenAt: "2025-01-14T17:02:40.000Z",
    lastStartedAt: "2025-01-15T09:58:15.000Z",
    starts: 3,
  },
  healPolicy: {
    dryRun: false,
    backoff: { initialSeconds: 10, maxSeconds: 300 },
    budget: { restarts: 5, windowSeconds: 3600 },
    maintenance: [
      {
        start: "2025-01-18T22:00:00Z",
        end: "2025-01-19T02:00:00Z",
        hosts: [HOST],
        reason: "kernel upgrade",
      },
    ],
  },
  imageFailures: {
    v: 1,
    image: "registry.example/shop/api:1.4.2",
    imageId: IMAGE_ID,
    failures: [
      {
        at: "2025-01-15T09:58:14.512Z",
        host: HOST,
        containerId: CID,
        incident: STARTED_AT,
      },
    ],
  },
};

// --- Messages -----------------------------------------------------------------------------------

interface MessageSpec {
  schema: z.ZodType;
  title: string;
  summary: string;
  description?: string;
  headers?: JsonObject;
  correlationId?: string;
  example?: keyof typeof EXAMPLES;
}

/** The JetStream dedup header of a stored message. */
const msgIdHeaders = (value: string): JsonObject => ({
  type: "object",
  properties: {
    "Nats-Msg-Id": {
      type: "string",
      description: `JetStream message id: ${value}. The stream drops a repeat within its duplicate window.`,
    },
  },
});

/** The headers that sign a restart or stop (contracts/command-auth.ts). */
const signatureHeaders = (): JsonObject => ({
  type: "object",
  required: [COMMAND_SIGNATURE_HEADERS.key, COMMAND_SIGNATURE_HEADERS.signature],
  properties: {
    [COMMAND_SIGNATURE_HEADERS.key]: {
      type: "string",
      pattern: "^O[A-Z2-7]{55}$",
      description:
        "The signer's public key: a NATS operator nkey. The agent must list it in `FLEETHEAL_COMMAND_KEYS`.",
      examples: [SIGNING_KEY],
    },
    [COMMAND_SIGNATURE_HEADERS.signature]: {
      type: "string",
      pattern: "^[A-Za-z0-9_-]{86}$",
      description:
        "The ed25519 signature, by that key, of the payload bytes exactly as sent (no re-encoding), in base64url without padding.",
    },
  },
});

/** What restart and stop both say about signing. */
const SIGNED_COMMAND =
  "Signed by the control plane (headers `Fleetheal-Signing-Key` and `Fleetheal-Signature`, over the exact payload bytes) and valid from `issuedAt` to `expiresAt` (at most 300 s). The agent refuses a command that is unsigned, signed by a key it does not trust, tampered with, issued in the future or before the agent started, or expired (allowing `FLEETHEAL_COMMAND_CLOCK_SKEW_MS`), with a service error 403 `<code>: <detail>`. A sender signs every attempt afresh: a repeat keeps its `commandId` and gets a new `issuedAt`.";

const MESSAGES: Record<string, MessageSpec> = {
  containerEvent: {
    schema: ContainerEvent,
    title: "Container event",
    summary: "One Docker container event, forwarded by the agent of the host it happened on.",
    description:
      "`id` is `<host>:<container id>:<timeNano>:<action>`: stable for one Docker event, so a republished or replayed event is recognised by it. `source` says who saw the transition (Docker's event stream, the agent's reconciliation after a gap, or a label probe).",
    headers: msgIdHeaders("the payload's `id`"),
    example: "containerEvent",
  },
  hostSnapshot: {
    schema: HostSnapshot,
    title: "Host snapshot",
    summary: "The full state of one host as its agent sees it.",
    description:
      "Published on every change and at least every `heartbeatMs`. Judge staleness by when you received it, not by `at` (the agent's clock).",
    example: "hostSnapshot",
  },
  remediationRecord: {
    schema: RemediationRecord,
    title: "Remediation record",
    summary: "One step of a remediation: what fleetheal decided or did about a container, and why.",
    description:
      "All records of one remediation share `remediationId`; `code` is a stable machine-readable reason and `message` one sentence for people.",
    headers: msgIdHeaders("the payload's `id`"),
    example: "remediationRecord",
  },
  restartCommand: {
    schema: RestartCommand,
    title: "Restart command",
    summary: "Asks the agent of `host` to restart one opted-in container.",
    description: `The agent executes a \`commandId\` at most once and answers a repeat with the first reply, so a sender that timed out may send the same command again. ${SIGNED_COMMAND}`,
    headers: signatureHeaders(),
    correlationId: "$message.payload#/commandId",
    example: "restartCommand",
  },
  stopCommand: {
    schema: StopCommand,
    title: "Stop command",
    summary: "Asks the agent of `host` to stop one opted-in container (`docker stop`).",
    description: SIGNED_COMMAND,
    headers: signatureHeaders(),
    correlationId: "$message.payload#/commandId",
    example: "stopCommand",
  },
  recreateCommand: {
    schema: RecreateCommand,
    title: "Recreate command",
    summary:
      "Asks the agent of `host` to replace one opted-in container with a new one of the same configuration and name.",
    description: `The agent creates the new container (after pulling the image again when \`pull\` is set), starts it and removes the old one; if the new one cannot be created or started, the old one is put back. \`networkParent\` moves a \`network_mode: container:\` child onto its recreated parent. ${SIGNED_COMMAND}`,
    headers: signatureHeaders(),
    correlationId: "$message.payload#/commandId",
    example: "recreateCommand",
  },
  commandReply: {
    schema: CommandReply,
    title: "Command reply",
    summary: "What the agent did with a restart or stop command.",
    description:
      "`code` is stable and machine-readable: `restarted`, `stopped`, `wrong-host`, `not-found`, `not-opted-in`, `already-restarting`, `paused`, `stale-incident`, `not-unhealthy` or `docker-error`. `duplicate` is true when this is the stored answer to a repeated command id.",
    correlationId: "$message.payload#/commandId",
    example: "commandReply",
  },
  inspectRequest: {
    schema: InspectRequest,
    title: "Inspect request",
    summary: "Asks for one container as the agent sees it now (fresh from Docker).",
    example: "inspectRequest",
  },
  inspectReply: {
    schema: InspectReply,
    title: "Inspect reply",
    summary: "One container, fresh from Docker.",
    example: "inspectReply",
  },
  snapshotRequest: {
    schema: SnapshotRequest,
    title: "Snapshot request",
    summary: "Asks for the host's snapshot now; the reply is a host snapshot.",
    example: "snapshotRequest",
  },
  handlerStats: {
    schema: HandlerStats,
    title: "Handler stats",
    summary: "A handler replica's counters, per handler, since the replica started.",
    description:
      "The answer to a request on `fleetheal.v1.handler.{replica}.stats`, whose body is ignored. Each replica counts only what it handled; sum over the replicas for the fleet (`$SRV.STATS.fleetheal-handler` answers from every replica at once, in the NATS micro service format).",
    example: "handlerStats",
  },
  ledgerEntry: {
    schema: LedgerEntry,
    title: "Ledger entry",
    summary:
      "A container's healing history: incidents acted on, restarts, backoff and quarantine state.",
    example: "ledgerEntry",
  },
  monitoredContainer: {
    schema: MonitoredContainer,
    title: "Monitored container",
    summary: "What auto-monitor records about an opted-in container when it starts.",
    example: "monitoredContainer",
  },
  healPolicy: {
    schema: HealPolicy,
    title: "Heal policy",
    summary:
      "The fleet's healing policy (docs/POLICY.md). Every field has a default, so `{}` is valid.",
    description:
      "A maintenance window's `end` must be after its `start`; JSON Schema cannot say that, the contract checks it.",
    example: "healPolicy",
  },
  imageFailures: {
    schema: ImageFailures,
    title: "Image failures",
    summary: "Recent failures of one image across the fleet: the image breaker's memory.",
    example: "imageFailures",
  },
};

// Messages that are not contract payloads: forwarded bytes and the service framework's errors.

const DEAD_LETTER_HEADER_DESCRIPTIONS: Record<keyof typeof DEAD_LETTER_HEADERS, string> = {
  subject: "The subject the original message was published on.",
  reason: "Why the handler gave up on it (one line, at most 1024 characters).",
  handler: "The handler that rejected it.",
  deliveries: "How many times it had been delivered to that handler.",
  streamSeq: `Its sequence in ${EVENTS_STREAM}.`,
};

function deadLetterMessage(): JsonObject {
  const properties: JsonObject = {};
  for (const [key, header] of Object.entries(DEAD_LETTER_HEADERS)) {
    properties[header] = {
      type: "string",
      description: DEAD_LETTER_HEADER_DESCRIPTIONS[key as keyof typeof DEAD_LETTER_HEADERS],
    };
  }
  properties["Nats-Msg-Id"] = {
    type: "string",
    description: "`<handler>:<stream sequence>`, so a retried dead-lettering is stored once.",
  };
  return {
    name: "fleetheal.dlq.v1.dead-letter",
    title: "Dead letter",
    summary: "A message a handler rejected as malformed or gave up on after its last delivery.",
    description:
      "The data is the original message's, unchanged: usually a container event or remediation record, but possibly not valid JSON or not matching its schema, which is why it is here. The headers say where it came from and why it was rejected.",
    headers: {
      type: "object",
      required: Object.values(DEAD_LETTER_HEADERS),
      properties,
    },
    payload: {
      description: "The original message's bytes, unchanged; any content.",
    },
  };
}

function serviceErrorMessage(): JsonObject {
  return {
    name: "nats.micro.error",
    title: "Service error",
    summary: "The NATS micro service's error answer: headers and an empty body.",
    description:
      "`400` for a request that is not valid JSON, does not match its schema or names another host; `403` for a restart or stop the agent refuses unexecuted (message `<code>: <detail>`, code one of `unsigned`, `untrusted-key`, `bad-signature`, `issued-in-future`, `expired`, `bad-lifetime`, `issued-before-start`, `no-trusted-keys`, `replay-window`); `404` for `inspect` of a container the agent does not know; `500` when the agent failed.",
    headers: {
      type: "object",
      required: ["Nats-Service-Error-Code", "Nats-Service-Error"],
      properties: {
        "Nats-Service-Error-Code": { type: "string", examples: ["400", "403", "404"] },
        "Nats-Service-Error": {
          type: "string",
          examples: [
            "not-found: no such container on this host",
            "untrusted-key: OAB… is not in FLEETHEAL_COMMAND_KEYS",
          ],
        },
      },
    },
  };
}

function contractMessage(spec: MessageSpec): JsonObject {
  const name = typeLiteral(spec.schema) ?? schemaName(spec.schema);
  const message: JsonObject = {
    name,
    title: spec.title,
    summary: spec.summary,
    ...(spec.description ? { description: spec.description } : {}),
    contentType: "application/json",
    ...(spec.headers ? { headers: spec.headers } : {}),
    payload: { $ref: `${SCHEMA_REF}${schemaName(spec.schema)}` },
    ...(spec.correlationId ? { correlationId: { location: spec.correlationId } } : {}),
  };
  if (spec.example) {
    const example = EXAMPLES[spec.example];
    const parsed = spec.schema.safeParse(example);
    if (!parsed.success) {
      throw new Error(`example ${spec.example} does not match ${name}: ${parsed.error.message}`);
    }
    message.examples = [{ name: spec.example, payload: example as Json }];
  }
  return message;
}

// --- Channels and operations --------------------------------------------------------------------

interface ChannelSpec {
  address: string | null;
  title: string;
  description: string;
  messages: string[];
  /** The contracts function that builds this channel's subjects, if one does. */
  builder?: string;
  stream?: string;
  bucket?: string;
}

/**
 * The reader of `fleetheal nats-auth` reads only the hosts bucket, through READER's mirror of it
 * (common/nats-permissions.ts, common/reader-mirrors.ts).
 */
const kvDescription = (what: string, writer: string, reader: boolean) =>
  `${what} Written by ${writer}. Read it with a KV client (get, or watch for changes) rather than by subscribing: a deleted or purged key arrives as an empty message with the header \`KV-Operation: DEL\` or \`PURGE\`. External tools may read it but should not write to it${reader ? "; the `reader` user reads the READER account's mirror of it, under the same name." : "; the `reader` user may not read it (the gateway's user may)."}`;

const cmdChannel = (verb: (typeof COMMAND_VERBS)[number]) =>
  template(commandSubject(slot("host"), verb));

const REQUEST_OF_VERB: Record<(typeof COMMAND_VERBS)[number], string> = {
  restart: "restartCommand",
  stop: "stopCommand",
  recreate: "recreateCommand",
  inspect: "inspectRequest",
  snapshot: "snapshotRequest",
};
const REPLY_OF_VERB: Record<(typeof COMMAND_VERBS)[number], string> = {
  restart: "commandReply",
  stop: "commandReply",
  recreate: "commandReply",
  inspect: "inspectReply",
  snapshot: "hostSnapshot",
};
const OTHER_SENDERS =
  "operators and tools whose NATS user may publish to it (no fleetheal role sends it today)";
const SENDERS_OF_VERB: Record<(typeof COMMAND_VERBS)[number], string> = {
  restart: "the handlers (heal, dependents) and the gateway (manual restarts)",
  stop: "the heal handler (`action` stop)",
  recreate: "the handlers (heal with `action` recreate, dependents re-attaching a child)",
  inspect: OTHER_SENDERS,
  snapshot: OTHER_SENDERS,
};
const SERVES_VERB: Record<(typeof COMMAND_VERBS)[number], string> = {
  restart:
    "The agent acts only on containers that opted in, re-checks the command (paused, already restarting, stale incident, still unhealthy when `requireUnhealthy`) and executes each command id at most once.",
  stop: "The agent acts only on containers that opted in, re-checks the command as for a restart and executes each command id at most once.",
  recreate:
    "The agent acts only on containers that opted in, re-checks the command as for a restart, executes each command id at most once, and puts the old container back if the new one cannot start.",
  inspect: "Read-only: the container fresh from Docker, or a 404 service error.",
  snapshot: "Read-only: the agent's current snapshot of its host.",
};

const capitalised = (s: string) => `${s.charAt(0).toUpperCase()}${s.slice(1)}`;

function channelSpecs(): Record<string, ChannelSpec> {
  const commands = Object.fromEntries(
    COMMAND_VERBS.map((verb) => [
      `command${capitalised(verb)}`,
      {
        address: cmdChannel(verb),
        title: `${capitalised(verb)} command`,
        description: `Request/reply to the agent of \`{host}\`, sent by ${SENDERS_OF_VERB[verb]}. The agent's four command endpoints form the NATS micro service \`fleetheal-agent\`, with the host in its metadata, so \`$SRV.PING\`, \`$SRV.INFO\` and \`$SRV.STATS\` (optionally \`.fleetheal-agent\`) discover every agent. Core NATS only: commands are not stored.`,
        messages: [REQUEST_OF_VERB[verb]],
        builder: "commandSubject",
      } satisfies ChannelSpec,
    ]),
  );
  return {
    containerEvents: {
      address: ADDRESSES.event,
      title: "Container events",
      description: `Docker container lifecycle and health events, one subject per host, container and action. Published by each host's agent with a JetStream ack and kept in the \`${EVENTS_STREAM}\` stream; a core NATS subscription sees them live too.`,
      messages: ["containerEvent"],
      builder: "eventSubject",
      stream: EVENTS_STREAM,
    },
    hostSnapshots: {
      address: ADDRESSES.snapshot,
      title: "Host snapshots",
      description: `The live snapshot of one host, published by its agent on every change and on a heartbeat. Core NATS only (not stored in a stream); the latest one of each host is also kept in the \`${HOSTS_BUCKET}\` KV bucket (channel kvHosts).`,
      messages: ["hostSnapshot"],
      builder: "snapshotSubject",
    },
    remediations: {
      address: ADDRESSES.remediation,
      title: "Remediation records",
      description: `The audit trail of healing: every decision, action and outcome, including "skipped, and why". Published by the handlers (and by the gateway for manual actions: \`fleetheal restart\`, \`release\`) and kept in the \`${EVENTS_STREAM}\` stream.`,
      messages: ["remediationRecord"],
      builder: "remediationSubject",
      stream: EVENTS_STREAM,
    },
    ...commands,
    commandReplies: {
      address: null,
      title: "Command replies",
      description:
        "The requester's inbox: the NATS reply subject of a command request, chosen by the requester's client (under its inbox prefix). A request gets exactly one answer: a reply payload, or a service error.",
      messages: ["commandReply", "inspectReply", "hostSnapshot", "serviceError"],
    },
    handlerStats: {
      address: ADDRESSES.handlerStats,
      title: "Handler stats",
      description:
        "Request/reply to one handler replica, for monitoring: send any body (an empty one will do) and get its counters. An endpoint of the NATS micro service `fleetheal-handler`. Core NATS only: not stored.",
      messages: [],
      builder: "handlerStatsSubject",
    },
    handlerStatsReplies: {
      address: null,
      title: "Handler stats replies",
      description: "The requester's inbox: the NATS reply subject of a stats request.",
      messages: ["handlerStats"],
    },
    deadLetters: {
      address: ADDRESSES.deadLetter,
      title: "Dead letters",
      description: `Messages a handler rejected as malformed or gave up on after its last delivery, kept in the \`${DLQ_STREAM}\` stream for inspection and replay. An operator's subject: the \`reader\` user may neither subscribe to it nor read the stream (the handler's user may).`,
      messages: ["deadLetter"],
      builder: "deadLetterSubject",
      stream: DLQ_STREAM,
    },
    kvHosts: {
      address: ADDRESSES.kv(HOSTS_BUCKET, slot("host")),
      title: `KV ${HOSTS_BUCKET}`,
      description: kvDescription(
        "The latest snapshot of each host, under the host id.",
        "each host's agent (its own key only)",
        true,
      ),
      messages: ["hostSnapshot"],
      bucket: HOSTS_BUCKET,
    },
    kvLedger: {
      address: ADDRESSES.kv(LEDGER_BUCKET, containerKey(slot("host"), slot("containerId"))),
      title: `KV ${LEDGER_BUCKET}`,
      description: kvDescription(
        "Each container's healing history; the heal handlers decide with a compare-and-set on it, which is what makes a restart happen once per incident.",
        "the handlers, and the gateway on a release",
        false,
      ),
      messages: ["ledgerEntry"],
      bucket: LEDGER_BUCKET,
    },
    kvMonitored: {
      address: ADDRESSES.kv(MONITORED_BUCKET, containerKey(slot("host"), slot("containerId"))),
      title: `KV ${MONITORED_BUCKET}`,
      description: kvDescription(
        "Opted-in containers as auto-monitor saw them start.",
        "the auto-monitor handler",
        false,
      ),
      messages: ["monitoredContainer"],
      bucket: MONITORED_BUCKET,
    },
    kvConfig: {
      address: ADDRESSES.kv(CONFIG_BUCKET, POLICY_KEY),
      title: `KV ${CONFIG_BUCKET}`,
      description: `The fleet's heal policy under the key \`${POLICY_KEY}\`, watched live by every handler. Written by the gateway (pause, resume, PUT /policy), which validates it. Decoded strictly: a document with an unknown field or an invalid value is rejected, and the last valid policy stays in force (a process that starts without one pauses healing). Read it with a KV client; an absent or deleted key means the defaults apply. The \`reader\` user may not read it (the gateway's user may).`,
      messages: ["healPolicy"],
      bucket: CONFIG_BUCKET,
    },
    kvBreakers: {
      address: ADDRESSES.kv(BREAKERS_BUCKET, slot("imageKey")),
      title: `KV ${BREAKERS_BUCKET}`,
      description: kvDescription(
        "Recent failures per image, from which the heal handler trips the image breaker.",
        "the heal handler",
        false,
      ),
      messages: ["imageFailures"],
      bucket: BREAKERS_BUCKET,
    },
  };
}

function channelObject(key: string, spec: ChannelSpec, known: JsonObject): JsonObject {
  return {
    address: spec.address,
    title: spec.title,
    description: spec.description,
    ...(spec.address?.includes("{") ? { parameters: parameterRefs(spec.address) } : {}),
    messages: Object.fromEntries(
      spec.messages.map((m) => {
        if (!(m in known)) {
          throw new Error(`channel ${key}: no message ${m}`);
        }
        return [m, { $ref: `#/components/messages/${m}` }];
      }),
    ),
    ...(spec.builder ? { "x-fleetheal-subject-builder": spec.builder } : {}),
    ...(spec.stream ? { "x-fleetheal-stream": spec.stream } : {}),
    ...(spec.bucket ? { "x-fleetheal-kv-bucket": spec.bucket } : {}),
  };
}

const messageRefs = (channel: string, messages: string[]): Json[] =>
  messages.map((m) => ({ $ref: `#/channels/${channel}/messages/${m}` }));

function operations(channels: Record<string, ChannelSpec>): JsonObject {
  const send = (channel: string, summary: string, description?: string): JsonObject => ({
    action: "send",
    channel: { $ref: `#/channels/${channel}` },
    summary,
    ...(description ? { description } : {}),
    messages: messageRefs(channel, channels[channel]?.messages ?? []),
  });
  const commandOps = Object.fromEntries(
    COMMAND_VERBS.map((verb) => {
      const channel = `command${capitalised(verb)}`;
      return [
        `serve${capitalised(verb)}`,
        {
          action: "receive",
          channel: { $ref: `#/channels/${channel}` },
          summary: `The agent of {host} serves ${verb} requests.`,
          description: SERVES_VERB[verb],
          messages: messageRefs(channel, [REQUEST_OF_VERB[verb]]),
          reply: {
            channel: { $ref: "#/channels/commandReplies" },
            messages: messageRefs("commandReplies", [REPLY_OF_VERB[verb], "serviceError"]),
          },
        },
      ];
    }),
  );
  return {
    publishContainerEvent: send(
      "containerEvents",
      "An agent publishes each Docker container event of its host.",
      "Through a bounded outbox, with a JetStream publish that is retried with the same `Nats-Msg-Id` until the stream acks it.",
    ),
    publishHostSnapshot: send(
      "hostSnapshots",
      "An agent publishes its host's snapshot on every change and on a heartbeat.",
    ),
    publishRemediation: send(
      "remediations",
      "A handler (or the gateway, for manual actions) records each step of a remediation.",
    ),
    ...commandOps,
    serveHandlerStats: {
      action: "receive",
      channel: { $ref: "#/channels/handlerStats" },
      summary: "Each handler replica serves its counters.",
      description: "The request's body is ignored, so it has no message of its own.",
      messages: [],
      reply: {
        channel: { $ref: "#/channels/handlerStatsReplies" },
        messages: messageRefs("handlerStatsReplies", ["handlerStats"]),
      },
    },
    publishDeadLetter: send(
      "deadLetters",
      "A handler moves a message it cannot use to its dead-letter subject, then terminates it.",
    ),
    putHostSnapshot: send("kvHosts", "An agent stores its host's latest snapshot."),
    putLedgerEntry: send("kvLedger", "The handlers update a container's ledger entry."),
    putMonitoredContainer: send("kvMonitored", "auto-monitor records a started container."),
    putHealPolicy: send("kvConfig", "An operator or the gateway changes the heal policy."),
    putImageFailures: send("kvBreakers", "The heal handler records a failure of an image."),
  };
}

// --- JetStream ----------------------------------------------------------------------------------

const DAY_SECONDS = 24 * 60 * 60;

/**
 * The streams and buckets fleetheal creates (common/jetstream-resources.ts), as limits a reader
 * can plan a replay with. test/example-subscriber.test.ts compares them with what a real server
 * reports after fleetheal created them, so a change there without one here fails.
 */
function jetstreamResources(): JsonObject {
  const seconds = (ms: number) => Math.round(ms / 1000);
  const kv = (
    bucket: string,
    history: number,
    key: string,
    value: string | null,
    ttlSeconds?: number,
  ): [string, JsonObject] => [
    bucket,
    {
      stream: `KV_${bucket}`,
      key,
      history,
      ...(ttlSeconds === undefined ? {} : { ttlSeconds }),
      value:
        value === null
          ? "internal (storm guard slot); not part of the contract"
          : { $ref: `${SCHEMA_REF}${value}` },
    },
  ];
  return {
    streams: {
      [EVENTS_STREAM]: {
        description:
          "Every container event and remediation record. It captures the records; each host's events come from a stream of that host's own, which it sources (sourcedFrom).",
        subjects: [SUBJECTS.remediations],
        retention: "limits",
        discard: "old",
        storage: "file",
        maxAgeSeconds: seconds(DEFAULT_STREAM_LIMITS.maxAgeMs),
        maxBytes: DEFAULT_STREAM_LIMITS.maxBytes,
        duplicateWindowSeconds: seconds(DEFAULT_STREAM_LIMITS.duplicateWindowMs),
        sourcedFrom: {
          stream: hostEventsStream("<host>"),
          description:
            "One per host: the host's share of the history, as a sliding window. Each message is kept one window (FLEETHEAL_EVENTS_HOST_WINDOW_MS); new events past the share of that window (FLEETHEAL_EVENTS_HOST_MAX_BYTES) are refused and wait in the agent's outbox until the host's own older ones expire.",
          subjects: [`${SUBJECT_ROOT}.evt.<host>.>`],
          discard: "new",
          maxAgeSeconds: seconds(DEFAULT_HOST_EVENTS_WINDOW_MS),
          maxBytes: DEFAULT_HOST_EVENTS_MAX_BYTES,
        },
      },
      [DLQ_STREAM]: {
        description: "Dead letters of every handler.",
        subjects: [SUBJECTS.deadLetters],
        retention: "limits",
        discard: "old",
        storage: "file",
        maxAgeSeconds: 30 * DAY_SECONDS,
        maxBytes: 256 * 1024 * 1024,
        duplicateWindowSeconds: seconds(DEFAULT_STREAM_LIMITS.duplicateWindowMs),
      },
    },
    kv: Object.fromEntries([
      kv(HOSTS_BUCKET, 1, "<host>", "HostSnapshot"),
      kv(LEDGER_BUCKET, 5, "<host>.<container id>", "LedgerEntry"),
      kv(MONITORED_BUCKET, 1, "<host>.<container id>", "MonitoredContainer"),
      kv(CONFIG_BUCKET, 10, POLICY_KEY, "HealPolicy"),
      kv(INFLIGHT_BUCKET, 1, "one per restart in progress", null, 60),
      kv(RATE_BUCKET, 1, "one per restart started in the last minute", null, 60),
      kv(BREAKERS_BUCKET, 1, "a hash of the image id (or name)", "ImageFailures", DAY_SECONDS),
    ]),
  };
}

// --- The document -------------------------------------------------------------------------------

const DESCRIPTION = `fleetheal keeps Docker containers healthy across a fleet of hosts. A thin agent on each host forwards Docker's container events to NATS JetStream; stateless handlers decide by policy and send restart commands back to the agent of that host; every event and every remediation is published on subjects that other tools can follow.

This document is generated from the zod contracts in \`contracts/\` by \`tools/asyncapi.ts\` (\`npm run asyncapi\`); it describes fleetheal as one application, so \`send\` is what fleetheal publishes (and a subscriber receives) and \`receive\` is what its agents serve. How to follow, replay and decode these subjects: docs/SUBSCRIBING.md.

**Subjects.** All start with \`${SUBJECT_ROOT}\`; tokens are letters, digits, \`_\` and \`-\`, and containers appear by id, never by name. Wildcards for subscribers are listed in \`x-fleetheal-wildcards\`.

**Storage.** \`${EVENTS_STREAM}\` keeps container events and remediation records (7 days, 1 GiB, 10-minute dedup window on \`Nats-Msg-Id\`), \`${DLQ_STREAM}\` the dead letters (30 days); host snapshots are kept in the KV bucket \`${HOSTS_BUCKET}\`. Details in \`x-fleetheal-jetstream\`. External readers read mirrors of \`${EVENTS_STREAM}\` and \`${HOSTS_BUCKET}\`, under the same names, in an account of their own.

**Schemas.** Produced by zod's \`z.toJSONSchema()\` with \`io: "input"\` as JSON Schema draft-07: they describe what fleetheal's own decoders accept. Objects are open, and a field with a default may be absent (its \`default\` says what absence means).

**Versioning.** Within \`v1\` changes are additive only: new optional fields, new subjects and headers, new values of enumerations (\`action\`, \`phase\`, \`source\`, \`outcome\`, …) and of \`code\`. A consumer must ignore fields it does not know and must not fail on an enum value it does not know. A breaking change gets new subjects under \`fleetheal.v2\` and a new \`v\` in the payload.`;

/** The whole AsyncAPI 3.0 document, as a plain object in the order it is written. */
export function buildAsyncApiDocument(): JsonObject {
  const specs = channelSpecs();
  const messages: JsonObject = {};
  for (const [key, spec] of Object.entries(MESSAGES)) messages[key] = contractMessage(spec);
  messages.deadLetter = deadLetterMessage();
  messages.serviceError = serviceErrorMessage();
  return {
    asyncapi: "3.0.0",
    id: "urn:fleetheal",
    info: {
      title: "fleetheal",
      version: VERSION,
      description: DESCRIPTION,
      license: { name: "Apache-2.0", url: "https://www.apache.org/licenses/LICENSE-2.0" },
    },
    defaultContentType: "application/json",
    servers: {
      nats: {
        host: "localhost:4222",
        protocol: "nats",
        title: "NATS with JetStream",
        description:
          "A placeholder: the NATS server (or cluster) of your fleet, with JetStream enabled. Connect as the `reader` user of `fleetheal nats-auth` to read: it sees the READER account's mirrors of FLEETHEAL_EVENTS and fleetheal_hosts, under the same names, and no core subject (docs/SUBSCRIBING.md).",
      },
    },
    channels: Object.fromEntries(
      Object.entries(specs).map(([key, spec]) => [key, channelObject(key, spec, messages)]),
    ),
    operations: operations(specs),
    components: {
      schemas: contractJsonSchemas(),
      messages,
      parameters: PARAMETERS,
    },
    "x-fleetheal-json-schema": JSON_SCHEMA_OPTIONS,
    "x-fleetheal-wildcards": WILDCARDS,
    "x-fleetheal-jetstream": jetstreamResources(),
  };
}
