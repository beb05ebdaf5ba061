// The load generator's side of the server children: start one as deployed, ask it, stop it.

import { type ChildProcess, fork } from "node:child_process";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { CONFIG, REPO, REPO_ENV } from "./config.js";
import type { GatewayInfo, ReferenceInfo, ToChild, ToParent } from "./protocol.js";

/** Each child program compiled, as the servers run it (see compile.ts). */
const PROGRAMS = {
  gateway: path.join(REPO, "dist", "bench", "gateway", "gateway-server.js"),
  reference: path.join(REPO, "dist", "bench", "gateway", "reference-server.js"),
};

export interface Server {
  name: "gateway" | "reference";
  child: ChildProcess;
  port: number;
  info: GatewayInfo | ReferenceInfo;
}

export async function startServer(
  name: Server["name"],
  options: { onHello?: ToChild; env?: Record<string, string> } = {},
): Promise<Server> {
  const { onHello } = options;
  // Plain node, as deployed: an explicit execArgv keeps this process's tsx loader out of the
  // child. --expose-gc only lets the child settle the heap before it reports its memory.
  const execArgv = ["--expose-gc"];
  if (name === "gateway") execArgv.push(...CONFIG.gatewayNodeFlags);
  if (name === "gateway" && CONFIG.cpuProfDir) {
    await mkdir(CONFIG.cpuProfDir, { recursive: true });
    execArgv.push("--cpu-prof", "--cpu-prof-dir", CONFIG.cpuProfDir);
  }
  const child = fork(PROGRAMS[name], [], {
    cwd: REPO,
    execArgv,
    env: { ...process.env, ...options.env, [REPO_ENV]: REPO },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const ready = new Promise<ToParent & { type: "ready" }>((resolve, reject) => {
    const onMessage = (m: ToParent) => {
      if (m.type === "hello" && onHello) child.send(onHello);
      if (m.type === "ready") {
        child.off("message", onMessage);
        resolve(m);
      }
    };
    child.on("message", onMessage);
    child.once("exit", (code) =>
      reject(new Error(`${name} exited with ${code} before it was ready`)),
    );
  });
  const m = await ready;
  return { name, child, port: m.port, info: m.info };
}

/** Sends `request` and waits for the child's answer of type `answer`. */
export function ask<T extends ToParent["type"]>(
  server: Server,
  request: ToChild,
  answer: T,
): Promise<Extract<ToParent, { type: T }>> {
  return new Promise((resolve) => {
    const onMessage = (m: ToParent) => {
      if (m.type === answer) {
        server.child.off("message", onMessage);
        resolve(m as Extract<ToParent, { type: T }>);
      }
    };
    server.child.on("message", onMessage);
    server.child.send(request);
  });
}

export async function stopServer(server: Server): Promise<void> {
  if (server.child.exitCode !== null) return;
  const exited = new Promise((resolve) => server.child.once("exit", resolve));
  server.child.send({ type: "exit" } satisfies ToChild);
  await Promise.race([exited, delay(10_000)]);
  if (server.child.exitCode === null) server.child.kill("SIGKILL");
}
