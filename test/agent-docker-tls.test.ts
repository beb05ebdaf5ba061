// The agent reaching Docker over TCP the way the docker CLI does, through DOCKER_HOST,
// DOCKER_TLS_VERIFY and DOCKER_CERT_PATH: with mutual TLS; with a client certificate the engine
// did not sign, or a CA that did not sign the engine (the agent keeps running and reports Docker
// down); and over plain TCP on loopback.

import { copyFile, mkdir, mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { openFleetJetStream } from "../common/jetstream-resources.js";
import { ContainerEvent, decode, HOSTS_BUCKET, HostSnapshot } from "../contracts/index.js";
import { makeUnhealthy, runTestContainer, waitForHealth } from "./support/containers.js";
import { type DockerEngine, startDockerEngine } from "./support/dockerd.js";
import { createHostEventStreams } from "./support/fleet.js";
import { type FleetProcess, startRole } from "./support/fleetheal.js";
import { type NatsServerHandle, startNatsServer } from "./support/nats-server.js";
import { readStored } from "./support/stream.js";
import { makeTlsMaterial, type TlsMaterial } from "./support/tls.js";
import { waitFor } from "./support/wait.js";

/** A port that was free on 127.0.0.1 a moment ago (bound to port 0, then released). */
function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

let nats: NatsServerHandle;
let client: NatsConnection;
let tmp: string;
let tls: TlsMaterial;
/** Same layout, unrelated CA: its client certificate is not trusted by the engine (nor it by it). */
let foreign: TlsMaterial;
let engine: DockerEngine;
const running: FleetProcess[] = [];
const engines: DockerEngine[] = [];

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "fleetheal-tls-"));
  [tls, foreign] = await Promise.all([
    makeTlsMaterial(path.join(tmp, "good"), { commonName: "fleetheal-good" }),
    makeTlsMaterial(path.join(tmp, "foreign"), { commonName: "fleetheal-foreign" }),
  ]);
  nats = await startNatsServer();
  client = await connect({ servers: nats.url, name: "test-reader" });
  // The streams exist before any agent starts, as the handler of a deployment creates them
  // (with no handler here, each host's events stream too).
  await openFleetJetStream(client);
  await createHostEventStreams(client, ["tls-host", "plain-tcp"]);
  engine = await startDockerEngine("tls", {
    tcp: {
      port: await freeLoopbackPort(),
      tls: { caCert: tls.caCert, cert: tls.serverCert, key: tls.serverKey },
    },
  });
  engines.push(engine);
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p[Symbol.asyncDispose]()));
});

afterAll(async () => {
  await Promise.all(running.splice(0).map((p) => p[Symbol.asyncDispose]()));
  await client?.close();
  const stopped = await Promise.allSettled(engines.map((e) => e.stop()));
  await nats?.[Symbol.asyncDispose]();
  if (tmp) await rm(tmp, { recursive: true, force: true });
  const errors = stopped.flatMap((r) => (r.status === "rejected" ? [r.reason] : []));
  if (errors.length > 0) throw new AggregateError(errors, "docker engine teardown failed");
});

async function startAgent(host: string, dockerEnv: Record<string, string>): Promise<FleetProcess> {
  const agent = await startRole("agent", `agent-${host}`, {
    FLEETHEAL_NATS_URL: nats.url,
    FLEETHEAL_HOST_ID: host,
    FLEETHEAL_HEARTBEAT_MS: "500",
    ...dockerEnv,
  });
  running.push(agent);
  return agent;
}

async function waitForSnapshot(
  host: string,
  pred: (s: HostSnapshot) => boolean,
  message: string,
): Promise<HostSnapshot> {
  const kv = await waitFor(() => new Kvm(client).open(HOSTS_BUCKET), {
    timeoutMs: 10_000,
    message: `KV bucket ${HOSTS_BUCKET} is not there`,
  });
  let last: HostSnapshot | undefined;
  return waitFor(
    async () => {
      const entry = await kv.get(host);
      const decoded = entry && entry.length > 0 ? decode(HostSnapshot, entry.value) : undefined;
      if (!decoded?.ok) return undefined;
      last = decoded.value;
      return pred(decoded.value) ? decoded.value : undefined;
    },
    {
      timeoutMs: 30_000,
      intervalMs: 200,
      message: () =>
        `${message}; last snapshot: ${
          last
            ? JSON.stringify({ docker: last.docker, containers: last.containers.length })
            : "none"
        }`,
    },
  );
}

async function waitForStored(host: string, containerId: string, action: string) {
  return waitFor(
    async () => {
      const stored = await readStored(
        client,
        `fleetheal.v1.evt.${host}.${containerId}.${action}`,
        ContainerEvent,
      );
      return stored.length > 0 ? stored : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 250, message: `no ${action} event of ${host} was stored` },
  );
}

/**
 * Proves an agent on `docker` works end to end: its snapshot says Docker is up and lists a
 * labelled container, and that container's start and unhealthy transitions reach the stream as
 * Docker events.
 */
async function expectAgentWorks(on: DockerEngine, host: string): Promise<void> {
  const c = await runTestContainer(on, { name: `${host}-c`, labels: { autoheal: "true" } });
  const snapshot = await waitForSnapshot(
    host,
    (s) => s.docker.status === "up" && s.containers.some((x) => x.id === c.id),
    `snapshot of ${host} never showed Docker up with container ${c.id}`,
  );
  expect(snapshot.docker.version).toBeDefined();
  expect(snapshot.containers.find((x) => x.id === c.id)?.optedIn).toBe(true);

  const started = await waitForStored(host, c.id, "start");
  expect(started.map((e) => e.source)).toContain("docker");

  await waitForHealth(on, c.id, "healthy", 20_000);
  await makeUnhealthy(on, c.id);
  const unhealthy = await waitForStored(host, c.id, "unhealthy");
  expect(unhealthy[0]?.source).toBe("docker");
  expect(unhealthy[0]?.container.name).toBe(`${host}-c`);
}

describe("agent over Docker TCP", () => {
  it("works over tcp with mutual TLS from DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH", async () => {
    const tcpHost = engine.tcpHost as string;
    // The port really is TLS-only: plain HTTP is turned away.
    const plain = await fetch(`http://${tcpHost.slice("tcp://".length)}/_ping`).then(
      (r) => r.status,
      () => "refused",
    );
    expect(plain).not.toBe(200);

    const agent = await startAgent("tls-host", {
      DOCKER_HOST: tcpHost,
      DOCKER_TLS_VERIFY: "1",
      DOCKER_CERT_PATH: tls.clientDir,
    });
    await expectAgentWorks(engine, "tls-host");
    expect(agent.json.some((l) => l.msg === "Docker unreachable; reconnecting")).toBe(false);
  });

  it("keeps running and reports Docker down when its client certificate is from another CA", async () => {
    // The engine's CA, so the agent trusts the server, but a client pair the engine never signed:
    // dockerd's --tlsverify has to turn it away.
    const mixed = path.join(tmp, "mixed-client");
    await mkdir(mixed);
    await copyFile(tls.caCert, path.join(mixed, "ca.pem"));
    await copyFile(foreign.clientCert, path.join(mixed, "cert.pem"));
    await copyFile(foreign.clientKey, path.join(mixed, "key.pem"));
    const cases = [
      { host: "foreign-client-cert", certPath: mixed },
      // Everything from the other CA: the agent does not trust the engine's server certificate.
      { host: "foreign-ca", certPath: foreign.clientDir },
    ];
    const agents = await Promise.all(
      cases.map((c) =>
        startAgent(c.host, {
          DOCKER_HOST: engine.tcpHost as string,
          DOCKER_TLS_VERIFY: "1",
          DOCKER_CERT_PATH: c.certPath,
        }),
      ),
    );
    for (const [i, c] of cases.entries()) {
      const snapshot = await waitForSnapshot(
        c.host,
        (s) => s.docker.status === "down",
        `snapshot of ${c.host} never said Docker is down`,
      );
      expect(snapshot.docker.error).toBeTruthy();
      console.info(`${c.host}: docker down: ${snapshot.docker.error}`);
      // Still alive and still publishing a while later (heartbeat is 500 ms), Docker still down.
      const later = await waitForSnapshot(
        c.host,
        (s) => s.seq > snapshot.seq + 2,
        `${c.host} stopped publishing snapshots`,
      );
      expect(later.docker.status).toBe("down");
      expect(later.containers).toEqual([]);
      const agent = agents[i] as FleetProcess;
      await expect(Promise.race([agent.exited, Promise.resolve("running")])).resolves.toBe(
        "running",
      );
    }
  });

  it("works over plain tcp on loopback", async () => {
    const plainEngine = await startDockerEngine("plain-tcp", {
      tcp: { port: await freeLoopbackPort() },
    });
    engines.push(plainEngine);
    await startAgent("plain-tcp", {
      DOCKER_HOST: plainEngine.tcpHost as string,
      // Whatever the test process inherited must not turn TLS on.
      DOCKER_TLS_VERIFY: "",
      DOCKER_CERT_PATH: "",
    });
    await expectAgentWorks(plainEngine, "plain-tcp");
  });
});
