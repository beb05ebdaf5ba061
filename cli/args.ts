import { parseArgs } from "node:util";
import { FleethealError } from "../common/errors.js";

/**
 * A command-line option. Options are declared once per command, keyed by their long name
 * (`opted-in` for `--opted-in`), and the same declaration drives parsing and the command's
 * `--help`, so the help cannot list an option the parser rejects.
 */
export interface OptionSpec {
  /** `string` options take a value; `boolean` options are flags (as in `node:util` parseArgs). */
  readonly type: "string" | "boolean";
  /** A one-letter alias, `f` for `-f`. */
  readonly short?: string;
  /** How the value is shown in the help: `<url>`. */
  readonly value?: string;
  /** For the help; `\n` starts a new line. */
  readonly description: string;
}

/** A command's options by long name. */
export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

/** The parsed values of a command's options, keyed by long name, typed by their type. */
export type OptionValues<S extends OptionSpecs> = {
  -readonly [K in keyof S]?: S[K]["type"] extends "boolean" ? boolean : string;
};

/** What a command line holds once parsed. */
export interface ParsedArgs<S extends OptionSpecs> {
  options: OptionValues<S>;
  positionals: string[];
}

/** The command line is wrong; the message says what to change. Exit code 2. */
export class UsageError extends FleethealError {
  override readonly name = "UsageError";
  constructor(message: string) {
    super("FLEETHEAL_ERR_USAGE", message);
  }
}

const TRUE = new Set(["true", "1", "yes"]);
const FALSE = new Set(["false", "0", "no"]);

/**
 * Parses `argv` against `specs` with `node:util` parseArgs: `--name value`, `--name=value`, `-x`
 * for short aliases (grouped as `-fa`), and `--` to end the options. On top of parseArgs's
 * tokens: flags may be given as `--flag=false`, a value may start with a dash unless it is one
 * of the command's options (`--reason --json` is far more likely a forgotten value than a reason
 * of "--json"), and every mistake is a `UsageError` naming the option: an unknown option, a
 * missing or empty value, an option given twice (the API takes one value per filter, so a second
 * one would silently win or be lost). An option named `help`, once given, wins over every mistake:
 * the caller prints the help that says how to fix them.
 */
export function parseCommandLine<const S extends OptionSpecs>(
  argv: readonly string[],
  specs: S,
): ParsedArgs<S> {
  const { tokens } = parseArgs({
    args: [...argv],
    options: Object.fromEntries(
      Object.entries(specs).map(([name, s]) => [
        name,
        { type: s.type, ...(s.short ? { short: s.short } : {}) },
      ]),
    ),
    // Strict parsing would refuse `--flag=false` and values that start with a dash; the rules
    // below are the strict ones, with messages that name the option.
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const options: Record<string, string | boolean> = {};
  const positionals: string[] = [];
  let mistake: UsageError | undefined;
  for (const token of tokens) {
    if (token.kind === "positional") positionals.push(token.value);
    if (token.kind !== "option") continue;
    try {
      const spec = Object.hasOwn(specs, token.name) ? specs[token.name] : undefined;
      if (!spec) throw new UsageError(`unknown option ${token.rawName}`);
      if (token.name in options) throw new UsageError(`--${token.name} is given more than once`);
      options[token.name] =
        spec.type === "boolean"
          ? token.value === undefined || flagValue(token.name, token.value)
          : optionValue(token.name, token.rawName, spec, token.value, token.inlineValue, specs);
    } catch (error) {
      mistake ??= error as UsageError;
    }
  }
  if (mistake && options.help !== true) throw mistake;
  return { options: options as OptionValues<S>, positionals };
}

function flagValue(name: string, value: string): boolean {
  const v = value.toLowerCase();
  if (TRUE.has(v)) return true;
  if (FALSE.has(v)) return false;
  throw new UsageError(`--${name} is a flag: give it alone, or as --${name}=true|false`);
}

function optionValue(
  name: string,
  rawName: string,
  spec: OptionSpec,
  value: string | undefined,
  inline: boolean | undefined,
  specs: OptionSpecs,
): string {
  if (value === undefined || (!inline && isOption(value, specs))) {
    throw new UsageError(`${rawName} needs a value ${spec.value ?? "<value>"}`);
  }
  if (value === "") throw new UsageError(`--${name} needs a non-empty value`);
  return value;
}

function isOption(arg: string, specs: OptionSpecs): boolean {
  return arg.startsWith("--") && Object.hasOwn(specs, arg.slice(2).split("=")[0] as string);
}
