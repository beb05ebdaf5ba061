import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { join, relative } from "node:path";
import { FleethealError } from "../common/errors.js";
import type { Logger } from "../common/logger.js";
import { FLEET_ACCOUNT } from "../common/nats-accounts.js";
import { HOSTS_BUCKET } from "../contracts/index.js";

export interface EmbeddedNatsOptions {
  binary: string;
  dataDir: string;
  port: number;
  /** The accounts include file (common/nats-accounts.ts) every connection authenticates by. */
  accountsFile: string;
  log: Logger;
  readyTimeoutMs?: number;
}

export interface EmbeddedNats {
  url: string;
  stop(): Promise<void>;
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
  // A server already on the port would look "ready" to the probe below.
  if (await canConnect(options.port)) {
    throw new EmbeddedNatsError(
      `port ${options.port} is already in use; set FLEETHEAL_NATS_PORT, or FLEETHEAL_NATS_URL to use that server`,
    );
  }
  const storeDir = join(options.dataDir, "nats");
  mkdirSync(storeDir, { recursive: true, mode: 0o700 });
  moveUnauthenticatedStore(storeDir, options.log);
  const configFile = join(options.dataDir, "nats-server.conf");
  writeFileSync(configFile, embeddedConfig(options, storeDir, configFile), { mode: 0o600 });
  const child = spawn(options.binary, ["-c", configFile], { stdio: ["ignore", "pipe", "pipe"] });
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
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const spawnError = new Promise<Error>((resolve) => child.on("error", resolve));

  const ready = waitForPort(options.port, options.readyTimeoutMs ?? 15_000);
  const outcome = await Promise.race([
    ready.then(() => "ready" as const),
    exited.then((code) => ({ exited: code })),
    spawnError.then((error) => ({ error })),
  ]);
  if (outcome !== "ready") {
    child.kill("SIGKILL");
    const why =
      "error" in outcome
        ? `could not run ${options.binary}: ${outcome.error.message} (install nats-server, or set FLEETHEAL_NATS_URL)`
        : `nats-server exited with code ${outcome.exited}: ${output.slice(-5).join(" | ")} (is port ${options.port} in use? set FLEETHEAL_NATS_PORT or FLEETHEAL_NATS_URL)`;
    throw new EmbeddedNatsError(why);
  }
  options.log.info({ port: options.port, storeDir }, "embedded nats-server started");
  return {
    url: `nats://127.0.0.1:${options.port}`,
    stop: () => stopChild(child, exited),
  };
}

/** The embedded server's configuration: loopback, JetStream in the data directory, accounts. */
function embeddedConfig(options: EmbeddedNatsOptions, storeDir: string, configFile: string) {
  const include = relative(join(configFile, ".."), options.accountsFile);
  return [
    "# Written by fleetheal up at every start; edits are lost.",
    `listen: ${JSON.stringify(`127.0.0.1:${options.port}`)}`,
    `jetstream { store_dir: ${JSON.stringify(storeDir)} }`,
    `include ${JSON.stringify(include)}`,
    "",
  ].join("\n");
}

/**
 * An earlier fleetheal up kept everything in the global account `$G` of an unauthenticated
 * server. With the accounts, the fleet's data lives in FLEET; a single server that is not
 * clustered keeps a stream's messages, sequences and consumers in a directory per account, so
 * moving the directory (while the server is stopped) carries everything over unchanged.
 */
export function moveUnauthenticatedStore(storeDir: string, log: Logger): void {
  const from = join(storeDir, "jetstream", "$G", "streams");
  const to = join(storeDir, "jetstream", FLEET_ACCOUNT, "streams");
  if (!existsSync(from) || existsSync(to)) return;
  mkdirSync(join(to, ".."), { recursive: true, mode: 0o700 });
  renameSync(from, to);
  // The hosts bucket was created accepting rollups; the handler creates it anew without, and
  // the agent writes its snapshot again within a heartbeat.
  rmSync(join(to, `KV_${HOSTS_BUCKET}`), { recursive: true, force: true });
  log.info({ from, to }, "moved the streams of an earlier fleetheal up into the FLEET account");
}

async function stopChild(child: ChildProcess, exited: Promise<number | null>): Promise<void> {
  if (child.exitCode !== null) return;
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await canConnect(port)) return;
    if (Date.now() > deadline) throw new Error(`port ${port} did not open in ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
