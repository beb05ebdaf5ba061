import { Readable } from "node:stream";
import { type CommandName, runCommandNamed } from "../../cli/commands/index.js";

/** What one in-process run of a CLI command printed, and its exit code. */
export interface CliRun {
  code: number;
  out: string[];
  err: string[];
}

/**
 * Runs `fleetheal <name> <argv>` in this process against the gateway at `gatewayUrl` (put in
 * the environment, which `env` adds to), capturing what it prints line by line.
 */
export async function runCli(
  name: CommandName,
  argv: string[],
  options: {
    gatewayUrl: string;
    cwd: string;
    now: number;
    fetch: typeof fetch;
    env?: NodeJS.ProcessEnv;
    stdin?: string;
  },
): Promise<CliRun> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCommandNamed(name, argv, {
    io: { out: (l) => out.push(...l.split("\n")), err: (l) => err.push(l) },
    env: { FLEETHEAL_GATEWAY_URL: options.gatewayUrl, ...options.env },
    cwd: options.cwd,
    now: () => options.now,
    signal: new AbortController().signal,
    fetch: options.fetch,
    ...(options.stdin === undefined ? {} : { stdin: Readable.from([options.stdin]) }),
  });
  return { code, out, err };
}
