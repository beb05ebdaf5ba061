// Product processes (agents, gateway, CLI) run as real child processes; their output is kept as
// lines and parsed pino JSON so tests can wait for what a process says rather than for time.

import { spawn } from "node:child_process";
import type { Readable } from "node:stream";
import { type ExitStatus, exitOf, terminate, trackChild } from "./children.js";

export interface StartProcessOptions {
  /** Prefix for dumped output and error messages. */
  name: string;
  command: string;
  args: string[];
  /** Added to (and overriding) the test process's environment. */
  env?: Record<string, string>;
  cwd?: string;
}

export interface ManagedProcess extends AsyncDisposable {
  readonly name: string;
  readonly pid: number;
  /** stdout and stderr lines, in arrival order. */
  readonly lines: string[];
  /** The lines that parse as JSON objects (pino logs), in arrival order. */
  readonly json: Array<Record<string, unknown>>;
  /** Resolves with the first line (past or future) matching `pred`; fails early if the process exits. */
  waitForLine(
    pred: (line: string) => boolean,
    timeoutMs: number,
    message?: string,
  ): Promise<string>;
  /** Like waitForLine, over the JSON lines. */
  waitForJson(
    pred: (obj: Record<string, unknown>) => boolean,
    timeoutMs: number,
    message?: string,
  ): Promise<Record<string, unknown>>;
  /** Sends `signal` (default SIGTERM), SIGKILLs after `graceMs` (default 10 s), resolves on exit. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<ExitStatus>;
  /** SIGKILL and wait for exit. */
  kill(): Promise<void>;
  /** Resolves when the process has exited and its output has been read. */
  readonly exited: Promise<ExitStatus>;
}

const DUMP_LINES = 50;

/**
 * Spawns a process with piped output and collects its lines. On dispose it is stopped (SIGTERM,
 * then SIGKILL); its last lines are printed to stderr if FLEETHEAL_TEST_LOGS=1 or if it exited
 * without being asked to.
 */
export async function startProcess(opts: StartProcessOptions): Promise<ManagedProcess> {
  const child = spawn(opts.command, opts.args, {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  trackChild(child, "SIGKILL");

  await new Promise<void>((resolve, reject) => {
    child.once("spawn", resolve);
    child.once("error", (err) =>
      reject(new Error(`${opts.name}: failed to spawn ${opts.command}: ${err.message}`)),
    );
  });

  const lines: string[] = [];
  const json: Array<Record<string, unknown>> = [];
  const listeners = new Set<() => void>();
  let stopRequested = false;
  let exitedUnasked = false;
  child.once("exit", () => {
    exitedUnasked = !stopRequested;
  });

  const addLine = (line: string): void => {
    lines.push(line);
    if (line.startsWith("{")) {
      try {
        const parsed: unknown = JSON.parse(line);
        if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) {
          json.push(parsed as Record<string, unknown>);
        }
      } catch {
        // Not JSON after all; it stays in `lines`.
      }
    }
    for (const l of listeners) l();
  };

  const collect = (stream: Readable): Promise<void> => {
    let partial = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      partial += chunk;
      const parts = partial.split("\n");
      partial = parts.pop() ?? "";
      for (const p of parts) addLine(p.replace(/\r$/, ""));
    });
    return new Promise((resolve) => {
      stream.once("close", () => {
        if (partial) addLine(partial);
        partial = "";
        resolve();
      });
    });
  };
  const outputDone = Promise.all([collect(child.stdout), collect(child.stderr)]);

  // A grandchild that inherited the pipes can keep them open after the process itself exited;
  // the exit status must not wait for it longer than a moment.
  const exited: Promise<ExitStatus> = exitOf(child).then(async (status) => {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      outputDone,
      new Promise((r) => {
        timer = setTimeout(r, 2_000);
      }),
    ]);
    clearTimeout(timer);
    for (const l of listeners) l();
    return status;
  });

  const tail = (n = 15): string =>
    lines
      .slice(-n)
      .map((l) => `  ${l}`)
      .join("\n");

  function waitForMatch<T>(
    items: T[],
    pred: (item: T) => boolean,
    timeoutMs: number,
    what: string,
  ): Promise<T> {
    const found = items.find(pred);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      let settled = false;
      const finish = (fn: () => void): void => {
        if (settled) return;
        settled = true;
        listeners.delete(check);
        clearTimeout(timer);
        fn();
      };
      const check = (): void => {
        const hit = items.find(pred);
        if (hit !== undefined) finish(() => resolve(hit));
      };
      const timer = setTimeout(
        () =>
          finish(() =>
            reject(
              new Error(
                `${opts.name}: ${what} (not seen within ${timeoutMs} ms)\nlast output:\n${tail()}`,
              ),
            ),
          ),
        timeoutMs,
      );
      listeners.add(check);
      // Once the process is gone no new line can come; failing now beats waiting for the timeout.
      void exited.then((status) => {
        check();
        finish(() =>
          reject(
            new Error(
              `${opts.name}: ${what} (process exited with code ${status.code}, signal ${status.signal})\nlast output:\n${tail()}`,
            ),
          ),
        );
      });
    });
  }

  const stop = async (
    signal: NodeJS.Signals = "SIGTERM",
    graceMs = 10_000,
  ): Promise<ExitStatus> => {
    stopRequested = true;
    await terminate(child, signal, graceMs);
    return exited;
  };

  let disposed = false;
  const managed: ManagedProcess = {
    name: opts.name,
    pid: child.pid as number,
    lines,
    json,
    exited,
    waitForLine(pred, timeoutMs, message) {
      return waitForMatch(lines, pred, timeoutMs, message ?? "expected output line");
    },
    waitForJson(pred, timeoutMs, message) {
      return waitForMatch(json, pred, timeoutMs, message ?? "expected JSON log line");
    },
    stop,
    async kill() {
      stopRequested = true;
      await terminate(child, "SIGKILL", 0);
      await exited;
    },
    async [Symbol.asyncDispose]() {
      if (disposed) return;
      disposed = true;
      const status = await stop();
      const unexpected = exitedUnasked;
      if (process.env.FLEETHEAL_TEST_LOGS === "1" || unexpected) {
        const header = unexpected
          ? `exited unexpectedly (code ${status.code}, signal ${status.signal})`
          : `stopped (code ${status.code}, signal ${status.signal})`;
        const body = lines
          .slice(-DUMP_LINES)
          .map((l) => `[${opts.name}] ${l}`)
          .join("\n");
        process.stderr.write(`[${opts.name}] ${header}; last ${DUMP_LINES} lines:\n${body}\n`);
      }
    },
  };
  return managed;
}
