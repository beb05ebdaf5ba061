// A real nats-server per test, modelled on the nats.js `nst` launcher: random ports reported
// through a ports file, readiness via the monitor's /healthz, and a restart that keeps the port and
// the JetStream store so clients can reconnect to the same URL and find their streams.

import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
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
import { GiveUpWaiting, waitFor } from "./wait.js";

export interface NatsServerOptions {
  /** Enable JetStream with a store dir inside the server's temp dir. Default true. */
  jetstream?: boolean;
  /** Extra command-line arguments, appended last. */
  args?: string[];
  /** Passed as `-c`; command-line flags still win over it. */
  configFile?: string;
  /** Server name (`-n`). */
  name?: string;
}

export interface NatsServerHandle extends AsyncDisposable {
  /** `nats://127.0.0.1:PORT`; stable across {@link NatsServerHandle.restart}. */
  readonly url: string;
  readonly port: number;
  /** `http://127.0.0.1:PORT` of the monitoring endpoint; stable across restarts. */
  readonly monitorUrl: string;
  /** JetStream store dir (`-sd`); kept across kill and restart. */
  readonly storeDir: string;
  /** The temp dir holding the store, ports file and log; removed on dispose. */
  readonly dir: string;
  readonly logFile: string;
  /** PID of the current server process; changes on restart. */
  readonly pid: number;
  /** True while the server process runs. */
  readonly running: boolean;
  /** SIGTERM, wait for exit, SIGKILL after 5 s. Keeps the store. */
  stop(): Promise<void>;
  /** SIGKILL and wait for exit, as a crash would. Keeps the store. */
  kill(): Promise<void>;
  /** Starts the server again on the same ports and store dir and waits until it is ready. */
  restart(): Promise<void>;
  /**
   * Reloads the configuration file (SIGHUP, as `nats-server --signal reload` sends) and waits
   * until the server says it did; connections stay up.
   */
  reload(): Promise<void>;
}

const STARTUP_TIMEOUT_MS = 20_000;
const DIR_PREFIX = "fleetheal-nats-";

/**
 * Starts a nats-server bound to 127.0.0.1 on random client and monitor ports and waits until
 * `/healthz` answers 200 (which on 2.9.10 also covers JetStream being ready).
 * Dispose stops it and removes its temp dir.
 */
export async function startNatsServer(opts: NatsServerOptions = {}): Promise<NatsServerHandle> {
  const binary = await findExecutable(
    "nats-server",
    "install it with `apt-get install nats-server`",
  );
  await sweepAbandonedOnce(DIR_PREFIX, "nats-server");
  const dir = await mkdtemp(path.join(os.tmpdir(), DIR_PREFIX));
  await markOwned(dir);
  const storeDir = path.join(dir, "js");
  const logFile = path.join(dir, "nats-server.log");
  const jetstream = opts.jetstream ?? true;
  // With a configuration file, JetStream goes into a configuration that includes it: nats-server
  // 2.9 forgets a command-line `-js` on a reload (nats-server#3003), and every JetStream request
  // then times out. Includes resolve from the including file's folder, so the path is relative.
  let configFile = opts.configFile;
  if (configFile && jetstream) {
    const wrapper = path.join(dir, "with-jetstream.conf");
    await writeFile(
      wrapper,
      `jetstream { store_dir: ${JSON.stringify(storeDir)} }\ninclude ${JSON.stringify(path.relative(dir, path.resolve(configFile)))}\n`,
    );
    configFile = wrapper;
  }

  const argsFor = (port: number | undefined, monitorPort: number | undefined): string[] => [
    "-a",
    "127.0.0.1",
    "-p",
    String(port ?? -1),
    "-m",
    String(monitorPort ?? -1),
    "--ports_file_dir",
    dir,
    ...(jetstream && !configFile ? ["-js", "-sd", storeDir] : []),
    ...(opts.name ? ["-n", opts.name] : []),
    ...(configFile ? ["-c", configFile] : []),
    ...(opts.args ?? []),
  ];

  let child: ChildProcess | undefined;
  let port: number | undefined;
  let monitorPort: number | undefined;

  const launch = async (): Promise<void> => {
    // Appending keeps the log of earlier runs, which is what explains a failed restart.
    const fd = openSync(logFile, "a");
    let proc: ChildProcess;
    try {
      proc = spawn(binary, argsFor(port, monitorPort), { stdio: ["ignore", fd, fd] });
    } finally {
      closeSync(fd);
    }
    child = proc;
    trackChild(proc, "SIGKILL");
    const spawnError = new Promise<never>((_, reject) => proc.once("error", reject));
    spawnError.catch(() => {});

    try {
      const pid = await Promise.race([waitForPid(proc), spawnError]);
      const ports = await waitFor(() => readPortsFile(dir, pid, proc), {
        timeoutMs: STARTUP_TIMEOUT_MS,
        message: `nats-server (pid ${pid}) wrote no ports file in ${dir}`,
      });
      port = ports.port;
      monitorPort = ports.monitorPort;
      await waitFor(() => healthy(proc, ports.monitorPort), {
        timeoutMs: STARTUP_TIMEOUT_MS,
        intervalMs: 100,
        message: `nats-server (pid ${pid}) did not report /healthz 200 on port ${ports.monitorPort}`,
      });
    } catch (err) {
      await terminate(proc, "SIGKILL", 0);
      const tail = await tailFile(logFile, 30);
      throw new Error(
        `nats-server failed to start: ${(err as Error).message}\n--- ${logFile} (tail) ---\n${tail}`,
        { cause: err },
      );
    }
  };

  const current = (): ChildProcess => {
    if (!child) throw new Error("nats-server was never started");
    return child;
  };

  try {
    await launch();
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }

  let disposed = false;
  const handle: NatsServerHandle = {
    get url() {
      return `nats://127.0.0.1:${port}`;
    },
    get port() {
      return port as number;
    },
    get monitorUrl() {
      return `http://127.0.0.1:${monitorPort}`;
    },
    storeDir,
    dir,
    logFile,
    get pid() {
      return current().pid as number;
    },
    get running() {
      return child !== undefined && !hasExited(child);
    },
    async stop() {
      await terminate(current(), "SIGTERM", 5_000);
    },
    async kill() {
      await terminate(current(), "SIGKILL", 0);
    },
    async reload() {
      const reloaded = () =>
        readFile(logFile, "utf8").then(
          (log) => log.split("Reloaded server configuration").length - 1,
        );
      const before = await reloaded();
      current().kill("SIGHUP");
      await waitFor(async () => (await reloaded()) > before, {
        timeoutMs: 10_000,
        message: `nats-server did not reload its configuration (log: ${logFile})`,
      });
    },
    async restart() {
      if (disposed) throw new Error("nats-server handle already disposed");
      await terminate(current(), "SIGTERM", 5_000);
      await launch();
    },
    async [Symbol.asyncDispose]() {
      if (disposed) return;
      disposed = true;
      if (child) await terminate(child, "SIGTERM", 5_000);
      await rm(dir, { recursive: true, force: true });
    },
  };
  return handle;
}

function waitForPid(proc: ChildProcess): Promise<number> {
  if (proc.pid !== undefined) return Promise.resolve(proc.pid);
  return new Promise((resolve, reject) => {
    proc.once("spawn", () => resolve(proc.pid as number));
    proc.once("error", reject);
  });
}

async function readPortsFile(
  dir: string,
  pid: number,
  proc: ChildProcess,
): Promise<{ port: number; monitorPort: number } | undefined> {
  await failIfExited(proc);
  // The file is named after argv[0]'s basename, so match on the pid suffix only.
  const name = (await readdir(dir)).find((f) => f.endsWith(`_${pid}.ports`));
  if (!name) return undefined;
  // A half-written file fails to parse; the caller simply polls again.
  const parsed = JSON.parse(await readFile(path.join(dir, name), "utf8")) as {
    nats?: string[];
    monitoring?: string[];
  };
  const client = parsed.nats?.[0];
  const monitor = parsed.monitoring?.[0];
  if (!client || !monitor) return undefined;
  return { port: Number(new URL(client).port), monitorPort: Number(new URL(monitor).port) };
}

async function healthy(proc: ChildProcess, monitorPort: number): Promise<boolean> {
  await failIfExited(proc);
  const res = await fetch(`http://127.0.0.1:${monitorPort}/healthz`, {
    signal: AbortSignal.timeout(2_000),
  });
  await res.body?.cancel();
  return res.status === 200;
}

async function failIfExited(proc: ChildProcess): Promise<void> {
  if (hasExited(proc)) {
    const { code, signal } = await exitOf(proc);
    throw new GiveUpWaiting(`nats-server exited during startup (code ${code}, signal ${signal})`);
  }
}
