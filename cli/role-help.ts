/**
 * `fleetheal <command> --help` for the commands that are configured by environment variables
 * (up, agent, handler, gateway, nats-auth, nats-migrate, notify-test) and for `version`: the
 * command's entry, the environment sections it reads and where the docs are, cut from the
 * global help. That help stays the one place where their text is written, so the two cannot
 * disagree; if its layout ever stops matching, the whole of it is printed rather than a wrong
 * excerpt.
 */
export function roleHelp(command: string, help: string): string {
  const entry = commandEntry(help, command);
  const sections = ENV_SECTIONS[command];
  if (!entry || !sections) return help;
  const env = environment(help);
  if (!env) return help;
  const picked = sections.map((name) => env.sections.get(name));
  if (picked.some((s) => s === undefined)) return help;
  const usage = /^ {2}(\S+(?: \S+)*?)(?: {2,}|$)/.exec(entry[0] as string)?.[1] ?? command;
  return [
    `Usage: fleetheal ${usage}`,
    "",
    ...entry,
    "",
    ...(sections.length > 0 ? [env.header, ...env.common, ...picked.flat(), ""] : []),
    "fleetheal --help lists every command.",
    ...help.split("\n").filter((l) => l.startsWith("Documentation: ")),
    "",
  ]
    .join("\n")
    .replace(/\n{3,}/g, "\n\n");
}

/** The environment sections (by their header in the global help) each command reads. */
const ENV_SECTIONS: Record<string, readonly string[]> = {
  up: ["NATS security", "agent", "handler", "gateway", "up"],
  agent: ["NATS security", "agent"],
  handler: ["NATS security", "handler"],
  gateway: ["NATS security", "gateway"],
  "notify-test": ["handler"],
  "nats-auth": [],
  "nats-migrate": ["NATS security"],
  version: [],
  "host-id": ["agent"],
};

/** The lines of one entry under "Commands:", from its name to the next entry. */
function commandEntry(help: string, command: string): string[] | undefined {
  const lines = help.split("\n");
  const start = lines.findIndex((l) => l === `  ${command}` || l.startsWith(`  ${command} `));
  if (start < 0) return undefined;
  const entry = [lines[start] as string];
  for (const line of lines.slice(start + 1)) {
    if (!line.startsWith("    ")) break;
    entry.push(line);
  }
  return entry;
}

/** "Environment (…):", the variables every command reads, and the sections by header. */
function environment(
  help: string,
): { header: string; common: string[]; sections: Map<string, string[]> } | undefined {
  const lines = help.split("\n");
  const start = lines.findIndex((l) => l.startsWith("Environment"));
  if (start < 0) return undefined;
  const common: string[] = [];
  const sections = new Map<string, string[]>();
  let current: string[] = common;
  for (const line of lines.slice(start + 1)) {
    if (line === "") break;
    const header = /^ (\S[^(:]*?)\s*(?:\(.*\))?:$/.exec(line);
    if (header) {
      current = [line];
      sections.set(header[1] as string, current);
    } else {
      current.push(line);
    }
  }
  return { header: lines[start] as string, common, sections };
}
