// Runs fleetheal's own roles (agent, handler, gateway) as real processes through the CLI, the
// way operators run them. They use the compiled dist/ that `npm test` builds first.

import { execFile } from "node:child_process";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { markOwned, sweepAbandonedOnce } from "./children.js";
import { signingEnv } from "./command-signing.js";
import { type ManagedProcess, startProcess } from "./process.js";

/** The repository root, and the CLI entry point that operators run. */
export const REPO = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const CLI = join(REPO, "bin", "fleetheal.js");

/** What each role logs once it is ready to work. */
const READY: Record<FleetRole, string> = {
  agent: "agent started",
  handler: "handler replica started",
  gateway: "gateway listening",
};

export type FleetRole = "agent" | "handler" | "gateway";

export interface FleetProcess extends ManagedProcess {
  role: FleetRole;
}

/**
 * Starts `fleetheal up` as host "solo" on `dataDir`, with its embedded nats-server on `natsPort`
 * and its gateway on a free loopback port, against `dockerHost`; `env` adds to that.
 */
export function startUpProcess(options: {
  dockerHost: string;
  dataDir: string;
  natsPort: number;
  name?: string;
  env?: Record<string, string>;
}): Promise<ManagedProcess> {
  return startProcess({
    name: options.name ?? "up",
    command: process.execPath,
    args: [CLI, "up"],
    cwd: REPO,
    env: {
      DOCKER_HOST: options.dockerHost,
      FLEETHEAL_HOST_ID: "solo",
      FLEETHEAL_DATA_DIR: options.dataDir,
      FLEETHEAL_NATS_PORT: String(options.natsPort),
      FLEETHEAL_GATEWAY_PORT: "0",
      FLEETHEAL_GATEWAY_HOST: "127.0.0.1",
      ...options.env,
    },
  });
}

const DATA_PREFIX = "fleetheal-agent-data-";
let dataRoot: Promise<string> | undefined;

/**
 * The data directory of the agent named `name` in this test process: the same one each time it
 * is started, as a host keeps its own across restarts, and never one of another test's agents
 * (which the default, `.fleetheal` in the working directory, would be). Removed when the process
 * exits; a killed process's is swept by the next run.
 */
export async function agentDataDir(name: string): Promise<string> {
  dataRoot ??= (async () => {
    await sweepAbandonedOnce(DATA_PREFIX, "agent data");
    const root = await mkdtemp(join(tmpdir(), DATA_PREFIX));
    await markOwned(root);
    process.once("exit", () => rmSync(root, { recursive: true, force: true }));
    return root;
  })();
  const dir = join(await dataRoot, name);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/**
 * Starts one role and waits until it says it is ready. Commands are signed as in production:
 * a handler or gateway signs with the test process's key and an agent trusts it
 * (support/command-signing.ts), unless `env` sets those variables itself ("" unsets one).
 * `checkout` is where the built fleetheal is: this one, or another build a benchmark compares.
 */
export async function startRole(
  role: FleetRole,
  name: string,
  env: Record<string, string>,
  checkout = REPO,
): Promise<FleetProcess> {
  if (!existsSync(join(checkout, "dist", "cli", "main.js"))) {
    throw new Error("dist/ is missing: run `npm run build` (npm test does it for you)");
  }
  const dataDir: Record<string, string> =
    role === "agent" && env.FLEETHEAL_DATA_DIR === undefined
      ? { FLEETHEAL_DATA_DIR: await agentDataDir(name) }
      : {};
  const proc = await startProcess({
    name,
    command: process.execPath,
    args: [join(checkout, "bin", "fleetheal.js"), role],
    env: { FLEETHEAL_LOG_LEVEL: "debug", ...dataDir, ...signingEnv(role), ...env },
    cwd: checkout,
  });
  try {
    await proc.waitForJson((l) => l.msg === READY[role], 30_000, `${name} did not become ready`);
  } catch (error) {
    await proc[Symbol.asyncDispose]();
    throw error;
  }
  return Object.assign(proc, { role });
}

/** The URL a gateway started with FLEETHEAL_GATEWAY_PORT=0 listens on. */
export function gatewayUrl(gateway: ManagedProcess): string {
  const line = gateway.json.find((l) => l.msg === "gateway listening");
  if (typeof line?.url !== "string") throw new Error("gateway has not logged its URL");
  return line.url;
}

/**
 * Starts a gateway on a free port of 127.0.0.1, with actions enabled by `adminToken`, and
 * returns it with the URL it listens on.
 */
export async function startGatewayRole(
  name: string,
  env: Record<string, string>,
  adminToken: string,
): Promise<FleetProcess & { url: string }> {
  const proc = await startRole("gateway", name, {
    ...env,
    FLEETHEAL_GATEWAY_PORT: "0",
    FLEETHEAL_GATEWAY_HOST: "127.0.0.1",
    FLEETHEAL_GATEWAY_ADMIN_TOKEN: adminToken,
  });
  return Object.assign(proc, { url: gatewayUrl(proc) });
}

/** Runs a one-shot command (`fleetheal nats-migrate …`) to its end: its exit code and output. */
export function runCommand(
  args: string[],
  env: Record<string, string>,
  timeoutMs = 120_000,
): Promise<{ code: number | null; lines: string[] }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { cwd: REPO, env: { ...process.env, ...env }, timeout: timeoutMs, maxBuffer: 64 << 20 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : null) : 0;
        resolve({ code, lines: `${stdout}${stderr}`.split("\n").filter((l) => l !== "") });
      },
    );
  });
}
