// Internal helpers shared by the launchers in this folder: waiting for child exit, escalating
// signals, reading log tails and scanning /proc. Not part of the rig's public surface.

import type { ChildProcess } from "node:child_process";
import { execFile } from "node:child_process";
import { constants as fsConstants } from "node:fs";
import { access, open, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { waitFor } from "./wait.js";

export interface ExitStatus {
  code: number | null;
  signal: string | null;
}

/** Resolves when the child has exited (immediately if it already has). */
export function exitOf(child: ChildProcess): Promise<ExitStatus> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => {
    child.once("exit", (code, signal) => resolve({ code, signal }));
  });
}

export function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/**
 * Sends `signal`, waits up to `graceMs` for exit, then SIGKILLs and waits again. Safe to call on
 * an already exited child.
 */
export async function terminate(
  child: ChildProcess,
  signal: NodeJS.Signals,
  graceMs: number,
): Promise<ExitStatus> {
  const exited = exitOf(child);
  if (hasExited(child)) return exited;
  child.kill(signal);
  let timer: NodeJS.Timeout | undefined;
  const graceOver = new Promise<"grace-over">((resolve) => {
    timer = setTimeout(() => resolve("grace-over"), graceMs);
  });
  const first = await Promise.race([exited, graceOver]);
  clearTimeout(timer);
  if (first !== "grace-over") return first;
  child.kill("SIGKILL");
  return exited;
}

// Vitest ends its fork workers with SIGTERM, which skips 'exit' handlers, and a worker can also be
// torn down with a test still hanging. Children would then outlive it holding ports and mounts, so
// on the way out each tracked child gets a last signal; whatever that leaves behind (dirs, mounts)
// is swept by the next run (see sweepAbandonedDirs).
const tracked = new Map<ChildProcess, NodeJS.Signals>();
let exitHooksInstalled = false;

function signalTracked(): void {
  for (const [child, signal] of tracked) {
    try {
      child.kill(signal);
    } catch {
      // Best effort only: this process is going away.
    }
  }
}

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.once("exit", signalTracked);
  for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"] as const) {
    const onSignal = (): void => {
      signalTracked();
      // Re-raise so the default action (or other listeners) still ends the process.
      process.removeListener(sig, onSignal);
      process.kill(process.pid, sig);
    };
    process.once(sig, onSignal);
  }
}

/** Registers `child` to receive `signal` if this process exits while the child still runs. */
export function trackChild(child: ChildProcess, signal: NodeJS.Signals): void {
  tracked.set(child, signal);
  child.once("exit", () => tracked.delete(child));
  installExitHooks();
}

const OWNER_FILE = "owner.pid";

const sweeps = new Map<string, Promise<void>>();

/**
 * Servers of a test process that was killed before disposing keep running; their dirs (under
 * the temp dir, named with `prefix`) say whose they were. The first server a later process
 * starts kills what still references such a dir and removes it; once per prefix per process.
 */
export function sweepAbandonedOnce(prefix: string, what: string): Promise<void> {
  let sweep = sweeps.get(prefix);
  if (!sweep) {
    sweep = (async () => {
      for (const dir of await findAbandonedDirs(os.tmpdir(), prefix)) {
        const procs = await processesReferencing(dir);
        for (const p of procs) signalPid(p.pid, "SIGKILL");
        await waitFor(
          async () => (await Promise.all(procs.map((p) => isAlive(p.pid)))).every((a) => !a),
          { timeoutMs: 5_000, message: `abandoned ${what} under ${dir} did not die` },
        );
        await rm(dir, { recursive: true, force: true });
      }
    })().catch(() => {});
    sweeps.set(prefix, sweep);
  }
  return sweep;
}

/** Records this process as the owner of `dir`, for {@link findAbandonedDirs}. */
export async function markOwned(dir: string): Promise<void> {
  await writeFile(path.join(dir, OWNER_FILE), String(process.pid));
}

/**
 * Dirs in `parent` named `prefix*` whose owner (see {@link markOwned}) is no longer alive: left by
 * a test process that was killed before its disposers ran. Dirs of live owners (a concurrent run)
 * and dirs without an owner file are never returned.
 */
export async function findAbandonedDirs(parent: string, prefix: string): Promise<string[]> {
  const out: string[] = [];
  let entries: string[];
  try {
    entries = await readdir(parent);
  } catch {
    return out;
  }
  for (const entry of entries) {
    if (!entry.startsWith(prefix)) continue;
    const dir = path.join(parent, entry);
    let owner: number;
    try {
      owner = Number((await readFile(path.join(dir, OWNER_FILE), "utf8")).trim());
    } catch {
      continue;
    }
    if (Number.isInteger(owner) && owner > 0 && !(await isAlive(owner))) out.push(dir);
  }
  return out;
}

/**
 * Live processes whose command line refers to `dir` or a path below it (a daemon's flags, a
 * shim's socket address).
 */
export async function processesReferencing(dir: string): Promise<ProcInfo[]> {
  return (await listProcesses()).filter((p) => p.argv.some((a) => refersTo(a, dir)));
}

function refersTo(arg: string, dir: string): boolean {
  let i = arg.indexOf(dir);
  while (i >= 0) {
    const next = arg[i + dir.length];
    if (next === undefined || next === "/" || next === " " || next === ",") return true;
    i = arg.indexOf(dir, i + 1);
  }
  return false;
}

/** The last `lines` lines of a text file, or a note saying why it could not be read. */
export async function tailFile(file: string, lines = 40): Promise<string> {
  try {
    const fh = await open(file, "r");
    try {
      const { size } = await fh.stat();
      // Log files can grow large (dockerd at debug level); only the end matters here.
      const length = Math.min(size, 64 * 1024);
      const buf = Buffer.alloc(length);
      await fh.read(buf, 0, length, size - length);
      const all = buf.toString("utf8").split("\n");
      if (all.at(-1) === "") all.pop();
      return all.slice(-lines).join("\n");
    } finally {
      await fh.close();
    }
  } catch (err) {
    return `<could not read ${file}: ${String(err)}>`;
  }
}

/**
 * True if `pid` names a live process. Zombies count as dead: PID 1 in some sandboxes reaps
 * orphans late, and a zombie holds no resources that teardown cares about.
 */
export async function isAlive(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    // The state follows the parenthesised comm, which may itself contain spaces or parens.
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

export interface ProcInfo {
  pid: number;
  ppid: number;
  argv: string[];
}

/** All live (non-zombie) processes visible in /proc, with their argv. */
export async function listProcesses(): Promise<ProcInfo[]> {
  const out: ProcInfo[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    try {
      const [cmdline, stat] = await Promise.all([
        readFile(`/proc/${pid}/cmdline`, "utf8"),
        readFile(`/proc/${pid}/stat`, "utf8"),
      ]);
      const afterComm = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const state = afterComm[0];
      if (state === "Z" || state === "X") continue;
      out.push({
        pid,
        ppid: Number(afterComm[1]),
        argv: cmdline.split("\0").filter((s) => s.length > 0),
      });
    } catch {
      // Raced with the process exiting.
    }
  }
  return out;
}

/** `pids` plus all their descendants, children listed before parents (kill order). */
export function withDescendants(all: ProcInfo[], pids: number[]): number[] {
  const children = new Map<number, number[]>();
  for (const p of all) {
    const list = children.get(p.ppid) ?? [];
    list.push(p.pid);
    children.set(p.ppid, list);
  }
  const order: number[] = [];
  const seen = new Set<number>();
  const visit = (pid: number): void => {
    if (seen.has(pid)) return;
    seen.add(pid);
    for (const c of children.get(pid) ?? []) visit(c);
    order.push(pid);
  };
  for (const pid of pids) visit(pid);
  return order;
}

/** Sends a signal, ignoring "no such process". */
export function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
  }
}

/**
 * Runs a command to completion; rejects with its stderr on a non-zero exit. `env` replaces the
 * test process's environment rather than adding to it.
 */
export function run(
  command: string,
  args: string[],
  opts: { allowFailure?: boolean; timeoutMs?: number; cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      {
        timeout: opts.timeoutMs ?? 30_000,
        maxBuffer: 16 * 1024 * 1024,
        ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
        ...(opts.env === undefined ? {} : { env: opts.env }),
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
        if (err && !opts.allowFailure) {
          reject(
            new Error(`${command} ${args.join(" ")} failed (${code}): ${stderr || err.message}`, {
              cause: err,
            }),
          );
          return;
        }
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/**
 * Absolute path of an executable, searching PATH and the sbin directories that a non-login root
 * shell may lack. Throws with an install hint if it is missing.
 */
export async function findExecutable(name: string, installHint: string): Promise<string> {
  const dirs = [
    ...(process.env.PATH ?? "").split(path.delimiter).filter(Boolean),
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
  ];
  for (const dir of dirs) {
    const candidate = path.join(dir, name);
    try {
      await access(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // Keep looking.
    }
  }
  throw new Error(`${name} not found in PATH or sbin directories; ${installHint}`);
}
