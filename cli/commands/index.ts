import type { Command, CommandContext } from "../command.js";

/*
 * Every command of `fleetheal`, in the order `fleetheal --help` lists them. cli/main.ts imports
 * this file at start, so it holds only names and loaders: a command's definition, and whatever
 * its code needs, is loaded when that command runs. `fleetheal agent` on every host must not
 * carry the gateway's HTTP stack, the handlers, zod's API schemas or the other commands
 * (docs/AGENT.md, "Memory"); the roles' own modules load their code only once started.
 *
 * A new command is one `defineCommand` (cli/command.ts) in a file of this folder, and its line
 * here.
 */
const LOADERS = {
  up: async () => (await import("./roles.js")).up,
  agent: async () => (await import("./roles.js")).agent,
  handler: async () => (await import("./roles.js")).handler,
  gateway: async () => (await import("./roles.js")).gateway,
  status: async () => (await import("./status.js")).status,
  hosts: async () => (await import("./hosts.js")).hosts,
  containers: async () => (await import("./containers.js")).containers,
  describe: async () => (await import("./describe.js")).describe,
  events: async () => (await import("./events.js")).events,
  restart: async () => (await import("./restart.js")).restart,
  release: async () => (await import("./release.js")).release,
  healing: async () => (await import("./healing.js")).healing,
  policy: async () => (await import("./policy.js")).policy,
  pause: async () => (await import("./pause.js")).pause,
  resume: async () => (await import("./pause.js")).resume,
  "nats-auth": async () => (await import("./nats-auth.js")).natsAuth,
  "nats-migrate": async () => (await import("./nats-migrate.js")).natsMigrate,
  "notify-test": async () => (await import("./notify-test.js")).notifyTest,
  "host-id": async () => (await import("./host-id.js")).hostId,
  healthcheck: async () => (await import("./healthcheck.js")).healthcheck,
  version: async () => (await import("./version.js")).version,
} satisfies Record<string, () => Promise<Command>>;

/** The name of a command, as typed after `fleetheal`. */
export type CommandName = keyof typeof LOADERS;

/** Every command's name, in the order of `fleetheal --help`. */
export const COMMAND_NAMES = Object.keys(LOADERS) as CommandName[];

/** Whether `name` is one of fleetheal's commands (`-v` and `help` are not: cli/process-runner.ts). */
export function isCommandName(name: string): name is CommandName {
  return Object.hasOwn(LOADERS, name);
}

/**
 * The commands a mistyped `name` most likely meant: the closest by edit distance (at most 2,
 * or a third of the name), or those it is the start of; at most three.
 */
export function nearestCommands(name: string): CommandName[] {
  const typed = name.toLowerCase();
  const scored = COMMAND_NAMES.map((c) => ({ c, d: editDistance(typed, c) }));
  const limit = Math.max(2, Math.floor(typed.length / 3));
  const close = scored.filter((s) => s.d <= limit).sort((a, b) => a.d - b.d);
  const prefixed = COMMAND_NAMES.filter((c) => typed.length >= 2 && c.startsWith(typed));
  return [...new Set([...close.map((s) => s.c), ...prefixed])].slice(0, 3);
}

/** Levenshtein distance; names are short, so the plain table is enough. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min(
        (prev[j] as number) + 1,
        (row[j - 1] as number) + 1,
        (prev[j - 1] as number) + cost,
      );
    }
    prev = row;
  }
  return prev[b.length] as number;
}

/** The definition of one command, loaded with only what its definition imports. */
export function loadCommand(name: CommandName): Promise<Command> {
  return LOADERS[name]();
}

/** Every command, for the global help. */
export function loadAllCommands(): Promise<Command[]> {
  return Promise.all(COMMAND_NAMES.map((name) => loadCommand(name)));
}

/** Runs a one-shot command in-process, for tests: the same parsing, output and exit codes. */
export async function runCommandNamed(
  name: CommandName,
  argv: readonly string[],
  ctx: CommandContext,
): Promise<number> {
  const { runCommand } = await import("../run-command.js");
  return runCommand(await loadCommand(name), argv, ctx);
}
