import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadAgentConfig } from "../agent/config.js";
import { createLogger } from "../common/logger.js";
import { loadGatewayConfig } from "../gateway/config.js";
import { loadHandlerConfig } from "../handlers/config.js";
import { loadNotifyConfig } from "../handlers/notify/config.js";
import { COMMAND_NAMES, loadAllCommands, loadCommand } from "./commands/index.js";
import { ENVIRONMENT } from "./environment.js";
import { resolveTarget } from "./gateway-config.js";
import { commandHelp, formatOptions, globalHelp } from "./help.js";
import { UpEnv } from "./up.js";

const help = async (name: Parameters<typeof loadCommand>[0]) =>
  commandHelp(await loadCommand(name));

/** The names of the variables `read` asks for, from an environment where none is set. */
function variablesRead(read: (env: NodeJS.ProcessEnv) => unknown): Set<string> {
  const names = new Set<string>();
  const env = new Proxy({} as NodeJS.ProcessEnv, {
    get(_target, key) {
      if (typeof key === "string") names.add(key);
      return undefined;
    },
  });
  try {
    read(env);
  } catch {
    // Unset variables may be an error (an action without a token); what was read counts.
  }
  return names;
}

/** What each role's configuration loaders read. */
const ROLE_READS = {
  agent: () => variablesRead(loadAgentConfig),
  handler: () => variablesRead(loadHandlerConfig),
  gateway: () => variablesRead(loadGatewayConfig),
  up: () =>
    new Set([
      ...Object.keys(UpEnv.shape),
      ...variablesRead(loadAgentConfig),
      ...variablesRead(loadHandlerConfig),
      ...variablesRead(loadGatewayConfig),
    ]),
};

const namesIn = (groups: readonly (keyof typeof ENVIRONMENT)[]) =>
  new Set(groups.flatMap((g) => ENVIRONMENT[g].variables.flatMap((v) => v.names)));

describe("fleetheal <role> --help", () => {
  it.each([
    ["up", ["agent:", "handler:", "gateway:", "up:"]],
    ["agent", ["agent:"]],
    ["handler", ["handler:"]],
    ["gateway", ["gateway:"]],
  ] as const)("%s: its entry, the common variables and its own section only", async (role, own) => {
    const text = await help(role);
    expect(text).toMatch(new RegExp(`^Usage: fleetheal ${role}\\n\\n(All-in-one|The|One) `));
    expect(text).toContain("FLEETHEAL_NATS_URL");
    expect(text).toContain(" NATS security");
    for (const section of ["agent:", "handler:", "gateway:", "up:"]) {
      expect(text.includes(`\n ${section}\n`), section).toBe(
        (own as readonly string[]).includes(section),
      );
    }
    // The gateway commands' variables are not the gateway role's.
    expect(text).not.toContain("FLEETHEAL_GATEWAY_URL");
    expect(text).not.toContain("nats-auth --hosts");
    expect(text).toContain("\n  2  configuration error");
  });

  it("nats-auth and notify-test: their usage and what they read", async () => {
    const natsAuth = await help("nats-auth");
    expect(natsAuth).toMatch(
      /^Usage: fleetheal nats-auth --hosts <a,b,c> \[--remove <d,e>\] \[--out <dir>\] \[--force\]\n/,
    );
    expect(natsAuth).toContain("--tls-names <a,b>");
    expect(natsAuth).not.toContain("Environment");
    const notify = await help("notify-test");
    expect(notify).toMatch(/^Usage: fleetheal notify-test\n/);
    // Exactly what it reads: the notify settings and the host the sample names; no NATS, none
    // of the handler's other settings.
    const notifyTest = await loadCommand("notify-test");
    expect([...namesIn(notifyTest.env)].sort()).toEqual(
      [
        ...variablesRead((env) => loadNotifyConfig(env)),
        ...variablesRead((env) =>
          loadNotifyConfig({ FLEETHEAL_NOTIFY_URLS: "json+http://x", ...env }),
        ),
        "FLEETHEAL_HOST_ID",
      ]
        .filter((name, i, all) => all.indexOf(name) === i)
        .sort(),
    );
    for (const name of ["FLEETHEAL_NATS_URL", "FLEETHEAL_MAX_EVENT_AGE_MS", "DOCKER_HOST"])
      expect(notify).not.toContain(name);
  });

  it("version: its usage, no environment, and where the docs are", async () => {
    const text = await help("version");
    expect(text).toMatch(
      /^Usage: fleetheal version \[--json\] \[options\]\n\nPrints this fleetheal's version/,
    );
    expect(text).not.toContain("Environment");
    expect(text).toMatch(/^Documentation: \S+\/docs\/ holds every docs\/… file/m);
  });

  it("names a docs directory that holds every docs/… file the help names", async () => {
    const commands = await loadAllCommands();
    const global = globalHelp(commands);
    // In a checkout, the checkout's docs/; in an installed package, the package's own.
    const dir = /^Documentation: (\S+)\/ holds/m.exec(global)?.[1];
    expect(dir).toBe(join(import.meta.dirname, "..", "docs"));
    const all = [global, ...commands.map(commandHelp)].join("\n");
    const named = [...all.matchAll(/docs\/([A-Z]+\.md)/g)].map((m) => m[1] as string);
    expect(named.length).toBeGreaterThan(5);
    for (const file of new Set(named))
      expect(existsSync(join(dir as string, file)), file).toBe(true);
  });
});

describe("fleetheal --help", () => {
  it("lists every command and every environment variable the roles read", async () => {
    const commands = await loadAllCommands();
    const text = globalHelp(commands);
    expect(commands.map((c) => c.name)).toEqual(COMMAND_NAMES);
    for (const name of COMMAND_NAMES) expect(text).toMatch(new RegExp(`^ {2}${name}\\b`, "m"));

    // Each role's help shows every variable its configuration reads.
    for (const [role, reads] of Object.entries(ROLE_READS)) {
      const command = commands.find((c) => c.name === role);
      const shown = namesIn(command?.env ?? []);
      expect(
        [...reads()].filter((name) => !shown.has(name)),
        role,
      ).toEqual([]);
    }
    // The list holds what fleetheal reads, and nothing else: the roles, the log level, and the
    // commands that talk to the gateway (an action reads the most).
    const read = new Set([
      ...Object.values(ROLE_READS).flatMap((reads) => [...reads()]),
      ...variablesRead((env) => createLogger("help-test", env)),
      ...variablesRead((env) => resolveTarget({}, env, { action: true, cwd: "/nonexistent" })),
    ]);
    expect([...namesIn(Object.keys(ENVIRONMENT) as (keyof typeof ENVIRONMENT)[])].sort()).toEqual(
      [...read].sort(),
    );
    // And the global help shows every one of them as a variable, not in passing.
    const environment = text.slice(text.indexOf("\nEnvironment"));
    for (const name of read)
      expect(environment).toMatch(new RegExp(`^ {2}(\\S+, )*${name}\\b`, "m"));
  });

  it("is made from the commands: each one's usage, and its summary", async () => {
    const commands = await loadAllCommands();
    const text = globalHelp(commands);
    for (const command of commands) {
      const usage = command.usage.replace(/^fleetheal /, "").replace(/ \[options\]$/, "");
      expect(text).toContain(`\n  ${usage}`);
      expect(text.replace(/\s+/g, " ")).toContain(command.summary.replace(/\s+/g, " "));
    }
  });
});

describe("formatOptions", () => {
  it("aligns descriptions, continues multi-line ones under the first, shows short aliases", () => {
    const specs = {
      host: { type: "string", value: "<host>", description: "Only this host" },
      reason: { type: "string", value: "<text>", description: "Why" },
      follow: { type: "boolean", short: "f", description: "Keep going" },
      "opted-in": { type: "boolean", description: "Opted in\nsecond line" },
      limit: { type: "string", short: "n", value: "<n>", description: "Rows" },
    } as const;
    expect(formatOptions(specs).split("\n")).toEqual([
      "      --host <host>    Only this host",
      "      --reason <text>  Why",
      "  -f, --follow         Keep going",
      "      --opted-in       Opted in",
      "                       second line",
      "  -n, --limit <n>      Rows",
    ]);
  });

  it("wraps a long description to the width of the help, under its first line", () => {
    const lines = formatOptions({
      long: { type: "boolean", description: "word ".repeat(40).trim() },
    }).split("\n");
    expect(lines.length).toBeGreaterThan(1);
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(100);
    expect(lines[1]).toMatch(/^ {14}word/);
  });
});
