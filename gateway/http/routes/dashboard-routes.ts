import { existsSync, readdirSync, readFileSync } from "node:fs";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { ApiError } from "../api-errors.js";

const JAVASCRIPT = "text/javascript; charset=utf-8";
const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": JAVASCRIPT,
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
};

/** The dashboard runs only its own files: no inline code, no third-party origin, no framing. */
const CSP =
  "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

interface Asset {
  body: Buffer;
  type: string;
}

/**
 * The dashboard's files live in `gateway/dashboard/` next to the sources; the compiled gateway
 * in `dist/gateway/http/routes/` finds them outside `dist/`.
 */
export function dashboardDir(): string {
  const candidates = ["../../dashboard/", "../../../../gateway/dashboard/"].map((rel) =>
    fileURLToPath(new URL(rel, import.meta.url)),
  );
  const found = candidates.find((dir) => existsSync(join(dir, "index.html")));
  if (!found) throw new Error(`dashboard files not found in ${candidates.join(" or ")}`);
  return found;
}

/**
 * The one module the dashboard shares with the CLI, served next to its own files. The path is
 * the same from the sources and from the compiled `dist/gateway/http/routes/`.
 */
const SSE_PARSER = new URL("../../../common/sse-parser.js", import.meta.url);

/** Loads every dashboard file once, so serving one is a map lookup and no path is ever joined. */
function loadAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const name of readdirSync(dir)) {
    const type = TYPES[extname(name)];
    if (type) assets.set(name, { body: readFileSync(join(dir, name)), type });
  }
  assets.set("sse-parser.js", { body: readFileSync(SSE_PARSER), type: JAVASCRIPT });
  return assets;
}

/** `GET /` and `GET /assets/<file>`: the browser dashboard. */
export const dashboardRoutes: FastifyPluginAsyncZod = async (app) => {
  const assets = loadAssets(dashboardDir());
  const serve = (name: string) => {
    const asset = assets.get(name);
    if (!asset) throw new ApiError("FLEETHEAL_ERR_NOT_FOUND", `no dashboard file ${name}`);
    return asset;
  };
  app.get("/", { config: { access: "public" }, schema: { hide: true } }, (_request, reply) => {
    const page = serve("index.html");
    return reply
      .type(page.type)
      .header("content-security-policy", CSP)
      .header("cache-control", "no-cache")
      .header("referrer-policy", "no-referrer")
      .send(page.body);
  });
  app.get(
    "/assets/:file",
    {
      config: { access: "public" },
      schema: { hide: true, params: z.object({ file: z.string().max(128) }) },
    },
    (request, reply) => {
      const asset = serve(request.params.file);
      return reply
        .type(asset.type)
        .header("content-security-policy", CSP)
        .header("cache-control", "no-cache")
        .send(asset.body);
    },
  );
};
