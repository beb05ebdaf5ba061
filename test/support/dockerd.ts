// Real Docker engines standing in for separate hosts. Each engine is a private containerd plus a
// dockerd that share nothing with each other or with a system Docker:
//
// - containerd is started here rather than left to dockerd: dockerd 20.10 silently attaches to
//   the system containerd whenever /run/containerd/containerd.sock exists, and then teardown could
//   not tell its shims apart from everyone else's.
// - --config-file points at an empty file so a system /etc/docker/daemon.json (hosts, bridges)
//   cannot leak in.
// - --bridge=none --iptables=false --ip-masq=false keep engines off the host network stack, so
//   containers must run with NetworkMode "none".
// - A test that needs bridge networking (compose's networks, a published port) starts its engine
//   with `netns`: containerd, dockerd and their containers then live in a network namespace of
//   their own, with the default bridge. Its netfilter state is fresh (FORWARD at ACCEPT, and the
//   namespace's own br_netfilter switches set so that bridged frames skip iptables altogether),
//   so bridged traffic does not depend on the host's firewall, which a system dockerd sets to
//   FORWARD DROP. The test reaches addresses inside through `reach()`: a relay in the namespace
//   (netns-relay.mjs) behind a unix socket, so nothing crosses the host's network stack either.
// - Paths live in /tmp/fh-XXXXXX with short names: unix socket paths are limited to 108 bytes.
//
// Known sharing that cannot be switched off in dockerd 20.10: /etc/docker/key.json (so all engines
// report the same `docker info` ID), the hostname (same `Name`), /run/docker/plugins and the
// "/docker" cgroup parent. Each engine gets a `fleetheal.engine=<name>` daemon label instead.

import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, openSync } from "node:fs";
import {
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rm,
  rmdir,
  stat,
  writeFile,
} from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import Docker from "dockerode";
import {
  findAbandonedDirs,
  findExecutable,
  hasExited,
  isAlive,
  listProcesses,
  markOwned,
  type ProcInfo,
  processesReferencing,
  run,
  signalPid,
  tailFile,
  terminate,
  trackChild,
  withDescendants,
} from "./children.js";
import { describeError, GiveUpWaiting, waitFor } from "./wait.js";

export interface DockerEngine extends AsyncDisposable {
  readonly name: string;
  /** The engine's API socket. */
  readonly socketPath: string;
  /** `unix://<socketPath>`, suitable for DOCKER_HOST or `docker -H`. */
  readonly dockerHost: string;
  /** `tcp://127.0.0.1:<port>` when started with the `tcp` option, for DOCKER_HOST. */
  readonly tcpHost: string | undefined;
  /** Client bound to this engine (no request timeout, so event streams stay open). */
  readonly docker: Docker;
  /** Everything the engine owns lives under here; removed by stop(). */
  readonly root: string;
  readonly dataRoot: string;
  readonly execRoot: string;
  /** containerd namespace of this engine's containers. */
  readonly containerdNamespace: string;
  readonly dockerdLog: string;
  readonly containerdLog: string;
  /** PID of the current dockerd; changes on restart. */
  readonly pid: number;
  /** The engine's network namespace (an `ip netns` name) when started with `netns`. */
  readonly netns: string | undefined;
  /**
   * An address of the test's own network that leads to `host:port` as the engine's network sees
   * it: a published port (`127.0.0.1:<published>`) or a container's address. Without `netns`
   * that is the address itself; with it, a port on 127.0.0.1 relayed into the namespace, closed
   * with the engine (or by its dispose).
   */
  reach(host: string, port: number): Promise<ReachedAddress>;
  /** Whether something accepts connections at `host:port` in the engine's network. */
  canConnect(host: string, port: number): Promise<boolean>;
  /** Last lines of the dockerd and containerd logs, for failure messages. */
  logTail(lines?: number): Promise<string>;
  /**
   * Tears the engine down completely: force-removes its containers, stops dockerd and containerd,
   * kills leftover shims, unmounts whatever is still mounted under root and deletes root.
   * Idempotent; throws if something could not be cleaned up.
   */
  stop(): Promise<void>;
  /**
   * Stops dockerd gracefully (it stops the running containers) and starts it again on the same
   * dirs, like `systemctl restart docker`. containerd keeps running; containers and images persist.
   * Event streams of this engine end.
   */
  restart(): Promise<void>;
}

export interface DockerEngineOptions {
  /**
   * Also serve the API on `tcp://127.0.0.1:<port>` (loopback only), besides the unix socket.
   * With `tls`, dockerd runs with `--tlsverify`: clients must present a certificate signed by
   * `caCert`. The unix socket never uses TLS. Without `tls` the port is plain HTTP, which dockerd
   * 20.10 accepts on loopback after a warning and a 1 s pause (its 15 s deprecation delay is for
   * non-loopback addresses only).
   */
  tcp?: {
    port: number;
    /** PEM file paths: the CA that client certificates must chain to, and the server's pair. */
    tls?: { caCert: string; cert: string; key: string };
  };
  /**
   * Run the engine in a network namespace of its own, with the default bridge: for tests of
   * bridge networking (compose's networks, `docker run -p`), which then work whatever the host's
   * firewall says. Reach its addresses with `reach()`. Not combined with `tcp`.
   */
  netns?: boolean;
}

/** Where the test connects to reach an address of an engine's network. */
export interface ReachedAddress extends AsyncDisposable {
  readonly host: string;
  readonly port: number;
}

export interface DockerEngineSet extends AsyncDisposable {
  readonly engines: DockerEngine[];
}

const PING_TIMEOUT_MS = 60_000;
const DOCKERD_STOP_GRACE_MS = 20_000;
const CONTAINERD_STOP_GRACE_MS = 10_000;
const ROOT_PREFIX = "/tmp/fh-";
const SHIM_SOCKET_DIR = "/run/containerd/s";
const NETNS_DIR = "/run/netns";
const RELAY_SCRIPT = fileURLToPath(new URL("./netns-relay.mjs", import.meta.url));

/**
 * Starts `count` engines concurrently, named `<namePrefix>-1` … (default prefix "engine").
 * If any fails to start, the others are torn down before the error is thrown.
 */
export async function startDockerEngines(
  count: number,
  opts: { namePrefix?: string } = {},
): Promise<DockerEngineSet> {
  const prefix = opts.namePrefix ?? "engine";
  const results = await Promise.allSettled(
    Array.from({ length: count }, (_, i) => startDockerEngine(`${prefix}-${i + 1}`)),
  );
  const engines = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  const failures = results.flatMap((r) => (r.status === "rejected" ? [r.reason] : []));
  if (failures.length > 0) {
    await Promise.allSettled(engines.map((e) => e.stop()));
    throw new AggregateError(
      failures,
      `${failures.length} of ${count} docker engines failed to start: ${failures.map(describeError).join(" | ")}`,
    );
  }
  return {
    engines,
    async [Symbol.asyncDispose]() {
      const settled = await Promise.allSettled(engines.map((e) => e.stop()));
      const errors = settled.flatMap((r) => (r.status === "rejected" ? [r.reason] : []));
      if (errors.length > 0) {
        throw new AggregateError(
          errors,
          `teardown of docker engines failed: ${errors.map(describeError).join(" | ")}`,
        );
      }
    },
  };
}

/**
 * Starts one private containerd + dockerd pair and waits until the Docker API answers a ping.
 * The error on failure includes the tails of both daemon logs.
 */
export async function startDockerEngine(
  name: string,
  opts: DockerEngineOptions = {},
): Promise<DockerEngine> {
  if (opts.netns && opts.tcp) throw new Error("startDockerEngine: netns and tcp do not combine");
  const [dockerdBin, containerdBin, nsenterBin] = await Promise.all([
    findExecutable("dockerd", "install it with `apt-get install docker.io`"),
    findExecutable("containerd", "install it with `apt-get install docker.io`"),
    opts.netns ? findExecutable("nsenter", "install util-linux") : undefined,
  ]);
  await sweepStaleRootsOnce();

  const root = await mkdtemp(ROOT_PREFIX);
  // Named after the root, so that a sweep of an abandoned root finds it too.
  const netns = opts.netns ? path.basename(root) : undefined;
  const safeName = name.replace(/[^A-Za-z0-9]+/g, "-").replace(/^-+|-+$/g, "") || "engine";
  const l = {
    root,
    socketPath: path.join(root, "docker.sock"),
    dataRoot: path.join(root, "d"),
    execRoot: path.join(root, "x"),
    pidFile: path.join(root, "dockerd.pid"),
    daemonJson: path.join(root, "daemon.json"),
    dockerdLog: path.join(root, "dockerd.log"),
    ctdDir: path.join(root, "c"),
    ctdSock: path.join(root, "c", "ctd.sock"),
    ctdConfig: path.join(root, "c", "config.toml"),
    containerdLog: path.join(root, "containerd.log"),
    relaySock: path.join(root, "relay.sock"),
    relayLog: path.join(root, "relay.log"),
    namespace: `fh-${safeName}`,
  };
  /** `binary args` as it is spawned: inside the engine's network namespace, if it has one. */
  const inNetns = (binary: string, args: string[]): [string, string[]] =>
    netns && nsenterBin
      ? [nsenterBin, [`--net=${path.join(NETNS_DIR, netns)}`, "--", binary, ...args]]
      : [binary, args];
  // dockerd takes its --tlsverify and certificate defaults from the client's DOCKER_TLS_VERIFY and
  // DOCKER_CERT_PATH; a test that sets them for an agent must not change how engines listen.
  const { DOCKER_TLS_VERIFY: _verify, DOCKER_CERT_PATH: _certs, ...inherited } = process.env;
  const env = {
    ...inherited,
    PATH: `${process.env.PATH ?? ""}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
  };

  await markOwned(root);
  await writeFile(l.daemonJson, "{}\n");
  await mkdir(l.ctdDir);
  await writeFile(
    l.ctdConfig,
    [
      "version = 2",
      `root = ${JSON.stringify(path.join(l.ctdDir, "root"))}`,
      `state = ${JSON.stringify(path.join(l.ctdDir, "state"))}`,
      // dockerd does the same for the containerd it manages itself.
      `disabled_plugins = ["io.containerd.grpc.v1.cri"]`,
      "[grpc]",
      `  address = ${JSON.stringify(l.ctdSock)}`,
      "[ttrpc]",
      `  address = ${JSON.stringify(`${l.ctdSock}.ttrpc`)}`,
      // The default /opt/containerd would be shared between engines.
      `[plugins."io.containerd.internal.v1.opt"]`,
      `  path = ${JSON.stringify(path.join(l.ctdDir, "opt"))}`,
      "",
    ].join("\n"),
  );

  const tcpHost = opts.tcp ? `tcp://127.0.0.1:${opts.tcp.port}` : undefined;
  const tls = opts.tcp?.tls;
  const tcpArgs = tcpHost
    ? [
        "-H",
        tcpHost,
        ...(tls
          ? ["--tlsverify", "--tlscacert", tls.caCert, "--tlscert", tls.cert, "--tlskey", tls.key]
          : []),
      ]
    : [];

  let containerd: ChildProcess | undefined;
  let dockerd: ChildProcess | undefined;
  let relay: ChildProcess | undefined;
  /** What closes each open reach(). */
  const forwarders = new Set<() => Promise<void>>();
  const docker = new Docker({ socketPath: l.socketPath });
  // A separate client with a timeout so a half-started daemon cannot hang a single ping.
  const pinger = new Docker({ socketPath: l.socketPath, timeout: 2_000 });

  const logTail = async (lines = 30): Promise<string> =>
    `--- ${l.dockerdLog} (tail) ---\n${await tailFile(l.dockerdLog, lines)}\n` +
    `--- ${l.containerdLog} (tail) ---\n${await tailFile(l.containerdLog, lines)}`;

  const startContainerd = async (): Promise<void> => {
    const started = spawnListening(
      `containerd of engine ${name}`,
      inNetns(containerdBin, ["--config", l.ctdConfig, "--log-level", "info"]),
      l.containerdLog,
      env,
      l.ctdSock,
      // If this process dies, dockerd gets SIGTERM and stops its containers through containerd;
      // signalling containerd at the same moment would leave dockerd hanging on a dead socket.
      // The idle containerd is removed by the next run's sweep of abandoned roots.
      { signalOnExit: false },
    );
    containerd = started.proc;
    await started.listening;
  };

  const startDockerd = async (): Promise<void> => {
    // A pidfile left by a killed dockerd whose pid got reused would block startup.
    await rm(l.pidFile, { force: true });
    const proc = spawnLogged(
      ...inNetns(dockerdBin, [
        "--config-file",
        l.daemonJson,
        "--containerd",
        l.ctdSock,
        "--containerd-namespace",
        l.namespace,
        "--containerd-plugins-namespace",
        `${l.namespace}-plugins`,
        "--data-root",
        l.dataRoot,
        "--exec-root",
        l.execRoot,
        "--pidfile",
        l.pidFile,
        "-H",
        `unix://${l.socketPath}`,
        ...tcpArgs,
        // In a namespace of its own, the engine gets the default bridge (docker0 there).
        ...(netns ? [] : ["--bridge=none"]),
        "--iptables=false",
        "--ip-masq=false",
        // Caps how long shutdown (and so restart()) waits for containers without a StopTimeout.
        "--shutdown-timeout=5",
        "--label",
        `fleetheal.engine=${name}`,
      ]),
      l.dockerdLog,
      env,
      { signalOnExit: true },
    );
    dockerd = proc;
    await waitFor(
      async () => {
        if (hasExited(proc)) {
          throw new GiveUpWaiting(
            `dockerd exited during startup (code ${proc.exitCode}, signal ${proc.signalCode})`,
          );
        }
        await pinger.ping();
        return true;
      },
      {
        timeoutMs: PING_TIMEOUT_MS,
        intervalMs: 100,
        message: `dockerd ${name} did not answer ping`,
      },
    );
  };

  const startRelay = async (): Promise<void> => {
    const started = spawnListening(
      `the relay of engine ${name}`,
      inNetns(process.execPath, [RELAY_SCRIPT, l.relaySock]),
      l.relayLog,
      env,
      l.relaySock,
      { signalOnExit: true },
    );
    relay = started.proc;
    await started.listening;
  };

  const reach = async (host: string, port: number): Promise<ReachedAddress> => {
    if (!netns) return { host, port, async [Symbol.asyncDispose]() {} };
    const clients = new Set<net.Socket>();
    const server = net.createServer((client) => {
      clients.add(client);
      client.on("close", () => clients.delete(client));
      client.on("error", () => client.destroy());
      client.pause();
      void relayConnect(l.relaySock, host, port).then((upstream) => {
        if (!upstream) {
          client.destroy();
          return;
        }
        upstream.on("error", () => client.destroy());
        client.on("close", () => upstream.destroy());
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address() as net.AddressInfo;
    // Kept-alive connections (fetch keeps them) would hold a plain close() open.
    const close = async () => {
      forwarders.delete(close);
      for (const client of clients) client.destroy();
      await new Promise((resolve) => server.close(resolve));
    };
    forwarders.add(close);
    return { host: "127.0.0.1", port: address.port, [Symbol.asyncDispose]: close };
  };

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= teardown(
      l,
      docker,
      () => dockerd,
      () => containerd,
      async () => {
        await Promise.all([...forwarders].map((close) => close()));
        if (relay && !hasExited(relay)) await terminate(relay, "SIGTERM", 5_000);
      },
    );
    return stopping;
  };

  try {
    if (netns) {
      await createNetns(netns);
      await startRelay();
    }
    await startContainerd();
    await startDockerd();
  } catch (err) {
    const tail = await logTail();
    await stop().catch(() => {});
    throw new Error(`docker engine ${name} failed to start: ${describeError(err)}\n${tail}`, {
      cause: err,
    });
  }

  return {
    name,
    socketPath: l.socketPath,
    dockerHost: `unix://${l.socketPath}`,
    tcpHost,
    docker,
    root,
    dataRoot: l.dataRoot,
    execRoot: l.execRoot,
    containerdNamespace: l.namespace,
    dockerdLog: l.dockerdLog,
    containerdLog: l.containerdLog,
    get pid() {
      return dockerd?.pid ?? -1;
    },
    netns,
    reach,
    async canConnect(host: string, port: number) {
      if (!netns) return tcpAnswers(host, port);
      const socket = await relayConnect(l.relaySock, host, port);
      socket?.destroy();
      return socket !== undefined;
    },
    logTail,
    stop,
    async restart() {
      if (stopping) throw new Error(`docker engine ${name} is stopped`);
      if (dockerd) await terminate(dockerd, "SIGTERM", DOCKERD_STOP_GRACE_MS);
      try {
        if (!containerd || hasExited(containerd)) await startContainerd();
        await startDockerd();
      } catch (err) {
        throw new Error(
          `docker engine ${name} failed to restart: ${describeError(err)}\n${await logTail()}`,
          { cause: err },
        );
      }
    },
    [Symbol.asyncDispose]: stop,
  };
}

/**
 * A fresh network namespace named `name`: loopback up, and bridged frames kept away from
 * iptables (br_netfilter's switches are per namespace; absent when the module is not loaded).
 */
async function createNetns(name: string): Promise<void> {
  await run("ip", ["netns", "add", name]);
  await run("ip", ["-n", name, "link", "set", "lo", "up"]);
  const nsenter = await findExecutable("nsenter", "install util-linux");
  for (const family of ["iptables", "ip6tables", "arptables"]) {
    const file = `/proc/sys/net/bridge/bridge-nf-call-${family}`;
    await run(nsenter, [
      `--net=${path.join(NETNS_DIR, name)}`,
      "--",
      "sh",
      "-c",
      `if [ -e ${file} ]; then echo 0 > ${file}; fi`,
    ]);
  }
}

/**
 * A connection through the relay at `relaySock` to `host:port` inside its namespace, once the
 * relay has connected (its `ok` line read); undefined if it could not.
 */
function relayConnect(
  relaySock: string,
  host: string,
  port: number,
): Promise<net.Socket | undefined> {
  return new Promise((resolve) => {
    const socket = net.createConnection({ path: relaySock });
    let answer = "";
    const fail = () => {
      socket.destroy();
      resolve(undefined);
    };
    socket.once("error", fail);
    socket.once("close", fail);
    socket.once("connect", () => socket.write(`${host} ${port}\n`));
    const onData = (chunk: Buffer) => {
      answer += chunk.toString("latin1");
      const end = answer.indexOf("\n");
      if (end < 0) return;
      socket.off("data", onData);
      socket.off("error", fail);
      socket.off("close", fail);
      socket.pause();
      if (answer.slice(0, end) !== "ok") {
        fail();
        return;
      }
      const rest = answer.slice(end + 1);
      if (rest.length > 0) socket.unshift(Buffer.from(rest, "latin1"));
      resolve(socket);
    };
    socket.on("data", onData);
  });
}

function tcpAnswers(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.createConnection({ host, port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

interface Layout {
  root: string;
  dataRoot: string;
  execRoot: string;
  ctdDir: string;
  ctdSock: string;
  namespace: string;
}

function spawnLogged(
  binary: string,
  args: string[],
  logFile: string,
  env: NodeJS.ProcessEnv,
  opts: { signalOnExit: boolean },
): ChildProcess {
  const fd = openSync(logFile, "a");
  try {
    const proc = spawn(binary, args, { stdio: ["ignore", fd, fd], env });
    if (opts.signalOnExit) trackChild(proc, "SIGTERM");
    proc.once("error", () => {});
    return proc;
  } finally {
    closeSync(fd);
  }
}

/**
 * Spawns `binary args` (see spawnLogged) and, in `listening`, waits until it accepts connections
 * on the unix socket `socket`.
 */
function spawnListening(
  what: string,
  [binary, args]: [string, string[]],
  logFile: string,
  env: NodeJS.ProcessEnv,
  socket: string,
  opts: { signalOnExit: boolean },
): { proc: ChildProcess; listening: Promise<void> } {
  const proc = spawnLogged(binary, args, logFile, env, opts);
  const listening = waitFor(
    async () => {
      if (hasExited(proc)) {
        throw new GiveUpWaiting(`${what} exited during startup (code ${proc.exitCode})`);
      }
      return canConnect(socket);
    },
    { timeoutMs: 30_000, message: `${what} did not listen on ${socket}` },
  ).then(() => {});
  return { proc, listening };
}

function canConnect(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.createConnection({ path: socketPath });
    sock.once("connect", () => {
      sock.destroy();
      resolve(true);
    });
    sock.once("error", () => resolve(false));
  });
}

async function teardown(
  l: Layout,
  docker: Docker,
  dockerd: () => ChildProcess | undefined,
  containerd: () => ChildProcess | undefined,
  closeRelay: () => Promise<void>,
): Promise<void> {
  const problems: string[] = [];
  const attempt = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
    try {
      await fn();
    } catch (err) {
      problems.push(`${what}: ${describeError(err)}`);
    }
  };

  const d = dockerd();
  if (d && !hasExited(d)) {
    // Removing containers through the API first lets dockerd unmount and release everything the
    // normal way; the sweep below only has to deal with what a crashed daemon left behind.
    // A container dockerd cannot remove (an overlay mount leaked by a dockerd restart stays
    // "busy") is not a teardown failure in itself: the sweep below unmounts and deletes it.
    await withTimeout(removeAllContainers(docker, 10_000), 30_000).catch(() => {});
    await attempt("stopping dockerd", () => terminate(d, "SIGTERM", DOCKERD_STOP_GRACE_MS));
  }
  const c = containerd();
  if (c && !hasExited(c)) {
    await attempt("stopping containerd", () => terminate(c, "SIGTERM", CONTAINERD_STOP_GRACE_MS));
  }
  await attempt("stopping the relay", closeRelay);
  problems.push(...(await sweepRoot(l)));
  if (problems.length > 0) {
    throw new Error(
      `teardown of docker engine under ${l.root} incomplete:\n- ${problems.join("\n- ")}`,
    );
  }
}

/**
 * Force-removes every container of an engine. Docker sometimes fails a removal with "device or
 * resource busy" on the overlay mount while a health-check exec is still finishing, or with 409
 * while a removal is already running: those are retried until the container is gone.
 */
export async function removeAllContainers(docker: Docker, timeoutMs = 25_000): Promise<void> {
  const list = await docker.listContainers({ all: true });
  await Promise.all(
    list.map((c) =>
      waitFor(
        async () => {
          try {
            await docker.getContainer(c.Id).remove({ force: true, v: true });
            return true;
          } catch (error) {
            const status = (error as { statusCode?: number }).statusCode;
            if (status === 404) return true;
            if (status === 409 || /busy/i.test(String((error as Error).message))) return false;
            throw new GiveUpWaiting(String((error as Error).message));
          }
        },
        { timeoutMs, intervalMs: 200, message: `could not remove container ${c.Id}` },
      ),
    ),
  );
}

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Processes whose command line refers to a path under `root`: the engine's dockerd, containerd
 * and container shims. Container processes are not included (they are the shims' descendants).
 */
export function processesUnder(root: string): Promise<ProcInfo[]> {
  return processesReferencing(root);
}

/** Mount points at or below `root`, deepest first. */
export async function mountsUnder(root: string): Promise<string[]> {
  const info = await readFile("/proc/self/mountinfo", "utf8");
  const points = info
    .split("\n")
    .map((line) => line.split(" ")[4])
    .filter((p): p is string => p !== undefined)
    .map(unescapeMountPath)
    .filter((p) => p === root || p.startsWith(`${root}/`));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

function unescapeMountPath(p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_, oct: string) =>
    String.fromCharCode(Number.parseInt(oct, 8)),
  );
}

/**
 * Removes whatever a (possibly crashed) engine left under its root. Returns the problems it could
 * not fix instead of throwing, so every step gets its chance.
 */
async function sweepRoot(l: Layout): Promise<string[]> {
  const problems: string[] = [];
  const namespaces = await listDir(path.join(l.execRoot, "runtime-runc"));
  const containerIds = new Set<string>(await listDir(path.join(l.dataRoot, "containers")));

  // runc knows the container cgroups; `delete --force` kills every process in them, which killing
  // the shim alone would not (the container's init would be reparented and keep running).
  const runc = await findExecutable("runc", "install docker.io").catch(() => undefined);
  if (runc) {
    for (const ns of namespaces) {
      const runcRoot = path.join(l.execRoot, "runtime-runc", ns);
      const listed = await run(runc, ["--root", runcRoot, "list", "-q"], { allowFailure: true });
      for (const id of listed.stdout.split("\n").filter(Boolean)) {
        containerIds.add(id);
        await run(runc, ["--root", runcRoot, "delete", "--force", id], { allowFailure: true });
      }
    }
  }

  const owned = await processesReferencing(l.root);
  if (owned.length > 0) {
    const all = await listProcesses();
    const targets = withDescendants(
      all,
      owned.map((p) => p.pid),
    );
    for (const pid of targets) signalPid(pid, "SIGKILL");
    try {
      await waitFor(
        async () => {
          const alive = await Promise.all(targets.map(isAlive));
          return alive.every((a) => !a);
        },
        { timeoutMs: 10_000, message: `processes under ${l.root} survived SIGKILL` },
      );
    } catch (err) {
      problems.push(describeError(err));
    }
  }

  // A shim that was killed leaves its socket behind; containerd names it by this hash.
  for (const ns of new Set([l.namespace, ...namespaces])) {
    for (const id of containerIds) {
      const hash = createHash("sha256")
        .update(path.join(l.ctdSock, ns, id))
        .digest("hex");
      await rm(path.join(SHIM_SOCKET_DIR, hash), { force: true }).catch(() => {});
    }
  }
  // runc removes cgroups on delete; these are only left when processes died some other way.
  for (const id of containerIds) {
    for (const controller of await listDir("/sys/fs/cgroup")) {
      await rmdir(path.join("/sys/fs/cgroup", controller, "docker", id)).catch(() => {});
    }
  }

  try {
    await waitFor(
      async () => {
        const mounts = await mountsUnder(l.root);
        for (const m of mounts) {
          // Lazy unmount: a busy mount is detached now and released when its last user goes.
          await run("umount", ["-l", m], { allowFailure: true });
        }
        return (await mountsUnder(l.root)).length === 0;
      },
      {
        timeoutMs: 10_000,
        intervalMs: 200,
        message: `mounts under ${l.root} could not be unmounted`,
      },
    );
  } catch (err) {
    problems.push(`${describeError(err)}: ${(await mountsUnder(l.root)).join(", ")}`);
  }

  problems.push(...(await removeNetns(path.basename(l.root))));

  try {
    await waitFor(
      async () => {
        await rm(l.root, { recursive: true, force: true });
        return !(await exists(l.root));
      },
      { timeoutMs: 10_000, intervalMs: 200, message: `could not remove ${l.root}` },
    );
  } catch (err) {
    problems.push(describeError(err));
  }
  return problems;
}

/**
 * Deletes the network namespace `name` if there is one, after killing every process still in it
 * (a docker-proxy that outlived a killed dockerd, say). Returns the problems, as sweepRoot does.
 */
async function removeNetns(name: string): Promise<string[]> {
  const file = path.join(NETNS_DIR, name);
  let inode: number;
  try {
    inode = (await stat(file)).ino;
  } catch {
    return [];
  }
  const problems: string[] = [];
  const inside = async (): Promise<number[]> => {
    const pids: number[] = [];
    for (const entry of await listDir("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      const ns = await readlink(`/proc/${entry}/ns/net`).catch(() => "");
      if (ns === `net:[${inode}]`) pids.push(Number(entry));
    }
    return pids;
  };
  for (const pid of await inside()) signalPid(pid, "SIGKILL");
  try {
    await waitFor(async () => (await inside()).length === 0, {
      timeoutMs: 10_000,
      message: `processes in network namespace ${name} survived SIGKILL`,
    });
  } catch (err) {
    problems.push(describeError(err));
  }
  const { code, stderr } = await run("ip", ["netns", "delete", name], { allowFailure: true });
  if (code !== 0) problems.push(`ip netns delete ${name}: ${stderr.trim()}`);
  return problems;
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

let staleSweep: Promise<void> | undefined;

// Engines of a killed test process keep running and hold mounts; the first engine started by a
// later process cleans them up.

function sweepStaleRootsOnce(): Promise<void> {
  staleSweep ??= (async () => {
    for (const root of await findAbandonedDirs(
      path.dirname(ROOT_PREFIX),
      path.basename(ROOT_PREFIX),
    )) {
      await sweepRoot({
        root,
        dataRoot: path.join(root, "d"),
        execRoot: path.join(root, "x"),
        ctdDir: path.join(root, "c"),
        ctdSock: path.join(root, "c", "ctd.sock"),
        namespace: "",
      });
    }
    // A namespace whose root is gone (removed, but the namespace's delete failed).
    for (const name of await listDir(NETNS_DIR)) {
      const root = path.join(path.dirname(ROOT_PREFIX), name);
      if (name.startsWith(path.basename(ROOT_PREFIX)) && !(await exists(root))) {
        await removeNetns(name);
      }
    }
  })().catch(() => {});
  return staleSweep;
}
