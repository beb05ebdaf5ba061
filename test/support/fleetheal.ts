// Runs fleetheal's own roles (agent, handler, gateway) as real processes through the CLI, the
// way operators run them. They use the compiled dist/ that `npm test` builds first.

import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
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
 * Starts one role and waits until it says it is ready. Commands are signed as in production:
 * a handler or gateway signs with the test process's key and an agent trusts it
 * (support/command-signing.ts), unless `env` sets those variables itself ("" unsets one).
 */
export async function startRole(
  role: FleetRole,
  name: string,
  env: Record<string, string>,
): Promise<FleetProcess> {
  if (!existsSync(join(REPO, "dist", "cli", "main.js"))) {
    throw new Error("dist/ is missing: run `npm run build` (npm test does it for you)");
  }
  const proc = await startProcess({
    name,
    command: process.execPath,
    args: [CLI, role],
    env: { FLEETHEAL_LOG_LEVEL: "debug", ...signingEnv(role), ...env },
    cwd: REPO,
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
