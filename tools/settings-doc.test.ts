import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { ENVIRONMENT } from "../cli/environment.js";
import { intFromEnv } from "../common/config.js";
import {
  acceptedValues,
  SETTINGS_DOC_PATH,
  settingSchemas,
  settingsTables,
  withTable,
} from "./settings-doc.js";
import { SETTING_NOTES } from "./settings-doc-notes.js";

const ROOT = path.join(import.meta.dirname, "..");
/** Where product code lives (what the unit project tests), tools and tests aside. */
const PRODUCT_DIRS = ["agent", "cli", "common", "contracts", "gateway", "handlers", "policy"];

/**
 * Every FLEETHEAL_* and DOCKER_* variable the product code reads: `env.NAME`, `env["NAME"]`, and
 * the keys of its env schemas (`  NAME: intFromEnv(...)`, `  NAME: z.string()...`).
 */
async function variablesInCode(): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  const read = /\benv(?:\.|\[")((?:FLEETHEAL|DOCKER)_[A-Z0-9_]+)/g;
  const key = /^\s+((?:FLEETHEAL|DOCKER)_[A-Z0-9_]+): /gm;
  for (const dir of PRODUCT_DIRS) {
    for (const file of await readdir(path.join(ROOT, dir), { recursive: true })) {
      if (!file.endsWith(".ts") || file.endsWith(".test.ts")) continue;
      const text = await readFile(path.join(ROOT, dir, file), "utf8");
      for (const m of [...text.matchAll(read), ...text.matchAll(key)]) {
        const name = m[1] as string;
        if (!name.startsWith("FLEETHEAL_ERR_")) found.set(name, path.join(dir, file));
      }
    }
  }
  return found;
}

const documented = new Set(
  Object.values(ENVIRONMENT).flatMap((g) => g.variables.flatMap((v) => v.names)),
);

describe("docs/reference/settings.md", () => {
  it("is what tools/settings-doc.ts generates from the code", async () => {
    const doc = await readFile(SETTINGS_DOC_PATH, "utf8");
    // Fails when a variable, its meaning, default, readers or range changes without
    // `npx tsx tools/settings-doc.ts` being run.
    expect(withTable(doc, await settingsTables())).toBe(doc);
  });

  it("has an entry for every variable the code reads", async () => {
    const inCode = await variablesInCode();
    expect(inCode.size).toBeGreaterThan(50);
    // A new setting needs its row in cli/environment.ts (its help and this page) first.
    const missing = [...inCode].filter(([name]) => !documented.has(name));
    expect(missing, "add these to cli/environment.ts, then run tools/settings-doc.ts").toEqual([]);
    const doc = await readFile(SETTINGS_DOC_PATH, "utf8");
    for (const name of inCode.keys()) expect(doc, name).toContain(`\`${name}\``);
  });

  it("has an entry for every key of the roles' schemas", () => {
    const keys = [...settingSchemas().keys()];
    expect(keys).toContain("FLEETHEAL_NATS_URL");
    expect(keys.filter((name) => !documented.has(name))).toEqual([]);
  });

  it("lists the event queue and the resync interval with their ranges (issue 20, item 1)", async () => {
    const tables = await settingsTables();
    expect(tables).toMatch(
      /`FLEETHEAL_EVENT_QUEUE_CAPACITY` +\| [^|]*agent[^|]*\| `50000` +\| 100–1000000 /,
    );
    expect(tables).toMatch(
      /`FLEETHEAL_RECONCILE_INTERVAL_MS` +\| [^|]*\| `60000` +\| 1000–86400000 /,
    );
  });

  it("has notes only for variables the list has, and links that stay inside docs/", () => {
    expect(Object.keys(SETTING_NOTES).filter((name) => !documented.has(name))).toEqual([]);
    for (const note of Object.values(SETTING_NOTES)) {
      for (const [, target] of note.matchAll(/\]\(([^)#]+)/g))
        expect(target, note).toMatch(/^\.\.\/[A-Z]+\.md$/);
    }
  });

  it("refuses a doc without the markers", () => {
    expect(() => withTable("# Settings\n", "")).toThrow(/no <!-- settings:start -->/);
  });
});

describe("acceptedValues", () => {
  it.each([
    [intFromEnv({ min: 2, max: 9, default: 3 }), "2–9"],
    [z.enum(["a", "b"]).default("a"), "`a`, `b`"],
    [z.string().max(12).optional(), "up to 12 characters"],
    [z.string().optional(), ""],
    [z.string().transform(Number).pipe(z.number().max(7)), "at most 7"],
  ] as const)("%#: %s", (schema, words) => {
    expect(acceptedValues(schema)).toBe(words);
  });
});
