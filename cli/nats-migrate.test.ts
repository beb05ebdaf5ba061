import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCommandNamed } from "./commands/index.js";

async function run(args: string[], env: NodeJS.ProcessEnv = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCommandNamed("nats-migrate", args, {
    io: { out: (l) => out.push(l), err: (l) => err.push(l) },
    env,
    cwd: process.cwd(),
    now: Date.now,
    signal: new AbortController().signal,
  });
  return { code, out, err };
}

describe("fleetheal nats-migrate arguments", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "fleetheal-migrate-args-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("needs a verb and its file, and refuses the other verb's options (exit code 2)", async () => {
    for (const args of [
      [],
      ["copy", "--out", "f"],
      ["export"],
      ["import"],
      ["export", "--in", "f"],
      ["export", "--out"],
      ["import", "--in", "f", "--force"],
    ]) {
      const r = await run(args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.err.join("\n")).toMatch(/usage: fleetheal nats-migrate export --out <file>/);
    }
  });

  it("refuses to overwrite an export, and to import a file that is not there, before connecting", async () => {
    const existing = join(dir, "export.jsonl");
    await writeFile(existing, "");
    // No NATS listens there: the answer comes before any connection is tried.
    const env = { FLEETHEAL_NATS_URL: "nats://127.0.0.1:1" };
    const exported = await run(["export", "--out", existing], env);
    expect(exported).toMatchObject({ code: 2, err: [expect.stringMatching(/exists; remove it/)] });
    const imported = await run(["import", "--in", join(dir, "missing.jsonl")], env);
    expect(imported).toMatchObject({ code: 2, err: [expect.stringMatching(/does not exist/)] });
  });

  it("says why the variables are unusable (exit code 2)", async () => {
    const r = await run(["export", "--out", join(dir, "new.jsonl")], {
      FLEETHEAL_JS_REPLICAS: "9",
    });
    expect(r.code).toBe(2);
    expect(r.err.join("\n")).toMatch(/FLEETHEAL_JS_REPLICAS/);
  });
});
