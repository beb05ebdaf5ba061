import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { createConnection } from "node:net";
import { join } from "node:path";
import { FleethealError } from "../common/errors.js";
import type { Logger } from "../common/logger.js";

export interface EmbeddedNatsOptions {
  binary: string;
  dataDir: string;
  port: number;
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
 * store under the data directory so that ledgers and history survive a restart.
 */
export async function startEmbeddedNats(options: EmbeddedNatsOptions): Promise<EmbeddedNats> {
  // A server already on the port would look "ready" to the probe below.
  if (await canConnect(options.port)) {
    throw new EmbeddedNatsError(
      `port ${options.port} is already in use; set FLEETHEAL_NATS_PORT, or FLEETHEAL_NATS_URL to use that server`,
    );
  }
  const storeDir = join(options.dataDir, "nats");
  mkdirSync(storeDir, { recursive: true });
  const args = ["-a", "127.0.0.1", "-p", String(options.port), "-js", "-sd", storeDir];
  const child = spawn(options.binary, args, { stdio: ["ignore", "pipe", "pipe"] });
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
