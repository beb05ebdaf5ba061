// Label probes on real parts: one nats-server, one dockerd, one agent started through the CLI.
// Containers without a Docker HEALTHCHECK define exec, tcp and http probes by labels; the agent's
// healthy/unhealthy events (source "probe") are read by a plain NATS subscriber, and invalid labels
// must show up in the log and the host snapshot without disturbing anything else.
//
// The tcp and http targets run on the host network and listen on 127.0.0.1 only; nothing else is
// ever probed. A target that names 127.0.0.1 itself is refused until the agent is restarted with
// FLEETHEAL_PROBE_ALLOW allowing it (the last tests, so the others run under the default).

import net from "node:net";
import type { NatsConnection } from "@nats-io/nats-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CommandReply,
  type ContainerEvent,
  type ContainerSnapshot,
  commandSubject,
} from "../contracts/index.js";
import { ensureBusyboxImage, TEST_IMAGE } from "./support/busybox-image.js";
import { signedCommand } from "./support/command-signing.js";
import { execOk, makeUnhealthy, runTestContainer } from "./support/containers.js";
import type { DockerEngine } from "./support/dockerd.js";
import { restartDraft } from "./support/fixtures.js";
import { type Fleet, startFleet } from "./support/fleet.js";
import type { FleetProcess } from "./support/fleetheal.js";
import { type HostWatch, watchHost } from "./support/host-watch.js";
import { waitFor } from "./support/wait.js";

const HOST = "probe-host";
const FAST = { "autoheal.probe.interval": "500ms", "autoheal.probe.retries": "1" };

let fleet: Fleet;
let engine: DockerEngine;
let client: NatsConnection;
let agent: FleetProcess;
let events: HostWatch["events"];
let undecodable: HostWatch["undecodable"];
let snapshot: HostWatch["snapshot"];

beforeAll(async () => {
  // The streams exist before any agent starts, as the handler of a deployment creates them.
  fleet = await startFleet({
    nats: "plain",
    hosts: [{ id: HOST, agent: false }],
    handlers: 0,
    streams: true,
  });
  engine = fleet.host(HOST).engine;
  await ensureBusyboxImage(engine);
  client = await fleet.nats.connect({ name: "probe-test-reader" });
  ({ events, undecodable, snapshot } = await watchHost(client, HOST));
  agent = await fleet.startAgent(HOST);
});

afterAll(async () => {
  await fleet?.[Symbol.asyncDispose]();
});

/** Waits for the agent's probe event `action` for container `id`, on its exact subject. */
async function probeEvent(
  id: string,
  action: "healthy" | "unhealthy",
  after = 0,
): Promise<ContainerEvent> {
  const subject = `fleetheal.v1.evt.${HOST}.${id}.${action}`;
  const found = await waitFor(
    () =>
      events
        .slice(after)
        .find(
          (r) => r.subject === subject && r.event.source === "probe" && r.event.action === action,
        ),
    {
      timeoutMs: 30_000,
      intervalMs: 50,
      message: () =>
        `no ${action} probe event on ${subject}; got for this container: [${events
          .filter((r) => r.event.container.id === id)
          .map((r) => `${r.event.action}/${r.event.source}`)
          .join(", ")}]; undecodable: ${undecodable.length}`,
    },
  );
  expect(found.event).toMatchObject({ host: HOST, action, container: { id } });
  return found.event;
}

/** The container as the latest host snapshot shows it, once `pred` holds. */
async function snapshotOf(
  id: string,
  pred: (c: ContainerSnapshot) => boolean,
  what: string,
): Promise<ContainerSnapshot> {
  return waitFor(
    () => {
      const c = snapshot()?.containers.find((x) => x.id === id);
      return c && pred(c) ? c : undefined;
    },
    {
      timeoutMs: 30_000,
      message: () =>
        `snapshot never showed ${what}; last: ${JSON.stringify(
          snapshot()?.containers.find((x) => x.id === id),
        )}`,
    },
  );
}

/** A port on 127.0.0.1 that nothing listens on right now. */
async function freeLoopbackPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * A busybox container on the host network running `httpd` bound to 127.0.0.1:<port> (which
 * serves /tmp, with /tmp/index.html present), its pid in /tmp/listener.pid, without a Docker
 * healthcheck.
 */
async function runLoopbackListener(
  name: string,
  port: number,
  labels: Record<string, string>,
): Promise<string> {
  const script = [
    "trap 'exit 0' TERM",
    "echo ok > /tmp/index.html",
    `httpd -f -p 127.0.0.1:${port} -h /tmp & echo $! > /tmp/listener.pid`,
    "while :; do sleep 1 & wait $!; done",
  ].join("\n");
  const container = await engine.docker.createContainer({
    name,
    Image: TEST_IMAGE,
    Cmd: ["sh", "-c", script],
    Labels: { autoheal: "true", ...labels },
    StopTimeout: 2,
    HostConfig: { NetworkMode: "host" },
  });
  await container.start();
  return container.id;
}

function killListener(id: string): Promise<void> {
  return execOk(engine, id, ["sh", "-c", "kill $(cat /tmp/listener.pid)"]);
}

describe("agent label probes", () => {
  it("an exec probe reports healthy, then unhealthy once the check fails", async () => {
    const c = await runTestContainer(engine, {
      name: "probe-exec",
      healthcheck: false,
      labels: { autoheal: "true", "autoheal.probe.exec": "test -f /tmp/healthy", ...FAST },
    });
    const healthy = await probeEvent(c.id, "healthy");
    expect(healthy.container.name).toBe("probe-exec");
    expect(healthy.container.optedIn).toBe(true);
    const shown = await snapshotOf(c.id, (x) => x.health === "healthy", "the exec probe healthy");
    expect(shown).toMatchObject({
      healthSource: "probe",
      probe: { kind: "exec", target: "test -f /tmp/healthy" },
      failingStreak: 0,
    });
    expect(shown.probe?.error).toBeUndefined();

    const before = events.length;
    await makeUnhealthy(engine, c.id);
    await probeEvent(c.id, "unhealthy", before);
    await snapshotOf(
      c.id,
      (x) => x.health === "unhealthy" && x.healthSource === "probe" && x.failingStreak >= 1,
      "the exec probe unhealthy",
    );
    // Every run is counted in the snapshot by its result: the passes, then the failure that
    // turned it unhealthy (the snapshot that shows that health is taken after that run).
    const counted = snapshot()?.agent.counters?.probeResults;
    expect(counted?.pass).toBeGreaterThanOrEqual(1);
    expect(counted?.fail).toBeGreaterThanOrEqual(1);

    // The heal handler's restart says "only if still unhealthy". Docker calls a container
    // without a HEALTHCHECK "none"; the agent must judge it by the probe that reported it.
    const { payload, headers } = signedCommand(
      restartDraft({
        commandId: "heal-probe-exec-unhealthy-0001",
        host: HOST,
        containerId: c.id,
        reason: "unhealthy",
        requestedBy: "handler:heal",
        requireUnhealthy: true,
      }),
    );
    const answer = await client.request(commandSubject(HOST, "restart"), payload, {
      timeout: 30_000,
      headers,
    });
    const reply = CommandReply.parse(JSON.parse(new TextDecoder().decode(answer.data)));
    expect(reply).toMatchObject({ outcome: "restarted", code: "restarted" });
    const inspected = await engine.docker.getContainer(c.id).inspect();
    expect(Date.parse(inspected.State.StartedAt)).toBeGreaterThan(
      Date.parse(healthy.container.startedAt ?? "1970-01-01T00:00:00Z"),
    );
  });

  it("a tcp probe (port only, host network) follows a listener on 127.0.0.1", async () => {
    const port = await freeLoopbackPort();
    const id = await runLoopbackListener("probe-tcp", port, {
      "autoheal.probe.tcp": `:${port}`,
      ...FAST,
    });
    await probeEvent(id, "healthy");
    const shown = await snapshotOf(id, (x) => x.health === "healthy", "the tcp probe healthy");
    expect(shown).toMatchObject({
      healthSource: "probe",
      networkMode: "host",
      probe: { kind: "tcp", target: `:${port}` },
    });
    expect(shown.lastHealthOutput).toBe(`connected to 127.0.0.1:${port}`);

    const before = events.length;
    await killListener(id);
    await probeEvent(id, "unhealthy", before);
    const down = await snapshotOf(id, (x) => x.health === "unhealthy", "the tcp probe unhealthy");
    expect(down.lastHealthOutput).toContain("ECONNREFUSED");
  });

  it("an http probe (port and path, host network) follows a server on 127.0.0.1", async () => {
    const port = await freeLoopbackPort();
    const id = await runLoopbackListener("probe-http", port, {
      "autoheal.probe.http": `:${port}/index.html`,
      ...FAST,
    });
    await probeEvent(id, "healthy");
    const shown = await snapshotOf(id, (x) => x.health === "healthy", "the http probe healthy");
    expect(shown).toMatchObject({
      healthSource: "probe",
      probe: { kind: "http", target: `:${port}/index.html` },
      lastHealthOutput: "HTTP 200",
    });

    const before = events.length;
    await killListener(id);
    await probeEvent(id, "unhealthy", before);
  });

  it("invalid probe labels: logged and shown in the snapshot; the agent and other probes go on", async () => {
    const errorsBefore = agent.json.filter((l) => l.level === "error").length;
    const bad = await runTestContainer(engine, {
      name: "probe-invalid",
      healthcheck: false,
      labels: {
        autoheal: "true",
        "autoheal.probe.tcp": ":99999",
        "autoheal.probe.interval": "soon",
      },
    });
    const good = await runTestContainer(engine, {
      name: "probe-valid-neighbour",
      healthcheck: false,
      labels: { autoheal: "true", "autoheal.probe.exec": "test -f /tmp/healthy", ...FAST },
    });

    const logged = await agent.waitForJson(
      (l) => l.level === "error" && JSON.stringify(l).includes("autoheal.probe.tcp"),
      30_000,
      "the agent logged no error naming autoheal.probe.tcp",
    );
    const text = JSON.stringify(logged);
    expect(text).toContain("autoheal.probe.tcp");
    expect(text).toContain("99999");
    expect(text).toContain("autoheal.probe.interval");

    const shown = await snapshotOf(bad.id, (x) => x.probe?.error !== undefined, "probe.error");
    expect(shown.probe).toMatchObject({ kind: "tcp", target: ":99999" });
    expect(shown.probe?.error).toContain("autoheal.probe.tcp");
    expect(shown.probe?.error).toContain("autoheal.probe.interval");
    expect(shown.healthSource).not.toBe("probe");

    // The neighbour on the same host is probed as usual, and the agent is still up.
    await probeEvent(good.id, "healthy");
    await snapshotOf(good.id, (x) => x.health === "healthy", "the neighbour healthy");
    expect(events.some((r) => r.event.container.id === bad.id && r.event.source === "probe")).toBe(
      false,
    );
    // Logged once, however often the container is inspected again.
    await engine.docker.getContainer(bad.id).pause();
    await snapshotOf(bad.id, (x) => x.state === "paused", "the invalid one paused");
    await engine.docker.getContainer(bad.id).unpause();
    await snapshotOf(bad.id, (x) => x.state === "running", "the invalid one running again");
    const about = agent.json.filter(
      (l) => l.level === "error" && JSON.stringify(l).includes("autoheal.probe.tcp"),
    );
    expect(about).toHaveLength(1);
    expect(agent.json.filter((l) => l.level === "error").length - errorsBefore).toBe(1);
    // Still running: signal 0 only checks that the process exists.
    expect(() => process.kill(agent.pid, 0)).not.toThrow();
    expect(undecodable).toEqual([]);
  });
});

describe("agent label probes: explicit targets and FLEETHEAL_PROBE_ALLOW", () => {
  let port: number;
  let explicit: string;
  let own: string;
  const explicitLabel = () => `http://127.0.0.1:${port}/index.html`;

  it("refuses an explicit 127.0.0.1 target by default, naming the label; :port still runs", async () => {
    port = await freeLoopbackPort();
    const warningsBefore = agent.json.filter((l) => l.level === "warn").length;
    // Two containers, both on the host network; `own` serves 127.0.0.1:<port> for both.
    own = await runLoopbackListener("probe-own-address", port, {
      "autoheal.probe.http": `:${port}/index.html`,
      ...FAST,
    });
    explicit = (
      await runTestContainer(engine, {
        name: "probe-explicit-loopback",
        healthcheck: false,
        labels: { autoheal: "true", "autoheal.probe.http": explicitLabel(), ...FAST },
      })
    ).id;

    const refused = await snapshotOf(explicit, (x) => x.probe?.error !== undefined, "probe.error");
    const label = `autoheal.probe.http="${explicitLabel()}"`;
    expect(refused.probe).toEqual({
      kind: "http",
      target: explicitLabel(),
      error: `${label}: host 127.0.0.1 is not allowed on this agent; probe the container's own address with :port/path, or allow the host with FLEETHEAL_PROBE_ALLOW`,
    });
    expect(refused.healthSource).not.toBe("probe");
    expect(refused.lastHealthOutput).toBeUndefined();
    const warned = await agent.waitForJson(
      (l) => l.level === "warn" && String(l.msg).startsWith("probe target refused"),
      30_000,
      "the agent logged no refusal",
    );
    expect(String(warned.msg)).toContain(label);

    // The container's own address (:port/path) is probed as before, on the same listener.
    await probeEvent(own, "healthy");
    await snapshotOf(own, (x) => x.health === "healthy", "the :port/path probe healthy");
    // Five probe intervals after it started, by a snapshot's clock: the refused container was
    // never probed (no probe event, no output) and was warned about once.
    const createdMs = Date.parse((await engine.docker.getContainer(explicit).inspect()).Created);
    const later = await waitFor(
      () => {
        const snap = snapshot();
        return snap && Date.parse(snap.at) >= createdMs + 2_500 ? snap : undefined;
      },
      { timeoutMs: 30_000, message: () => `no snapshot 2.5 s after ${explicit} was created` },
    );
    expect(later.containers.find((c) => c.id === explicit)).toMatchObject({
      probe: { error: refused.probe?.error },
      failingStreak: 0,
    });
    expect(later.containers.find((c) => c.id === explicit)?.lastHealthOutput).toBeUndefined();
    expect(
      events.some((r) => r.event.container.id === explicit && r.event.source === "probe"),
    ).toBe(false);
    const refusals = agent.json.filter(
      (l) => l.level === "warn" && String(l.msg).startsWith("probe target refused"),
    );
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toMatchObject({ containerId: explicit, refusedTargets: 1 });
    // Counted once in the snapshot too: a refused probe does not run again.
    expect(later.agent.counters?.probeResults?.refused).toBe(1);
    expect(agent.json.filter((l) => l.level === "warn").length - warningsBefore).toBe(1);
  });

  it("runs the same target once FLEETHEAL_PROBE_ALLOW allows 127.0.0.0/8 on that agent", async () => {
    const before = events.length;
    agent = await fleet.restart(agent, { env: { FLEETHEAL_PROBE_ALLOW: "127.0.0.0/8" } });
    await probeEvent(explicit, "healthy", before);
    const shown = await snapshotOf(
      explicit,
      (x) => x.health === "healthy" && x.probe?.error === undefined,
      "the explicit target probed and healthy",
    );
    expect(shown).toMatchObject({
      healthSource: "probe",
      probe: { kind: "http", target: explicitLabel() },
      lastHealthOutput: "HTTP 200",
    });
    expect(agent.json.some((l) => String(l.msg).startsWith("probe target refused"))).toBe(false);

    // It follows the listener, as any probe does.
    const down = events.length;
    await killListener(own);
    await probeEvent(explicit, "unhealthy", down);
  });
});
