// A whole fleet on one machine, in one call, modelled on nats.js's test `setup()`: a real
// nats-server (with the accounts of `fleetheal nats-auth`, or plain), one real dockerd per host
// with a recorder of its Docker events, and fleetheal's roles started through the CLI. One
// disposable tears it all down, in the reverse order of start, whatever the test started on it
// later (`await using fleet = await startFleet(...)`, or dispose it in afterAll).

import { type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import type { z } from "zod";
import {
  DEFAULT_HOST_STREAM_SETTINGS,
  ensureHostEventStreams,
  jetStreamHostStreams,
} from "../../common/host-event-streams.js";
import { openFleetJetStream } from "../../common/jetstream-resources.js";
import {
  CONFIG_BUCKET,
  encode,
  HealPolicy,
  HOSTS_BUCKET,
  POLICY_KEY,
} from "../../contracts/index.js";
import { type DockerEventRecorder, recordDockerEvents } from "./containers.js";
import { type DockerEngine, type DockerEngineOptions, startDockerEngine } from "./dockerd.js";
import {
  type AccountsNats,
  type FleetNats,
  startAccountsNats,
  startPlainNats,
} from "./fleet-nats.js";
import { type FleetProcess, type FleetRole, gatewayUrl, startRole } from "./fleetheal.js";
import { waitFor } from "./wait.js";

export type { AccountsNats, FleetNats } from "./fleet-nats.js";

/**
 * Creates the events streams of `hosts` as a handler's keeper does (handlers/host-event-keeper.ts),
 * for a test that publishes events of a host that has no agent, or runs no handler: a host's
 * events are stored only once its stream exists.
 */
export async function createHostEventStreams(
  nc: NatsConnection,
  hosts: readonly string[],
): Promise<void> {
  await ensureHostStreams(await jetstreamManager(nc), hosts);
}

async function ensureHostStreams(jsm: JetStreamManager, hosts: readonly string[]): Promise<void> {
  const pass = await ensureHostEventStreams(
    jetStreamHostStreams(jsm),
    hosts,
    DEFAULT_HOST_STREAM_SETTINGS,
  );
  if (pass.noFleetStream || pass.failed.length > 0) {
    throw new Error(`could not create the hosts' events streams: ${JSON.stringify(pass)}`);
  }
}

/** Environment variables for a role: added to, and winning over, what the fleet gives it. */
export type RoleEnv = Record<string, string>;

/** One host of a fleet as the test asks for it (a bare string is `{ id }`). */
export interface FleetHostOptions {
  /** The host id, also the agent's NATS user (`agent-<id>`) with accounts. */
  id: string;
  /**
   * Start the host's agent with the fleet. Default true; false leaves the engine without one, for
   * a test that prepares containers first and then calls {@link Fleet.startAgent}.
   */
  agent?: boolean;
  /** Extra variables for this host's agent, every time it is started. */
  env?: RoleEnv;
  /** How the host's dockerd listens (TCP, TLS, its own network namespace). */
  engine?: DockerEngineOptions;
}

/** How a gateway of the fleet is started. */
export interface FleetGatewayOptions {
  /** The admin token that enables actions (FLEETHEAL_GATEWAY_ADMIN_TOKEN); none by default. */
  adminToken?: string;
  /** Extra variables for the gateway. */
  env?: RoleEnv;
  /** The process name in logs; `gateway`, then `gateway-2`, … by default. */
  name?: string;
}

/** A role process started on the fleet, with a name and variables of its own. */
export interface RoleStartOptions {
  /** The process name in logs (an agent's data directory is named after it too). */
  name?: string;
  /** Extra variables, winning over the fleet's. */
  env?: RoleEnv;
}

export interface FleetOptions {
  /**
   * "accounts" (default): the accounts and NKEY users of `fleetheal nats-auth`, each role as its
   * own user, as docs/DEPLOY.md deploys it. "plain": no authentication, every role anonymous.
   */
  nats?: "accounts" | "plain";
  /** The hosts: one dockerd each, and an agent unless the host says otherwise. */
  hosts?: ReadonlyArray<string | FleetHostOptions>;
  /** Handler replicas started with the fleet. Default 1; 0 for none. */
  handlers?: number;
  /** Start a gateway (after the handlers, before the agents). Default: none. */
  gateway?: boolean | FleetGatewayOptions;
  /** Extra variables: for every role (`all`), and per role; a start's own `env` wins. */
  env?: Partial<Record<FleetRole | "all", RoleEnv>>;
  /** The agents' snapshot heartbeat (FLEETHEAL_HEARTBEAT_MS). Default 500, so hosts show fast. */
  heartbeatMs?: number;
  /**
   * Create the fleet's streams and buckets before any role starts, as a handler does: for fleets
   * whose agents start before (or without) a handler.
   */
  streams?: boolean;
  /** A heal policy stored before any role starts, so that every replica has it from its start. */
  policy?: z.input<typeof HealPolicy>;
}

/** One host of a {@link Fleet}: its engine, the recorder of its Docker events, and its agent. */
export interface FleetHost extends AsyncDisposable {
  readonly id: string;
  readonly engine: DockerEngine;
  /** Every container event of the engine since the host was added. */
  readonly docker: DockerEventRecorder;
  /** The host's latest agent; throws if none was started. */
  readonly agent: FleetProcess;
}

/** A gateway of the fleet, with the URL it listens on. */
export type FleetGateway = FleetProcess & { readonly url: string };

/** A running fleet. Everything started on it is stopped when it is disposed. */
export interface Fleet<N extends FleetNats = FleetNats> extends AsyncDisposable {
  readonly nats: N;
  readonly hosts: ReadonlyMap<string, FleetHost>;
  /** The host `id`; throws if the fleet has none. */
  host(id: string): FleetHost;
  /** Every handler replica started, in order; a restarted one is replaced by its successor. */
  readonly handlers: readonly FleetProcess[];
  /** The latest gateway; throws if none was started. */
  readonly gateway: FleetGateway;
  /** Starts one more handler replica (`handler-<n>`). */
  startHandler(options?: RoleStartOptions): Promise<FleetProcess>;
  /** Starts a gateway (on a free port of 127.0.0.1), which becomes {@link Fleet.gateway}. */
  startGateway(options?: FleetGatewayOptions): Promise<FleetGateway>;
  /** Starts the agent of a host; the host's previous agent, if any, must have exited. */
  startAgent(host: string, options?: RoleStartOptions): Promise<FleetProcess>;
  /**
   * Adds a host (its engine and event recorder, and its agent unless it says otherwise). Disposing
   * the host removes it again, before the fleet ends.
   */
  addHost(host: string | FleetHostOptions): Promise<FleetHost>;
  /**
   * Stops a role started on this fleet (SIGTERM) and starts it again under the same name and
   * variables (plus `env`), in the same place: the host's agent, the gateway, the replica.
   */
  restart<P extends FleetProcess>(proc: P, options?: { env?: RoleEnv }): Promise<P>;
  /**
   * Stores a heal policy and resolves once every running handler replica has loaded it, so that
   * the next trouble is decided under it by whichever replica takes it.
   */
  putPolicy(policy: z.input<typeof HealPolicy>): Promise<void>;
  /**
   * Resolves once each host (default: every host of the fleet) has its snapshot in KV
   * `fleetheal_hosts`. A handler counts the fleet's hosts at its first trouble and keeps the
   * answer for a while (handlers/runtime/fleet-hosts.ts): a test whose verdicts depend on that count
   * waits for every host before its first trouble.
   */
  waitForHosts(ids?: readonly string[]): Promise<void>;
  /** Runs `cleanup` when the fleet is disposed, in reverse order with everything else. */
  defer(cleanup: () => unknown): void;
}

/** What started a role, to start it again. */
interface Launch {
  role: FleetRole;
  name: string;
  /** The NATS user with accounts. */
  user: string;
  env: RoleEnv;
  host?: string;
}

/**
 * Starts a fleet: NATS, the hosts' engines, then the handlers (they create the streams), the
 * gateway and the agents, each role as its own NATS user with accounts.
 */
export function startFleet(options: FleetOptions & { nats: "plain" }): Promise<Fleet<FleetNats>>;
export function startFleet(
  options: FleetOptions & { nats?: "accounts" },
): Promise<Fleet<AccountsNats>>;
export async function startFleet(options: FleetOptions): Promise<Fleet> {
  const specs = (options.hosts ?? []).map((h) => (typeof h === "string" ? { id: h } : h));
  const undo: (() => unknown)[] = [];
  let disposed = false;
  const dispose = async () => {
    if (disposed) return;
    disposed = true;
    const errors: unknown[] = [];
    for (let step = undo.pop(); step; step = undo.pop()) {
      await Promise.resolve()
        .then(step)
        .catch((error: unknown) => errors.push(error));
    }
    if (errors.length > 0) throw new AggregateError(errors, "the fleet's teardown failed");
  };

  try {
    const nats: FleetNats =
      options.nats === "plain"
        ? await startPlainNats()
        : await startAccountsNats(specs.map((h) => h.id));
    undo.push(() => nats[Symbol.asyncDispose]());
    if (options.streams || options.policy) {
      const nc = await nats.connect(options.nats === "plain" ? {} : { user: "handler" });
      const fjs = await openFleetJetStream(nc);
      await ensureHostStreams(
        fjs.jsm,
        specs.map((h) => h.id),
      );
      if (options.policy)
        await fjs.config.put(POLICY_KEY, encode(HealPolicy.parse(options.policy)));
      await nc.close();
    }
    const fleet = new RunningFleet(nats, options, undo, dispose);
    const engines = await startEngines(specs);
    for (const [i, spec] of specs.entries()) {
      await fleet.attach(spec, engines[i] as DockerEngine);
    }
    for (let i = 0; i < (options.handlers ?? 1); i++) await fleet.startHandler();
    if (options.gateway) {
      await fleet.startGateway(options.gateway === true ? {} : options.gateway);
    }
    for (const spec of specs) {
      if (spec.agent !== false) await fleet.startAgent(spec.id);
    }
    return fleet;
  } catch (error) {
    await dispose().catch(() => {});
    throw error;
  }
}

/** Starts the hosts' engines at once; if one fails, the others are stopped again. */
async function startEngines(specs: FleetHostOptions[]): Promise<DockerEngine[]> {
  const results = await Promise.allSettled(
    specs.map((spec) => startDockerEngine(spec.id, spec.engine)),
  );
  const failures = results.flatMap((r) => (r.status === "rejected" ? [r.reason] : []));
  const engines = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  if (failures.length > 0) {
    await Promise.allSettled(engines.map((e) => e.stop()));
    throw new AggregateError(failures, `${failures.length} docker engines failed to start`);
  }
  return engines;
}

class RunningFleet implements Fleet {
  readonly hosts = new Map<string, FleetHost>();
  readonly handlers: FleetProcess[] = [];
  readonly #nats: FleetNats;
  readonly #options: FleetOptions;
  readonly #undo: (() => unknown)[];
  readonly #dispose: () => Promise<void>;
  readonly #launches = new WeakMap<FleetProcess, Launch>();
  readonly #agents = new Map<string, FleetProcess>();
  readonly #hostEnv = new Map<string, RoleEnv>();
  /** Hosts whose agent user the accounts have. */
  readonly #users: Set<string>;
  readonly #exited = new WeakSet<FleetProcess>();
  #gateway: FleetGateway | undefined;
  #control: Promise<NatsConnection> | undefined;
  #started: Record<FleetRole, number> = { agent: 0, handler: 0, gateway: 0 };

  constructor(
    nats: FleetNats,
    options: FleetOptions,
    undo: (() => unknown)[],
    dispose: () => Promise<void>,
  ) {
    this.#nats = nats;
    this.#options = options;
    this.#undo = undo;
    this.#dispose = dispose;
    this.#users = new Set((options.hosts ?? []).map((h) => (typeof h === "string" ? h : h.id)));
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.#dispose();
  }

  get nats(): FleetNats {
    return this.#nats;
  }

  get gateway(): FleetGateway {
    if (!this.#gateway) throw new Error("this fleet has no gateway (start one with gateway: true)");
    return this.#gateway;
  }

  host(id: string): FleetHost {
    const h = this.hosts.get(id);
    if (!h) throw new Error(`no host ${id} in this fleet`);
    return h;
  }

  defer(cleanup: () => unknown): void {
    this.#undo.push(cleanup);
  }

  async putPolicy(policy: z.input<typeof HealPolicy>): Promise<void> {
    const kv = await new Kvm(await this.#controlConnection()).open(CONFIG_BUCKET);
    const revision = await kv.put(POLICY_KEY, encode(HealPolicy.parse(policy)));
    const running = this.handlers.filter((h) => !this.#exited.has(h));
    await Promise.all(
      running.map((h) =>
        h.waitForJson(
          (l) => l.msg === "fleet policy loaded" && l.revision === revision,
          30_000,
          `${h.name} did not load policy revision ${revision}`,
        ),
      ),
    );
  }

  async waitForHosts(ids: readonly string[] = [...this.hosts.keys()]): Promise<void> {
    const kv = await new Kvm(await this.#controlConnection()).open(HOSTS_BUCKET);
    await waitFor(
      async () => {
        const entries = await Promise.all(ids.map((id) => kv.get(id)));
        return entries.every((e) => e?.operation === "PUT");
      },
      { timeoutMs: 30_000, message: `not every host of ${ids.join(", ")} stored a snapshot` },
    );
  }

  /** The test's own connection with the control plane's rights (the handler user). */
  #controlConnection(): Promise<NatsConnection> {
    this.#control ??= this.#nats.connect(
      this.#options.nats === "plain" ? { name: "fleet-control" } : { user: "handler" },
    );
    return this.#control;
  }

  async startHandler(options: RoleStartOptions = {}): Promise<FleetProcess> {
    const name = options.name ?? `handler-${this.#started.handler + 1}`;
    const proc = await this.#launch({
      role: "handler",
      name,
      user: "handler",
      env: options.env ?? {},
    });
    this.handlers.push(proc);
    return proc;
  }

  async startGateway(options: FleetGatewayOptions = {}): Promise<FleetGateway> {
    const n = this.#started.gateway;
    const env: RoleEnv = {
      FLEETHEAL_GATEWAY_PORT: "0",
      FLEETHEAL_GATEWAY_HOST: "127.0.0.1",
      ...(options.adminToken ? { FLEETHEAL_GATEWAY_ADMIN_TOKEN: options.adminToken } : {}),
      ...options.env,
    };
    const name = options.name ?? (n === 0 ? "gateway" : `gateway-${n + 1}`);
    const proc = await this.#launch({ role: "gateway", name, user: "gateway", env });
    return proc as FleetGateway;
  }

  async startAgent(host: string, options: RoleStartOptions = {}): Promise<FleetProcess> {
    const h = this.host(host);
    // Without a handler, nothing else creates the stream the host's events go to.
    if (this.#options.streams) {
      const nc = await this.#controlConnection();
      await ensureHostStreams(await jetstreamManager(nc), [host]);
    }
    const previous = this.#agents.get(host);
    if (previous && !this.#exited.has(previous)) {
      throw new Error(`the agent of ${host} still runs; stop it first, or restart it`);
    }
    const env: RoleEnv = {
      FLEETHEAL_HOST_ID: host,
      DOCKER_HOST: h.engine.dockerHost,
      FLEETHEAL_HEARTBEAT_MS: String(this.#options.heartbeatMs ?? 500),
      ...this.#hostEnv.get(host),
      ...options.env,
    };
    return this.#launch({
      role: "agent",
      name: options.name ?? `agent-${host}`,
      user: `agent-${host}`,
      env,
      host,
    });
  }

  async addHost(host: string | FleetHostOptions): Promise<FleetHost> {
    const spec = typeof host === "string" ? { id: host } : host;
    if (this.hosts.has(spec.id)) throw new Error(`host ${spec.id} is in the fleet already`);
    if (!this.#users.has(spec.id) && "update" in this.#nats) {
      await (this.#nats as AccountsNats).update({ addHosts: [spec.id] });
      this.#users.add(spec.id);
    }
    const [engine] = await startEngines([spec]);
    const added = await this.attach(spec, engine as DockerEngine);
    if (spec.agent !== false) await this.startAgent(spec.id);
    return added;
  }

  /** Makes `engine` the fleet's host `spec`, with a recorder of its events. */
  async attach(spec: FleetHostOptions, engine: DockerEngine): Promise<FleetHost> {
    let docker: DockerEventRecorder;
    try {
      docker = await recordDockerEvents(engine);
    } catch (error) {
      await engine.stop().catch(() => {});
      throw error;
    }
    const agents = this.#agents;
    let removed: Promise<void> | undefined;
    const remove = async () => {
      await agents.get(spec.id)?.[Symbol.asyncDispose]();
      docker.close();
      await engine[Symbol.asyncDispose]();
    };
    const added: FleetHost = {
      id: spec.id,
      engine,
      docker,
      get agent() {
        const agent = agents.get(spec.id);
        if (!agent) throw new Error(`host ${spec.id} has no agent (started with agent: false?)`);
        return agent;
      },
      [Symbol.asyncDispose]: () => {
        removed ??= remove().finally(() => this.hosts.delete(spec.id));
        return removed;
      },
    };
    this.hosts.set(spec.id, added);
    this.#hostEnv.set(spec.id, spec.env ?? {});
    this.#undo.push(() => added[Symbol.asyncDispose]());
    return added;
  }

  async restart<P extends FleetProcess>(proc: P, options: { env?: RoleEnv } = {}): Promise<P> {
    const launch = this.#launches.get(proc);
    if (!launch) throw new Error(`${proc.name} was not started by this fleet`);
    await proc.stop();
    const next = await this.#launch({ ...launch, env: { ...launch.env, ...options.env } });
    const i = this.handlers.indexOf(proc);
    if (i >= 0) this.handlers.splice(i, 1, next);
    return next as P;
  }

  /** Starts a role as its NATS user with the fleet's variables, and tracks it. */
  async #launch(launch: Launch): Promise<FleetProcess> {
    const env: RoleEnv = {
      FLEETHEAL_NATS_URL: this.#nats.server.url,
      ...(await this.#nats.env(launch.user)),
      ...this.#options.env?.all,
      ...this.#options.env?.[launch.role],
      ...launch.env,
    };
    const proc = await startRole(launch.role, launch.name, env);
    this.#undo.push(() => proc[Symbol.asyncDispose]());
    this.#started[launch.role]++;
    this.#launches.set(proc, launch);
    void proc.exited.then(() => this.#exited.add(proc));
    if (launch.host !== undefined) this.#agents.set(launch.host, proc);
    if (launch.role === "gateway") {
      this.#gateway = Object.assign(proc, { url: gatewayUrl(proc) });
    }
    return proc;
  }
}
