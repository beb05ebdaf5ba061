// The nats-server process of `fleetheal up`: started behind a watchdog so that it cannot outlive
// `up` (even a SIGKILLed one), stopped within a bound, and found again through its pid file when
// an earlier `up` left it running anyway.

import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { describeError } from "../common/errors.js";
import type { Logger } from "../common/logger.js";

/** The server's configuration, written by `up` at every start, in the data directory. */
export const CONFIG_FILE = "nats-server.conf";

/** The pid file the server writes (its `pid_file` option), in the data directory. */
export const PID_FILE = "nats-server.pid";

/** How long a leftover server gets to stop on SIGTERM before it is killed. */
const LEFTOVER_TERM_MS = 5_000;
/** How long an abandoned server gets to stop on SIGTERM before it is killed, synchronously. */
const ABANDON_TERM_MS = 2_000;

/**
 * The watchdog, a POSIX shell (any image that runs Node.js has one; no setpriv or prctl needed).
 * Its stdin is a pipe from `up`, written by nobody: it reads end-of-file only once `up` has
 * exited, however it exited (SIGKILL included), since the kernel closes the pipe then. The server
 * runs as its child; a watcher reads the pipe and, at its end, stops the server (SIGTERM, then
 * SIGKILL after 5 s). When the server exits first, the watcher is ended and the shell exits with
 * the server's status. The server itself gets neither end of the pipe.
 */
const WATCHDOG = [
  "exec 3<&0",
  '"$@" 3<&- &',
  "server=$!",
  '{ while read -r _ <&3; do :; done; kill -TERM "$server" 2>/dev/null; sleep 5; kill -KILL "$server" 2>/dev/null; } &',
  "watcher=$!",
  "exec 3<&-",
  'wait "$server"',
  "status=$?",
  'kill "$watcher" 2>/dev/null',
  'exit "$status"',
].join("\n");

/** What the shell exits with when it cannot find or run the server's binary. */
export const NOT_RUNNABLE_CODES: ReadonlySet<number> = new Set([126, 127]);

/** The watchdog's shell, with the server, `binary -c configFile`, as its child. */
export interface WatchedServer {
  /** The watchdog; the leader of a process group of its own (the watchdog and the server). */
  child: ChildProcess;
  /** Resolves with the watchdog's exit code once it (and so the server) has exited. */
  exited: Promise<number | null>;
}

/**
 * Starts `binary -c configFile` behind the watchdog, in a process group of its own: a Ctrl-C in
 * the terminal reaches `up` alone, which stops the server last, after its roles have drained.
 */
export function spawnWatchedServer(binary: string, configFile: string): WatchedServer {
  const child = spawn("sh", ["-c", WATCHDOG, "fleetheal-nats-watchdog", binary, "-c", configFile], {
    stdio: ["pipe", "pipe", "pipe"],
    detached: true,
  });
  // Nothing is ever written; an error on the pipe (the watchdog gone) must not crash `up`.
  child.stdin?.on("error", () => {});
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, exited };
}

/** The pid in a pid file's text, or undefined when it holds none. */
export function parsePid(text: string): number | undefined {
  const pid = Number(text.trim());
  return Number.isSafeInteger(pid) && pid > 1 ? pid : undefined;
}

/**
 * Whether a process's command line (`/proc/<pid>/cmdline`, split at NUL) is a server started
 * with `configFile`: a pid that an unrelated process took over after the server died is not.
 */
export function runsConfig(argv: readonly string[], configFile: string): boolean {
  return argv.some((arg, i) => arg === "-c" && argv[i + 1] === configFile);
}

/** The server pid that the pid file in `dataDir` names, if any. */
export function readPidFile(dataDir: string): number | undefined {
  try {
    return parsePid(readFileSync(join(dataDir, PID_FILE), "utf8"));
  } catch {
    return undefined;
  }
}

export function removePidFile(dataDir: string): void {
  rmSync(join(dataDir, PID_FILE), { force: true });
}

/** The command line of a live process; undefined when it is gone (or a zombie, which has none). */
function commandLine(pid: number): string[] | undefined {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
    return argv.length > 0 ? argv : undefined;
  } catch {
    return undefined;
  }
}

/** True while `pid` is a server of `configFile` (always false without /proc). */
export function isServerOf(pid: number, configFile: string): boolean {
  const argv = commandLine(pid);
  return argv !== undefined && runsConfig(argv, configFile);
}

/**
 * Stops a server that an earlier `up` on this data directory left running (its watchdog killed
 * too, or a crash between start and pid file): the pid file names it, and its command line must
 * name our configuration file, so that a process that has since taken the pid is never touched.
 * Returns the pid it stopped. Without /proc the command line cannot be checked, and nothing is
 * killed: the port check that follows says the port is in use.
 */
export async function stopLeftoverServer(
  dataDir: string,
  configFile: string,
  log: Logger,
): Promise<number | undefined> {
  const pid = readPidFile(dataDir);
  if (pid === undefined) return undefined;
  if (!isServerOf(pid, configFile)) {
    removePidFile(dataDir);
    return undefined;
  }
  log.warn({ pid }, "stopping the nats-server that an earlier fleetheal up left running");
  for (const [signal, waitMs] of [
    ["SIGTERM", LEFTOVER_TERM_MS],
    ["SIGKILL", LEFTOVER_TERM_MS],
  ] as const) {
    signalPid(pid, signal, log);
    const deadline = Date.now() + waitMs;
    while (isServerOf(pid, configFile) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    if (!isServerOf(pid, configFile)) break;
  }
  removePidFile(dataDir);
  return pid;
}

/**
 * Stops the server now, synchronously, for a process about to exit without a graceful stop:
 * SIGTERM to the server, a short wait, then SIGKILL to the watchdog's whole group. Blocking the
 * event loop is fine here: nothing else runs any more.
 */
export function killServerNow(watched: WatchedServer, serverPid: number | undefined): void {
  const { child } = watched;
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  if (serverPid !== undefined && signalPid(serverPid, "SIGTERM")) {
    const pause = new Int32Array(new SharedArrayBuffer(4));
    const deadline = Date.now() + ABANDON_TERM_MS;
    // The watchdog reaps the server as soon as it exits, so the pid stops answering then.
    while (signalPid(serverPid, 0) && Date.now() < deadline) Atomics.wait(pause, 0, 0, 20);
  }
  signalPid(-child.pid, "SIGKILL");
}

/** Sends a signal; false when there is no such process (any other failure is logged). */
export function signalPid(pid: number, signal: NodeJS.Signals | 0, log?: Logger): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") {
      log?.warn({ pid, signal, err: describeError(error) }, "could not signal nats-server");
    }
    return false;
  }
}
