// A NATS cluster of real nats-server processes on loopback, with JetStream on every node, for
// tests that kill nodes one by one. Each node has its own config file, store dir and log, and
// keeps its ports across kill and start, so the cluster's routes and the clients' URL list stay
// valid. Ports are chosen before any node starts (routes must name them), by binding port 0
// and releasing it.

import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import {
  findExecutable,
  hasExited,
  markOwned,
  sweepAbandonedOnce,
  tailFile,
  terminate,
  trackChild,
} from "./children.js";
import { freePorts } from "./ports.js";
import { GiveUpWaiting, waitFor } from "./wait.js";

export interface ClusterNode {
  readonly name: string;
  readonly url: string;
  readonly port: number;
  readonly clusterPort: number;
  readonly monitorUrl: string;
  readonly storeDir: string;
  /** The configuration file it runs (`nats-server -c`). */
  readonly configFile: string;
  readonly logFile: string;
  readonly running: boolean;
  /** Its process id while it runs (what systemd's `$MAINPID` would be). */
  readonly pid: number | undefined;
}

export interface NatsClusterHandle extends AsyncDisposable {
  readonly nodes: readonly ClusterNode[];
  /** Every node's client URL, comma-separated, as FLEETHEAL_NATS_URL takes them. */
  readonly urls: string;
  /** SIGKILL node `i` and wait for its exit, as a crash would. Keeps its store. */
  kill(i: number): Promise<void>;
  /** SIGTERM node `i` (what `systemctl stop` sends) and wait for its exit. Keeps its store. */
  stop(i: number): Promise<void>;
  /** Starts node `i` again on its ports and store, and waits until it answers /healthz. */
  start(i: number): Promise<void>;
  /** Waits until node `i`'s /healthz answers 200 (JetStream current, with a meta leader). */
  waitHealthy(i: number, timeoutMs: number): Promise<void>;
  /** The last lines of every node's log, for failure messages. */
  logTails(lines?: number): Promise<string>;
}

/** What a node is given before its configuration is written: its ports and its own dir. */
export interface ClusterNodePlan {
  /** 0-based position in the cluster. */
  readonly index: number;
  readonly port: number;
  readonly clusterPort: number;
  readonly monitorPort: number;
  /** A dir of its own, for its config, store and log. */
  readonly dir: string;
  /** The route port of every node of the cluster, itself included, in node order. */
  readonly clusterPorts: readonly number[];
}

/** A node's configuration as the caller made it: started as `nats-server -c <configFile>`. */
export interface ClusterNodeConfig {
  /** Its `server_name`, which JetStream reports as a stream's leader. */
  readonly serverName: string;
  readonly configFile: string;
  /** Added to the environment of nats-server (which resolves `$VARS` the file leaves undefined). */
  readonly env?: Readonly<Record<string, string>>;
  /** Where its configuration puts the JetStream store. */
  readonly storeDir: string;
}

export interface NatsClusterOptions {
  /**
   * Writes each node's configuration instead of the built-in one, e.g. from the files operators
   * deploy. It must listen on 127.0.0.1 on the plan's ports, with the monitor on `monitorPort`.
   */
  configure?: (plan: ClusterNodePlan) => Promise<ClusterNodeConfig>;
}

const DIR_PREFIX = "fleetheal-natscl-";
const STARTUP_TIMEOUT_MS = 60_000;

/** Starts `size` nodes of one cluster and waits until every one reports /healthz 200. */
export async function startNatsCluster(
  size = 3,
  name = "fleetheal-test",
  opts: NatsClusterOptions = {},
): Promise<NatsClusterHandle> {
  const binary = await findExecutable(
    "nats-server",
    "install it with `apt-get install nats-server`",
  );
  await sweepAbandonedOnce(DIR_PREFIX, "nats-server");
  const dir = await mkdtemp(path.join(os.tmpdir(), DIR_PREFIX));
  await markOwned(dir);

  const ports = await freePorts(size * 3);
  interface NodeState {
    name: string;
    port: number;
    clusterPort: number;
    monitorPort: number;
    dir: string;
    storeDir: string;
    configFile: string;
    logFile: string;
    env?: Readonly<Record<string, string>>;
    child?: ChildProcess;
  }
  const states: NodeState[] = [];
  for (let i = 0; i < size; i++) {
    const nodeDir = path.join(dir, `n${i + 1}`);
    await mkdir(nodeDir);
    states.push({
      name: `n${i + 1}`,
      port: ports[i * 3] as number,
      clusterPort: ports[i * 3 + 1] as number,
      monitorPort: ports[i * 3 + 2] as number,
      dir: nodeDir,
      storeDir: path.join(nodeDir, "js"),
      configFile: path.join(nodeDir, "nats.conf"),
      logFile: path.join(nodeDir, "nats-server.log"),
    });
  }
  for (const s of opts.configure ? [] : states) {
    const routes = states
      .filter((o) => o !== s)
      .map((o) => `    "nats-route://127.0.0.1:${o.clusterPort}"`)
      .join("\n");
    await writeFile(
      s.configFile,
      [
        `server_name: ${s.name}`,
        `listen: "127.0.0.1:${s.port}"`,
        `http: "127.0.0.1:${s.monitorPort}"`,
        `jetstream {`,
        `  store_dir: "${s.storeDir}"`,
        `}`,
        `cluster {`,
        `  name: ${name}`,
        `  listen: "127.0.0.1:${s.clusterPort}"`,
        `  routes: [`,
        routes,
        `  ]`,
        `}`,
        "",
      ].join("\n"),
    );
  }

  if (opts.configure) {
    const clusterPorts = states.map((s) => s.clusterPort);
    for (const [index, s] of states.entries()) {
      const config = await opts.configure({
        index,
        port: s.port,
        clusterPort: s.clusterPort,
        monitorPort: s.monitorPort,
        dir: s.dir,
        clusterPorts,
      });
      s.name = config.serverName;
      s.configFile = config.configFile;
      s.storeDir = config.storeDir;
      s.env = config.env;
    }
  }

  const state = (i: number): NodeState => {
    const s = states[i];
    if (!s) throw new Error(`no cluster node ${i}`);
    return s;
  };

  const launch = (s: NodeState): void => {
    const fd = openSync(s.logFile, "a");
    let proc: ChildProcess;
    try {
      proc = spawn(binary, ["-c", s.configFile], {
        stdio: ["ignore", fd, fd],
        env: { ...process.env, ...s.env },
      });
    } finally {
      closeSync(fd);
    }
    proc.on("error", () => {});
    trackChild(proc, "SIGKILL");
    s.child = proc;
  };

  const waitHealthy = async (i: number, timeoutMs: number): Promise<void> => {
    const s = state(i);
    await waitFor(
      async () => {
        if (!s.child || hasExited(s.child)) {
          throw new GiveUpWaiting(`cluster node ${s.name} is not running`);
        }
        const res = await fetch(`http://127.0.0.1:${s.monitorPort}/healthz`, {
          signal: AbortSignal.timeout(2_000),
        });
        await res.body?.cancel();
        return res.status === 200;
      },
      {
        timeoutMs,
        intervalMs: 100,
        message: `cluster node ${s.name} did not report /healthz 200`,
      },
    );
  };

  const logTails = async (lines = 20): Promise<string> => {
    const parts: string[] = [];
    for (const s of states) parts.push(`--- ${s.logFile} ---\n${await tailFile(s.logFile, lines)}`);
    return parts.join("\n");
  };

  let disposed = false;
  const handle: NatsClusterHandle = {
    nodes: states.map((s) => ({
      name: s.name,
      url: `nats://127.0.0.1:${s.port}`,
      port: s.port,
      clusterPort: s.clusterPort,
      monitorUrl: `http://127.0.0.1:${s.monitorPort}`,
      storeDir: s.storeDir,
      get configFile() {
        return s.configFile;
      },
      logFile: s.logFile,
      get running() {
        return s.child !== undefined && !hasExited(s.child);
      },
      get pid() {
        return s.child !== undefined && !hasExited(s.child) ? s.child.pid : undefined;
      },
    })),
    urls: states.map((s) => `nats://127.0.0.1:${s.port}`).join(","),
    async kill(i) {
      const s = state(i);
      if (s.child) await terminate(s.child, "SIGKILL", 0);
    },
    async stop(i) {
      const s = state(i);
      if (s.child) await terminate(s.child, "SIGTERM", 10_000);
    },
    async start(i) {
      if (disposed) throw new Error("cluster already disposed");
      const s = state(i);
      if (s.child && !hasExited(s.child)) throw new Error(`cluster node ${s.name} still runs`);
      launch(s);
      await waitHealthy(i, STARTUP_TIMEOUT_MS);
    },
    waitHealthy,
    logTails,
    async [Symbol.asyncDispose]() {
      if (disposed) return;
      disposed = true;
      await Promise.all(
        states.map((s) => (s.child ? terminate(s.child, "SIGTERM", 5_000) : undefined)),
      );
      await rm(dir, { recursive: true, force: true });
    },
  };

  try {
    for (const s of states) launch(s);
    await Promise.all(states.map((_, i) => waitHealthy(i, STARTUP_TIMEOUT_MS)));
  } catch (error) {
    const tails = await logTails(30);
    await handle[Symbol.asyncDispose]();
    throw new Error(`NATS cluster failed to start: ${(error as Error).message}\n${tails}`, {
      cause: error,
    });
  }
  return handle;
}
