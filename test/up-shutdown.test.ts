// `fleetheal up` never leaves its nats-server behind: not when a stop comes during a restart that
// Docker is still waiting out, not when `up` is SIGKILLed, and a server an earlier `up` left
// running anyway is stopped by the next one (issue 18, "Shutdown"). Real dockerd, real
// nats-server, `up` as its own process.

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { STOP_TIMEOUT_MS } from "../common/lifecycle.js";
import { HealthReport } from "../gateway/view/health-report.js";
import {
  isAlive,
  listProcesses,
  type ProcInfo,
  terminate,
  trackChild,
} from "./support/children.js";
import {
  type DockerEventRecorder,
  makeUnhealthyUntilRestarted,
  recordDockerEvents,
  runTestContainer,
  waitForHealth,
} from "./support/containers.js";
import { type DockerEngine, startDockerEngine } from "./support/dockerd.js";
import { startUpProcess } from "./support/fleetheal.js";
import { freePort } from "./support/ports.js";
import type { ManagedProcess } from "./support/process.js";
import { waitFor } from "./support/wait.js";

let engine: DockerEngine;
let recorder: DockerEventRecorder;
const dirs: string[] = [];

beforeAll(async () => {
  engine = await startDockerEngine("up-shutdown");
  recorder = await recordDockerEvents(engine);
});

afterAll(async () => {
  recorder?.close();
  await engine?.[Symbol.asyncDispose]();
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function dataDirFor(name: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `fleetheal-up-${name}-`));
  dirs.push(dir);
  return dir;
}

/** Starts `up` on `dataDir` and waits for its banner; returns it with its gateway's URL. */
async function startUp(
  dataDir: string,
  natsPort: number,
): Promise<{ up: ManagedProcess; url: string }> {
  const up = await startUpProcess({ dockerHost: engine.dockerHost, dataDir, natsPort });
  const banner = await up.waitForLine((l) => l.includes(" is up on host solo: "), 30_000);
  const url = /(http:\/\/\S+)\/health/.exec(banner)?.[1] as string;
  return { up, url };
}

/** Waits until up's /health lists its own host as up. */
async function hostIsUp(url: string): Promise<void> {
  await waitFor(
    async () => {
      const body = HealthReport.parse(await (await fetch(`${url}/health`)).json());
      return body.hosts.some((h) => h.id === "solo" && h.status === "up");
    },
    { timeoutMs: 20_000, message: "/health never listed host 'solo' as up" },
  );
}

/** The nats-server processes (not their watchdogs) started with a configuration in `dataDir`. */
async function natsServersOf(dataDir: string): Promise<ProcInfo[]> {
  return (await listProcesses()).filter(
    (p) =>
      p.argv[0]?.endsWith("nats-server") &&
      p.argv.includes("-c") &&
      p.argv.some((a) => a.startsWith(dataDir)),
  );
}

/** Every process, watchdog or server, that runs with a configuration in `dataDir`. */
async function processesOf(dataDir: string): Promise<ProcInfo[]> {
  return (await listProcesses()).filter((p) => p.argv.some((a) => a.startsWith(dataDir)));
}

describe("fleetheal up shutdown", () => {
  // PID 1 ignores SIGTERM, so Docker's restart waits out the container's whole stop timeout:
  // longer than up's own stop timeout (the restart is abandoned), or short enough that it ends,
  // and the agent's reply with it, while up is stopping.
  it.each([
    { stopTimeout: 30, restart: "that Docker is still waiting out", endsDuringStop: false },
    { stopTimeout: 4, restart: "that ends while it stops", endsDuringStop: true },
  ])(
    "stops within its stop timeout during a restart $restart, and a second up on the same directory and port comes up",
    async ({ stopTimeout, endsDuringStop }) => {
      const dataDir = await dataDirFor("slow-stop");
      const natsPort = await freePort();
      const first = await startUp(dataDir, natsPort);
      try {
        await hostIsUp(first.url);
        const c = await runTestContainer(engine, {
          name: `stubborn-${stopTimeout}`,
          labels: { autoheal: "true", "autoheal.stop.timeout": String(stopTimeout) },
          create: {
            Cmd: ["sh", "-c", 'trap "" TERM; touch /tmp/healthy; while :; do sleep 1; done'],
          },
        });
        await waitForHealth(engine, c.id, "healthy", 20_000);
        await first.up.waitForLine(
          (l) => l.includes(`Auto-monitoring enabled for container 'stubborn-${stopTimeout}'`),
          15_000,
        );
        // Docker's restart begins with SIGTERM (a `kill` event), which PID 1 ignores.
        await makeUnhealthyUntilRestarted(engine, recorder, c.id, {
          action: "kill",
          timeoutMs: 30_000,
          message: "up did not start restarting the unhealthy container",
        });
        expect(await natsServersOf(dataDir)).toHaveLength(1);

        // SIGTERM to up's process alone, as a supervisor sends it.
        const signalled = Date.now();
        const exit = await first.up.stop("SIGTERM", STOP_TIMEOUT_MS + 10_000);
        const stopMs = Date.now() - signalled;
        expect(exit).toEqual({ code: 0, signal: null });
        expect(stopMs).toBeLessThan(STOP_TIMEOUT_MS);
        // Either the restart was still in flight when up exited (abandoned, not waited for), or
        // it ended while up was stopping.
        expect(recorder.count((e) => e.id === c.id && e.action === "restart")).toBe(
          endsDuringStop ? 1 : 0,
        );
        expect(await processesOf(dataDir)).toEqual([]);

        const second = await startUp(dataDir, natsPort);
        try {
          await hostIsUp(second.url);
          // The abandoned restart is finished (by Docker, or healed again): the container is
          // healthy, and the second up's nats-server is the only one.
          await waitForHealth(engine, c.id, "healthy", 90_000);
          expect(await natsServersOf(dataDir)).toHaveLength(1);
          expect(await second.up.stop("SIGTERM", STOP_TIMEOUT_MS + 10_000)).toEqual({
            code: 0,
            signal: null,
          });
          expect(await processesOf(dataDir)).toEqual([]);
        } finally {
          await second.up[Symbol.asyncDispose]();
        }
      } finally {
        await first.up[Symbol.asyncDispose]();
      }
    },
    240_000,
  );

  it("exits at once on a second signal, and stops its nats-server before it exits", async () => {
    const dataDir = await dataDirFor("second-signal");
    const { up } = await startUp(dataDir, await freePort());
    try {
      expect(await natsServersOf(dataDir)).toHaveLength(1);
      process.kill(up.pid, "SIGTERM");
      await up.waitForJson((l) => l.msg === "shutting down", 5_000);
      process.kill(up.pid, "SIGTERM");
      const exit = await up.exited;
      // Exit code 1 (given up), unless the graceful stop won the race.
      const secondSignal = up.json.some((l) => l.msg === "second signal: exiting now");
      expect(exit).toEqual({ code: secondSignal ? 1 : 0, signal: null });
      expect(await processesOf(dataDir)).toEqual([]);
    } finally {
      await up[Symbol.asyncDispose]();
    }
  });

  it("takes its nats-server down with it when SIGKILLed", async () => {
    const dataDir = await dataDirFor("sigkill");
    const { up } = await startUp(dataDir, await freePort());
    try {
      const servers = await natsServersOf(dataDir);
      expect(servers).toHaveLength(1);
      await up.kill();
      let left: ProcInfo[] = servers;
      await waitFor(
        async () => {
          left = await processesOf(dataDir);
          return left.length === 0;
        },
        {
          timeoutMs: 10_000,
          message: () => `nats-server of a SIGKILLed up still running: ${JSON.stringify(left)}`,
        },
      );
    } finally {
      await up[Symbol.asyncDispose]();
    }
  });

  it("stops a nats-server an earlier up left running, found by its pid file, and leaves an unrelated process with a reused pid alone", async () => {
    const dataDir = await dataDirFor("leftover");
    const natsPort = await freePort();
    // A first up writes the server's configuration, then stops cleanly.
    const first = await startUp(dataDir, natsPort);
    expect((await first.up.stop("SIGTERM", STOP_TIMEOUT_MS + 10_000)).code).toBe(0);

    // What a crashed up whose watchdog died too leaves: its server, with its configuration,
    // and no watchdog.
    const configFile = join(dataDir, "nats-server.conf");
    const leftover = spawnDetached("nats-server", ["-c", configFile]);
    let up: ManagedProcess | undefined;
    let unrelated: ChildProcess | undefined;
    try {
      const pidFile = join(dataDir, "nats-server.pid");
      await waitFor(async () => Number(await readFile(pidFile, "utf8")) === leftover.pid, {
        timeoutMs: 10_000,
        message: "the leftover nats-server never wrote its pid file",
      });
      const started = await startUp(dataDir, natsPort);
      up = started.up;
      await started.up.waitForJson(
        (l) => l.msg?.toString().includes("left running") === true && l.pid === leftover.pid,
        1_000,
        "up did not say it stopped the leftover server",
      );
      expect(await isAlive(leftover.pid as number)).toBe(false);
      await hostIsUp(started.url);
      expect((await started.up.stop("SIGTERM", STOP_TIMEOUT_MS + 10_000)).code).toBe(0);

      // The pid file of a server that died long ago, whose pid a process of someone else's has
      // taken since: that process is not killed.
      unrelated = spawnDetached("sleep", ["600"]);
      await writeFile(pidFile, `${unrelated.pid}\n`);
      const again = await startUp(dataDir, natsPort);
      up = again.up;
      expect(await isAlive(unrelated.pid as number)).toBe(true);
      expect(again.up.json.some((l) => l.msg?.toString().includes("left running"))).toBe(false);
      expect((await again.up.stop("SIGTERM", STOP_TIMEOUT_MS + 10_000)).code).toBe(0);
    } finally {
      await up?.[Symbol.asyncDispose]();
      await terminate(leftover, "SIGKILL", 0);
      if (unrelated) await terminate(unrelated, "SIGKILL", 0);
    }
  });
});

/** A process of the test's own, outside up's reach, with no output kept. */
function spawnDetached(command: string, args: string[]): ChildProcess {
  const child = spawn(command, args, { stdio: "ignore" });
  trackChild(child, "SIGKILL");
  return child;
}
