// Least privilege on NATS: one user per host agent, plus the handler, gateway and read-only
// reader roles, rendered as a nats-server `authorization { users = [...] }` include file. Pure:
// the passwords come in, text comes out; `fleetheal nats-auth` does the file writing.

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

/** Creating (never updating, purging or deleting) fleetheal's streams and buckets. */
const streamCreate = (stream: string) => [`${JS_API}.STREAM.CREATE.${stream}`];

const unique = (subjects: string[]) => [...new Set(subjects)];

/** The agent of `host`: its own events, snapshot, KV key and command subjects, nothing else. */
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
        // jetstreamManager() checks the API once; every role opens (never creates) the resources
        // it finds, which is a stream info each.
        `${JS_API}.INFO`,
        ...FLEET_STREAMS.map((s) => `${JS_API}.STREAM.INFO.${s}`),
        // Its previous snapshot, read back at start: only its own key.
        `${JS_API}.DIRECT.GET.${kvStream(HOSTS_BUCKET)}.$KV.${HOSTS_BUCKET}.${host}`,
      ],
      deny: [],
    },
    subscribe: {
      allow: [`${SUBJECT_ROOT}.cmd.${host}.>`, "$SRV.>", `${inbox}.>`],
      deny: [],
    },
    allowResponses: true,
  };
}

/** Handler replicas: consume events, keep the ledger and guards, command every agent. */
export function handlerPermissions(): FleetNatsUser {
  const inbox = roleInboxPrefix("handler");
  return {
    user: ROLE_USERS.handler,
    role: "handler",
    inboxPrefix: inbox,
    publish: {
      allow: unique([
        `${JS_API}.INFO`,
        ...FLEET_STREAMS.flatMap((s) => [...streamCreate(s), ...streamRead(s)]),
        ...streamConsume(EVENTS_STREAM, true),
        ...streamConsume(DLQ_STREAM, true),
        ...KV_BUCKETS.flatMap((b) => streamConsume(kvStream(b), false)),
        ...KV_BUCKETS.filter((b) => b !== HOSTS_BUCKET).map((b) => `$KV.${b}.>`),
        `${SUBJECT_ROOT}.act.>`,
        `${SUBJECT_ROOT}.dlq.>`,
        `${SUBJECT_ROOT}.cmd.*.*`,
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

/** The gateway: reads the fleet, restarts on request, releases and sets the policy. */
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
 * An external read-only subscriber (dashboards, audit, alerting): follows events, remediations
 * and snapshots, replays the events stream with ordered consumers and reads host snapshots from
 * KV. It can never command an agent or write to a stream or bucket.
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
        // No consumer deletes: they would reach the handlers' durable consumers too. A reader's
        // ordered consumers go away by themselves after 5 idle minutes.
        ...streamRead(EVENTS_STREAM),
        ...streamConsume(EVENTS_STREAM, false, false),
        ...streamRead(kvStream(HOSTS_BUCKET)),
        ...streamConsume(kvStream(HOSTS_BUCKET), false, false),
      ]),
      // Deny wins over allow: spelled out so that a later edit of the allow list cannot open them.
      deny: [
        `${SUBJECT_ROOT}.>`,
        "$KV.>",
        `${JS_API}.STREAM.CREATE.>`,
        `${JS_API}.STREAM.DELETE.>`,
      ],
    },
    subscribe: {
      allow: [
        `${SUBJECT_ROOT}.evt.>`,
        `${SUBJECT_ROOT}.act.>`,
        `${SUBJECT_ROOT}.host.*.snapshot`,
        `${inbox}.>`,
      ],
      deny: [`${SUBJECT_ROOT}.cmd.>`],
    },
    allowResponses: false,
  };
}

/** Every user of a fleet: one agent per host, then handler, gateway and reader. */
export function fleetNatsUsers(hosts: readonly string[]): FleetNatsUser[] {
  return [
    ...validateHosts(hosts).map(agentPermissions),
    handlerPermissions(),
    gatewayPermissions(),
    readerPermissions(),
  ];
}

const quote = (s: string) => JSON.stringify(s);

/** `key: [` then one subject per line, so that a diff of two generations is readable. */
function list(key: string, subjects: string[]): string[] {
  const items = subjects.map(
    (s, i) => `            ${quote(s)}${i < subjects.length - 1 ? "," : ""}`,
  );
  return [`          ${key}: [`, ...items, "          ]"];
}

function renderSide(name: string, p: SubjectPermissions): string[] {
  return [
    `        ${name}: {`,
    ...list("allow", p.allow),
    ...(p.deny.length > 0 ? list("deny", p.deny) : []),
    "        }",
  ];
}

/**
 * The nats-server include file: `authorization { users = [...] }`. Passwords are written in plain
 * text (nats-server also accepts bcrypt hashes, but no bcrypt is at hand here), so the file must be
 * readable only by nats-server. `passwords` maps each user name to its password.
 */
export function renderAuthorization(
  users: readonly FleetNatsUser[],
  passwords: Readonly<Record<string, string>>,
  header = "",
): string {
  const lines: string[] = [];
  if (header) lines.push(...header.split("\n").map((l) => `# ${l}`.trimEnd()));
  lines.push("authorization {", "  users = [");
  for (const u of users) {
    const password = passwords[u.user];
    if (password === undefined) throw new Error(`no password for NATS user ${u.user}`);
    lines.push(
      `    # ${u.role}${u.host === undefined ? "" : ` of host ${u.host}`}; inbox prefix ${u.inboxPrefix}`,
      "    {",
      `      user: ${quote(u.user)}`,
      `      password: ${quote(password)}`,
      "      permissions: {",
      ...renderSide("publish", u.publish),
      ...renderSide("subscribe", u.subscribe),
      ...(u.allowResponses ? ["        allow_responses: true"] : []),
      "      }",
      "    }",
    );
  }
  lines.push("  ]", "}", "");
  return lines.join("\n");
}

/** The environment file of one user: the variables its role needs to connect as that user. */
export function renderEnvFile(user: FleetNatsUser, passwordFile: string): string {
  return [
    `# fleetheal ${user.role}${user.host === undefined ? "" : ` of host ${user.host}`}: NATS credentials`,
    ...(user.host === undefined ? [] : [`FLEETHEAL_HOST_ID=${user.host}`]),
    `FLEETHEAL_NATS_USER=${user.user}`,
    `FLEETHEAL_NATS_PASSWORD_FILE=${passwordFile}`,
    `FLEETHEAL_NATS_INBOX_PREFIX=${user.inboxPrefix}`,
    "",
  ].join("\n");
}
