import type { Command, CommandContext } from "../command.js";

/*
 * The commands that talk to the gateway over HTTP. cli/main.ts imports this file at start, so
 * it holds only names and loaders: each command's code (and zod, and the API schemas) is loaded
 * when that command runs, never by `fleetheal agent` on every host.
 */
const LOADERS = {
  status: async () => (await import("./status.js")).status,
  hosts: async () => (await import("./hosts.js")).hosts,
  containers: async () => (await import("./containers.js")).containers,
  events: async () => (await import("./events.js")).events,
  restart: async () => (await import("./restart.js")).restart,
  release: async () => (await import("./release.js")).release,
  pause: async () => (await import("./pause.js")).pause,
  resume: async () => (await import("./pause.js")).resume,
} satisfies Record<string, () => Promise<Command>>;

export type ClientCommandName = keyof typeof LOADERS;

export function isClientCommand(name: string): name is ClientCommandName {
  return Object.hasOwn(LOADERS, name);
}

export function loadCommand(name: ClientCommandName): Promise<Command> {
  return LOADERS[name]();
}

/** Runs a command in-process, for tests: the same parsing, output and exit codes as the CLI. */
export async function runClientCommand(
  name: ClientCommandName,
  argv: readonly string[],
  ctx: CommandContext,
): Promise<number> {
  const { runCommand } = await import("../command.js");
  return runCommand(await loadCommand(name), argv, ctx);
}

/**
 * `fleetheal <command> …` as a process: stdout and stderr, Ctrl-C ends a `--follow`, and the
 * exit code is set only once everything written has been flushed (a large `--json` document
 * on a pipe would otherwise be cut short by process.exit).
 */
export async function runClientProcess(
  name: ClientCommandName,
  argv: readonly string[],
): Promise<void> {
  const abort = new AbortController();
  const stop = () => abort.abort();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  // `fleetheal events -f | head -1`: a closed pipe ends the command, it is not a crash.
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code !== "EPIPE") throw error;
    abort.abort();
  });
  const code = await runClientCommand(name, argv, {
    io: {
      out: (line) => {
        if (!process.stdout.destroyed) process.stdout.write(`${line}\n`);
      },
      err: (line) => process.stderr.write(`fleetheal ${name}: ${line}\n`),
    },
    env: process.env,
    cwd: process.cwd(),
    now: Date.now,
    signal: abort.signal,
  });
  await Promise.all([flush(process.stdout), flush(process.stderr)]);
  // Idle keep-alive connections (fetch's, or NATS for `release`) would hold the process on.
  process.exit(code);
}

function flush(stream: NodeJS.WriteStream): Promise<void> {
  if (stream.destroyed || !stream.writable) return Promise.resolve();
  return new Promise((resolve) => stream.write("", () => resolve()));
}
