// The nats-server of a test fleet, in either of the two ways fleetheal runs on NATS: with the
// accounts and NKEY users that `fleetheal nats-auth` writes (docs/DEPLOY.md), or plain, with no
// authentication at all (`fleetheal up` before it had accounts, and every test of a single role's
// behaviour). Both give the test connections that are closed when the server is disposed.

import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { ConnectionOptions, NatsConnection } from "@nats-io/nats-core";
import { nkeyAuthenticator } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import {
  AUTH_FILE,
  envFile,
  type FleetCredentials,
  writeFleetCredentials,
} from "../../common/fleet-credentials.js";
import { type NatsServerHandle, type NatsServerOptions, startNatsServer } from "./nats-server.js";

/** The variables of an env file (`NAME=value` lines). */
export async function readEnvFile(file: string): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  for (const line of (await readFile(file, "utf8")).split("\n")) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
    if (m) env[m[1] as string] = m[2] as string;
  }
  return env;
}

/**
 * A raw NATS connection as the user of an env file that nats-auth wrote: its NKEY seed
 * (FLEETHEAL_NATS_NKEY_FILE) and its inbox prefix (FLEETHEAL_NATS_INBOX_PREFIX).
 */
export async function connectWithEnv(
  servers: string | string[],
  env: Readonly<Record<string, string>>,
  opts: Omit<ConnectionOptions, "servers" | "authenticator" | "inboxPrefix"> = {},
): Promise<NatsConnection> {
  const seedFile = env.FLEETHEAL_NATS_NKEY_FILE;
  if (seedFile === undefined) throw new Error("the env file sets no FLEETHEAL_NATS_NKEY_FILE");
  const seed = (await readFile(seedFile, "utf8")).trim();
  return connect({
    ...opts,
    servers,
    authenticator: nkeyAuthenticator(new TextEncoder().encode(seed)),
    ...(env.FLEETHEAL_NATS_INBOX_PREFIX ? { inboxPrefix: env.FLEETHEAL_NATS_INBOX_PREFIX } : {}),
  });
}

/** How a test connects to a {@link FleetNats}: as which user, and nats.js's own options. */
export type FleetConnectOptions = Omit<
  ConnectionOptions,
  "servers" | "authenticator" | "inboxPrefix"
> & {
  /**
   * The nats-auth user to connect as (`handler`, `gateway`, `reader`, `agent-<host>`). Required
   * with accounts; plain NATS has no users, and refuses one.
   */
  user?: string;
};

/** The nats-server of a fleet, and ways for the test and the roles to reach it. */
export interface FleetNats extends AsyncDisposable {
  /** The server itself: its URL, log, and stop, kill and restart for fault tests. */
  readonly server: NatsServerHandle;
  /** The variables a role started as `user` needs; none on plain NATS, which has no users. */
  env(user: string): Promise<Record<string, string>>;
  /** A raw NATS connection for the test, closed when the server is disposed. */
  connect(options?: FleetConnectOptions): Promise<NatsConnection>;
}

/** A nats-server with the fleet's accounts, and ways to act as each of its users. */
export interface AccountsNats extends FleetNats {
  /** The credentials directory nats-auth wrote. */
  readonly credentials: FleetCredentials;
  /** nats-server.conf, which includes the accounts file. */
  readonly configFile: string;
  /** The variables of `<user>.env`, as nats-auth wrote them. */
  env(user: string): Promise<Record<string, string>>;
  /** Adds or removes hosts with nats-auth and reloads the server's configuration. */
  update(changes: { addHosts?: string[]; removeHosts?: string[] }): Promise<void>;
}

/** The connections a test opened, closed (before the server stops) on dispose. */
function connections() {
  const open: NatsConnection[] = [];
  return {
    keep(nc: NatsConnection): NatsConnection {
      open.push(nc);
      return nc;
    },
    async close(): Promise<void> {
      await Promise.all(open.splice(0).map((nc) => nc.close().catch(() => {})));
    },
  };
}

/** Starts a nats-server without authentication; every role and test connects anonymously. */
export async function startPlainNats(options: NatsServerOptions = {}): Promise<FleetNats> {
  const server = await startNatsServer(options);
  const open = connections();
  return {
    server,
    async env() {
      return {};
    },
    async connect({ user, ...opts } = {}) {
      if (user !== undefined) throw new Error(`plain NATS has no users (asked for ${user})`);
      return open.keep(await connect({ name: "test-client", ...opts, servers: server.url }));
    },
    async [Symbol.asyncDispose]() {
      await open.close();
      await server[Symbol.asyncDispose]();
    },
  };
}

/** Starts a nats-server with the accounts of `hosts`, written by nats-auth's own code. */
export async function startAccountsNats(hosts: string[]): Promise<AccountsNats> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "fleetheal-accounts-"));
  const open = connections();
  let server: NatsServerHandle | undefined;
  try {
    let credentials = writeFleetCredentials(path.join(dir, "auth"), { addHosts: hosts });
    const configFile = path.join(dir, "nats-server.conf");
    await writeFile(configFile, `include "./auth/${AUTH_FILE}"\n`);
    server = await startNatsServer({ configFile });
    const started = server;
    const env = (user: string) => readEnvFile(envFile(credentials.dir, user));
    return {
      server: started,
      get credentials() {
        return credentials;
      },
      configFile,
      env,
      async connect({ user, ...opts } = {}) {
        if (user === undefined) throw new Error("say which nats-auth user to connect as");
        const nc = await connectWithEnv(started.url, await env(user), {
          name: `test-as-${user}`,
          ...opts,
        });
        return open.keep(nc);
      },
      async update(changes) {
        credentials = writeFleetCredentials(credentials.dir, changes);
        await started.reload();
      },
      async [Symbol.asyncDispose]() {
        await open.close();
        await started[Symbol.asyncDispose]();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await server?.[Symbol.asyncDispose]();
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}
