// The fleet's credentials on disk: one NKEY per user, one command-signing key per signing role,
// the nats-server accounts include that names their public keys, and a state file of the public
// keys issued. Adding a host creates that host's key and nothing else, so the other hosts keep
// their credentials and their connections (a configuration reload is enough). Used by
// `fleetheal nats-auth` and by `fleetheal up` for its embedded server.

import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createOperator, createUser, fromSeed } from "@nats-io/nkeys";
import { z } from "zod";
import { FleethealError } from "./errors.js";
import { fleetAccounts, renderAccounts } from "./nats-accounts.js";
import {
  agentPermissions,
  type FleetNatsUser,
  gatewayPermissions,
  handlerPermissions,
  readerPermissions,
  validateHosts,
} from "./nats-permissions.js";

/** The accounts include file, for nats-server.conf: `include ./fleetheal-auth.conf`. */
export const AUTH_FILE = "fleetheal-auth.conf";
/** The public keys issued so far. */
export const STATE_FILE = "fleetheal-auth.json";

const PublicKey = (prefix: string) =>
  z.string().regex(new RegExp(`^${prefix}[A-Z2-7]{55}$`), `must be a public NKEY (${prefix}…)`);

/** What `fleetheal-auth.json` holds: public keys only. */
const FleetAuthState = z.strictObject({
  v: z.literal(1),
  handler: PublicKey("U"),
  gateway: PublicKey("U"),
  reader: PublicKey("U"),
  agents: z.record(z.string(), PublicKey("U")),
  /** The command-signing keys of the roles that command agents; agents trust these. */
  signing: z.strictObject({ handler: PublicKey("O"), gateway: PublicKey("O") }),
});
export type FleetAuthState = z.infer<typeof FleetAuthState>;

/** The credentials directory cannot be used as asked. */
export class FleetCredentialsError extends FleethealError {
  override readonly name = "FleetCredentialsError";
  constructor(message: string, options?: { cause?: unknown }) {
    super("FLEETHEAL_ERR_CREDENTIALS", message, options);
  }
}

/** What to change in a credentials directory. */
export interface CredentialChanges {
  /** Hosts that must have credentials (existing ones are kept as they are). */
  addHosts?: readonly string[];
  /** Hosts whose credentials are removed. */
  removeHosts?: readonly string[];
  /** Issue every key anew, as if the directory were empty. */
  force?: boolean;
}

/** The outcome of {@link writeFleetCredentials}. */
export interface FleetCredentials {
  dir: string;
  state: FleetAuthState;
  /** Users whose keys were created now. */
  created: string[];
  /** Hosts removed now. */
  removed: string[];
  /** Every user, in the order of the include file. */
  users: FleetNatsUser[];
}

/** The seed file of a user. */
export const seedFile = (dir: string, user: string) => join(dir, `${user}.nk`);
/** The environment file of a user: the variables its role needs. */
export const envFile = (dir: string, user: string) => join(dir, `${user}.env`);
/** The command-signing seed of a role. */
export const signingSeedFile = (dir: string, role: "handler" | "gateway") =>
  join(dir, `${role}.signing.nk`);

/** Reads the state file of `dir`; undefined when there is none. */
export function readFleetAuthState(dir: string): FleetAuthState | undefined {
  const file = join(dir, STATE_FILE);
  if (!existsSync(file)) return undefined;
  const parsed = FleetAuthState.safeParse(JSON.parse(readFileSync(file, "utf8")));
  if (!parsed.success) {
    throw new FleetCredentialsError(`${file} is not a fleetheal credentials state file`, {
      cause: parsed.error,
    });
  }
  return parsed.data;
}

/**
 * Creates or updates the credentials in `dir` (mode 0700): keys for the users that lack them,
 * removal of the hosts asked for, then the include file, the state file and every env file
 * written again. A user whose seed file exists keeps it.
 */
export function writeFleetCredentials(dir: string, changes: CredentialChanges): FleetCredentials {
  const previous = changes.force ? undefined : readFleetAuthState(dir);
  if (previous === undefined && !changes.force && existsSync(join(dir, AUTH_FILE))) {
    throw new FleetCredentialsError(
      `${join(dir, AUTH_FILE)} exists but ${STATE_FILE} does not: it was written by an older fleetheal (passwords in $G). Write the new credentials into another directory and follow the upgrade in docs/SECURITY.md, or pass --force to replace it`,
    );
  }
  const removeHosts = new Set(changes.removeHosts ?? []);
  for (const host of removeHosts) {
    if (!previous?.agents[host]) {
      throw new FleetCredentialsError(`host ${JSON.stringify(host)} has no credentials here`);
    }
  }
  const hosts = validateHosts(
    [...new Set([...Object.keys(previous?.agents ?? {}), ...(changes.addHosts ?? [])])].filter(
      (h) => !removeHosts.has(h),
    ),
  );
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const created: string[] = [];
  const userKey = (user: string, known: string | undefined): string => {
    const file = seedFile(dir, user);
    if (known !== undefined && existsSync(file)) return known;
    const kp = createUser();
    writePrivate(file, `${new TextDecoder().decode(kp.getSeed())}\n`);
    created.push(user);
    return kp.getPublicKey();
  };
  const signingKey = (role: "handler" | "gateway", known: string | undefined): string => {
    const file = signingSeedFile(dir, role);
    if (known !== undefined && existsSync(file)) return known;
    const kp = createOperator();
    writePrivate(file, `${new TextDecoder().decode(kp.getSeed())}\n`);
    return kp.getPublicKey();
  };
  const agents: Record<string, string> = {};
  for (const host of hosts) {
    agents[host] = userKey(agentPermissions(host).user, previous?.agents[host]);
  }
  const state: FleetAuthState = {
    v: 1,
    handler: userKey("handler", previous?.handler),
    gateway: userKey("gateway", previous?.gateway),
    reader: userKey("reader", previous?.reader),
    agents,
    signing: {
      handler: signingKey("handler", previous?.signing.handler),
      gateway: signingKey("gateway", previous?.signing.gateway),
    },
  };
  for (const host of removeHosts) {
    const user = agentPermissions(host).user;
    rmSync(seedFile(dir, user), { force: true });
    rmSync(envFile(dir, user), { force: true });
  }
  const users = [
    ...hosts.map(agentPermissions),
    handlerPermissions(),
    gatewayPermissions(),
    readerPermissions(),
  ];
  for (const user of users) {
    writeFileSync(envFile(dir, user.user), renderEnvFile(dir, user, state), { mode: 0o644 });
  }
  const header = [
    `fleetheal NATS accounts for hosts ${hosts.join(", ")}, written by fleetheal.`,
    "Include it from nats-server.conf (include ./fleetheal-auth.conf) and reload the server.",
    "It names public keys only; each role's seed stays in its own <user>.nk file.",
  ].join("\n");
  writePrivate(join(dir, AUTH_FILE), renderAccounts(fleetAccounts(state), header));
  writePrivate(join(dir, STATE_FILE), `${JSON.stringify(state, null, 2)}\n`);
  return { dir, state, created, removed: [...removeHosts], users };
}

/** The environment file of one user: its identity, credentials and, per role, signing keys. */
export function renderEnvFile(dir: string, user: FleetNatsUser, state: FleetAuthState): string {
  const lines = [
    `# fleetheal ${user.role}${user.host === undefined ? "" : ` of host ${user.host}`}: NATS credentials`,
    ...(user.host === undefined ? [] : [`FLEETHEAL_HOST_ID=${user.host}`]),
    `FLEETHEAL_NATS_NKEY_FILE=${seedFile(dir, user.user)}`,
    `FLEETHEAL_NATS_INBOX_PREFIX=${user.inboxPrefix}`,
  ];
  if (user.role === "agent") {
    lines.push(`FLEETHEAL_COMMAND_KEYS=${state.signing.handler},${state.signing.gateway}`);
  } else if (user.role === "handler" || user.role === "gateway") {
    lines.push(`FLEETHEAL_COMMAND_SIGNING_KEY_FILE=${signingSeedFile(dir, user.role)}`);
  }
  return `${lines.join("\n")}\n`;
}

/** The public key of a seed file's seed; throws when the file holds no valid seed. */
export function publicKeyOfSeedFile(file: string): string {
  return fromSeed(new TextEncoder().encode(readFileSync(file, "utf8").trim())).getPublicKey();
}

function writePrivate(file: string, content: string): void {
  writeFileSync(file, content, { mode: 0o600 });
  // The mode of writeFileSync applies only to a new file.
  chmodSync(file, 0o600);
}
