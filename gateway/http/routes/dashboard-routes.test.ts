import { readdir, readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestGateway, type TestGateway } from "../../../test/support/gateway-fakes.js";

const DASHBOARD = new URL("../../dashboard/", import.meta.url);

let gw: TestGateway;
beforeAll(async () => {
  gw = await startTestGateway();
});
afterAll(async () => {
  await gw.app.close();
});

const get = (url: string) => gw.app.inject({ method: "GET", url });

/** The relative module specifiers that `source` imports (`import … from "./x.js"`). */
function importsOf(source: string): string[] {
  return [...source.matchAll(/^import\s[^;]*?from\s+"\.\/([^"]+)";/gms)].map((m) => m[1] ?? "");
}

describe("the dashboard routes", () => {
  it("serve every module the page loads, and each module's imports, as JavaScript under the CSP", async () => {
    const page = await readFile(new URL("index.html", DASHBOARD), "utf8");
    const entry = /<script type="module" src="\/assets\/([^"]+)"><\/script>/.exec(page)?.[1];
    expect(entry).toBe("app.js");
    const seen = new Set<string>();
    const pending = [entry ?? ""];
    for (let name = pending.pop(); name !== undefined; name = pending.pop()) {
      if (seen.has(name)) continue;
      seen.add(name);
      const res = await get(`/assets/${name}`);
      expect(res.statusCode, name).toBe(200);
      expect(res.headers["content-type"], name).toBe("text/javascript; charset=utf-8");
      expect(res.headers["content-security-policy"], name).toContain("script-src 'self'");
      pending.push(...importsOf(res.body));
    }
    // Every module in the folder is reached from the page, so none is dead code in the package.
    const modules = (await readdir(DASHBOARD)).filter((f) => f.endsWith(".js"));
    const typesOnly = ["api-types.js"];
    expect([...seen, ...typesOnly].sort()).toEqual([...modules, "sse-parser.js"].sort());
  });

  it("serve the shared SSE parser as common/sse-parser.js is, and not its type declarations", async () => {
    const res = await get("/assets/sse-parser.js");
    const source = await readFile(new URL("../../../common/sse-parser.js", import.meta.url));
    expect(res.body).toBe(source.toString("utf8"));
    expect((await get("/assets/sse-parser.d.ts")).statusCode).toBe(404);
    expect((await get("/assets/tsconfig.json")).statusCode).toBe(404);
  });

  it("serve only the dashboard's own files, whatever the path says", async () => {
    for (const url of [
      "/assets/..%2Fapp.ts",
      "/assets/..%2F..%2Fhttp%2Fapp.ts",
      "/assets/%2E%2E%2Fpackage.json",
      "/assets/..%5Capp.js",
      "/assets/missing.js",
    ]) {
      expect((await get(url)).statusCode, url).toBe(404);
    }
    expect((await get("/assets/../../package.json")).statusCode).not.toBe(200);
  });

  it("serve every stylesheet the page links, in the folder, as CSS", async () => {
    const page = await readFile(new URL("index.html", DASHBOARD), "utf8");
    const linked = [...page.matchAll(/<link rel="stylesheet" href="\/assets\/([^"]+)" \/>/g)].map(
      (m) => m[1] ?? "",
    );
    const sheets = (await readdir(DASHBOARD)).filter((f) => f.endsWith(".css"));
    expect([...linked].sort()).toEqual(sheets.sort());
    for (const name of linked) {
      const res = await get(`/assets/${name}`);
      expect(res.statusCode, name).toBe(200);
      expect(res.headers["content-type"], name).toBe("text/css; charset=utf-8");
    }
  });
});
