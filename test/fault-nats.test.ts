// Faults on the NATS side, on real parts: a nats-server, two dockerd engines as hosts with their
// agents, a heal handler and the gateway, all started through the CLI. Docker's own event stream
// is the witness throughout: it says which transitions happened (every one must be stored once)
// and how often each container was really restarted (once per incident).
//
// - nats-server is killed with SIGKILL while containers on both hosts are being healed, more
//   containers turn unhealthy while it is down, and it comes back on the same port and store.
// - One agent reaches NATS through a TCP proxy that is cut for longer than the gateway takes to
//   call the host down; containers on that host change state meanwhile; the proxy is restored.
// - The gateway is restarted: its /health is right again within one heartbeat of being ready.

import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ContainerEvent, decode, EVENTS_STREAM, RestartCommand } from "../contracts/index.js";
import { HealthReport, type HostStatus } from "../gateway/view/health-report.js";
import {
  forwardedEventId,
  makeUnhealthy,
  runTestContainer,
  waitForHealth,
} from "./support/containers.js";
import { type Fleet, type FleetGateway, type FleetHost, startFleet } from "./support/fleet.js";
import { readStored } from "./support/stream.js";
import { startTcpProxy, type TcpProxy } from "./support/tcp-proxy.js";
import { waitFor } from "./support/wait.js";

const HEARTBEAT_MS = 500;
/** The heal consumer's durable name (handlers/runtime/durable-consumer.ts). */
const HEAL_DURABLE = "fleetheal-heal";
/** Health check interval of the test containers: a few containers on 2 cores, checked often. */
const HEALTH_INTERVAL_MS = 1_000;

type Host = FleetHost;

interface Target {
  host: Host;
  id: string;
  name: string;
}

let fleet: Fleet;
let proxy: TcpProxy;
let client: NatsConnection;
let hosts: Host[];
let base: string;
let gateway: FleetGateway;
/** How often each restart command id was sent to an agent, as a plain subscriber saw it. */
const commandRequests = new Map<string, number>();

function host(index: number): Host {
  const h = hosts[index];
  if (!h) throw new Error(`no host ${index}`);
  return h;
}

beforeAll(async () => {
  fleet = await startFleet({
    nats: "plain",
    // The second host's agent starts once the proxy it reaches NATS through is up.
    hosts: ["fn-host-1", { id: "fn-host-2", agent: false }],
    heartbeatMs: HEARTBEAT_MS,
    // The shortest command timeout: a restart whose reply was lost waits for the longer of
    // this and the container's stop timeout + 30 s before it is sent again.
    env: { handler: { FLEETHEAL_COMMAND_TIMEOUT_MS: "1000" } },
    gateway: { name: "gateway" },
    // Every incident is to be healed at once: no backoff, storm caps out of reach, and no image
    // breaker (all test containers run one image). Stored before the handler starts.
    policy: {
      backoff: { initialSeconds: 0 },
      storm: {
        maxConcurrentPerHost: 1000,
        maxConcurrentFleet: 1000,
        maxPerMinutePerHost: 10_000,
        maxPerMinuteFleet: 10_000,
        imageBreaker: { failures: 0, windowSeconds: 60 },
      },
    },
  });
  gateway = fleet.gateway;
  base = gateway.url;
  proxy = await startTcpProxy({ port: fleet.nats.server.port });
  fleet.defer(() => proxy[Symbol.asyncDispose]());
  await fleet.startAgent("fn-host-2", { env: { FLEETHEAL_NATS_URL: proxy.url } });
  hosts = [...fleet.hosts.values()];
  client = await fleet.nats.connect({
    name: "fault-nats-test",
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
  });
  const commands = client.subscribe("fleetheal.v1.cmd.*.restart", {
    callback: (_error, m) => {
      const decoded = decode(RestartCommand, m.data);
      if (!decoded.ok) return;
      const id = decoded.value.commandId;
      commandRequests.set(id, (commandRequests.get(id) ?? 0) + 1);
    },
  });
  fleet.defer(() => commands.unsubscribe());
});

async function startGateway(name: string): Promise<void> {
  gateway = await fleet.startGateway({ name });
  base = gateway.url;
}

afterAll(async () => {
  await fleet?.[Symbol.asyncDispose]();
});

async function startTargets(h: Host, prefix: string, n: number): Promise<Target[]> {
  const started: Target[] = [];
  for (let i = 1; i <= n; i++) {
    const name = `${prefix}-${i}`;
    const c = await runTestContainer(h.engine, {
      name,
      healthIntervalMs: HEALTH_INTERVAL_MS,
      // Every incident is the test's own: a check that merely timed out under load would add
      // one, and a restart nobody asked for.
      healthTimeoutMs: 60_000,
      // A short stop timeout keeps the handler's wait for a restart reply lost to the outage
      // (stop timeout + 30 s, see handlers/heal.ts) within the test's time.
      labels: { autoheal: "true", "autoheal.stop.timeout": "1" },
    });
    started.push({ host: h, id: c.id, name });
  }
  return started;
}

function restartsOf(t: Target): number {
  return t.host.docker.count((e) => e.id === t.id && e.action === "restart");
}

/**
 * Docker's `kill` events of `t`, leaving out the SIGKILL that follows a SIGTERM the container
 * did not answer within its stop timeout: that is one stop, not a second restart.
 */
function killsOf(t: Target): number {
  return t.host.docker.count(
    (e) => e.id === t.id && e.action === "kill" && e.attributes.signal !== "9",
  );
}

function describeRestarts(targets: Target[]): string {
  return targets.map((t) => `${t.name}=${restartsOf(t)}/${killsOf(t)}kills`).join(" ");
}

/** Milliseconds from `t`'s first Docker `unhealthy` to its first `restart`. */
function healTimeMs(t: Target): number {
  const own = t.host.docker.events.filter((e) => e.id === t.id);
  const unhealthy = own.find((e) => e.action === "health_status: unhealthy");
  const restart = own.find((e) => e.action === "restart");
  if (!unhealthy || !restart) return Number.NaN;
  return Number(restart.timeNano - unhealthy.timeNano) / 1e6;
}

/** Waits until the heal handler has nothing pending, unacked or waiting for redelivery. */
async function healConsumerSettled(timeoutMs: number): Promise<void> {
  let last = "";
  await waitFor(
    async () => {
      const jsm = await jetstreamManager(client);
      const info = await jsm.consumers.info(EVENTS_STREAM, HEAL_DURABLE);
      last = `pending=${info.num_pending} ack_pending=${info.num_ack_pending}`;
      return info.num_pending === 0 && info.num_ack_pending === 0;
    },
    { timeoutMs, intervalMs: 250, message: () => `heal consumer never settled: ${last}` },
  );
}

/**
 * Asserts that every forwarded Docker event of these containers is stored, none twice; returns
 * how many there were.
 */
async function expectEveryTransitionStoredOnce(targets: Target[]): Promise<number> {
  let total = 0;
  for (const h of hosts) {
    const ids = new Set(targets.filter((t) => t.host === h).map((t) => t.id));
    if (ids.size === 0) continue;
    const expected = h.docker.events
      .filter((e) => ids.has(e.id))
      .map((e) => forwardedEventId(h.id, e))
      .filter((id): id is string => id !== undefined);
    let missing: string[] = [];
    const stored = await waitFor(
      async () => {
        const events = await readStored(client, `fleetheal.v1.evt.${h.id}.>`, ContainerEvent);
        const docker = events
          .filter((e) => e.source === "docker" && ids.has(e.container.id))
          .map((e) => e.id);
        const have = new Set(docker);
        missing = expected.filter((id) => !have.has(id));
        return missing.length === 0 ? docker : undefined;
      },
      {
        timeoutMs: 30_000,
        intervalMs: 500,
        message: () => `${h.id}: Docker transitions never stored: ${missing.join(", ")}`,
      },
    );
    const counts = new Map<string, number>();
    for (const id of stored) counts.set(id, (counts.get(id) ?? 0) + 1);
    expect(
      [...counts].filter(([, n]) => n > 1),
      `${h.id}: events stored twice`,
    ).toEqual([]);
    total += expected.length;
  }
  return total;
}

async function hostStatus(id: string): Promise<HostStatus | undefined> {
  const res = await fetch(`${base}/health`, { signal: AbortSignal.timeout(2_000) });
  const report = HealthReport.parse(await res.json());
  return report.hosts.find((x) => x.id === id)?.status;
}

async function waitForStatus(id: string, status: HostStatus, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  let last: string | undefined;
  await waitFor(
    async () => {
      last = await hostStatus(id);
      return last === status;
    },
    {
      timeoutMs,
      intervalMs: 100,
      message: () => `${id} never turned ${status} (last seen ${last})`,
    },
  );
  return Date.now() - t0;
}

describe("faults on the NATS side", () => {
  it("heals every incident exactly once and loses no event when nats-server is killed mid-heal", async () => {
    const first = [
      ...(await startTargets(host(0), "nk-a", 2)),
      ...(await startTargets(host(1), "nk-b", 2)),
    ];
    const second = [
      ...(await startTargets(host(0), "nk-a-late", 1)),
      ...(await startTargets(host(1), "nk-b-late", 1)),
    ];
    const targets = [...first, ...second];
    await Promise.all(targets.map((t) => waitForHealth(t.host.engine, t.id, "healthy", 30_000)));
    expect(describeRestarts(targets)).not.toMatch(/=[1-9]/);

    // The first group turns unhealthy; nats-server dies the moment Docker begins the first
    // restart (its `kill`), so that restart's reply, the other decisions and commands and the
    // handler's acks are all in flight.
    await Promise.all(first.map((t) => makeUnhealthy(t.host.engine, t.id)));
    const kills = first.map((t) =>
      t.host.docker.waitFor(
        (e) => e.id === t.id && e.action === "kill",
        30_000,
        `${t.name} was never restarted`,
      ),
    );
    // Only the first one matters here; the others are checked below, after the outage.
    for (const k of kills) k.catch(() => {});
    await Promise.race(kills);
    await fleet.nats.server.kill();
    const killedAt = Date.now();
    const healedBeforeKill = first.filter((t) => restartsOf(t) > 0).length;
    const inFlightAtKill = first.filter((t) => killsOf(t) > 0 && restartsOf(t) === 0).length;

    // The second group turns unhealthy while nats-server is down.
    await Promise.all(second.map((t) => makeUnhealthy(t.host.engine, t.id)));
    await Promise.all(second.map((t) => waitForHealth(t.host.engine, t.id, "unhealthy", 20_000)));
    const downMs = Date.now() - killedAt;
    await fleet.nats.server.restart();
    const restartedAt = Date.now();

    await waitFor(() => targets.every((t) => restartsOf(t) >= 1), {
      timeoutMs: 45_000,
      intervalMs: 100,
      message: () => `not every container was healed: ${describeRestarts(targets)}`,
    });
    const recoveredMs = Date.now() - restartedAt;
    await Promise.all(targets.map((t) => waitForHealth(t.host.engine, t.id, "healthy", 30_000)));
    await waitFor(async () => (await client.rtt()) >= 0, {
      timeoutMs: 20_000,
      message: "the test's own connection did not come back",
    });
    // Every message has been handled (decided and acked), so no restart is still to come: a
    // restart whose reply was lost is sent again (same command id) only after its timeout.
    await healConsumerSettled(60_000);
    const settledMs = Date.now() - restartedAt;
    const resent = [...commandRequests.values()].filter((n) => n > 1).length;

    const transitions = await expectEveryTransitionStoredOnce(targets);
    const slowest = Math.max(...targets.map(healTimeMs));
    console.info(
      `nats-server kill -9 mid-heal: ${targets.length} incidents on 2 hosts ` +
        `(${healedBeforeKill} restarted and ${inFlightAtKill} being restarted by Docker at the kill), server down ${downMs} ms; ` +
        `all healed ${recoveredMs} ms after it was back, handler settled after ${settledMs} ms ` +
        `(${resent} restart commands sent again with their command id); slowest unhealthy->restart ${Math.round(slowest)} ms; ` +
        `restarts per container: ${describeRestarts(targets)}; ` +
        `${transitions} Docker transitions stored once each, 0 lost`,
    );
    for (const t of targets) {
      expect(restartsOf(t), `docker restarts of ${t.name}`).toBe(1);
      expect(killsOf(t), `docker kills of ${t.name}`).toBe(1);
    }
  });

  it("an agent cut off from NATS goes stale, then down, then up, and its gap is delivered", async () => {
    const h = host(1);
    const [sick] = await startTargets(h, "cut-sick", 1);
    const [cycled] = await startTargets(h, "cut-cycled", 1);
    if (!sick || !cycled) throw new Error("containers not started");
    await waitForHealth(h.engine, sick.id, "healthy", 30_000);
    await waitForHealth(h.engine, cycled.id, "healthy", 30_000);
    await waitForStatus(h.id, "up", 15_000);
    const before = h.docker.events.length;

    proxy.cut();
    const cutAt = Date.now();
    const staleMs = await waitForStatus(h.id, "stale", 10_000);

    // Transitions during the gap: one container stopped and started, one turned unhealthy.
    const c = h.engine.docker.getContainer(cycled.id);
    await c.stop({ t: 0 });
    await c.start();
    await makeUnhealthy(h.engine, sick.id);
    await waitForHealth(h.engine, sick.id, "unhealthy", 20_000);

    await waitForStatus(h.id, "down", 15_000);
    const downMs = Date.now() - cutAt;
    // The host stayed out of reach the whole time, so nothing could have healed it.
    expect(restartsOf(sick)).toBe(0);
    const gap = h.docker.events
      .slice(before)
      .filter((e) => e.id === sick.id || e.id === cycled.id)
      .map((e) => forwardedEventId(h.id, e))
      .filter((id): id is string => id !== undefined);
    expect(gap.length).toBeGreaterThanOrEqual(4);

    proxy.restore();
    const restoredAt = Date.now();
    const cutForMs = restoredAt - cutAt;
    const upMs = await waitForStatus(h.id, "up", 15_000);
    await h.docker.waitFor(
      (e) => e.id === sick.id && e.action === "restart",
      30_000,
      "the container that turned unhealthy during the gap was not healed",
    );
    const healedMs = Date.now() - restoredAt;
    await waitForHealth(h.engine, sick.id, "healthy", 30_000);
    await healConsumerSettled(60_000);

    // Every transition of the gap is in the stream, once.
    const stored = await waitFor(
      async () => {
        const events = await readStored(client, `fleetheal.v1.evt.${h.id}.>`, ContainerEvent);
        const ids = events.map((e) => e.id);
        return gap.every((id) => ids.includes(id)) ? ids : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 500, message: "transitions of the gap never stored" },
    );
    for (const id of gap)
      expect(
        stored.filter((x) => x === id),
        id,
      ).toHaveLength(1);
    const transitions = await expectEveryTransitionStoredOnce([sick, cycled]);
    console.info(
      `agent cut off from NATS for ${cutForMs} ms (heartbeat ${HEARTBEAT_MS} ms): stale after ${staleMs} ms, ` +
        `down after ${downMs} ms, up ${upMs} ms after reconnecting; ${gap.length} transitions of the gap ` +
        `delivered once each (${transitions} in all, 0 lost); the container that turned unhealthy ` +
        `in the gap was healed ${healedMs} ms after reconnecting; restarts: ${describeRestarts([sick, cycled])}`,
    );
    expect(restartsOf(sick)).toBe(1);
    expect(killsOf(sick)).toBe(1);
    expect(restartsOf(cycled)).toBe(0);
  });

  it("a restarted gateway answers /health correctly within one heartbeat of being ready", async () => {
    /** Each host's status and container count, as /health reports them. */
    const view = async (): Promise<string> => {
      const res = await fetch(`${base}/health`, { signal: AbortSignal.timeout(2_000) });
      const report = HealthReport.parse(await res.json());
      return JSON.stringify(report.hosts.map((x) => [x.id, x.status, x.containers.total]));
    };
    await Promise.all(hosts.map((h) => waitForStatus(h.id, "up", 15_000)));
    const before = await view();
    expect(before).not.toContain('"stale"');
    await gateway.stop("SIGTERM");
    const stoppedAt = Date.now();
    await startGateway("gateway-2");
    await waitFor(async () => (await fetch(`${base}/readyz`)).status === 200, {
      timeoutMs: 15_000,
      intervalMs: 20,
      message: "the restarted gateway never became ready",
    });
    const readyAt = Date.now();
    let last = "";
    await waitFor(
      async () => {
        last = await view();
        return last === before;
      },
      {
        timeoutMs: 15_000,
        intervalMs: 20,
        message: () => `/health never matched ${before} again (last ${last})`,
      },
    );
    const correctAfterMs = Date.now() - readyAt;
    console.info(
      `gateway restarted: ready ${readyAt - stoppedAt} ms after the old one stopped; ` +
        `/health correct ${correctAfterMs} ms after ready (heartbeat ${HEARTBEAT_MS} ms): ${before}`,
    );
    expect(correctAfterMs).toBeLessThanOrEqual(HEARTBEAT_MS);
  });
});
