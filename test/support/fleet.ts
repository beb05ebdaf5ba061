// A whole fleet on one machine, in one call: a real nats-server running the accounts that
// `fleetheal nats-auth` writes, one real dockerd per host, and fleetheal's roles started through
// the CLI with the env files nats-auth wrote for them. One disposable tears it all down, in the
// reverse order of start (`await using fleet = await startFleet(...)`).

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
import { type DockerEventRecorder, recordDockerEvents } from "./containers.js";
import { type DockerEngine, startDockerEngines } from "./dockerd.js";
import { type FleetProcess, startRole } from "./fleetheal.js";
import { type NatsServerHandle, startNatsServer } from "./nats-server.js";

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

/** A nats-server with the fleet's accounts, and ways to act as each of its users. */
export interface AccountsNats extends AsyncDisposable {
  readonly server: NatsServerHandle;
  /** The credentials directory nats-auth wrote. */
  readonly credentials: FleetCredentials;
  /** nats-server.conf, which includes the accounts file. */
  readonly configFile: string;
  /** The variables of `<user>.env`, as nats-auth wrote them. */
  env(user: string): Promise<Record<string, string>>;
  /** A raw NATS connection as `user`, with its NKEY and inbox prefix (closed on dispose). */
  connect(user: string, name?: string): Promise<NatsConnection>;
  /** Adds or removes hosts with nats-auth and reloads the server's configuration. */
  update(changes: { addHosts?: string[]; removeHosts?: string[] }): Promise<void>;
}

/** Starts a nats-server with the accounts of `hosts`, written by nats-auth's own code. */
export async function startAccountsNats(hosts: string[]): Promise<AccountsNats> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "fleetheal-accounts-"));
  const connections: NatsConnection[] = [];
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
      async connect(user, name = `test-as-${user}`) {
        const nc = await connectWithEnv(started.url, await env(user), { name });
        connections.push(nc);
        return nc;
      },
      async update(changes) {
        credentials = writeFleetCredentials(credentials.dir, changes);
        await started.reload();
      },
      async [Symbol.asyncDispose]() {
        await Promise.all(connections.map((nc) => nc.close().catch(() => {})));
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

/** One host of a {@link Fleet}: its engine, its agent and a recorder of its Docker events. */
export interface FleetHost {
  readonly id: string;
  readonly engine: DockerEngine;
  readonly agent: FleetProcess;
  readonly docker: DockerEventRecorder;
}

/** A running fleet: NATS with accounts, one engine and agent per host, handlers and a gateway. */
export interface Fleet extends AsyncDisposable {
  readonly nats: AccountsNats;
  readonly hosts: ReadonlyMap<string, FleetHost>;
  readonly handlers: FleetProcess[];
  readonly gateway: FleetProcess;
  host(id: string): FleetHost;
}

export interface FleetOptions {
  hosts: string[];
  /** Handler replicas. Default 1. */
  handlers?: number;
  /** Extra variables for every role. */
  env?: Record<string, string>;
  /** The gateway's admin token. */
  adminToken?: string;
}

/**
 * Starts a fleet the way docs/DEPLOY.md deploys one, each role under its own NATS user: the
 * handler first (it creates the streams), then the gateway and an agent per host.
 */
export async function startFleet(options: FleetOptions): Promise<Fleet> {
  const stack: (() => PromiseLike<unknown>)[] = [];
  const dispose = async () => {
    for (const undo of stack.reverse()) await Promise.resolve(undo()).catch(() => {});
  };
  try {
    const nats = await startAccountsNats(options.hosts);
    stack.push(() => nats[Symbol.asyncDispose]());
    const engines = await startDockerEngines(options.hosts.length, { namePrefix: "fleet" });
    stack.push(() => engines[Symbol.asyncDispose]());
    const base = { FLEETHEAL_NATS_URL: nats.server.url, ...options.env };
    const role = async (
      kind: "handler" | "gateway" | "agent",
      user: string,
      name: string,
      extra = {},
    ) => {
      const proc = await startRole(kind, name, { ...base, ...(await nats.env(user)), ...extra });
      stack.push(() => proc[Symbol.asyncDispose]());
      return proc;
    };
    const handlers: FleetProcess[] = [];
    for (let i = 0; i < (options.handlers ?? 1); i++) {
      handlers.push(await role("handler", "handler", `handler-${i + 1}`));
    }
    const gateway = await role("gateway", "gateway", "gateway", {
      FLEETHEAL_GATEWAY_PORT: "0",
      ...(options.adminToken ? { FLEETHEAL_GATEWAY_ADMIN_TOKEN: options.adminToken } : {}),
    });
    const hosts = new Map<string, FleetHost>();
    for (const [i, id] of options.hosts.entries()) {
      const engine = engines.engines[i] as DockerEngine;
      const docker = await recordDockerEvents(engine);
      stack.push(async () => docker.close());
      const agent = await role("agent", `agent-${id}`, `agent-${id}`, {
        DOCKER_HOST: engine.dockerHost,
        FLEETHEAL_HEARTBEAT_MS: "500",
      });
      hosts.set(id, { id, engine, agent, docker });
    }
    return {
      nats,
      hosts,
      handlers,
      gateway,
      host(id) {
        const h = hosts.get(id);
        if (!h) throw new Error(`no host ${id} in this fleet`);
        return h;
      },
      [Symbol.asyncDispose]: dispose,
    };
  } catch (error) {
    await dispose();
    throw error;
  }
}
