// `fleetheal up`, the all-in-one command of the README, against a real dockerd: it must start its
// own nats-server, list the host in /health, heal an opted-in container, and leave nothing
// running after SIGTERM.

import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kvm } from "@nats-io/kv";
import { nkeyAuthenticator } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openFleetJetStream } from "../common/jetstream-resources.js";
import { containerKey, encode, LEDGER_BUCKET } from "../contracts/index.js";
import { HealthReport } from "../gateway/view/health-report.js";
import { listProcesses } from "./support/children.js";
import {
  type DockerEventRecorder,
  makeUnhealthyUntilRestarted,
  recordDockerEvents,
  runTestContainer,
  waitForHealth,
} from "./support/containers.js";
import { type DockerEngine, startDockerEngine } from "./support/dockerd.js";
import { CLI, REPO, startUpProcess } from "./support/fleetheal.js";
import { startNatsServer } from "./support/nats-server.js";
import { freePort } from "./support/ports.js";
import { type ManagedProcess, startProcess } from "./support/process.js";
import { waitFor } from "./support/wait.js";

let engine: DockerEngine;
let recorder: DockerEventRecorder;
let dataDir: string;

beforeAll(async () => {
  engine = await startDockerEngine("up");
  recorder = await recordDockerEvents(engine);
  dataDir = await mkdtemp(join(tmpdir(), "fleetheal-up-"));
});

afterAll(async () => {
  recorder?.close();
  await engine?.[Symbol.asyncDispose]();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe("fleetheal up", () => {
  it("runs every role with an embedded nats-server, heals, and stops cleanly", async () => {
    const natsPort = await freePort();
    const up: ManagedProcess = await startUpProcess({
      dockerHost: engine.dockerHost,
      dataDir,
      natsPort,
    });
    try {
      const banner = await up.waitForLine((l) => l.includes(" is up on host solo: "), 30_000);
      const url = /(http:\/\/\S+)\/health/.exec(banner)?.[1];
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

      const report = await waitFor(
        async () => {
          const body = HealthReport.parse(await (await fetch(`${url}/health`)).json());
          return body.hosts.some((h) => h.id === "solo" && h.status === "up") ? body : undefined;
        },
        { timeoutMs: 15_000, message: "/health never listed host 'solo'" },
      );
      // The agent's first snapshot already has Docker's state: no transient "degraded".
      expect(report.status).toBe("healthy");
      expect(report.hosts).toEqual([
        expect.objectContaining({ id: "solo", status: "up", docker: "up" }),
      ]);

      const c = await runTestContainer(engine, { name: "solo-app", labels: { autoheal: "true" } });
      await waitForHealth(engine, c.id, "healthy", 20_000);
      await up.waitForLine(
        (l) => l.includes("Auto-monitoring enabled for container 'solo-app'"),
        15_000,
      );

      // `up` made an admin token for the dashboard's actions: owner-only, and never logged.
      const tokenFile = join(dataDir, "admin-token");
      await up.waitForLine((l) => l === `the admin token for actions is in ${tokenFile}`, 5_000);
      expect((await stat(tokenFile)).mode & 0o777).toBe(0o600);
      const token = (await readFile(tokenFile, "utf8")).trim();
      expect(up.lines.join("\n")).not.toContain(token);
      for (const [action, paused] of [
        ["pause", true],
        ["resume", false],
      ] as const) {
        const res = await fetch(`${url}/${action}`, {
          method: "POST",
          headers: { authorization: `Bearer ${token}` },
        });
        expect(res.status).toBe(200);
        expect(await res.json()).toMatchObject({ paused });
      }
      // It signs its commands with the keys of its credentials, owner-only, never logged; the
      // restart below goes through only because its agent trusts them.
      const seeds: string[] = [];
      for (const role of ["handler", "gateway"]) {
        const keyFile = join(dataDir, "credentials", `${role}.signing.nk`);
        expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
        seeds.push((await readFile(keyFile, "utf8")).trim());
      }
      for (const seed of seeds) {
        expect(seed).toMatch(/^SO[A-Z2-7]{56}$/);
        expect(up.lines.join("\n")).not.toContain(seed);
      }
      expect(up.json.some((l) => l.msg === "commands are signed")).toBe(true);
      const refused = await fetch(`${url}/pause`, { method: "POST" });
      expect(refused.status).toBe(401);
      await makeUnhealthyUntilRestarted(engine, recorder, c.id, {
        timeoutMs: 20_000,
        message: "fleetheal up did not restart the unhealthy container",
      });

      const natsBefore = (await listProcesses()).filter(
        (p) =>
          p.argv[0]?.endsWith("nats-server") === true && p.argv.some((a) => a.startsWith(dataDir)),
      );
      expect(natsBefore).toHaveLength(1);
      expect(up.lines.join("\n")).not.toContain(token);
      for (const seed of seeds) expect(up.lines.join("\n")).not.toContain(seed);
      expect(up.json.some((l) => l.msg === "command refused")).toBe(false);
      const exit = await up.stop("SIGTERM", 20_000);
      expect(exit).toEqual({ code: 0, signal: null });
      const natsAfter = (await listProcesses()).filter(
        (p) =>
          p.argv[0]?.endsWith("nats-server") === true && p.argv.some((a) => a.startsWith(dataDir)),
      );
      expect(natsAfter).toEqual([]);
    } finally {
      await up[Symbol.asyncDispose]();
    }
  });

  it("carries an earlier unauthenticated store over, and refuses connections without a key", async () => {
    const dir = await mkdtemp(join(tmpdir(), "fleetheal-up-upgrade-"));
    try {
      // What an earlier `fleetheal up` left: the fleet's streams in the global account.
      const key = containerKey("solo", "d".repeat(64));
      {
        await using old = await startNatsServer({
          jetstream: false,
          args: ["-js", "-sd", join(dir, "nats")],
        });
        const nc = await connect({ servers: old.url });
        const fjs = await openFleetJetStream(nc);
        await fjs.ledger.put(key, encode({ kept: true }));
        await nc.close();
      }
      const natsPort = await freePort();
      await using up = await startUpProcess({
        name: "up-upgrade",
        dockerHost: engine.dockerHost,
        dataDir: dir,
        natsPort,
      });
      await up.waitForLine((l) => l.includes(" is up on host solo: "), 30_000);
      expect((await stat(join(dir, "credentials"))).mode & 0o777).toBe(0o700);
      // A local process without the handler's key gets nothing.
      await expect(connect({ servers: `127.0.0.1:${natsPort}`, reconnect: false })).rejects.toThrow(
        /authorization/i,
      );
      const seed = await readFile(join(dir, "credentials", "handler.nk"), "utf8");
      const nc = await connect({
        servers: `127.0.0.1:${natsPort}`,
        authenticator: nkeyAuthenticator(new TextEncoder().encode(seed.trim())),
        inboxPrefix: "_INBOX.fleetheal-handler",
      });
      try {
        const ledger = await new Kvm(nc).open(LEDGER_BUCKET);
        expect((await ledger.get(key))?.json()).toEqual({ kept: true });
      } finally {
        await nc.close();
      }
      expect((await up.stop("SIGTERM", 20_000)).code).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("refuses a bad configuration with exit code 2 and names the variable", async () => {
    await using agent = await startProcess({
      name: "bad-agent",
      command: process.execPath,
      args: [CLI, "agent"],
      cwd: REPO,
      env: { FLEETHEAL_HOST_ID: "web.1", FLEETHEAL_HEARTBEAT_MS: "soon" },
    });
    const exit = await agent.exited;
    expect(exit.code).toBe(2);
    const output = agent.lines.join("\n");
    expect(output).toContain('FLEETHEAL_HOST_ID="web.1"');
    expect(output).toContain('FLEETHEAL_HEARTBEAT_MS="soon"');
  });
});
