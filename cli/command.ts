import type { Stoppable } from "../common/lifecycle.js";
import type { OptionSpecs, ParsedArgs } from "./args.js";
import type { EnvGroupName } from "./environment.js";

/** Where a command writes: lines to stdout and to stderr. Injected by tests. */
export interface CommandIo {
  out: (line: string) => void;
  err: (line: string) => void;
}

/** Everything a command reads from its surroundings, so tests can run it in-process. */
export interface CommandContext {
  io: CommandIo;
  env: NodeJS.ProcessEnv;
  /** For relative paths (the `fleetheal up` token file) and nothing else. */
  cwd: string;
  now: () => number;
  /** Aborted on Ctrl-C/SIGTERM when the command `stopsOnSignal`; never aborted otherwise. */
  signal: AbortSignal;
  fetch?: typeof fetch;
  /** What `-` reads (`policy set -`); process.stdin when not given. Injected by tests. */
  stdin?: AsyncIterable<Uint8Array | string>;
  /** Delay before reconnecting a dropped event stream; the gateway's `retry:` otherwise. */
  reconnectDelayMs?: number;
}

/** A positional argument, for the usage line, the help and the count the parser accepts. */
export interface PositionalSpec {
  /** As the usage line shows it: `<host>`, `export|import`. */
  readonly name: string;
  readonly optional?: boolean;
  readonly description?: string;
}

/** What every command declares: its help, its options and arguments, what it reads. */
interface CommandInfo<S extends OptionSpecs> {
  name: string;
  /** Its line in `fleetheal --help`; `\n` starts a new line, longer lines are wrapped. */
  summary: string;
  /** What `fleetheal <command> --help` says about it [the summary]. */
  description?: string;
  /** `fleetheal restart <host> <container> [options]` [made from the name, the positionals
   * and whether there are options] */
  usage?: string;
  /** `-h, --help` is added to every command. */
  options?: S;
  positionals?: readonly PositionalSpec[];
  /** The groups of environment variables it reads (cli/environment.ts), shown in its help. */
  env?: readonly EnvGroupName[];
  /** Extra help after the options: examples, how the answer maps to exit codes. */
  notes?: string;
  /** Its table of exit codes, for its help (cli/exit-codes.ts). */
  exitCodes?: string;
}

/** A command that does its work and ends with an exit code. */
export interface OneShotDefinition<S extends OptionSpecs> extends CommandInfo<S> {
  run(args: ParsedArgs<S>, ctx: CommandContext): Promise<number>;
  /**
   * Ctrl-C and SIGTERM abort `ctx.signal` and the command ends itself (`events --follow` exits
   * 0, a request still waiting 130). Without it they end the process at once, as Node's default.
   */
  stopsOnSignal?: boolean;
  /**
   * `as-written`: its stderr lines carry their own prefix, or none (healthcheck's verdict, as
   * Docker's health log keeps it); otherwise each is shown as `fleetheal <name>: <line>`.
   */
  stderr?: "as-written";
  /** The exit code of a usage error [2]; Docker reserves 2 for a HEALTHCHECK. */
  usageExitCode?: number;
}

/** A role: it runs until Ctrl-C or SIGTERM (common/lifecycle.ts). */
export interface ServiceDefinition<S extends OptionSpecs> extends CommandInfo<S> {
  start(args: ParsedArgs<S>, ctx: CommandContext): Promise<Stoppable>;
}

/** The options every command has. */
export const HELP_OPTION = {
  help: { type: "boolean", short: "h", description: "Show this help" },
} as const;

interface Normalized {
  usage: string;
  description: string;
  options: OptionSpecs;
  positionals: readonly PositionalSpec[];
  env: readonly EnvGroupName[];
}

/** A subcommand of `fleetheal`, as the parser, the help and the process runner take it. */
export type Command =
  | (Omit<OneShotDefinition<OptionSpecs>, keyof Normalized> & Normalized & { kind: "one-shot" })
  | (Omit<ServiceDefinition<OptionSpecs>, keyof Normalized> & Normalized & { kind: "service" });

/**
 * Defines a command: one value holds everything about it, and `fleetheal --help`, its own
 * `--help`, its parsing and how it runs as a process are made from it. Keeps the option names of
 * `options` as literal types for `run` or `start`. Register it in cli/commands/index.ts.
 */
export function defineCommand<const S extends OptionSpecs = Record<never, never>>(
  definition: OneShotDefinition<S> | ServiceDefinition<S>,
): Command {
  const positionals = definition.positionals ?? [];
  const options = { ...definition.options, ...HELP_OPTION } as OptionSpecs;
  const hasOptions = Object.keys(options).length > 1;
  const usage =
    definition.usage ??
    [
      `fleetheal ${definition.name}`,
      ...positionals.map((p) => (p.optional ? `[${p.name}]` : p.name)),
      ...(hasOptions ? ["[options]"] : []),
    ].join(" ");
  // The option names' literal types are for `run` and `start` only; past this point a command
  // is one of many.
  return {
    ...definition,
    kind: "start" in definition ? "service" : "one-shot",
    usage,
    description: definition.description ?? definition.summary,
    options,
    positionals,
    env: definition.env ?? [],
  } as unknown as Command;
}
