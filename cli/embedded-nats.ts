import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { join, relative } from "node:path";
import { FleethealError } from "../common/errors.js";
import type { Logger } from "../common/logger.js";
import { FLEET_ACCOUNT } from "../common/nats-accounts.js";
import { HOSTS_BUCKET } from "../contracts/index.js";
import { removeControlFile, writeControlFile } from "./embedded-nats-control.js";
import {
  CONFIG_FILE,
  killServerNow,
  NOT_RUNNABLE_CODES,
  PID_FILE,
  readPidFile,
  removePidFile,
  signalPid,
  spawnWatchedServer,
  stopLeftoverServer,
} from "./embedded-nats-process.js";

/** How long the server gets to stop on SIGTERM before it is killed. */
const STOP_TERM_MS = 5_000;

export interface EmbeddedNatsOptions {
  binary: string;
  dataDir: string;
  /** Where clients connect: loopback, or FLEETHEAL_NATS_LISTEN for the agents of other hosts. */
  listen: { host: string; port: number };
  /** TLS for every client connection, required with a listener other hosts reach. */
  tls?: { certFile: string; keyFile: string; caFile: string };
  /** The addresses other hosts dial (join tokens carry them). */
  advertise?: string[];
  /** The host of the `up` that runs it. */
  host: string;
  /** The accounts include file (common/nats-accounts.ts) every connection authenticates by. */
  accountsFile: string;
  log: Logger;
  readyTimeoutMs?: number;
}

export interface EmbeddedNats {
  /** The URL this machine's own roles use. */
  url: string;
  /** SIGTERM, then SIGKILL after 5 s; resolves once the server has exited. */
  stop(): Promise<void>;
  /** Ends the server now, synchronously (common/lifecycle.ts): for an exit without a stop. */
  abandon(): void;
}

/** The embedded nats-server could not be started. */
export class EmbeddedNatsError extends FleethealError {
  override readonly name = "EmbeddedNatsError";
  constructor(message: string, options?: { cause?: unknown }) {
    super("FLEETHEAL_ERR_EMBEDDED_NATS", message, options);
  }
}

/**
 * Runs nats-server with JetStream for the all-in-one `fleetheal up`, on loopback only, with its
 * store under the data directory so that ledgers and history survive a restart. It runs the same
 * accounts as a fleet deployed with `fleetheal nats-auth`, so every connection, the roles' own
 * included, needs its NKEY: a local user or container on the host network gets nothing from it.
 */
export async function startEmbeddedNats(options: EmbeddedNatsOptions): Promise<EmbeddedNats> {
  const local = { host: localHost(options.listen.host), port: options.listen.port };
  const configFile = join(options.dataDir, CONFIG_FILE);
  // A server that an earlier `up` left running holds the port and the store: stop it first.
  await stopLeftoverServer(options.dataDir, configFile, options.log);
  // A server already on the port would look "ready" to the probe below.
  if (await canConnect(local.host, local.port)) {
    throw new EmbeddedNatsError(
      `${local.host}:${local.port} is already in use; set FLEETHEAL_NATS_PORT (or FLEETHEAL_NATS_LISTEN), or FLEETHEAL_NATS_URL to use that server`,
    );
  }
  const storeDir = join(options.dataDir, "nats");
  mkdirSync(storeDir, { recursive: true, mode: 0o700 });
  moveUnauthenticatedStore(storeDir, options.log);
  writeFileSync(configFile, embeddedConfig(options, storeDir, configFile), { mode: 0o600 });
  const watched = spawnWatchedServer(options.binary, configFile);
  const { child, exited } = watched;
  const output: string[] = [];
  const collect = (chunk: Buffer) => {
    for (const line of chunk.toString().split("\n")) {
      if (line.trim()) {
        output.push(line);
        if (output.length > 50) output.shift();
        options.log.debug({ nats: line }, "nats-server");
      }
    }
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  const spawnError = new Promise<Error>((resolve) => child.on("error", resolve));

  const ready = waitForPort(local.host, local.port, options.readyTimeoutMs ?? 15_000);
  const outcome: StartOutcome = await Promise.race([
    ready.then(
      () => "ready" as const,
      (error: Error) => ({ notReady: error }),
    ),
    exited.then((code) => ({ exited: code })),
    spawnError.then((error) => ({ error })),
  ]);
  // The server writes its pid file before it listens.
  const serverPid = outcome === "ready" ? readPidFile(options.dataDir) : undefined;
  if (serverPid === undefined) {
    killServerNow(watched, readPidFile(options.dataDir));
    removePidFile(options.dataDir);
    throw new EmbeddedNatsError(whyNotStarted(options, outcome, output));
  }
  const url = `${options.tls ? "tls" : "nats"}://${local.host}:${local.port}`;
  await writeControlFile(options.dataDir, {
    pid: serverPid,
    host: options.host,
    url,
    ...(options.tls ? { caFile: options.tls.caFile } : {}),
    advertise: options.advertise ?? [],
  });
  options.log.info(
    { listen: `${options.listen.host}:${options.listen.port}`, tls: !!options.tls, storeDir },
    "embedded nats-server started",
  );
  return {
    url,
    stop: async () => {
      removeControlFile(options.dataDir);
      if (child.exitCode === null && child.signalCode === null) {
        signalPid(serverPid, "SIGTERM", options.log);
        const timer = setTimeout(() => killServerNow(watched, undefined), STOP_TERM_MS);
        await exited;
        clearTimeout(timer);
      }
      removePidFile(options.dataDir);
    },
    abandon: () => {
      removeControlFile(options.dataDir);
      killServerNow(watched, serverPid);
      removePidFile(options.dataDir);
    },
  };
}

/** How the wait for a new server ended. */
type StartOutcome = "ready" | { notReady: Error } | { exited: number | null } | { error: Error };

/** Why the server did not start, with what it printed last. */
function whyNotStarted(
  options: EmbeddedNatsOptions,
  outcome: StartOutcome,
  output: readonly string[],
): string {
  const { host, port } = options.listen;
  if (outcome === "ready") return `nats-server wrote no pid file (${PID_FILE})`;
  if ("error" in outcome) {
    return `could not run a shell for ${options.binary}: ${outcome.error.message}`;
  }
  if ("notReady" in outcome) {
    return `nats-server did not listen on ${host}:${port}: ${outcome.notReady.message}: ${output.slice(-5).join(" | ")}`;
  }
  if (outcome.exited !== null && NOT_RUNNABLE_CODES.has(outcome.exited)) {
    return `could not run ${options.binary}: ${output.slice(-1).join("")} (install nats-server, or set FLEETHEAL_NATS_URL)`;
  }
  return `nats-server exited with code ${outcome.exited}: ${output.slice(-5).join(" | ")} (is ${host}:${port} in use? set FLEETHEAL_NATS_PORT, FLEETHEAL_NATS_LISTEN or FLEETHEAL_NATS_URL)`;
}

/** The address a local client dials for a server listening on `host`. */
function localHost(host: string): string {
  return host === "0.0.0.0" || host === "::" || host === "" ? "127.0.0.1" : host;
}

/**
 * The embedded server's configuration: its listener (with TLS when other hosts reach it),
 * JetStream in the data directory, the accounts, and monitoring on loopback only (on a port of
 * its choosing, written to the ports file), which `fleetheal hosts` reads to see a reload through.
 */
function embeddedConfig(options: EmbeddedNatsOptions, storeDir: string, configFile: string) {
  const include = relative(join(configFile, ".."), options.accountsFile);
  const q = JSON.stringify;
  return [
    "# Written by fleetheal up at every start; edits are lost.",
    `listen: ${q(`${options.listen.host}:${options.listen.port}`)}`,
    ...(options.tls
      ? [
          "tls {",
          `  cert_file: ${q(options.tls.certFile)}`,
          `  key_file: ${q(options.tls.keyFile)}`,
          "  timeout: 2",
          "}",
        ]
      : []),
    `http: ${q("127.0.0.1:-1")}`,
    `ports_file_dir: ${q(options.dataDir)}`,
    // Read by `up` to signal the server, and by the next `up` to find one left running.
    `pid_file: ${q(join(options.dataDir, PID_FILE))}`,
    `jetstream { store_dir: ${q(storeDir)} }`,
    `include ${q(include)}`,
    "",
  ].join("\n");
}

/**
 * A data directory written by a `fleetheal up` without accounts holds everything in the global
 * account `$G` of an unauthenticated server. With the accounts, the fleet's data lives in FLEET;
 * a single server that is not clustered keeps a stream's messages, sequences and consumers in a
 * directory per account, so moving the directory (while the server is stopped) carries
 * everything over unchanged.
 */
export function moveUnauthenticatedStore(storeDir: string, log: Logger): void {
  const from = join(storeDir, "jetstream", "$G", "streams");
  const to = join(storeDir, "jetstream", FLEET_ACCOUNT, "streams");
  if (!existsSync(from) || existsSync(to)) return;
  mkdirSync(join(to, ".."), { recursive: true, mode: 0o700 });
  renameSync(from, to);
  // That hosts bucket accepts rollups, with which one host could delete every other host's
  // snapshot; the handler creates it anew without, and the agent writes its snapshot again
  // within a heartbeat.
  rmSync(join(to, `KV_${HOSTS_BUCKET}`), { recursive: true, force: true });
  log.info({ from, to }, "moved the streams of an earlier fleetheal up into the FLEET account");
}

async function waitForPort(host: string, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await canConnect(host, port)) return;
    if (Date.now() > deadline) throw new Error(`port ${port} did not open in ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
