import { FleethealError } from "../common/errors.js";

/**
 * A command-line option. Options are declared once per command, and the same declaration drives
 * parsing and the command's `--help`, so the help cannot list an option the parser rejects.
 */
export interface OptionSpec {
  /** The long name without dashes: `opted-in` for `--opted-in`. */
  readonly name: string;
  /** `string` options take a value; `boolean` options are flags. */
  readonly kind: "string" | "boolean";
  /** A one-letter alias, `-f` for `--follow`. */
  readonly short?: string;
  /** How the value is shown in the help: `<url>`. */
  readonly value?: string;
  readonly description: string;
}

/** The parsed values of a command's options, keyed by long name, typed by their kind. */
export type OptionValues<S extends readonly OptionSpec[]> = {
  [O in S[number] as O["name"]]?: O["kind"] extends "boolean" ? boolean : string;
};

export interface ParsedArgs<S extends readonly OptionSpec[]> {
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
 * Parses `argv` against `specs`: `--name value`, `--name=value`, `-x` for short aliases, flags
 * that may be given as `--flag=false`, and `--` to end the options. Every mistake is a
 * `UsageError` naming the option: an unknown option, a missing value, an option given twice (the
 * API takes one value per filter, so a second one would silently win or be lost).
 */
export function parseArgs<const S extends readonly OptionSpec[]>(
  argv: readonly string[],
  specs: S,
): ParsedArgs<S> {
  const byLong = new Map(specs.map((s) => [s.name, s]));
  const byShort = new Map(specs.flatMap((s) => (s.short ? [[s.short, s] as const] : [])));
  const options: Record<string, string | boolean> = {};
  const positionals: string[] = [];
  const set = (spec: OptionSpec, value: string | boolean) => {
    if (spec.name in options) throw new UsageError(`--${spec.name} is given more than once`);
    options[spec.name] = value;
  };

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      const inline = eq < 0 ? undefined : arg.slice(eq + 1);
      const spec = byLong.get(name);
      if (!spec) throw new UsageError(`unknown option --${name}`);
      if (spec.kind === "boolean") {
        set(spec, inline === undefined ? true : flagValue(spec, inline));
        continue;
      }
      if (inline !== undefined) {
        set(spec, requireValue(spec, inline));
        continue;
      }
      const next = argv[i + 1];
      // `--reason --json` is far more likely a forgotten value than a reason of "--json".
      if (next === undefined || isOption(next, byLong)) {
        throw new UsageError(`--${spec.name} needs a value ${placeholder(spec)}`);
      }
      set(spec, requireValue(spec, next));
      i++;
      continue;
    }
    if (arg.startsWith("-") && arg.length > 1) {
      const spec = byShort.get(arg.slice(1));
      if (!spec) throw new UsageError(`unknown option ${arg}`);
      if (spec.kind === "boolean") {
        set(spec, true);
        continue;
      }
      const next = argv[i + 1];
      if (next === undefined || isOption(next, byLong)) {
        throw new UsageError(`${arg} needs a value ${placeholder(spec)}`);
      }
      set(spec, requireValue(spec, next));
      i++;
      continue;
    }
    positionals.push(arg);
  }
  return { options: options as OptionValues<S>, positionals };
}

function flagValue(spec: OptionSpec, value: string): boolean {
  const v = value.toLowerCase();
  if (TRUE.has(v)) return true;
  if (FALSE.has(v)) return false;
  throw new UsageError(`--${spec.name} is a flag: give it alone, or as --${spec.name}=true|false`);
}

function requireValue(spec: OptionSpec, value: string): string {
  if (value === "") throw new UsageError(`--${spec.name} needs a non-empty value`);
  return value;
}

function isOption(arg: string, byLong: Map<string, OptionSpec>): boolean {
  return arg.startsWith("--") && byLong.has(arg.slice(2).split("=")[0] as string);
}

function placeholder(spec: OptionSpec): string {
  return spec.value ?? "<value>";
}

/** The options part of a command's help, one aligned line (or more) per option. */
export function formatOptions(specs: readonly OptionSpec[]): string {
  const heads = specs.map(
    (s) =>
      `${s.short ? `-${s.short}, ` : "    "}--${s.name}${s.kind === "string" ? ` ${placeholder(s)}` : ""}`,
  );
  const width = Math.max(...heads.map((h) => h.length)) + 2;
  return specs
    .map((s, i) => {
      const [first = "", ...rest] = s.description.split("\n");
      return [
        `  ${(heads[i] as string).padEnd(width)}${first}`,
        ...rest.map((line) => `  ${" ".repeat(width)}${line}`),
      ].join("\n");
    })
    .join("\n");
}
