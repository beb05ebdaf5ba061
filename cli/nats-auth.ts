import { AUTH_FILE } from "../common/fleet-credentials.js";
import type { CommandIo } from "./command.js";
import { natsAuth } from "./commands/nats-auth.js";
import { runCommand } from "./run-command.js";

export { AUTH_FILE };

/**
 * `fleetheal nats-auth …` in this process, for tests and tools that make a deployment's
 * credentials: the command's parsing, output and exit code (cli/commands/nats-auth.ts).
 */
export function natsAuthCommand(args: readonly string[], io: CommandIo): Promise<number> {
  return runCommand(natsAuth, args, {
    io,
    env: process.env,
    cwd: process.cwd(),
    now: Date.now,
    signal: new AbortController().signal,
  });
}
