// The npm package as a user gets it: `npm pack` of a clean copy of the checkout, installed with
// `npm install <tarball>` into an empty directory (its dependencies from the registry), where
// `fleetheal --help`, `fleetheal version` and `fleetheal up` run from the installed bin, away from
// the checkout. `up` must heal a container there, with Docker's own event stream as the witness,
// and leave nothing running after SIGTERM.

import {
  copyFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  realpath,
  rm,
  symlink,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, delimiter, dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pkg from "../package.json" with { type: "json" };
import { markOwned, processesReferencing, run, sweepAbandonedOnce } from "./support/children.js";
import {
  makeUnhealthyUntilRestarted,
  recordDockerEvents,
  runTestContainer,
  waitForHealth,
} from "./support/containers.js";
import { startDockerEngine } from "./support/dockerd.js";
import { REPO } from "./support/fleetheal.js";
import { freePort } from "./support/ports.js";
import { startProcess } from "./support/process.js";

/** What `npm pack --json` reports about the tarball it wrote. */
interface Packed {
  filename: string;
  size: number;
  unpackedSize: number;
  entryCount: number;
  files: Array<{ path: string }>;
}

const PREFIX = "fleetheal-package-";
/** Left in the copy's dist/ before packing, as an earlier build (of tests, benchmarks) could. */
const STALE = ["dist/test/stale.test.js", "dist/bench/stale.js", "dist/cli/stale.js"];

let work: string;
let packed: Packed;
let files: string[];
/** The empty directory the tarball is installed into, and what the install put there. */
let app: string;
let installed: string;
let bin: string;

/**
 * The environment of npm and of the installed CLI: the test process's, with the `node` that runs
 * the tests first on PATH (the launcher's `#!/usr/bin/env node` finds it), and without what an
 * `npm test` that started vitest adds (npm_config_local_prefix would send a nested npm to the
 * checkout).
 */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key) && key !== "INIT_CWD"),
  );
  return { ...env, PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ""}` };
}

/** The checkout as a fresh clone has it (tracked and new files, nothing ignored), without dist/. */
async function copyCheckout(to: string): Promise<void> {
  const { stdout } = await run(
    "git",
    ["-C", REPO, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
    { timeoutMs: 60_000 },
  );
  const paths = stdout.split("\0").filter((p) => p !== "" && !/^(node_modules|dist)(\/|$)/.test(p));
  for (const path of new Set(paths)) {
    await mkdir(dirname(join(to, path)), { recursive: true });
    // A file deleted but not yet committed is still listed as tracked.
    await copyFile(join(REPO, path), join(to, path)).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== "ENOENT") throw error;
    });
  }
  await symlink(await realpath(join(REPO, "node_modules")), join(to, "node_modules"));
}

/** What the browser loads of the dashboard: every file in its folder but the type-check setup. */
async function dashboardRuntimeFiles(): Promise<string[]> {
  const names = await readdir(join(REPO, "gateway/dashboard"));
  return names
    .filter((name) => !/\.d\.ts$|\.json$/.test(name))
    .map((name) => `gateway/dashboard/${name}`);
}

/** The docs/… files a help text names. */
function docsNamed(help: string): string[] {
  return [...new Set([...help.matchAll(/docs\/([A-Z]+\.md)/g)].map((m) => m[1] as string))];
}

async function fleetheal(...args: string[]): Promise<{ code: number; stdout: string }> {
  const { code, stdout } = await run(bin, args, { cwd: app, env: cleanEnv(), allowFailure: true });
  return { code, stdout };
}

beforeAll(async () => {
  await sweepAbandonedOnce(PREFIX, "package test");
  work = await mkdtemp(join(tmpdir(), PREFIX));
  await markOwned(work);
  const src = join(work, "src");
  await copyCheckout(src);
  for (const stale of STALE) {
    await mkdir(dirname(join(src, stale)), { recursive: true });
    await writeFile(join(src, stale), "// from an earlier build\n");
  }

  let started = Date.now();
  const pack = await run("npm", ["pack", "--json", "--pack-destination", work], {
    cwd: src,
    env: cleanEnv(),
    timeoutMs: 300_000,
  });
  const packSeconds = (Date.now() - started) / 1000;
  [packed] = JSON.parse(pack.stdout) as [Packed];
  files = packed.files.map((f) => f.path);

  app = join(work, "app");
  await mkdir(app);
  started = Date.now();
  await run(
    "npm",
    ["install", "--no-audit", "--no-fund", "--loglevel=error", join(work, packed.filename)],
    { cwd: app, env: cleanEnv(), timeoutMs: 420_000 },
  );
  const installSeconds = (Date.now() - started) / 1000;
  installed = join(app, "node_modules", "fleetheal");
  bin = join(app, "node_modules", ".bin", "fleetheal");
  process.stderr.write(
    `package test: ${packed.filename}, ${packed.size} bytes, ${packed.entryCount} files; ` +
      `npm pack ${packSeconds.toFixed(1)} s, npm install ${installSeconds.toFixed(1)} s\n`,
  );
}, 720_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe("the npm package", () => {
  it("holds the compiled code, the launcher, the dashboard, the docs and the licence, and no tests", async () => {
    for (const file of [
      "package.json",
      "README.md",
      "CHANGELOG.md",
      "LICENSE",
      "bin/fleetheal.js",
      "dist/package.json",
      "dist/cli/main.js",
      "dist/agent/main.js",
      "dist/handlers/main.js",
      "dist/gateway/main.js",
      "dist/contracts/index.js",
      "dist/common/sse-parser.js",
      ...(await dashboardRuntimeFiles()),
      "docs/DEPLOY.md",
      "docs/images/dashboard.png",
    ]) {
      expect(files, file).toContain(file);
    }
    // The dashboard's type-check setup is for the checkout only.
    expect(files.filter((f) => /^gateway\/dashboard\/.*\.(d\.ts|json)$/.test(f))).toEqual([]);
    const top =
      /^(package\.json|README\.md|CHANGELOG\.md|LICENSE|bin\/|dist\/|gateway\/dashboard\/|docs\/)/;
    expect(files.filter((f) => !top.test(f))).toEqual([]);
    // No sources (declarations are fine), source maps, tests, benchmarks or stale build output.
    expect(files.filter((f) => /\.test\.|\.map$|(?<!\.d)\.ts$/.test(f))).toEqual([]);
    expect(files.filter((f) => /^dist\/(test|bench|tools|examples)\//.test(f))).toEqual([]);
    expect(files.filter((f) => STALE.includes(f))).toEqual([]);

    const manifest = JSON.parse(await readFile(join(installed, "package.json"), "utf8"));
    expect(manifest).toMatchObject({ name: "fleetheal", version: pkg.version });
    expect(manifest.private).toBeUndefined();
    const license = await readFile(join(installed, "LICENSE"), "utf8");
    expect(license).toBe(await readFile(join(REPO, "LICENSE"), "utf8"));
    expect(license).toMatch(/^ +Apache License\n +Version 2\.0, January 2004\n/);
    expect(license).toContain("END OF TERMS AND CONDITIONS");
  });

  it("installed into an empty directory, answers --help and version from its own files", async () => {
    const help = await fleetheal("--help");
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("\n  version [--json]\n");
    // The docs the help names are the package's own, wherever it was installed.
    expect(help.stdout).toContain(`\nDocumentation: ${join(installed, "docs")}/ holds`);
    const named = docsNamed(help.stdout);
    expect(named.length).toBeGreaterThan(5);
    expect(named.filter((doc) => !files.includes(`docs/${doc}`))).toEqual([]);

    expect(await fleetheal("version")).toEqual({ code: 0, stdout: `${pkg.version}\n` });
    expect(await fleetheal("--version")).toEqual({ code: 0, stdout: `${pkg.version}\n` });
    const json = await fleetheal("version", "--json");
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({
      version: pkg.version,
      node: process.versions.node,
      platform: process.platform,
      arch: process.arch,
    });
  });

  it("runs fleetheal up, which heals an opted-in container and stops cleanly on SIGTERM", async () => {
    await using engine = await startDockerEngine("package");
    await using recorder = await recordDockerEvents(engine);
    const dataDir = join(work, "data");
    await using up = await startProcess({
      name: "package-up",
      command: bin,
      args: ["up"],
      cwd: app,
      env: {
        PATH: cleanEnv().PATH as string,
        DOCKER_HOST: engine.dockerHost,
        FLEETHEAL_HOST_ID: "packaged",
        FLEETHEAL_DATA_DIR: dataDir,
        FLEETHEAL_NATS_PORT: String(await freePort()),
        FLEETHEAL_GATEWAY_PORT: "0",
        FLEETHEAL_GATEWAY_HOST: "127.0.0.1",
      },
    });
    const banner = await up.waitForLine((l) => l.includes(" is up on host packaged: "), 60_000);
    const url = /(http:\/\/\S+)\/health/.exec(banner)?.[1];
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    // The gateway serves the package's dashboard, and reports the package's version.
    const page = await fetch(`${url}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("<title>fleetheal</title>");
    const parser = await fetch(`${url}/assets/sse-parser.js`);
    expect(parser.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(await parser.text()).toContain("export function createSseParser");
    expect(await (await fetch(`${url}/livez`)).json()).toMatchObject({ version: pkg.version });

    const c = await runTestContainer(engine, {
      name: "packaged-app",
      labels: { autoheal: "true" },
    });
    await waitForHealth(engine, c.id, "healthy", 20_000);
    await up.waitForLine(
      (l) => l.includes("Auto-monitoring enabled for container 'packaged-app'"),
      20_000,
    );
    await makeUnhealthyUntilRestarted(engine, recorder, c.id, {
      timeoutMs: 30_000,
      message: "the installed fleetheal up did not restart the unhealthy container",
    });

    // The server, and the shell of its watchdog (cli/embedded-nats-process.ts).
    const nats = (await processesReferencing(dataDir)).map((p) => basename(p.argv[0] ?? ""));
    expect(nats.filter((name) => name !== "sh")).toEqual(["nats-server"]);
    expect(await up.stop("SIGTERM", 20_000)).toEqual({ code: 0, signal: null });
    expect(await processesReferencing(dataDir)).toEqual([]);
    expect(await processesReferencing(app)).toEqual([]);
  }, 240_000);
});
