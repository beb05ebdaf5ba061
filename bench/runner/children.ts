// A benchmark's own child programs (a reference consumer, a server under test) run in processes
// of their own, so that they never share an event loop or a CPU time slice with the load, and
// their CPU and memory are their own. They talk to the parent with typed IPC messages.

import { type ChildProcess, fork } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The checkout the benchmarks run from. */
export const BENCH_REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

/** A message between a benchmark and its child program: `type` says which. */
export interface Message {
  type: string;
}

export interface ForkOptions {
  /** Node's options for the child: `["--import", "tsx"]` for a TypeScript program. */
  execArgv: string[];
  /** Added to this process's environment. */
  env?: Record<string, string>;
}

/** Starts `script` as a child program with an IPC channel; its output goes to this process's. */
export function forkProgram(script: string, options: ForkOptions): ChildProcess {
  return fork(script, [], {
    cwd: BENCH_REPO,
    execArgv: options.execArgv,
    env: { ...process.env, ...options.env },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
}

/**
 * The child's next message of type `type`. Rejects if the child exits first, so that a crashed
 * child fails the benchmark instead of hanging it.
 */
export function nextMessage<M extends Message, T extends M["type"]>(
  child: ChildProcess,
  type: T,
): Promise<Extract<M, { type: T }>> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: M) => {
      if (m.type !== type) return;
      done();
      resolve(m as Extract<M, { type: T }>);
    };
    const onExit = (code: number | null) => {
      done();
      reject(new Error(`child ${child.pid} exited with ${code} before it sent ${type}`));
    };
    const done = () => {
      child.off("message", onMessage);
      child.off("exit", onExit);
    };
    child.on("message", onMessage);
    child.once("exit", onExit);
  });
}

/** Sends `request` to the child and waits for its answer of type `answer`. */
export function ask<M extends Message, T extends M["type"]>(
  child: ChildProcess,
  request: Message,
  answer: T,
): Promise<Extract<M, { type: T }>> {
  const answered = nextMessage<M, T>(child, answer);
  child.send(request);
  return answered;
}

/** Sends this child program's messages to its parent benchmark. */
export function toParent(message: Message): void {
  process.send?.(message);
}

/** The parent's next message to this child program. */
export function fromParent<M extends Message>(): Promise<M> {
  return new Promise((resolve) => process.once("message", resolve));
}
