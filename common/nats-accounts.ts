// The fleet's NATS accounts: FLEET holds the streams and buckets with the handlers and the
// gateway; each host has an account of its own for its agent; READER holds mirrors for external
// readers. Subject permissions alone cannot isolate hosts, because JetStream answers (acks, direct
// gets, consumer deliveries) go to whatever reply subject a requester names, with the server's
// rights. Between accounts only what is exported and imported crosses, and a service import
// rewrites the reply subject, so an answer can only come back to the requester. Pure: public keys
// in, nats-server configuration text out; `fleetheal nats-auth` and `fleetheal up` write files.

import { EVENTS_STREAM, HOSTS_BUCKET, SUBJECT_ROOT } from "../contracts/index.js";
import {
  agentPermissions,
  FLEET_API_PREFIX,
  type FleetNatsUser,
  gatewayPermissions,
  handlerPermissions,
  MIRROR_DELIVER_PREFIX,
  READER_API_PREFIX,
  READER_MIRRORS,
  readerPermissions,
  type SubjectPermissions,
  validateHosts,
} from "./nats-permissions.js";

/** The account of the streams, buckets, handlers and gateway. */
export const FLEET_ACCOUNT = "FLEET";
/** The account of external readers and their mirrors. */
export const READER_ACCOUNT = "READER";
/** The account of one host's agent. */
export const hostAccount = (host: string) => `HOST_${host}`;

/** The public NKEYs (`U…`) of every user of the fleet. */
export interface FleetUserKeys {
  handler: string;
  gateway: string;
  reader: string;
  /** Host id to the public NKEY of its agent. */
  agents: Readonly<Record<string, string>>;
}

/** A service or stream that an account offers to the accounts listed. */
export interface NatsExport {
  kind: "service" | "stream";
  subject: string;
  accounts: string[];
}

/** A service or stream an account takes from another, optionally under a local subject. */
export interface NatsImport {
  kind: "service" | "stream";
  account: string;
  subject: string;
  /** Local subject of a service import (`to`); the exported subject when absent. */
  to?: string;
}

/** One account of the layout, with its users, exports and imports. */
export interface NatsAccount {
  name: string;
  jetstream: boolean;
  users: { nkey: string; user: FleetNatsUser }[];
  exports: NatsExport[];
  imports: NatsImport[];
}

const kvKey = (bucket: string, key: string) => `$KV.${bucket}.${key}`;
const eventSubjects = (host: string) => `${SUBJECT_ROOT}.evt.${host}.>`;
const commandSubjects = (host: string) => `${SUBJECT_ROOT}.cmd.${host}.*`;
const snapshotSubject = (host: string) => `${SUBJECT_ROOT}.host.${host}.snapshot`;

/** The mirrors' consumer creation and flow control, as READER reaches them in FLEET. */
function mirrorServices(): { subject: string; to?: string }[] {
  return READER_MIRRORS.flatMap((stream) => [
    {
      subject: `$JS.API.CONSUMER.CREATE.${stream}`,
      to: `${FLEET_API_PREFIX}.CONSUMER.CREATE.${stream}`,
    },
    { subject: `$JS.FC.${stream}.>` },
  ]);
}

/** What FLEET takes from READER's JetStream API: enough for the handler to create the mirrors. */
const READER_API_EXPORTS = [
  "$JS.API.INFO",
  ...READER_MIRRORS.flatMap((s) => [`$JS.API.STREAM.INFO.${s}`, `$JS.API.STREAM.CREATE.${s}`]),
];

/**
 * The accounts of a fleet. Each host's account imports exactly its own event subjects and its own
 * snapshot key, as services (so its agent gets JetStream's publish acks, and any reply subject it
 * names is rewritten); FLEET imports each host's command service and snapshot subject. No
 * JetStream API crosses into a host account. READER gets, for its mirrors only, FLEET's consumer
 * creation on the two mirrored streams, their deliveries and flow control.
 */
export function fleetAccounts(keys: FleetUserKeys): NatsAccount[] {
  const hosts = validateHosts(Object.keys(keys.agents));
  const hostAccounts = hosts.map((host): NatsAccount => {
    const name = hostAccount(host);
    return {
      name,
      jetstream: false,
      users: [{ nkey: keys.agents[host] as string, user: agentPermissions(host) }],
      exports: [
        { kind: "service", subject: commandSubjects(host), accounts: [FLEET_ACCOUNT] },
        { kind: "stream", subject: snapshotSubject(host), accounts: [FLEET_ACCOUNT] },
      ],
      imports: [
        { kind: "service", account: FLEET_ACCOUNT, subject: eventSubjects(host) },
        { kind: "service", account: FLEET_ACCOUNT, subject: kvKey(HOSTS_BUCKET, host) },
      ],
    };
  });
  const fleet: NatsAccount = {
    name: FLEET_ACCOUNT,
    jetstream: true,
    users: [
      { nkey: keys.handler, user: handlerPermissions(hosts) },
      { nkey: keys.gateway, user: gatewayPermissions() },
    ],
    exports: [
      ...hosts.flatMap((host): NatsExport[] => [
        { kind: "service", subject: eventSubjects(host), accounts: [hostAccount(host)] },
        { kind: "service", subject: kvKey(HOSTS_BUCKET, host), accounts: [hostAccount(host)] },
      ]),
      ...mirrorServices().map(
        ({ subject }): NatsExport => ({ kind: "service", subject, accounts: [READER_ACCOUNT] }),
      ),
      { kind: "stream", subject: `${MIRROR_DELIVER_PREFIX}.>`, accounts: [READER_ACCOUNT] },
    ],
    imports: [
      ...hosts.flatMap((host): NatsImport[] => [
        { kind: "service", account: hostAccount(host), subject: commandSubjects(host) },
        { kind: "stream", account: hostAccount(host), subject: snapshotSubject(host) },
      ]),
      ...READER_API_EXPORTS.map(
        (subject): NatsImport => ({
          kind: "service",
          account: READER_ACCOUNT,
          subject,
          to: subject.replace(/^\$JS\.API/, READER_API_PREFIX),
        }),
      ),
    ],
  };
  const reader: NatsAccount = {
    name: READER_ACCOUNT,
    jetstream: true,
    users: [{ nkey: keys.reader, user: readerPermissions() }],
    exports: READER_API_EXPORTS.map((subject) => ({
      kind: "service",
      subject,
      accounts: [FLEET_ACCOUNT],
    })),
    imports: [
      ...mirrorServices().map(
        ({ subject, to }): NatsImport => ({
          kind: "service",
          account: FLEET_ACCOUNT,
          subject,
          ...(to === undefined ? {} : { to }),
        }),
      ),
      { kind: "stream", account: FLEET_ACCOUNT, subject: `${MIRROR_DELIVER_PREFIX}.>` },
    ],
  };
  return [fleet, ...hostAccounts, reader];
}

/** How READER's mirror of `stream` reaches FLEET: the API prefix and the delivery prefix. */
export function mirrorSource(stream: string): { api: string; deliver: string } {
  const name = stream === EVENTS_STREAM ? "events" : stream.toLowerCase().replace(/^kv_/, "kv.");
  return { api: FLEET_API_PREFIX, deliver: `${MIRROR_DELIVER_PREFIX}.${name}` };
}

const quote = (s: string) => JSON.stringify(s);

function renderList(indent: string, key: string, items: string[]): string[] {
  if (items.length === 0) return [];
  return [
    `${indent}${key}: [`,
    ...items.map((s, i) => `${indent}  ${s}${i < items.length - 1 ? "," : ""}`),
    `${indent}]`,
  ];
}

function renderSide(indent: string, name: string, p: SubjectPermissions): string[] {
  return [
    `${indent}${name}: {`,
    ...renderList(`${indent}  `, "allow", p.allow.map(quote)),
    ...renderList(`${indent}  `, "deny", p.deny.map(quote)),
    `${indent}}`,
  ];
}

function renderUser(nkey: string, u: FleetNatsUser): string[] {
  const i = "        ";
  return [
    `      # ${u.user} (${u.role}); inbox prefix ${u.inboxPrefix}`,
    "      {",
    `        nkey: ${quote(nkey)}`,
    `${i}permissions: {`,
    ...renderSide(`${i}  `, "publish", u.publish),
    ...renderSide(`${i}  `, "subscribe", u.subscribe),
    ...(u.allowResponses ? [`${i}  allow_responses: true`] : []),
    `${i}}`,
    "      }",
  ];
}

function renderExport(e: NatsExport): string {
  const accounts = e.accounts.map(quote).join(", ");
  return `{ ${e.kind}: ${quote(e.subject)}, accounts: [${accounts}] }`;
}

function renderImport(i: NatsImport): string {
  const source = `{ account: ${quote(i.account)}, subject: ${quote(i.subject)} }`;
  return `{ ${i.kind}: ${source}${i.to === undefined ? "" : `, to: ${quote(i.to)}`} }`;
}

/**
 * The nats-server `accounts { … }` block of the layout, as an include file. It holds public keys
 * only; the seeds stay with the roles.
 */
export function renderAccounts(accounts: readonly NatsAccount[], header = ""): string {
  const lines: string[] = [];
  if (header) lines.push(...header.split("\n").map((l) => `# ${l}`.trimEnd()));
  lines.push("accounts {");
  for (const a of accounts) {
    lines.push(`  ${quote(a.name)}: {`);
    if (a.jetstream) lines.push("    jetstream: enabled");
    lines.push("    users: [");
    for (const { nkey, user } of a.users) lines.push(...renderUser(nkey, user));
    lines.push("    ]");
    lines.push(...renderList("    ", "exports", a.exports.map(renderExport)));
    lines.push(...renderList("    ", "imports", a.imports.map(renderImport)));
    lines.push("  }");
  }
  lines.push("}", "");
  return lines.join("\n");
}
