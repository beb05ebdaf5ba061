import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { HELP } from "./help.js";
import { roleHelp } from "./role-help.js";

describe("fleetheal <role> --help", () => {
  it.each([
    ["up", ["agent:", "handler:", "gateway:", "up:"]],
    ["agent", ["agent:"]],
    ["handler", ["handler:"]],
    ["gateway", ["gateway:"]],
  ])("%s: its entry, the common variables and its own section only", (role, own) => {
    const text = roleHelp(role, HELP);
    expect(text).toMatch(new RegExp(`^Usage: fleetheal ${role}\\n\\n {2}${role} `));
    expect(text).toContain("FLEETHEAL_NATS_URL");
    expect(text).toContain(" NATS security");
    for (const section of ["agent:", "handler:", "gateway:", "up:"]) {
      expect(text.includes(`\n ${section}\n`), section).toBe(own.includes(section));
    }
    // The gateway commands' variables are not the gateway role's.
    expect(text).not.toContain("FLEETHEAL_GATEWAY_URL");
    expect(text).not.toContain("nats-auth --hosts");
  });

  it("nats-auth and notify-test: their usage and what they read", () => {
    const natsAuth = roleHelp("nats-auth", HELP);
    expect(natsAuth).toMatch(
      /^Usage: fleetheal nats-auth --hosts <a,b,c> \[--remove <d,e>\] \[--out <dir>\] \[--force\]\n/,
    );
    expect(natsAuth).not.toContain("Environment");
    const notify = roleHelp("notify-test", HELP);
    expect(notify).toMatch(/^Usage: fleetheal notify-test\n/);
    expect(notify).toContain("FLEETHEAL_NOTIFY_URLS");
    expect(notify).not.toContain("DOCKER_HOST");
  });

  it("version: its usage, no environment, and where the docs are", () => {
    const text = roleHelp("version", HELP);
    expect(text).toMatch(/^Usage: fleetheal version \[--json\]\n\n {2}version \[--json\]\n/);
    expect(text).not.toContain("Environment");
    expect(text).toMatch(/^Documentation: \S+\/docs\/ holds every docs\/… file/m);
  });

  it("names a docs directory that holds every docs/… file the help names", () => {
    // In a checkout, the checkout's docs/; in an installed package, the package's own.
    const dir = /^Documentation: (\S+)\/ holds/m.exec(HELP)?.[1];
    expect(dir).toBe(join(import.meta.dirname, "..", "docs"));
    const named = [...HELP.matchAll(/docs\/([A-Z]+\.md)/g)].map((m) => m[1] as string);
    expect(named.length).toBeGreaterThan(5);
    for (const file of new Set(named))
      expect(existsSync(join(dir as string, file)), file).toBe(true);
  });

  it("falls back to the whole help for anything it does not know", () => {
    expect(roleHelp("no-such-command", HELP)).toBe(HELP);
    expect(roleHelp("agent", "a help without the expected layout")).toBe(
      "a help without the expected layout",
    );
  });
});
