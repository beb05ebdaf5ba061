import { describe, expect, it } from "vitest";
import pkg from "../package.json" with { type: "json" };
import { runCommandNamed } from "./commands/index.js";

/** A gateway that answers /livez with `version`, or nothing at all. */
const gateway =
  (version: string | undefined): typeof fetch =>
  async (input) => {
    if (version === undefined)
      throw new TypeError("fetch failed", { cause: { code: "ECONNREFUSED" } });
    expect(String(input)).toBe("http://gw.test:8080/livez");
    return Response.json({
      status: "ok",
      version,
      uptimeSeconds: 1,
      nats: "connected",
      viewLoaded: true,
    });
  };

async function run(
  args: string[],
  fetch: typeof globalThis.fetch = gateway(undefined),
): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCommandNamed("version", args, {
    io: { out: (l) => out.push(l), err: (l) => err.push(l) },
    fetch,
    env: { FLEETHEAL_GATEWAY_URL: "http://gw.test:8080" },
    cwd: "/",
    now: Date.now,
    signal: new AbortController().signal,
  });
  return { code, out, err };
}

describe("fleetheal version", () => {
  it("prints package.json's version, and the gateway's on a second line", async () => {
    expect(await run([], gateway("9.8.7"))).toEqual({
      code: 0,
      out: [pkg.version, "gateway 9.8.7 at http://gw.test:8080"],
      err: [],
    });
    expect(await run(["--client"], gateway("9.8.7"))).toEqual({
      code: 0,
      out: [pkg.version],
      err: [],
    });
    expect(pkg.version).toMatch(/^\d+\.\d+\.\d+/);
  });

  it("exits 0 with the client's version when the gateway cannot be reached, and says so", async () => {
    expect(await run([])).toEqual({
      code: 0,
      out: [pkg.version],
      err: ["no gateway version: cannot reach the gateway at http://gw.test:8080: fetch failed"],
    });
    const err: string[] = [];
    const badUrl = await runCommandNamed("version", [], {
      io: { out: () => {}, err: (l) => err.push(l) },
      env: { FLEETHEAL_GATEWAY_URL: "nope" },
      cwd: "/",
      now: Date.now,
      signal: new AbortController().signal,
    });
    expect({ badUrl, err }).toEqual({
      badUrl: 0,
      err: ['no gateway version: FLEETHEAL_GATEWAY_URL: "nope" is not a URL (http://host:8080)'],
    });
  });

  it("--json: the version, Node.js's and the platform, and the gateway's, as one JSON line", async () => {
    const withGateway = await run(["--json"], gateway("9.8.7"));
    expect(JSON.parse(withGateway.out[0] as string).gateway).toEqual({
      url: "http://gw.test:8080",
      version: "9.8.7",
    });
    const { code, out, err } = await run(["--json", "--client"]);
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
        "usage: fleetheal version [--json] [options] (fleetheal version --help)",
      ]);
    },
  );
});
