// A fleet in two commands, on real parts: host-1 runs `fleetheal up` with a TLS listener for the
// other hosts; host-2 and host-3 join with the tokens `fleetheal hosts add` prints (one added next
// to up, one through up's gateway), each on its own dockerd: host-2 with the image, as
// `docker run … agent` (docs/DEPLOY.md), host-3 with the package's `fleetheal agent`. Docker's
// own event streams are the witnesses of healing; the agents' logs and NATS itself of
// connections kept and cut.

import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { type NatsConnection, nkeyAuthenticator } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeJoinToken, type JoinToken } from "../common/join-token.js";
import { encode } from "../contracts/index.js";
import { HealthReport } from "../gateway/view/health-report.js";
import {
  containerLogs,
  type DockerEventRecorder,
  healedOnce,
  recordDockerEvents,
  runTestContainer,
} from "./support/containers.js";
import { type DockerEngine, type DockerEngineSet, startDockerEngines } from "./support/dockerd.js";
import { CLI, type FleetProcess, REPO, runCommand, startRole } from "./support/fleetheal.js";
import { ensureFleethealImage, IMAGE_BUILD_TIMEOUT_MS } from "./support/fleetheal-image.js";
import { freePort } from "./support/ports.js";
import { type ManagedProcess, startProcess } from "./support/process.js";
import { waitFor } from "./support/wait.js";

let engines: DockerEngineSet;
const recorders = new Map<string, DockerEventRecorder>();
const engineOf = (host: string) => engines.engines[Number(host.slice(-1)) - 1] as DockerEngine;
let dataDir: string;
let up: ManagedProcess;
let gatewayUrl: string;
let natsPort: number;
/** The container of host-2's agent, run from the image. */
let agent2: string;
const agents = new Map<string, FleetProcess>();
const tokens = new Map<string, string>();
const cleanups: (() => PromiseLike<unknown>)[] = [];

/** `fleetheal hosts …` as a user runs it; the token is the line it prints on stdout. */
async function hostsCommand(args: string[], env: Record<string, string>) {
  const result = await runCommand(["hosts", ...args], env);
  expect(result.code, result.lines.join("\n")).toBe(0);
  return result;
}

/**
 * `docker run -d --name fleetheal-agent --restart unless-stopped --group-add <socket's gid>
 * -v /var/run/docker.sock:/var/run/docker.sock -v fleetheal-agent:/data
 * -e FLEETHEAL_JOIN_TOKEN=<token> <image> agent`, on the host network (up's listener is on this
 * machine's loopback), with the engine's socket as /var/run/docker.sock.
 */
async function joinWithImage(host: string, token: string): Promise<string> {
  const engine = engineOf(host);
  const image = await ensureFleethealImage(engine);
  const container = await engine.docker.createContainer({
    name: "fleetheal-agent",
    Image: image,
    Cmd: ["agent"],
    Env: [`FLEETHEAL_JOIN_TOKEN=${token}`, "FLEETHEAL_HEARTBEAT_MS=500"],
    HostConfig: {
      NetworkMode: "host",
      Binds: [`${engine.socketPath}:/var/run/docker.sock`, "fleetheal-agent:/data"],
      GroupAdd: [String((await stat(engine.socketPath)).gid)],
      RestartPolicy: { Name: "unless-stopped" },
    },
  });
  await container.start();
  await waitFor(async () => (await containerLogs(engine, container.id)).includes("agent started"), {
    timeoutMs: 60_000,
    message: "the image's agent did not start",
  }).catch(async (error: unknown) => {
    throw new Error(`${String(error)}\n${await containerLogs(engine, container.id)}`);
  });
  return container.id;
}

async function joinAgent(host: string, token: string): Promise<FleetProcess> {
  const agent = await startRole("agent", `agent-${host}`, {
    FLEETHEAL_JOIN_TOKEN: token,
    DOCKER_HOST: engineOf(host).dockerHost,
    FLEETHEAL_HEARTBEAT_MS: "500",
  });
  agents.set(host, agent);
  cleanups.push(() => agent[Symbol.asyncDispose]());
  return agent;
}

async function health(): Promise<HealthReport> {
  return HealthReport.parse(await (await fetch(`${gatewayUrl}/health`)).json());
}

/** An opted-in container on `host` turns unhealthy and is restarted exactly once. */
async function healsOnce(host: string, name: string): Promise<void> {
  const engine = engineOf(host);
  const docker = recorders.get(host) as DockerEventRecorder;
  const c = await runTestContainer(engine, { name, labels: { autoheal: "true" } });
  await healedOnce(engine, docker, c.id, `${host}'s agent (for ${name})`, 30_000);
  expect(docker.events.filter((e) => e.id === c.id && e.action === "restart")).toHaveLength(1);
}

/** A raw connection holding the credential of a token. */
function connectWith(token: JoinToken, name: string): Promise<NatsConnection> {
  return connect({
    servers: token.urls,
    name,
    authenticator: nkeyAuthenticator(new TextEncoder().encode(token.seed)),
    inboxPrefix: token.inboxPrefix,
    tls: { ca: token.ca },
    reconnect: false,
  });
}

beforeAll(async () => {
  engines = await startDockerEngines(3, { namePrefix: "join" });
  cleanups.push(() => engines[Symbol.asyncDispose]());
  for (const host of ["host-1", "host-2", "host-3"]) {
    const recorder = await recordDockerEvents(engineOf(host));
    recorders.set(host, recorder);
    cleanups.push(async () => recorder.close());
  }
  dataDir = await mkdtemp(join(tmpdir(), "fleetheal-join-"));
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
  natsPort = await freePort();
  up = await startProcess({
    name: "up",
    command: process.execPath,
    args: [CLI, "up"],
    cwd: REPO,
    env: {
      DOCKER_HOST: engineOf("host-1").dockerHost,
      FLEETHEAL_HOST_ID: "host-1",
      FLEETHEAL_DATA_DIR: dataDir,
      FLEETHEAL_NATS_LISTEN: `127.0.0.1:${natsPort}`,
      FLEETHEAL_GATEWAY_PORT: "0",
      FLEETHEAL_GATEWAY_HOST: "127.0.0.1",
      FLEETHEAL_HEARTBEAT_MS: "500",
    },
  });
  cleanups.push(() => up[Symbol.asyncDispose]());
  const banner = await up.waitForLine((l) => l.includes(" is up on host host-1: "), 30_000);
  gatewayUrl = /(http:\/\/\S+)\/health/.exec(banner)?.[1] as string;
}, 180_000);

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => {});
});

describe("a fleet in two commands", () => {
  it("joins host-2 with a token from `hosts add` next to up, and heals on both hosts", {
    timeout: IMAGE_BUILD_TIMEOUT_MS + 120_000,
  }, async () => {
    const { lines } = await hostsCommand(["add", "host-2"], { FLEETHEAL_DATA_DIR: dataDir });
    const token = lines.find((l) => l.startsWith("FHJ1-")) as string;
    tokens.set("host-2", token);
    const decoded = decodeJoinToken(token);
    expect(decoded.host).toBe("host-2");
    expect(decoded.urls).toEqual([`tls://127.0.0.1:${natsPort}`]);
    // The token is the only secret it prints, once, on stdout; up never logged it.
    expect(up.lines.join("\n")).not.toContain(decoded.seed);
    agent2 = await joinWithImage("host-2", token);
    await healsOnce("host-1", "app-1");
    await healsOnce("host-2", "app-2");
  });

  it("adds host-3 through the gateway without host-2 reconnecting, and host-2 heals right after", async () => {
    const logsBefore = (await containerLogs(engineOf("host-2"), agent2)).split("\n").length;
    const adminToken = (await readFile(join(dataDir, "admin-token"), "utf8")).trim();
    // From another directory, so the command goes through the gateway, not up's data directory.
    const elsewhere = await mkdtemp(join(tmpdir(), "fleetheal-join-cli-"));
    cleanups.push(() => rm(elsewhere, { recursive: true, force: true }));
    const { lines } = await hostsCommand(["add", "host-3", "--gateway", gatewayUrl], {
      FLEETHEAL_DATA_DIR: elsewhere,
      FLEETHEAL_GATEWAY_TOKEN: adminToken,
    });
    const token = lines.find((l) => l.startsWith("FHJ1-")) as string;
    tokens.set("host-3", token);
    await joinAgent("host-3", token);
    await healsOnce("host-2", "app-2b");
    // Its connection stayed up through both reloads: nothing logged about NATS since.
    const since = (await containerLogs(engineOf("host-2"), agent2)).split("\n").slice(logsBefore);
    expect(since.filter((l) => /"msg":"[^"]*NATS/.test(l))).toEqual([]);
    await healsOnce("host-3", "app-3");
    await waitFor(async () => (await health()).hosts.length === 3, {
      timeoutMs: 15_000,
      message: "/health never listed three hosts",
    });
    // `fleetheal hosts` shows each host's credential, from the server's own connections.
    const listed = await hostsCommand(["--json", "--gateway", gatewayUrl], {
      FLEETHEAL_DATA_DIR: elsewhere,
    });
    expect(JSON.parse(listed.lines.join("\n")).credentials).toEqual([
      { host: "host-1", state: "connected" },
      { host: "host-2", state: "connected" },
      { host: "host-3", state: "connected" },
    ]);
  });

  it("keeps each host to its own subjects", async () => {
    const as2 = await connectWith(decodeJoinToken(tokens.get("host-2") as string), "test-as-2");
    cleanups.push(() => as2.close());
    await expect(
      jetstream(as2).publish(`fleetheal.v1.evt.host-3.${"c".repeat(64)}.unhealthy`, "{}", {
        timeout: 3_000,
      }),
    ).rejects.toThrow(/permissions violation/i);
    const received: string[] = [];
    let refused: Error | undefined;
    as2.subscribe("fleetheal.v1.cmd.host-3.>", {
      callback: (error, m) => {
        if (error) refused = error;
        else received.push(m.subject);
      },
    });
    await as2.flush();
    // The control plane sends host-3 a request: host-3's agent answers, host-2 never sees it.
    const handlerSeed = (await readFile(join(dataDir, "credentials", "handler.nk"), "utf8")).trim();
    const handler = await connect({
      servers: `tls://127.0.0.1:${natsPort}`,
      authenticator: nkeyAuthenticator(new TextEncoder().encode(handlerSeed)),
      inboxPrefix: "_INBOX.fleetheal-handler",
      tls: { ca: decodeJoinToken(tokens.get("host-3") as string).ca },
    });
    cleanups.push(() => handler.close());
    const reply = await handler.request(
      "fleetheal.v1.cmd.host-3.snapshot",
      encode({ type: "fleetheal.cmd.v1.snapshot", v: 1, host: "host-3" }),
      { timeout: 5_000 },
    );
    expect(reply.json<{ host: string }>().host).toBe("host-3");
    await as2.flush();
    expect(received).toEqual([]);
    // Its own account has no such subject either: the server refused the subscription outright.
    expect(refused?.message).toMatch(/permissions violation/i);
  });

  it("removes host-3: its agent is cut off, its token no longer connects, /health is healthy", async () => {
    const host3 = agents.get("host-3") as FleetProcess;
    await hostsCommand(["remove", "host-3"], { FLEETHEAL_DATA_DIR: dataDir });
    await host3.waitForJson(
      (l) => /disconnected from NATS|NATS connection error/.test(String(l.msg)),
      15_000,
      "host-3's agent was not cut off",
    );
    await expect(
      connectWith(decodeJoinToken(tokens.get("host-3") as string), "test-as-3"),
    ).rejects.toThrow(/authorization/i);
    const report = await waitFor(
      async () => {
        const h = await health();
        return h.hosts.length === 2 && h.status === "healthy" ? h : undefined;
      },
      { timeoutMs: 20_000, message: "/health did not become healthy with two hosts" },
    );
    expect(report.hosts.map((h) => h.id).sort()).toEqual(["host-1", "host-2"]);
  });
});
