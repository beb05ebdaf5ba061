// The server children run as the gateway is deployed: plain `node` on the compiled code in dist/,
// with no TypeScript loader (a loader's own memory would make the figures estimates).

import { execFile } from "node:child_process";
import {
  copyFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  writeFile,
} from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { median, round } from "../runner/numbers.js";
import { REPO } from "./config.js";

/** The child programs, compiled into dist/bench/gateway/ with what they import. */
const CHILD_SOURCES = ["gateway-server.ts", "reference-server.ts"].map((f) =>
  path.join(REPO, "bench", "gateway", f),
);

export async function idleNodeMb(): Promise<number> {
  const code =
    "await new Promise((r) => setTimeout(r, 300)); globalThis.gc(); process.stdout.write(String(process.memoryUsage().rss));";
  const rss = async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ["--expose-gc", "--input-type=module", "-e", code],
      { cwd: REPO },
    );
    return Number(stdout) / 1024 / 1024;
  };
  return round(median([await rss(), await rss(), await rss()]), 1);
}

/**
 * Builds what the server children run: the gateway compiled by `npm run build`, and the child
 * programs with the local modules they import that the build leaves out (bench/ and test/
 * helpers, such as the in-memory ports) transpiled into dist/ beside it, so that their relative
 * imports (`../../gateway/http/app.js`) load the built gateway and nothing else.
 */
export async function compileChildren(): Promise<void> {
  try {
    await promisify(execFile)("npm", ["run", "--silent", "build"], { cwd: REPO });
  } catch (err) {
    const { stdout = "", stderr = "" } = err as { stdout?: string; stderr?: string };
    throw new Error(
      `npm run build failed; the bench measures the built gateway:\n${stdout}${stderr}`,
    );
  }
  // The project's own compiler (tsc, a native binary since TypeScript 7, with no JavaScript API)
  // compiles this file and everything it imports into a scratch directory, without type checking
  // (`npm run typecheck` does that); what the build leaves out is then copied into dist/.
  const scratch = await mkdtemp(path.join(os.tmpdir(), "fleetheal-bench-gateway-"));
  try {
    const config = path.join(scratch, "tsconfig.json");
    const out = path.join(scratch, "out");
    await writeFile(
      config,
      JSON.stringify({
        extends: path.join(REPO, "tsconfig.json"),
        compilerOptions: {
          noEmit: false,
          noCheck: true,
          declaration: false,
          sourceMap: false,
          rootDir: REPO,
          outDir: out,
          // Type roots are looked up from the config's directory, which is not the checkout.
          typeRoots: [path.join(REPO, "node_modules", "@types")],
        },
        files: CHILD_SOURCES,
        include: [],
      }),
    );
    const tsc = path.join(REPO, "node_modules", ".bin", "tsc");
    try {
      await promisify(execFile)(tsc, ["-p", config], { cwd: REPO });
    } catch (err) {
      const { stdout = "", stderr = "" } = err as { stdout?: string; stderr?: string };
      throw new Error(`tsc could not compile the server children:\n${stdout}${stderr}`);
    }
    const buildConfig = JSON.parse(
      await readFile(path.join(REPO, "tsconfig.build.json"), "utf8"),
    ) as { include?: string[] };
    const built = new Set<string>(buildConfig.include ?? []);
    const emitted = (await readdir(out, { recursive: true })).filter((f) => f.endsWith(".js"));
    for (const file of emitted) {
      if (built.has(file.split(path.sep)[0] as string)) continue;
      const target = path.join(REPO, "dist", file);
      await mkdir(path.dirname(target), { recursive: true });
      // Written whole under another name, then renamed: a concurrent run never reads half a file.
      const partial = `${target}.${process.pid}`;
      await copyFile(path.join(out, file), partial);
      await rename(partial, target);
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
