// A 3-node NATS cluster on loopback, run from infra/nats/ with the accounts that `fleetheal
// nats-auth` writes, with fleetheal's stream and KV buckets replicated 3 times
// (FLEETHEAL_JS_REPLICAS=3, created by the handler, which also creates READER's mirrors). An
// agent and a heal handler run as their own NKEY users, with the env files nats-auth wrote, and
// are given all three URLs. One node dies (one that leads neither the events stream nor the
// heal consumer): healing goes on. A second node dies (the consumer's leader): there is no
// quorum, so nothing can be stored or decided, and an incident waits. Both nodes come back: the waiting incident is healed, once, and READER's mirror has
// followed the events stream through the leader changes. Docker's own events are the witness of
// restarts and of the transitions that must all be stored once.

import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AUTH_FILE, envFile, writeFleetCredentials } from "../common/fleet-credentials.js";
import { agentUser } from "../common/nats-permissions.js";
import { ContainerEvent, EVENTS_STREAM, HOSTS_BUCKET, LEDGER_BUCKET } from "../contracts/index.js";
import { mirrorView } from "./support/account-probes.js";
import {
  type DockerEventRecorder,
  forwardedEventId,
  makeUnhealthy,
  recordDockerEvents,
  runTestContainer,
  waitForHealth,
} from "./support/containers.js";
import { type DockerEngine, startDockerEngine } from "./support/dockerd.js";
import { connectWithEnv, readEnvFile } from "./support/fleet-nats.js";
import { type FleetProcess, startRole } from "./support/fleetheal.js";
import type { NatsClusterHandle } from "./support/nats-cluster.js";
import { startFleetNatsCluster } from "./support/nats-topology.js";
import { readStored } from "./support/stream.js";
import { waitFor } from "./support/wait.js";

const HOST = "cl-host";
/** How long the test watches for a restart that must not happen while there is no quorum. */
const NO_QUORUM_WATCH_MS = 3_000;
/**
 * How long healing may take after a node dies or quorum returns. The handler's pull request
 * lives on the consumer's leader; when that node dies, nats.js notices only after two missed
 * idle heartbeats of the pull (about 30 s with the default 30 s expiry), and only then pulls
 * from the new leader.
 */
const RECOVERY_TIMEOUT_MS = 75_000;
const HEAL_DURABLE = "fleetheal-heal";

const cleanups: (() => Promise<void>)[] = [];
const roles: FleetProcess[] = [];
let cluster: NatsClusterHandle;
let engine: DockerEngine;
let recorder: DockerEventRecorder;
/** The handler's user: it may read every stream and consumer of FLEET. */
let client: NatsConnection;
/** The reader's user, in READER, where the mirrors are. */
let reader: NatsConnection;

beforeAll(async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "fleetheal-fault-cluster-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const credentials = writeFleetCredentials(path.join(dir, "auth"), { addHosts: [HOST] });
  const userEnv = (user: string) => readEnvFile(envFile(credentials.dir, user));
  cluster = await startFleetNatsCluster(path.join(credentials.dir, AUTH_FILE));
  cleanups.push(async () => cluster[Symbol.asyncDispose]());
  engine = await startDockerEngine("fcl");
  cleanups.push(async () => engine[Symbol.asyncDispose]());
  recorder = await recordDockerEvents(engine);
  cleanups.push(async () => recorder.close());
  const servers = cluster.nodes.map((n) => n.url);
  const reconnecting = { maxReconnectAttempts: -1, reconnectTimeWait: 250 };
  client = await connectWithEnv(servers, await userEnv("handler"), {
    name: "fault-cluster-test",
    ...reconnecting,
  });
  cleanups.push(() => client.close());
  reader = await connectWithEnv(servers, await userEnv("reader"), {
    name: "fault-cluster-reader",
    ...reconnecting,
  });
  cleanups.push(() => reader.close());
  cleanups.push(async () => {
    await Promise.all(roles.map((r) => r[Symbol.asyncDispose]()));
  });
  const env = { FLEETHEAL_NATS_URL: cluster.urls, FLEETHEAL_JS_REPLICAS: "3" };
  // The handler starts first and creates the stream, the buckets and the mirrors, with 3 replicas.
  roles.push(await startRole("handler", "handler-1", { ...env, ...(await userEnv("handler")) }));
  const dataDir = path.join(dir, "agent-data");
  roles.push(
    await startRole("agent", `agent-${HOST}`, {
      ...env,
      ...(await userEnv(agentUser(HOST))),
      DOCKER_HOST: engine.dockerHost,
      FLEETHEAL_DATA_DIR: dataDir,
      FLEETHEAL_HEARTBEAT_MS: "500",
    }),
  );
});

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch((e) => console.error(e));
});

function restartsOf(id: string): number {
  return recorder.count((e) => e.id === id && e.action === "restart");
}

/** Docker's `kill` events of `id`, leaving out the SIGKILL that may follow an unanswered SIGTERM. */
function killsOf(id: string): number {
  return recorder.count((e) => e.id === id && e.action === "kill" && e.attributes.signal !== "9");
}

async function unhealthyToRestartMs(id: string): Promise<number> {
  const unhealthy = await recorder.waitFor(
    (e) => e.id === id && e.action === "health_status: unhealthy",
    20_000,
    `${id} never turned unhealthy`,
  );
  const restart = await recorder.waitFor(
    (e) => e.id === id && e.action === "restart",
    1,
    `${id} was not restarted`,
  );
  return Number(restart.timeNano - unhealthy.timeNano) / 1e6;
}

/** The node index whose server name leads `stream`, or its consumer `durable`. */
async function leaderOf(stream: string, durable?: string): Promise<number> {
  const jsm = await jetstreamManager(client);
  const info = durable ? await jsm.consumers.info(stream, durable) : await jsm.streams.info(stream);
  const index = cluster.nodes.findIndex((n) => n.name === info.cluster?.leader);
  if (index < 0)
    throw new Error(`no leader for ${stream} ${durable ?? ""}: ${JSON.stringify(info.cluster)}`);
  return index;
}

describe("a 3-node NATS cluster with replicated streams and KV", () => {
  it("heals while there is quorum, waits without it, and heals the waiting incident once when it is back", {
    timeout: 180_000,
  }, async () => {
    const jsm = await jetstreamManager(client);
    for (const stream of [EVENTS_STREAM, `KV_${HOSTS_BUCKET}`, `KV_${LEDGER_BUCKET}`]) {
      const info = await jsm.streams.info(stream);
      expect(info.config.num_replicas, `replicas of ${stream}`).toBe(3);
    }

    const names = ["cl-one-down", "cl-no-quorum", "cl-bystander"];
    const [oneDown, noQuorum, bystander] = await Promise.all(
      names.map((name) =>
        runTestContainer(engine, {
          name,
          healthIntervalMs: 1_000,
          labels: { autoheal: "true", "autoheal.stop.timeout": "1" },
        }),
      ),
    );
    if (!oneDown || !noQuorum || !bystander) throw new Error("containers not started");
    await Promise.all(
      [oneDown, noQuorum, bystander].map((c) => waitForHealth(engine, c.id, "healthy", 30_000)),
    );
    // The agent has reached the stream (its first transitions are stored) before any node dies.
    await waitFor(
      async () =>
        (await readStored(client, `fleetheal.v1.evt.${HOST}.${bystander.id}.>`, ContainerEvent))
          .length > 0,
      { timeoutMs: 20_000, intervalMs: 250, message: "the agent never stored an event" },
    );

    // One node down: one that leads neither the events stream nor the heal handler's consumer
    // (the KV buckets' leaders may be on it). Healing goes on with the two left. Losing the
    // consumer's leader stalls the handler for about 40 s (see docs/benchmarks/RELIABILITY.md); the second
    // phase below goes through that stall.
    const consumerLeader = await leaderOf(EVENTS_STREAM, HEAL_DURABLE);
    const streamLeader = await leaderOf(EVENTS_STREAM);
    const first = [0, 1, 2].find((i) => i !== consumerLeader && i !== streamLeader) as number;
    await cluster.kill(first);
    const firstKilledAt = Date.now();
    await makeUnhealthy(engine, oneDown.id);
    await recorder.waitFor(
      (e) => e.id === oneDown.id && e.action === "restart",
      RECOVERY_TIMEOUT_MS,
      "the container was not healed with one node of three down",
    );
    const healedOneDownAfterMs = Date.now() - firstKilledAt;
    const oneDownHealMs = await unhealthyToRestartMs(oneDown.id);
    await waitForHealth(engine, oneDown.id, "healthy", 30_000);

    // A second node down, the consumer's leader: one of three left, no quorum. The incident
    // waits.
    const second = consumerLeader;
    await cluster.kill(second);
    const secondKilledAt = Date.now();
    await makeUnhealthy(engine, noQuorum.id);
    await waitForHealth(engine, noQuorum.id, "unhealthy", 20_000);
    // An observation window, not a synchronisation: nothing may restart it without quorum.
    const restartedWithoutQuorum = await waitFor(() => restartsOf(noQuorum.id) > 0, {
      timeoutMs: NO_QUORUM_WATCH_MS,
      intervalMs: 100,
      message: "no restart without quorum",
    }).catch(() => false);
    expect(restartedWithoutQuorum, "a restart happened without quorum").toBe(false);

    // Both nodes back.
    const launchedAt = Date.now();
    const noQuorumMs = launchedAt - secondKilledAt;
    await Promise.all([cluster.start(first), cluster.start(second)]);
    const healthyAfterMs = Date.now() - launchedAt;
    const healed = await recorder.waitFor(
      (e) => e.id === noQuorum.id && e.action === "restart",
      RECOVERY_TIMEOUT_MS,
      "the incident that waited for quorum was not healed once the nodes were back",
    );
    const healedAfterBackMs = Number(healed.timeNano / 1_000_000n) - launchedAt;
    expect(healedAfterBackMs, "restarted before the nodes were started again").toBeGreaterThan(0);
    await waitForHealth(engine, noQuorum.id, "healthy", 30_000);

    // Every Docker transition of these containers is stored, none twice.
    const ids = new Set([oneDown.id, noQuorum.id, bystander.id]);
    const expected = recorder.events
      .filter((e) => ids.has(e.id))
      .map((e) => forwardedEventId(HOST, e))
      .filter((id): id is string => id !== undefined);
    let missing: string[] = [];
    const stored = await waitFor(
      async () => {
        const events = await readStored(client, `fleetheal.v1.evt.${HOST}.>`, ContainerEvent);
        const docker = events.filter((e) => e.source === "docker").map((e) => e.id);
        const have = new Set(docker);
        missing = expected.filter((id) => !have.has(id));
        return missing.length === 0 ? docker : undefined;
      },
      {
        timeoutMs: 30_000,
        intervalMs: 500,
        message: () => `Docker transitions never stored: ${missing.join(", ")}`,
      },
    );
    const counts = new Map<string, number>();
    for (const id of stored) counts.set(id, (counts.get(id) ?? 0) + 1);
    expect(
      [...counts].filter(([, n]) => n > 1),
      "events stored twice",
    ).toEqual([]);

    // The readers' mirror, kept by the server through the imported FLEET API, followed the
    // events stream through both leader changes and has all of it.
    const events = (await jsm.streams.info(EVENTS_STREAM)).state;
    let mirrored: Awaited<ReturnType<typeof mirrorView>> | undefined;
    await waitFor(
      async () => {
        mirrored = await mirrorView(reader, EVENTS_STREAM);
        return mirrored.lastSeq >= events.last_seq && mirrored.messages >= events.messages;
      },
      {
        timeoutMs: 60_000,
        intervalMs: 500,
        message: () =>
          `READER's mirror never caught up with ${JSON.stringify(events)}: ${JSON.stringify(mirrored)}\n` +
          "(see the nodes' logs)",
      },
    );
    expect(mirrored?.replicas, "replicas of READER's mirror").toBe(3);

    // Nothing is left to decide, so no second restart is still to come.
    let last = "";
    await waitFor(
      async () => {
        const info = await jsm.consumers.info(EVENTS_STREAM, HEAL_DURABLE);
        last = `pending=${info.num_pending} ack_pending=${info.num_ack_pending}`;
        return info.num_pending === 0 && info.num_ack_pending === 0;
      },
      { timeoutMs: 45_000, intervalMs: 250, message: () => `heal consumer never settled: ${last}` },
    );

    console.info(
      `3-node cluster, R3: with node ${cluster.nodes[first]?.name} (not a stream or consumer leader) killed, ` +
        `healed ${Math.round(oneDownHealMs)} ms after unhealthy (${healedOneDownAfterMs} ms after the kill); ` +
        `with a second node (${cluster.nodes[second]?.name}, the heal consumer's leader) killed, no restart for ${noQuorumMs} ms without quorum; ` +
        `both started again (healthy after ${healthyAfterMs} ms): the waiting incident healed ` +
        `${healedAfterBackMs} ms after they were started; ` +
        `${expected.length} Docker transitions stored once each, 0 lost; restarts: ` +
        `${names.map((n, i) => `${n}=${restartsOf([oneDown, noQuorum, bystander][i]?.id ?? "")}`).join(" ")}`,
    );
    expect(restartsOf(oneDown.id)).toBe(1);
    expect(killsOf(oneDown.id)).toBe(1);
    expect(restartsOf(noQuorum.id)).toBe(1);
    expect(killsOf(noQuorum.id)).toBe(1);
    expect(restartsOf(bystander.id)).toBe(0);
  });
});
