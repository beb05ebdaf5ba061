// Least privilege on NATS, inside the accounts of common/nats-accounts.ts: what each user may
// publish and subscribe to within its own account. The accounts do the isolation between hosts
// and roles; these lists narrow each user further. Pure: subjects in, subjects out.

import {
  BREAKERS_BUCKET,
  CONFIG_BUCKET,
  DLQ_STREAM,
  EVENTS_STREAM,
  HOSTS_BUCKET,
  INFLIGHT_BUCKET,
  isToken,
  LEDGER_BUCKET,
  MONITORED_BUCKET,
  RATE_BUCKET,
  SUBJECT_ROOT,
} from "../contracts/index.js";
import { hostEventsStream } from "./host-event-streams.js";

export type NatsRole = "agent" | "handler" | "gateway" | "reader";

/** Publish or subscribe permissions: subjects allowed, and subjects denied even when allowed. */
export interface SubjectPermissions {
  allow: string[];
  deny: string[];
}

/** One NATS user of the fleet and what it may do. */
export interface FleetNatsUser {
  user: string;
  role: NatsRole;
  /** The agent's host; only for agents. */
  host?: string;
  /** FLEETHEAL_NATS_INBOX_PREFIX of the user: its reply subjects live under `<prefix>.>`. */
  inboxPrefix: string;
  publish: SubjectPermissions;
  subscribe: SubjectPermissions;
  /** May answer requests (once per request), e.g. the agent's command replies and `$SRV` pings. */
  allowResponses: boolean;
}

const JS_API = "$JS.API";

/** FLEET's JetStream API as READER imports it (for its mirrors, used by the server only). */
export const FLEET_API_PREFIX = "$JS.fleet.API";
/** READER's JetStream API as FLEET imports it (the handler creates the mirrors through it). */
export const READER_API_PREFIX = "$JS.reader.API";
/** Where FLEET's mirror consumers deliver to READER. */
export const MIRROR_DELIVER_PREFIX = "fleetheal.reader";
const KV_BUCKETS = [
  HOSTS_BUCKET,
  LEDGER_BUCKET,
  MONITORED_BUCKET,
  CONFIG_BUCKET,
  INFLIGHT_BUCKET,
  RATE_BUCKET,
  BREAKERS_BUCKET,
] as const;
const kvStream = (bucket: string) => `KV_${bucket}`;
/** Every stream fleetheal creates, KV buckets included. */
export const FLEET_STREAMS = [EVENTS_STREAM, DLQ_STREAM, ...KV_BUCKETS.map(kvStream)];
/** The streams READER holds a mirror of, under the same names. */
export const READER_MIRRORS = [EVENTS_STREAM, kvStream(HOSTS_BUCKET)];

/** The user names of the roles other than agents (agents are `agent-<host>`, so never clash). */
export const ROLE_USERS = { handler: "handler", gateway: "gateway", reader: "reader" } as const;

/** The user name of the agent of `host`. */
export const agentUser = (host: string) => `agent-${host}`;
/** The inbox prefix of the agent of `host` (the one FLEETHEAL_NATS_INBOX_PREFIX documents). */
export const agentInboxPrefix = (host: string) => `_INBOX_${host}`;
/** The inbox prefix of a non-agent role: under `_INBOX.`, which no agent may subscribe to. */
export const roleInboxPrefix = (role: Exclude<NatsRole, "agent">) => `_INBOX.fleetheal-${role}`;

/** Raised for a host list that cannot be turned into users. */
export class InvalidHostsError extends Error {
  override readonly name = "InvalidHostsError";
}

/** Validates a host list: tokens, no duplicates, at least one. */
export function validateHosts(hosts: readonly string[]): string[] {
  const problems: string[] = [];
  if (hosts.length === 0) problems.push("no hosts given");
  const seen = new Set<string>();
  for (const host of hosts) {
    if (!isToken(host)) {
      problems.push(
        `host ${JSON.stringify(host)}: may contain only letters, digits, '_' and '-' (at most 128)`,
      );
    } else if (seen.has(host)) {
      problems.push(`host ${JSON.stringify(host)}: listed twice`);
    }
    seen.add(host);
  }
  if (problems.length > 0) throw new InvalidHostsError(problems.join("; "));
  return [...seen];
}

/** Read access to one stream: its info, and single messages (KV get, last event of a subject). */
const streamRead = (stream: string) => [
  `${JS_API}.STREAM.INFO.${stream}`,
  `${JS_API}.STREAM.MSG.GET.${stream}`,
  `${JS_API}.DIRECT.GET.${stream}`,
  `${JS_API}.DIRECT.GET.${stream}.>`,
];

/**
 * Consumers on one stream: ephemeral and ordered ones (create, info, next, and delete unless
 * `deleteConsumers` is false: a delete cannot be limited to one's own consumers), durable ones
 * when `durable`, and their acks and flow control.
 */
const streamConsume = (stream: string, durable: boolean, deleteConsumers = true) => [
  `${JS_API}.CONSUMER.CREATE.${stream}`,
  `${JS_API}.CONSUMER.CREATE.${stream}.>`,
  `${JS_API}.CONSUMER.INFO.${stream}.*`,
  `${JS_API}.CONSUMER.MSG.NEXT.${stream}.*`,
  ...(deleteConsumers ? [`${JS_API}.CONSUMER.DELETE.${stream}.*`] : []),
  ...(durable
    ? [
        `${JS_API}.CONSUMER.DURABLE.CREATE.${stream}.*`,
        `${JS_API}.CONSUMER.LIST.${stream}`,
        `${JS_API}.CONSUMER.NAMES.${stream}`,
      ]
    : []),
  `$JS.ACK.${stream}.>`,
  `$JS.FC.${stream}.>`,
];

/** Creating (never purging or deleting) fleetheal's streams and buckets. */
const streamCreate = (stream: string) => [`${JS_API}.STREAM.CREATE.${stream}`];

const unique = (subjects: string[]) => [...new Set(subjects)];

/** Whether a NATS subject pattern matches a literal subject (`*` one token, `>` the rest). */
export function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split(".");
  const s = subject.split(".");
  for (let i = 0; i < p.length; i++) {
    if (p[i] === ">") return s.length > i;
    if (i >= s.length || (p[i] !== "*" && p[i] !== s[i])) return false;
  }
  return p.length === s.length;
}

/**
 * The agent of `host`, inside its own host account: its own events, snapshot and KV key (which
 * the account imports from FLEET as services, so JetStream's acks come back), and its command
 * subjects. It has no JetStream API at all: its account has none, and nothing of FLEET's API is
 * imported into it.
 */
export function agentPermissions(host: string): FleetNatsUser {
  const inbox = agentInboxPrefix(host);
  return {
    user: agentUser(host),
    role: "agent",
    host,
    inboxPrefix: inbox,
    publish: {
      allow: [
        `${SUBJECT_ROOT}.evt.${host}.>`,
        `${SUBJECT_ROOT}.host.${host}.snapshot`,
        `$KV.${HOSTS_BUCKET}.${host}`,
      ],
      deny: [],
    },
    subscribe: {
      allow: [`${SUBJECT_ROOT}.cmd.${host}.*`, "$SRV.>", `${inbox}.>`],
      deny: [],
    },
    allowResponses: true,
  };
}

/**
 * Handler replicas: consume events, keep the ledger and guards, command every agent, and create
 * the readers' mirrors through READER's JetStream API (imported under {@link READER_API_PREFIX}).
 * They also keep one ingest stream per host of `hosts`, sourced into the events stream
 * (common/host-event-streams.ts): creating those, and updating the events stream's sources, is
 * all they may change of an existing stream. Stream names cannot be matched by a wildcard on a
 * prefix, so each host's stream is listed.
 */
export function handlerPermissions(hosts: readonly string[] = []): FleetNatsUser {
  const inbox = roleInboxPrefix("handler");
  return {
    user: ROLE_USERS.handler,
    role: "handler",
    inboxPrefix: inbox,
    publish: {
      allow: unique([
        `${JS_API}.INFO`,
        ...FLEET_STREAMS.flatMap((s) => [...streamCreate(s), ...streamRead(s)]),
        ...hosts
          .map(hostEventsStream)
          .flatMap((s) => [...streamCreate(s), `${JS_API}.STREAM.INFO.${s}`]),
        `${JS_API}.STREAM.UPDATE.${EVENTS_STREAM}`,
        ...streamConsume(EVENTS_STREAM, true),
        ...streamConsume(DLQ_STREAM, true),
        ...KV_BUCKETS.flatMap((b) => streamConsume(kvStream(b), false)),
        ...KV_BUCKETS.filter((b) => b !== HOSTS_BUCKET).map((b) => `$KV.${b}.>`),
        `${SUBJECT_ROOT}.act.>`,
        `${SUBJECT_ROOT}.dlq.>`,
        `${SUBJECT_ROOT}.cmd.*.*`,
        `${READER_API_PREFIX}.INFO`,
        ...READER_MIRRORS.flatMap((s) => [
          `${READER_API_PREFIX}.STREAM.INFO.${s}`,
          `${READER_API_PREFIX}.STREAM.CREATE.${s}`,
        ]),
      ]),
      deny: [],
    },
    subscribe: {
      allow: ["$SRV.>", `${SUBJECT_ROOT}.handler.*.stats`, `${inbox}.>`],
      deny: [],
    },
    allowResponses: true,
  };
}

/**
 * The gateway: reads the fleet, restarts on request, releases and sets the policy, and deletes a
 * removed host's snapshot.
 */
export function gatewayPermissions(): FleetNatsUser {
  const inbox = roleInboxPrefix("gateway");
  return {
    user: ROLE_USERS.gateway,
    role: "gateway",
    inboxPrefix: inbox,
    publish: {
      allow: unique([
        `${JS_API}.INFO`,
        ...FLEET_STREAMS.flatMap(streamRead),
        ...streamConsume(EVENTS_STREAM, false),
        ...KV_BUCKETS.flatMap((b) => streamConsume(kvStream(b), false)),
        `$KV.${LEDGER_BUCKET}.>`,
        `$KV.${CONFIG_BUCKET}.>`,
        // A removed host's snapshot, deleted once its own key is revoked (`fleetheal hosts
        // remove`): no host account can write it then.
        `$KV.${HOSTS_BUCKET}.*`,
        `${SUBJECT_ROOT}.act.>`,
        `${SUBJECT_ROOT}.cmd.*.restart`,
      ]),
      deny: [],
    },
    subscribe: { allow: [`${inbox}.>`], deny: [] },
    allowResponses: false,
  };
}

/**
 * An external read-only subscriber (dashboards, audit, alerting), in the READER account: it
 * replays and follows READER's mirror of the events stream and reads or watches its mirror of the
 * hosts bucket, with consumers of its own. Nothing of FLEET is in its reach: the mirrors are
 * kept by the server, and the FLEET API they use is denied to the user itself.
 */
export function readerPermissions(): FleetNatsUser {
  const inbox = roleInboxPrefix("reader");
  return {
    user: ROLE_USERS.reader,
    role: "reader",
    inboxPrefix: inbox,
    publish: {
      allow: unique([
        `${JS_API}.INFO`,
        ...READER_MIRRORS.flatMap((s) => [...streamRead(s), ...streamConsume(s, false)]),
      ]),
      // Deny wins over allow: spelled out so that a later edit of the allow list cannot open them.
      deny: [
        `${FLEET_API_PREFIX}.>`,
        `${SUBJECT_ROOT}.>`,
        "$KV.>",
        `${JS_API}.STREAM.CREATE.>`,
        `${JS_API}.STREAM.UPDATE.>`,
        `${JS_API}.STREAM.DELETE.>`,
        `${JS_API}.STREAM.PURGE.>`,
        `${JS_API}.STREAM.MSG.DELETE.>`,
      ],
    },
    subscribe: { allow: [`${inbox}.>`], deny: [] },
    allowResponses: false,
  };
}

/** Every user of a fleet: one agent per host, then handler, gateway and reader. */
export function fleetNatsUsers(hosts: readonly string[]): FleetNatsUser[] {
  return [
    ...validateHosts(hosts).map(agentPermissions),
    handlerPermissions(hosts),
    gatewayPermissions(),
    readerPermissions(),
  ];
}
