import { existsSync } from "node:fs";
import { join } from "node:path";
import { packageDir } from "../common/package-dir.js";
import type { OptionSpecs } from "./args.js";
import type { Command, PositionalSpec } from "./command.js";
import { ENVIRONMENT, type EnvGroupName, type EnvVariable } from "./environment.js";

// `fleetheal --help` and `fleetheal <command> --help`, made from the commands' definitions
// (cli/commands/) and the one list of environment variables (cli/environment.ts).

/** Lines are wrapped to this many columns. */
const WIDTH = 100;
/** Where a command's summary starts in `fleetheal --help`. */
const COMMAND_COLUMN = 12;
/** Where a variable's description starts. */
const ENV_COLUMN = 30;

const ENV_HEADER =
  "Environment (defaults in brackets; docs/reference/settings.md lists every setting):";

/** The options of `fleetheal` itself, before any command. */
const GLOBAL_OPTIONS = {
  help: {
    type: "boolean",
    short: "h",
    description:
      "Show this help (a command's: fleetheal help <command>, or fleetheal <command> --help)",
  },
  version: {
    type: "boolean",
    short: "v",
    description: "Print this fleetheal's version (fleetheal version also asks the gateway for its)",
  },
} as const satisfies OptionSpecs;

/** The text of `fleetheal --help`: every command, its options, every environment variable. */
export function globalHelp(commands: readonly Command[]): string {
  const viaGateway = commands.filter((c) => Object.hasOwn(c.options, "token-file"));
  return [
    "fleetheal — event-driven healing of Docker containers across a fleet of hosts",
    "",
    "Usage: fleetheal <command>",
    "",
    "Commands:",
    ...commands.flatMap((c) => entry(shortUsage(c), c.summary, COMMAND_COLUMN, false)),
    "",
    ...wrap(
      `${viaGateway.map((c) => c.name).join(", ")} talk to the gateway over HTTP, with the options --gateway <url>, --token-file <file> and --json (the API's JSON). Their exit codes: 0 ok, 1 negative answer (or no such host or container), 2 usage or configuration, 3 gateway unreachable or HTTP error, 4 authentication refused. Details: fleetheal <command> --help, docs/CLI.md.`,
      WIDTH,
    ),
    "",
    "Options:",
    formatOptions(GLOBAL_OPTIONS),
    ...documentation().flatMap((line) => ["", line]),
    "",
    ...environment(Object.keys(ENVIRONMENT) as EnvGroupName[]),
    "",
  ].join("\n");
}

/** The text of `fleetheal <command> --help`. */
export function commandHelp(command: Command): string {
  const described = command.positionals.filter((p) => p.description !== undefined);
  const section = (lines: readonly string[]) => (lines.length > 0 ? [...lines, ""] : []);
  return [
    `Usage: ${command.usage}`,
    "",
    ...section(wrap(command.description, WIDTH)),
    ...section(described.length > 0 ? ["Arguments:", formatPositionals(described)] : []),
    ...section(["Options:", formatOptions(command.options)]),
    ...section(command.notes ? wrap(command.notes, WIDTH) : []),
    ...section(command.exitCodes ? [command.exitCodes] : []),
    ...section(environment(command.env)),
    "fleetheal --help lists every command.",
    ...documentation(),
    "",
  ].join("\n");
}

/** The options part of a command's help, one aligned line (or more) per option. */
export function formatOptions(specs: OptionSpecs): string {
  const rows = Object.entries(specs).map(([name, s]) => ({
    head: `${s.short ? `-${s.short}, ` : "    "}--${name}${s.type === "string" ? ` ${s.value ?? "<value>"}` : ""}`,
    text: s.description,
  }));
  return aligned(rows);
}

function formatPositionals(positionals: readonly PositionalSpec[]): string {
  return aligned(positionals.map((p) => ({ head: p.name, text: p.description ?? "" })));
}

/** Rows whose texts start in one column, just after the longest head. */
function aligned(rows: readonly { head: string; text: string }[]): string {
  const column = 2 + Math.max(...rows.map((r) => r.head.length)) + 2;
  return rows.flatMap((r) => entry(r.head, r.text, column, false)).join("\n");
}

/** `restart <host> <container>`: the usage without the program and the `[options]`. */
function shortUsage(command: Command): string {
  return command.usage.replace(/^fleetheal /, "").replace(/ \[options\]$/, "");
}

/**
 * The environment sections of `groups`: the variables without a header first (those every
 * command that connects to NATS reads), then each group under its title.
 */
function environment(groups: readonly EnvGroupName[]): string[] {
  if (groups.length === 0) return [];
  return [
    ENV_HEADER,
    ...groups.flatMap((name) => {
      const group = ENVIRONMENT[name];
      return [
        ...("title" in group ? [` ${group.title}:`] : []),
        ...group.variables.flatMap((v: EnvVariable) =>
          entry(
            v.names.join(", "),
            v.default === undefined ? v.description : `${v.description} [${v.default}]`,
            ENV_COLUMN,
            true,
          ),
        ),
      ];
    }),
  ];
}

/**
 * One row of a two-column list: the head indented by 2, the text from `column` on. A head too
 * long for its column puts the text on the lines below, or (`inline`) after it on the same line
 * when enough room is left there.
 */
function entry(head: string, text: string, column: number, inline: boolean): string[] {
  const indent = " ".repeat(column);
  if (2 + head.length + 2 <= column) {
    const [first = "", ...rest] = wrap(text, WIDTH - column);
    return [`  ${head.padEnd(column - 2)}${first}`.trimEnd(), ...rest.map((l) => indent + l)];
  }
  const room = WIDTH - (2 + head.length + 2);
  if (inline && room >= 30) {
    const [first = "", ...rest] = wrap(text, WIDTH - column, room);
    return [`  ${head}  ${first}`, ...rest.map((l) => indent + l)];
  }
  return [
    ...wrap(head, WIDTH - 2).map((l) => `  ${l}`),
    ...wrap(text, WIDTH - column).map((l) => indent + l),
  ];
}

/**
 * `text` in lines of at most `width` columns (`firstWidth` for the first), breaking at spaces.
 * A `\n` in it always starts a new line, and a line that fits is kept as it is, so an indented
 * example stays indented.
 */
export function wrap(text: string, width: number, firstWidth = width): string[] {
  const lines: string[] = [];
  for (const paragraph of text.split("\n")) {
    const lead = /^ */.exec(paragraph)?.[0] ?? "";
    let line = lead;
    for (const word of paragraph.slice(lead.length).split(" ")) {
      const max = lines.length === 0 ? firstWidth : width;
      if (line.trim() !== "" && line.length + 1 + word.length > max) {
        lines.push(line);
        line = lead + word;
      } else {
        line = line.trim() === "" ? lead + word : `${line} ${word}`;
      }
    }
    lines.push(line);
  }
  return lines;
}

/**
 * Where the docs/… that the help and the messages name are: relative to where fleetheal is
 * installed, not to the working directory. Absent where docs/ is not shipped (the image).
 */
function documentation(): string[] {
  const docs = join(packageDir(), "docs");
  return existsSync(docs)
    ? [`Documentation: ${docs}/ holds every docs/… file named here and in messages.`]
    : [];
}
