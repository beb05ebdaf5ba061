// Growing past one NATS server, as docs/DEPLOY.md ("Growing past one NATS server") does it: a
// fleet whose first host runs `fleetheal up` (host-2 joined with a token) moves to a 3-node
// cluster. The embedded server's data is exported with up's handler key, the cluster runs up's
// accounts with certificates from up's CA, the data is imported, host-2 gets a token that lists
// the cluster, and the roles start on it. The ledger, the history and the policy are all there
// afterwards, and healing goes on.

import { copyFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { envFile } from "../common/fleet-credentials.js";
import { decodeJoinToken } from "../common/join-token.js";
import { PolicyDocument } from "../gateway/http/api-schemas.js";
import {
  type DockerEventRecorder,
  healedOnce,
  recordDockerEvents,
  runTestContainer,
} from "./support/containers.js";
import { type DockerEngine, startDockerEngines } from "./support/dockerd.js";
import { readEnvFile } from "./support/fleet-nats.js";
import { CLI, type FleetProcess, REPO, runCommand, startRole } from "./support/fleetheal.js";
import { startNatsCluster } from "./support/nats-cluster.js";
import { freePort } from "./support/ports.js";
import { type ManagedProcess, startProcess } from "./support/process.js";
import { waitFor } from "./support/wait.js";

const cleanups: (() => PromiseLike<unknown>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => {});
});

async function ok(args: string[], env: Record<string, string>): Promise<string[]> {
  const result = await runCommand(args, env);
  expect(result.code, `fleetheal ${args.join(" ")}:\n${result.lines.join("\n")}`).toBe(0);
  return result.lines;
}

/** An opted-in container turns unhealthy and is restarted; returns its id. */
async function heal(engine: DockerEngine, docker: DockerEventRecorder, name: string) {
  const c = await runTestContainer(engine, { name, labels: { autoheal: "true" } });
  await healedOnce(engine, docker, c.id, `fleetheal (for ${name})`, 30_000);
  return c.id;
}

describe("moving a fleet from fleetheal up to a 3-node NATS cluster", () => {
  it("keeps the ledger, the history and the policy, and goes on healing", async () => {
    const engines = await startDockerEngines(2, { namePrefix: "move" });
    cleanups.push(() => engines[Symbol.asyncDispose]());
    const [engine1, engine2] = engines.engines as [DockerEngine, DockerEngine];
    const docker2 = await recordDockerEvents(engine2);
    cleanups.push(async () => docker2.close());
    const dataDir = await mkdtemp(path.join(os.tmpdir(), "fleetheal-move-"));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const credentials = path.join(dataDir, "credentials");
    const ca = path.join(dataDir, "tls", "ca.pem");
    const natsPort = await freePort();

    // The fleet before: up on host-1, host-2 joined with its token, a heal, a policy.
    const up: ManagedProcess = await startProcess({
      name: "up",
      command: process.execPath,
      args: [CLI, "up"],
      cwd: REPO,
      env: {
        DOCKER_HOST: engine1.dockerHost,
        FLEETHEAL_HOST_ID: "host-1",
        FLEETHEAL_DATA_DIR: dataDir,
        FLEETHEAL_NATS_LISTEN: `127.0.0.1:${natsPort}`,
        FLEETHEAL_GATEWAY_PORT: "0",
        FLEETHEAL_GATEWAY_HOST: "127.0.0.1",
      },
    });
    cleanups.push(() => up[Symbol.asyncDispose]());
    const banner = await up.waitForLine((l) => l.includes(" is up on host host-1: "), 30_000);
    const upGateway = /(http:\/\/\S+)\/health/.exec(banner)?.[1] as string;
    const admin = {
      authorization: `Bearer ${(await readFile(path.join(dataDir, "admin-token"), "utf8")).trim()}`,
    };
    const token = (await ok(["hosts", "add", "host-2"], { FLEETHEAL_DATA_DIR: dataDir })).find(
      (l) => l.startsWith("FHJ1-"),
    ) as string;
    let agent2: FleetProcess = await startRole("agent", "agent-host-2", {
      FLEETHEAL_JOIN_TOKEN: token,
      DOCKER_HOST: engine2.dockerHost,
    });
    const healed = await heal(engine2, docker2, "before-move");
    const { policy } = PolicyDocument.parse(
      await (await fetch(`${upGateway}/policy`, { headers: admin })).json(),
    );
    const put = await fetch(`${upGateway}/policy`, {
      method: "PUT",
      headers: { ...admin, "content-type": "application/json" },
      body: JSON.stringify({ ...policy, storm: { ...policy.storm, maxConcurrentFleet: 7 } }),
    });
    expect(put.status).toBe(200);
    // Its ledger entry, as the gateway serves it.
    const before = await waitFor(
      async () => {
        const res = await fetch(`${upGateway}/containers/host-2/${healed}`, { headers: admin });
        const body = (await res.json()) as { healing?: { restarts?: unknown[] } };
        return (body.healing?.restarts?.length ?? 0) > 0 ? body : undefined;
      },
      { timeoutMs: 15_000, message: "the heal never reached the ledger" },
    );

    // 1. Stop up, and export its data from its server, run on its own with up's configuration.
    expect((await up.stop("SIGTERM", 20_000)).code).toBe(0);
    const alone = await startProcess({
      name: "nats-alone",
      command: "nats-server",
      args: ["-c", path.join(dataDir, "nats-server.conf")],
      cwd: dataDir,
    });
    cleanups.push(() => alone[Symbol.asyncDispose]());
    await alone.waitForLine((l) => l.includes("Server is ready"), 15_000);
    const handlerEnv = await readEnvFile(envFile(credentials, "handler"));
    const exportFile = path.join(dataDir, "fleet.jsonl");
    await ok(["nats-migrate", "export", "--out", exportFile], {
      ...handlerEnv,
      FLEETHEAL_NATS_URL: `tls://127.0.0.1:${natsPort}`,
      FLEETHEAL_NATS_TLS_CA: ca,
    });
    await alone.stop("SIGTERM", 10_000);

    // 2. The cluster: up's accounts, and a certificate from up's CA for the nodes' names.
    const certs = path.join(dataDir, "cluster");
    await ok(
      [
        "nats-auth",
        "--tls-names",
        "127.0.0.1,localhost",
        "--ca-dir",
        path.join(dataDir, "tls"),
        "--out",
        certs,
      ],
      {},
    );
    const cert = path.join(certs, "tls", "127.0.0.1");
    await using cluster = await startNatsCluster(3, "fleetheal-move", {
      async configure(plan) {
        const configFile = path.join(plan.dir, "nats-server.conf");
        const storeDir = path.join(plan.dir, "js");
        await copyFile(
          path.join(credentials, "fleetheal-auth.conf"),
          path.join(plan.dir, "fleetheal-auth.conf"),
        );
        const routes = plan.clusterPorts.map((p) => `"nats-route://127.0.0.1:${p}"`);
        await writeFile(
          configFile,
          [
            `server_name: n${plan.index + 1}`,
            `listen: "127.0.0.1:${plan.port}"`,
            `http: "127.0.0.1:${plan.monitorPort}"`,
            `tls { cert_file: "${cert}/server-cert.pem", key_file: "${cert}/server-key.pem" }`,
            `jetstream { store_dir: "${storeDir}" }`,
            `cluster { name: fleetheal-move, listen: "127.0.0.1:${plan.clusterPort}", routes: [${routes.join(", ")}] }`,
            // nats-server reads an include relative to the including file, as DEPLOY.md says.
            `include "./fleetheal-auth.conf"`,
            "",
          ].join("\n"),
        );
        return { serverName: `n${plan.index + 1}`, configFile, storeDir };
      },
    });
    const tlsUrls = cluster.nodes.map((n) => `tls://127.0.0.1:${n.port}`).join(",");
    const onCluster = { FLEETHEAL_NATS_URL: tlsUrls, FLEETHEAL_NATS_TLS_CA: ca };

    // 3. Import, with three copies of everything.
    await ok(["nats-migrate", "import", "--in", exportFile], {
      ...handlerEnv,
      ...onCluster,
      FLEETHEAL_JS_REPLICAS: "3",
    });

    // 4. The roles on the cluster: the handler and gateway with up's keys, host-1's agent with
    // its env file, and host-2 with a token reissued for the cluster's URLs (the same key).
    const roles = [
      await startRole("handler", "handler", { ...handlerEnv, ...onCluster }),
      await startRole("gateway", "gateway", {
        ...(await readEnvFile(envFile(credentials, "gateway"))),
        ...onCluster,
        FLEETHEAL_GATEWAY_PORT: "0",
        FLEETHEAL_GATEWAY_HOST: "127.0.0.1",
        FLEETHEAL_GATEWAY_ADMIN_TOKEN: admin.authorization.slice("Bearer ".length),
      }),
      await startRole("agent", "agent-host-1", {
        ...(await readEnvFile(envFile(credentials, "agent-host-1"))),
        ...onCluster,
        DOCKER_HOST: engine1.dockerHost,
      }),
    ];
    cleanups.push(async () => Promise.all(roles.map((r) => r[Symbol.asyncDispose]())));
    const reissued = (
      await ok(
        ["hosts", "add", "host-2", "--nats-auth", credentials, "--url", tlsUrls, "--ca", ca],
        {},
      )
    ).find((l) => l.startsWith("FHJ1-")) as string;
    expect(decodeJoinToken(reissued).seed).toBe(decodeJoinToken(token).seed);
    await agent2[Symbol.asyncDispose]();
    agent2 = await startRole("agent", "agent-host-2", {
      FLEETHEAL_JOIN_TOKEN: reissued,
      DOCKER_HOST: engine2.dockerHost,
    });
    cleanups.push(() => agent2[Symbol.asyncDispose]());

    const gateway = (roles[1] as FleetProcess).json.find((l) => l.msg === "gateway listening")
      ?.url as string;
    const after = (await (
      await fetch(`${gateway}/containers/host-2/${healed}`, { headers: admin })
    ).json()) as typeof before;
    // The ledger came along (what is derived from the clock, such as the end of a backoff, may
    // have moved on).
    expect(after.healing?.restarts).toEqual(before.healing?.restarts);
    const moved = PolicyDocument.parse(
      await (await fetch(`${gateway}/policy`, { headers: admin })).json(),
    );
    expect(moved.policy.storm.maxConcurrentFleet).toBe(7);
    const history = (await (
      await fetch(`${gateway}/events?container=${healed}&kind=remediation&since=1h`, {
        headers: admin,
      })
    ).json()) as { records: { remediation: { phase: string } }[] };
    expect(history.records.map((r) => r.remediation.phase)).toContain("restarted");
    await heal(engine2, docker2, "after-move");
  }, 300_000);
});
