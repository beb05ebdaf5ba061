import { describe, expect, it } from "vitest";
import pkg from "../package.json" with { type: "json" };
import { runCommandNamed } from "./commands/index.js";

async function run(args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCommandNamed("version", args, {
    io: { out: (l) => out.push(l), err: (l) => err.push(l) },
    env: {},
    cwd: "/",
    now: Date.now,
    signal: new AbortController().signal,
  });
  return { code, out, err };
}

describe("fleetheal version", () => {
  it("prints package.json's version", async () => {
    expect(await run([])).toEqual({ code: 0, out: [pkg.version], err: [] });
    expect(pkg.version).toMatch(/^\d+\.\d+\.\d+/);
  });

  it("--json: the version, Node.js's and the platform, as one JSON line", async () => {
    const { code, out, err } = await run(["--json"]);
    expect({ code, err, lines: out.length }).toEqual({ code: 0, err: [], lines: 1 });
    expect(JSON.parse(out[0] as string)).toEqual({
      version: pkg.version,
      node: process.versions.node,
      platform: process.platform,
      arch: process.arch,
    });
  });

  it.each([[["--jsn"]], [["extra"]], [["--json=maybe"]]])(
    "%j is a usage error: exit code 2, nothing on stdout",
    async (args) => {
      const { code, out, err } = await run(args);
      expect({ code, out }).toEqual({ code: 2, out: [] });
      expect(err).toEqual([
        expect.any(String),
        "usage: fleetheal version [--json] (fleetheal version --help)",
      ]);
    },
  );
});
