import { ConfigError, describeError } from "../common/errors.js";
import {
  formatOptions,
  type OptionSpec,
  type OptionValues,
  type ParsedArgs,
  parseArgs,
  UsageError,
} from "./args.js";
import { EXIT, EXIT_CODES_HELP } from "./exit-codes.js";
import { GatewayError } from "./gateway-client.js";

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
  /** Aborted on Ctrl-C/SIGTERM: a following command stops and exits 0. */
  signal: AbortSignal;
  fetch?: typeof fetch;
  /** Delay before reconnecting a dropped event stream; the gateway's `retry:` otherwise. */
  reconnectDelayMs?: number;
}

/** A subcommand of `fleetheal`: its options, its help, and what it does. */
export interface Command<S extends readonly OptionSpec[] = readonly OptionSpec[]> {
  name: string;
  /** `fleetheal restart <host> <container> [options]` */
  usage: string;
  /** What the command does, for its help; the first line is also its line in `fleetheal --help`. */
  description: string;
  options: S;
  /** This many positional arguments, named in `usage`: exactly, or from `[min, max]`. */
  positionals: number | readonly [min: number, max: number];
  /** Extra help after the options: examples, how the answer maps to exit codes. */
  notes?: string;
  run(args: ParsedArgs<S>, ctx: CommandContext): Promise<number>;
}

/** Keeps the option names of `options` as literal types for `run`. */
export function defineCommand<const S extends readonly OptionSpec[]>(command: Command<S>): Command {
  return command as unknown as Command;
}

/** Options every gateway command takes. */
export const GATEWAY_OPTIONS = [
  {
    name: "gateway",
    kind: "string",
    value: "<url>",
    description: "The gateway [FLEETHEAL_GATEWAY_URL, or http://127.0.0.1:8080]",
  },
  {
    name: "token-file",
    kind: "string",
    value: "<file>",
    description:
      "A file holding the bearer token [FLEETHEAL_GATEWAY_TOKEN or\nFLEETHEAL_GATEWAY_TOKEN_FILE; for actions also .fleetheal/admin-token,\nwhich `fleetheal up` writes]",
  },
  { name: "json", kind: "boolean", description: "Print the API's JSON instead of a table" },
  { name: "help", kind: "boolean", short: "h", description: "Show this help" },
] as const satisfies readonly OptionSpec[];

export type GatewayOptionValues = OptionValues<typeof GATEWAY_OPTIONS>;

/** The text of `fleetheal <command> --help`. */
export function commandHelp(command: Command): string {
  return [
    `Usage: ${command.usage}`,
    "",
    command.description,
    "",
    "Options:",
    formatOptions(command.options),
    ...(command.notes ? ["", command.notes] : []),
    "",
    EXIT_CODES_HELP,
    "",
  ].join("\n");
}

/**
 * Runs a command and turns every failure into its message on stderr and a documented exit code
 * (cli/exit-codes.ts): a usage mistake is 2 with the usage line, unusable configuration (URL,
 * token) is 2, a gateway error is its API code and message with 3 (4 for authentication), so
 * no failure reaches the user as a stack trace.
 */
export async function runCommand(
  command: Command,
  argv: readonly string[],
  ctx: CommandContext,
): Promise<number> {
  try {
    const args = parseArgs(argv, command.options);
    if ((args.options as { help?: boolean }).help) {
      ctx.io.out(commandHelp(command).trimEnd());
      return EXIT.OK;
    }
    const [min, max] =
      typeof command.positionals === "number"
        ? [command.positionals, command.positionals]
        : command.positionals;
    const given = args.positionals.length;
    if (given < min || given > max) {
      throw new UsageError(
        given > max
          ? `unexpected argument${given - max > 1 ? "s" : ""}: ${args.positionals.slice(max).join(" ")}`
          : "missing arguments",
      );
    }
    return await command.run(args, ctx);
  } catch (error) {
    if (!(error instanceof UsageError)) return reportError(error, ctx.io);
    ctx.io.err(error.message);
    ctx.io.err(`usage: ${command.usage} (fleetheal ${command.name} --help)`);
    return EXIT.USAGE;
  }
}

/** The message on stderr and the exit code of a failure. */
export function reportError(error: unknown, io: CommandIo): number {
  if (error instanceof ConfigError) {
    io.err(error.message);
    return EXIT.USAGE;
  }
  if (error instanceof GatewayError) {
    io.err(`${error.code}${error.status ? ` (HTTP ${error.status})` : ""}: ${error.message}`);
    return error.exitCode;
  }
  if (error instanceof Error && error.name === "AbortError") {
    io.err("interrupted");
    return EXIT.INTERRUPTED;
  }
  io.err(`unexpected error: ${describeError(error)}`);
  return EXIT.GATEWAY;
}
