import { describe, expect, it } from "vitest";
import pkg from "../package.json" with { type: "json" };
import { versionCommand } from "./version.js";

function run(args: string[]): { code: number; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  const code = versionCommand(args, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err };
}

describe("fleetheal version", () => {
  it("prints package.json's version", () => {
    expect(run([])).toEqual({ code: 0, out: [pkg.version], err: [] });
    expect(pkg.version).toMatch(/^\d+\.\d+\.\d+/);
  });

  it("--json: the version, Node.js's and the platform, as one JSON line", () => {
    const { code, out, err } = run(["--json"]);
    expect({ code, err, lines: out.length }).toEqual({ code: 0, err: [], lines: 1 });
    expect(JSON.parse(out[0] as string)).toEqual({
      version: pkg.version,
      node: process.versions.node,
      platform: process.platform,
      arch: process.arch,
    });
  });

  it.each([[["--jsn"]], [["extra"]], [["--json=yes"]]])(
    "%j is a usage error: exit code 2, nothing on stdout",
    (args) => {
      const { code, out, err } = run(args);
      expect({ code, out }).toEqual({ code: 2, out: [] });
      expect(err).toEqual([expect.stringMatching(/; usage: fleetheal version \[--json\]$/)]);
    },
  );
});
