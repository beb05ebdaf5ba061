// A real image registry per test: Debian's docker-registry (distribution 2.8) on a free loopback
// port, its storage in a temp dir. Engines started by dockerd.ts without `netns` share the host's
// loopback, and dockerd treats 127.0.0.0/8 as an insecure (plain HTTP) registry by default, so
// `127.0.0.1:<port>/<name>:<tag>` pushes and pulls with no further setup. The package's own system
// service (port 5000) is never used: it may not run, and a test must not share one.

import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import {
  exitOf,
  findExecutable,
  hasExited,
  markOwned,
  sweepAbandonedOnce,
  tailFile,
  terminate,
  trackChild,
} from "./children.js";
import type { DockerEngine } from "./dockerd.js";
import { freePort } from "./ports.js";
import { GiveUpWaiting, waitFor } from "./wait.js";

export interface RegistryHandle extends AsyncDisposable {
  /** `127.0.0.1:<port>`: the prefix of image references in this registry. */
  readonly host: string;
  readonly port: number;
  readonly pid: number;
  readonly logFile: string;
}

const DIR_PREFIX = "fleetheal-registry-";
const STARTUP_TIMEOUT_MS = 20_000;
/** Tries on another port when the one found free was taken before the registry bound it. */
const ATTEMPTS = 3;

/**
 * Starts `/usr/bin/docker-registry serve <config>` on 127.0.0.1 and a free port, with its
 * storage in a temp dir, and waits until `GET /v2/` answers 200. Dispose stops that process (and
 * no other) and removes the dir.
 */
export async function startRegistry(): Promise<RegistryHandle> {
  const binary = await findExecutable(
    "docker-registry",
    "install it with `apt-get install docker-registry` (or `bash infra/install.sh --test`)",
  );
  await sweepAbandonedOnce(DIR_PREFIX, "docker-registry");
  const dir = await mkdtemp(path.join(os.tmpdir(), DIR_PREFIX));
  await markOwned(dir);
  const logFile = path.join(dir, "registry.log");
  let failure: unknown;
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    const port = await freePort();
    const config = path.join(dir, "config.yml");
    await writeFile(config, configFor(dir, port));
    const child = launch(binary, config, logFile);
    try {
      await waitFor(() => answers(child, port), {
        timeoutMs: STARTUP_TIMEOUT_MS,
        intervalMs: 100,
        message: `docker-registry (pid ${child.pid}) did not answer GET /v2/ on port ${port}`,
      });
      return handle(child, port, dir, logFile);
    } catch (error) {
      failure = error;
      await terminate(child, "SIGKILL", 0);
    }
  }
  const tail = await tailFile(logFile, 30);
  await rm(dir, { recursive: true, force: true });
  throw new Error(
    `docker-registry failed to start: ${(failure as Error).message}\n--- ${logFile} (tail) ---\n${tail}`,
    { cause: failure },
  );
}

function configFor(dir: string, port: number): string {
  return [
    "version: 0.1",
    "log:",
    "  level: info",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${path.join(dir, "data")}`,
    "  delete:",
    "    enabled: true",
    "http:",
    `  addr: 127.0.0.1:${port}`,
    "",
  ].join("\n");
}

function launch(binary: string, config: string, logFile: string): ChildProcess {
  const fd = openSync(logFile, "a");
  try {
    // Only PATH: REGISTRY_* variables of the test's environment would override the config.
    const child = spawn(binary, ["serve", config], {
      stdio: ["ignore", fd, fd],
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
    });
    trackChild(child, "SIGKILL");
    child.once("error", () => {});
    return child;
  } finally {
    closeSync(fd);
  }
}

async function answers(child: ChildProcess, port: number): Promise<boolean> {
  if (hasExited(child)) {
    const { code, signal } = await exitOf(child);
    throw new GiveUpWaiting(
      `docker-registry exited during startup (code ${code}, signal ${signal})`,
    );
  }
  const res = await fetch(`http://127.0.0.1:${port}/v2/`, { signal: AbortSignal.timeout(2_000) });
  await res.body?.cancel();
  return res.status === 200;
}

function handle(child: ChildProcess, port: number, dir: string, logFile: string): RegistryHandle {
  let disposed = false;
  return {
    host: `127.0.0.1:${port}`,
    port,
    pid: child.pid as number,
    logFile,
    async [Symbol.asyncDispose]() {
      if (disposed) return;
      disposed = true;
      await terminate(child, "SIGTERM", 5_000);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** `docker push <repo>:<tag>` from `engine` to its registry, failing on an error in its progress. */
export async function pushImage(engine: DockerEngine, repo: string, tag: string): Promise<void> {
  const stream = await engine.docker.getImage(repo).push({ tag, authconfig: {} });
  const output = await new Promise<Array<{ error?: string }>>((resolve, reject) => {
    engine.docker.modem.followProgress(
      stream,
      (err: Error | null, out: Array<{ error?: string }>) => (err ? reject(err) : resolve(out)),
    );
  });
  const error = output.find((o) => o.error);
  if (error) throw new Error(`push of ${repo}:${tag} failed: ${error.error}`);
}
