import { ConfigError, describeError } from "../common/errors.js";
import { type OptionSpecs, type ParsedArgs, parseCommandLine, UsageError } from "./args.js";
import type { Command, CommandContext } from "./command.js";
import { EXIT } from "./exit-codes.js";
import { GatewayError } from "./gateway-error.js";

/**
 * The command line of `command`, parsed and checked: its options, and as many positional
 * arguments as it takes. Prints its help instead (exit 0) when `-h` or `--help` is given, or the
 * mistake with the usage line (exit 2, or the command's own usage exit code).
 */
export async function commandArgs(
  command: Command,
  argv: readonly string[],
  err: (line: string) => void,
  out: (line: string) => void,
): Promise<ParsedArgs<OptionSpecs> | { exitCode: number }> {
  try {
    const args = parseCommandLine(argv, command.options);
    if (args.options.help) {
      // Loaded only here: the help's text is not needed to run a command.
      out((await import("./help.js")).commandHelp(command).trimEnd());
      return { exitCode: EXIT.OK };
    }
    const max = command.positionals.length;
    const min = command.positionals.filter((p) => !p.optional).length;
    const given = args.positionals.length;
    if (given > max) {
      const extra = args.positionals.slice(max);
      throw new UsageError(`unexpected argument${extra.length > 1 ? "s" : ""}: ${extra.join(" ")}`);
    }
    if (given < min) throw new UsageError("missing arguments");
    return args;
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    return usageError(command, error, err);
  }
}

function usageError(command: Command, error: UsageError, err: (line: string) => void) {
  err(error.message);
  err(`usage: ${command.usage} (fleetheal ${command.name} --help)`);
  return { exitCode: (command.kind === "one-shot" && command.usageExitCode) || EXIT.USAGE };
}

/**
 * Runs a one-shot command in this process and turns every failure into its message on stderr
 * and a documented exit code (cli/exit-codes.ts): a usage mistake is 2 with the usage line,
 * unusable configuration (URL, token) is 2, a gateway error is its API code and message with 3
 * (4 for authentication), so no failure reaches the user as a stack trace.
 */
export async function runCommand(
  command: Command,
  argv: readonly string[],
  ctx: CommandContext,
): Promise<number> {
  if (command.kind !== "one-shot") throw new Error(`${command.name} runs until stopped`);
  // A command that writes stderr as it is still has the runner's own lines prefixed.
  const err =
    command.stderr === "as-written"
      ? (line: string) => ctx.io.err(`fleetheal ${command.name}: ${line}`)
      : ctx.io.err;
  try {
    const args = await commandArgs(command, argv, err, ctx.io.out);
    if ("exitCode" in args) return args.exitCode;
    return await command.run(args, ctx);
  } catch (error) {
    if (error instanceof UsageError) return usageError(command, error, err).exitCode;
    return reportError(error, err);
  }
}

/** The message on stderr and the exit code of a failure. */
export function reportError(error: unknown, err: (line: string) => void): number {
  if (error instanceof ConfigError) {
    err(error.message);
    return EXIT.USAGE;
  }
  if (error instanceof GatewayError) {
    err(`${error.code}${error.status ? ` (HTTP ${error.status})` : ""}: ${error.message}`);
    return error.exitCode;
  }
  if (error instanceof Error && error.name === "AbortError") {
    err("interrupted");
    return EXIT.INTERRUPTED;
  }
  err(`unexpected error: ${describeError(error)}`);
  return EXIT.GATEWAY;
}
