import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { z } from "zod";
import { AgentEnv } from "../agent/config.js";
import type { Command } from "../cli/command.js";
import { loadAllCommands } from "../cli/commands/index.js";
import { ENVIRONMENT, type EnvGroupName, type EnvVariable } from "../cli/environment.js";
import { UpEnv } from "../cli/up.js";
import { COMMAND_SIGNING_ENV } from "../common/agent-commands.js";
import { NATS_ENV } from "../common/config.js";
import { LOG_ENV } from "../common/logger.js";
import { GatewayEnv } from "../gateway/config.js";
import { HandlerEnv } from "../handlers/config.js";
import { PLAIN_VARIABLES } from "../handlers/notify/config.js";
import { betweenMarkers, writeOrCheck } from "./generated-doc.js";
// Writes the settings table of docs/reference/settings.md, or with --check tells whether it is
// current (tools/settings-doc.test.ts fails when it is not).
//
//   npx tsx tools/settings-doc.ts           rewrite the table between the markers
//   npx tsx tools/settings-doc.ts --check   exit 1 if docs/reference/settings.md differs
//
// One source of truth: each variable's meaning and default are the rows of cli/environment.ts
// (what `--help` prints, checked against the loaders by cli/help.test.ts and
// cli/environment.test.ts), who reads it is the commands that name its group, and its accepted
// range is read from the zod schemas the roles validate it with.

import { SETTING_NOTES } from "./settings-doc-notes.js";

export const SETTINGS_DOC_PATH = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  "..",
  "docs/reference/settings.md",
);

/**
 * Every schema a variable is validated with, by variable name. A later schema does not replace
 * an earlier one: the roles share NATS_ENV, and `up`'s own looser FLEETHEAL_DATA_DIR comes last.
 */
export function settingSchemas(): Map<string, z.ZodType> {
  const schemas = new Map<string, z.ZodType>();
  const shapes = [
    NATS_ENV,
    LOG_ENV,
    COMMAND_SIGNING_ENV,
    AgentEnv.shape,
    HandlerEnv.shape,
    GatewayEnv.shape,
    PLAIN_VARIABLES,
    UpEnv.shape,
  ];
  for (const shape of shapes) {
    for (const [name, schema] of Object.entries(shape)) {
      if (!schemas.has(name)) schemas.set(name, schema as z.ZodType);
    }
  }
  return schemas;
}

/** What zod's schema objects expose that the range is read from (zod 4's public properties). */
interface Introspectable {
  readonly _zod: {
    readonly def: {
      readonly type: string;
      readonly innerType?: Introspectable;
      readonly in?: Introspectable;
      readonly out?: Introspectable;
    };
  };
  readonly minValue?: number | null;
  readonly maxValue?: number | null;
  readonly maxLength?: number | null;
  readonly options?: readonly string[];
}

/** The values a schema accepts, in words: a range, a list of choices, or a length limit. */
export function acceptedValues(schema: z.ZodType): string {
  const s = schema as unknown as Introspectable;
  const def = s._zod.def;
  switch (def.type) {
    case "default":
    case "optional":
    case "nullable":
      return def.innerType ? acceptedValues(def.innerType as unknown as z.ZodType) : "";
    case "pipe": {
      const out = def.out ? acceptedValues(def.out as unknown as z.ZodType) : "";
      return out !== "" ? out : def.in ? acceptedValues(def.in as unknown as z.ZodType) : "";
    }
    case "number": {
      const min = s.minValue ?? undefined;
      const max = s.maxValue ?? undefined;
      const finite = (n: number | undefined) => n !== undefined && Number.isFinite(n);
      if (finite(min) && finite(max)) return `${min}–${max}`;
      if (finite(max)) return `at most ${max}`;
      if (finite(min)) return `at least ${min}`;
      return "a number";
    }
    case "enum":
      return (s.options ?? []).map((o) => `\`${o}\``).join(", ");
    case "string":
      // Without a limit, the meaning says what the text is.
      return typeof s.maxLength === "number" ? `up to ${s.maxLength} characters` : "";
    default:
      return "";
  }
}

/** Who reads each group: the commands that name it, clients of the gateway in one word. */
function readersOf(commands: readonly Command[]): Map<EnvGroupName, string[]> {
  const readers = new Map<EnvGroupName, string[]>();
  for (const command of commands) {
    const env = (command.env ?? []) as readonly EnvGroupName[];
    // The commands that only talk to the gateway are many; they read the same variables.
    const name =
      env.length === 1 && env[0] === "gatewayCommands" ? "client commands" : command.name;
    for (const group of env) {
      const list = readers.get(group) ?? [];
      if (!list.includes(name)) list.push(name);
      readers.set(group, list);
    }
  }
  return readers;
}

/** A default that is a value to type (`5000`, `./.fleetheal`), not words ("none: off"). */
const isValue = (text: string) => /^\S+$/.test(text) && text !== "none";

/** Help text as Markdown: `<host>` is a placeholder, not an HTML tag. */
const prose = (text: string) => text.replaceAll("<", "\\<");

const HEAD = ["variable", "read by", "default", "accepted values", "meaning"];

/** The heading of each group's table. */
const HEADINGS: Record<EnvGroupName, string> = {
  nats: "NATS connection and logging",
  natsSecurity: "NATS security and JetStream",
  agent: "Agent",
  handler: "Handler",
  notify: "Notifications (handler, notify-test)",
  notifyTest: "fleetheal notify-test",
  gateway: "Gateway",
  gatewayCommands: "Commands that talk to the gateway",
  up: "fleetheal up",
};

/**
 * One table per group of cli/environment.ts, in its order, one row per variable (names that share
 * a description share a row), padded as the formatter pads Markdown tables; then each variable's
 * longer note (SETTING_NOTES) under its own heading.
 */
export async function settingsTables(): Promise<string> {
  const schemas = settingSchemas();
  const readers = readersOf(await loadAllCommands());
  const sections: string[] = [];
  for (const [group, { variables }] of Object.entries(ENVIRONMENT)) {
    const name = group as EnvGroupName;
    const by = (readers.get(name) ?? []).join(", ");
    const rows = variables.map((variable: EnvVariable) => {
      const ranges = new Set(
        variable.names.map((n) => {
          const schema = schemas.get(n);
          return schema ? acceptedValues(schema) : "";
        }),
      );
      const fallback = variable.default;
      return [
        variable.names.map((n) => `\`${n}\``).join(", "),
        by,
        fallback === undefined ? "" : isValue(fallback) ? `\`${fallback}\`` : prose(fallback),
        [...ranges].filter((r) => r !== "").join("; "),
        prose(variable.description.replaceAll("\n", " ")),
      ].map((cell) => cell.replaceAll("|", "\\|"));
    });
    sections.push(`## ${HEADINGS[name]}\n\n${table(rows)}`);
  }
  const noted = [
    ...new Set(Object.values(ENVIRONMENT).flatMap((g) => g.variables.flatMap((v) => v.names))),
  ]
    .filter((name) => SETTING_NOTES[name] !== undefined)
    .map((name) => `### \`${name}\`\n\n${SETTING_NOTES[name]}`);
  sections.push(`## Details\n\n${noted.join("\n\n")}`);
  return sections.join("\n\n");
}

function table(rows: string[][]): string {
  const all = [HEAD, ...rows];
  const widths = HEAD.map((_, i) => Math.max(3, ...all.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(" | ")} |`;
  const rule = `| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`;
  return [line(HEAD), rule, ...rows.map(line)].join("\n");
}

const START = "<!-- settings:start -->";
const END = "<!-- settings:end -->";

/** `doc` with the text between the markers replaced by `text`. */
export function withTable(doc: string, text: string): string {
  return betweenMarkers(doc, "docs/reference/settings.md", { start: START, end: END }, text);
}

async function main(): Promise<void> {
  const tables = await settingsTables();
  await writeOrCheck({
    path: SETTINGS_DOC_PATH,
    doc: "docs/reference/settings.md",
    script: "tools/settings-doc.ts",
    generate: (doc) => withTable(doc, tables),
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await main();
