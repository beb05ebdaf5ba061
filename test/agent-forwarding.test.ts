// The agent on real parts: every Docker transition reaches the stream exactly once, even when
// dockerd or nats-server restarts in the middle of a burst; a container that was already unhealthy
// before the agent started still produces its event and gets healed; a host with 200 containers.

import type { NatsConnection } from "@nats-io/nats-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ContainerEvent, decode, HOSTS_BUCKET, HostSnapshot } from "../contracts/index.js";
import {
  type DockerEventRecorder,
  forwardedEventId,
  makeUnhealthy,
  runTestContainer,
  waitForHealth,
} from "./support/containers.js";
import type { DockerEngine } from "./support/dockerd.js";
import { type Fleet, type FleetHost, startFleet } from "./support/fleet.js";
import type { FleetProcess } from "./support/fleetheal.js";
import { readStored, readStoredTimed } from "./support/stream.js";
import { waitFor } from "./support/wait.js";

let fleet: Fleet;
let host: FleetHost | undefined;
let engine: DockerEngine;
let recorder: DockerEventRecorder;
let client: NatsConnection;
/** Roles a test started besides its host's agent, stopped after it. */
const running: FleetProcess[] = [];

beforeAll(async () => {
  // The streams exist before any agent starts, as the handler of a deployment creates them.
  fleet = await startFleet({ nats: "plain", handlers: 0, streams: true });
  client = await fleet.nats.connect({ name: "test-reader" });
});

// A fresh engine per test: a dockerd restart can leave a container that dockerd cannot remove
// any more, and that must not leak into the next test.
async function freshHost(id: string): Promise<void> {
  host = await fleet.addHost({ id, agent: false });
  ({ engine, docker: recorder } = host);
}

afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p[Symbol.asyncDispose]()));
  await host?.[Symbol.asyncDispose]();
  host = undefined;
});

afterAll(async () => {
  await fleet?.[Symbol.asyncDispose]();
});

function startAgent(id: string, extra: Record<string, string> = {}): Promise<FleetProcess> {
  return fleet.startAgent(id, { env: extra });
}

/** Runs `cycles` stop/start rounds on every container, concurrently per container. */
/**
 * Runs `cycles` stop/start rounds on every container, concurrently per container, and `midway`
 * halfway. With `pause`, the rounds wait while `midway` runs: for a dockerd restart, because a
 * start that dockerd accepts just as it shuts down can leave containerd holding the container
 * ("id already in use"), which is dockerd's problem, not the agent's. Docker still emits the
 * shutdown's own transitions, and the rounds resume on the restarted daemon. Without it (a NATS
 * restart), transitions go on while NATS is away, which is the point there.
 */
async function churn(
  ids: string[],
  cycles: number,
  midway?: () => Promise<void>,
  { pause = false } = {},
): Promise<void> {
  let done = 0;
  let fired = false;
  let active = 0;
  let gate: Promise<void> = Promise.resolve();
  await Promise.all(
    ids.map(async (id) => {
      for (let i = 0; i < cycles; i++) {
        await gate;
        const c = engine.docker.getContainer(id);
        active++;
        try {
          // The API can still be briefly away after a restart; the burst resumes when it is back.
          await waitFor(
            async () => {
              const state = (await c.inspect()).State;
              if (state.Running) await c.stop({ t: 0 });
              else await c.start();
              return true;
            },
            { timeoutMs: 60_000, intervalMs: 100, message: `could not cycle container ${id}` },
          );
        } finally {
          active--;
        }
        done++;
        if (!fired && midway && done >= (ids.length * cycles) / 2) {
          fired = true;
          if (!pause) {
            await midway();
            continue;
          }
          let open = () => {};
          gate = new Promise((resolve) => {
            open = resolve;
          });
          await waitFor(() => active === 0, {
            timeoutMs: 30_000,
            message: "the burst did not pause for the restart",
          });
          try {
            await midway();
          } finally {
            open();
          }
        }
      }
    }),
  );
}

/**
 * One stop-or-start of every container, alongside the other churn loops: a container they
 * changed in the meantime answers 304, which only means someone else made the transition.
 */
async function churnOnce(ids: string[]): Promise<void> {
  await Promise.all(
    ids.map(async (id) => {
      const c = engine.docker.getContainer(id);
      try {
        if ((await c.inspect()).State.Running) await c.stop({ t: 0 });
        else await c.start();
      } catch (error) {
        if ((error as { statusCode?: number }).statusCode !== 304) throw error;
      }
    }),
  );
}

/** A stretch of the test (a dockerd restart), in nanoseconds of the test's clock. */
interface Window {
  from: bigint;
  to: bigint;
}

const nowNano = (): bigint => BigInt(Date.now()) * 1_000_000n;

/**
 * Asserts that every forwarded Docker event of the recorder is stored exactly once, and tells a
 * late event from a lost one: a marker transition made after the burst is waited for in the
 * agent's snapshot (`lastEventTimeNano` past it with an empty outbox means every Docker event
 * before it was read and acked by JetStream), and only then is the stream compared. Returns how
 * many transitions were checked and the worst lateness (JetStream's storage time minus Docker's
 * event time).
 */
async function expectEveryTransitionStoredOnce(
  host: string,
  ids: Set<string>,
  gap?: Window,
): Promise<{ count: number; worstLatenessMs: number }> {
  const forwarded = () =>
    recorder.events.filter((e) => ids.has(e.id) && forwardedEventId(host, e) !== undefined);
  let before = 0n;
  for (const e of forwarded()) if (e.timeNano > before) before = e.timeNano;
  await churnOnce([...ids].slice(0, 1));
  const marker = await recorder.waitFor(
    (e) => ids.has(e.id) && e.timeNano > before && forwardedEventId(host, e) !== undefined,
    30_000,
    "the marker transition after the burst was not seen by the test's own Docker stream",
  );
  const kv = await import("@nats-io/kv").then(({ Kvm }) => new Kvm(client).open(HOSTS_BUCKET));
  let lastSnapshot = "none";
  await waitFor(
    async () => {
      const entry = await kv.get(host);
      const decoded = entry && decode(HostSnapshot, entry.value);
      if (!decoded?.ok) return false;
      const { outbox, lastEventTimeNano } = decoded.value;
      lastSnapshot = `outbox depth ${outbox.depth}, lastEventTimeNano ${lastEventTimeNano}`;
      return outbox.depth === 0 && BigInt(lastEventTimeNano ?? 0) >= marker.timeNano;
    },
    {
      timeoutMs: 60_000,
      intervalMs: 250,
      message: () =>
        `LATE: the agent of ${host} has not read and stored Docker's events up to the marker at ${marker.timeNano} (last snapshot: ${lastSnapshot})`,
    },
  );
  const expected = forwarded();
  expect(expected.length).toBeGreaterThan(ids.size * 4);
  const stored = await readStoredTimed(client, `fleetheal.v1.evt.${host}.>`, ContainerEvent);
  const docker = stored.filter((m) => m.value.source === "docker");
  const storedAt = new Map(docker.map((m) => [m.value.id, m.storedNano]));
  const lost = expected.filter((e) => !storedAt.has(forwardedEventId(host, e) as string));
  if (lost.length > 0) {
    const describe = (e: (typeof lost)[number]) => {
      const at = (ref: bigint) => `${Number(e.timeNano - ref) / 1e6} ms`;
      const reconciled = stored.some(
        (m) =>
          m.value.source !== "docker" && m.value.container.id === e.id && m.storedNano > e.timeNano,
      );
      const relative = gap
        ? `, ${at(gap.from)} after the restart began (${at(gap.to)} after it ended)`
        : "";
      return `${e.name} ${e.action} at ${e.timeNano}${relative}${reconciled ? ", later covered by a reconcile event" : ""}`;
    };
    throw new Error(
      `LOST: the agent of ${host} caught up past the marker, yet ${lost.length} Docker transition(s) never reached the stream: ${lost.map(describe).join("; ")}`,
    );
  }
  const counts = new Map<string, number>();
  for (const m of docker) counts.set(m.value.id, (counts.get(m.value.id) ?? 0) + 1);
  const duplicated = [...counts].filter(([, n]) => n > 1);
  expect(duplicated).toEqual([]);
  let worst = 0n;
  for (const e of expected) {
    const lateness = (storedAt.get(forwardedEventId(host, e) as string) as bigint) - e.timeNano;
    if (lateness > worst) worst = lateness;
  }
  return { count: expected.length, worstLatenessMs: Number(worst) / 1e6 };
}

describe("agent forwarding", () => {
  it("stores every transition exactly once when dockerd restarts mid-burst", async () => {
    await freshHost("docker-restart");
    await startAgent("docker-restart");
    const containers = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        runTestContainer(engine, { name: `burst-d-${i}`, healthcheck: false }),
      ),
    );
    const ids = containers.map((c) => c.id);
    const gap: Window = { from: 0n, to: 0n };
    await churn(
      ids,
      6,
      async () => {
        gap.from = nowNano();
        await engine.restart();
        gap.to = nowNano();
      },
      { pause: true },
    );
    const { count, worstLatenessMs } = await expectEveryTransitionStoredOnce(
      "docker-restart",
      new Set(ids),
      gap,
    );
    console.info(
      `dockerd restart: ${count} transitions stored once each; worst lateness ${worstLatenessMs} ms`,
    );
  });

  it("stores every transition exactly once when nats-server restarts mid-burst", async () => {
    await freshHost("nats-restart");
    await startAgent("nats-restart");
    const containers = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        runTestContainer(engine, { name: `burst-n-${i}`, healthcheck: false }),
      ),
    );
    const ids = containers.map((c) => c.id);
    await churn(ids, 6, async () => {
      await fleet.nats.server.kill();
      await fleet.nats.server.restart();
    });
    // The test's own connection also has to find the server again before it can read.
    await waitFor(async () => (await client.rtt()) >= 0, {
      timeoutMs: 20_000,
      message: "test client did not reconnect",
    });
    const { count, worstLatenessMs } = await expectEveryTransitionStoredOnce(
      "nats-restart",
      new Set(ids),
    );
    console.info(
      `nats-server kill -9 and restart: ${count} transitions stored once each; worst lateness ${worstLatenessMs} ms`,
    );
    // Docker's stream never broke, so the reconcile after the NATS reconnect found nothing that
    // Docker had not reported itself.
    const stored = await readStored(client, "fleetheal.v1.evt.nats-restart.>", ContainerEvent);
    expect(stored.filter((e) => e.source !== "docker")).toEqual([]);
  });

  it("stores every transition exactly once when the agent is killed mid-burst and restarted", async () => {
    await freshHost("agent-restart");
    const first = await startAgent("agent-restart");
    const containers = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        runTestContainer(engine, { name: `burst-a-${i}`, healthcheck: false }),
      ),
    );
    const ids = containers.map((c) => c.id);
    // Transitions made while no agent runs reach the stream only through the replay from the
    // point the killed agent recorded in its last snapshot.
    await churn(ids, 6, async () => {
      await first.kill();
      await churnOnce(ids);
      await startAgent("agent-restart");
    });
    const { count, worstLatenessMs } = await expectEveryTransitionStoredOnce(
      "agent-restart",
      new Set(ids),
    );
    console.info(
      `agent SIGKILL and restart: ${count} transitions stored once each; worst lateness ${worstLatenessMs} ms`,
    );
  });

  it("heals a container that was already unhealthy before the agent started", async () => {
    await freshHost("late-agent");
    const c = await runTestContainer(engine, { name: "sick-early", labels: { autoheal: "true" } });
    await waitForHealth(engine, c.id, "healthy", 20_000);
    await makeUnhealthy(engine, c.id);
    await waitForHealth(engine, c.id, "unhealthy", 20_000);
    running.push(await fleet.startHandler({ name: "handler" }));
    const before = recorder.events.length;
    await startAgent("late-agent");
    await recorder.waitFor(
      (e) => e.id === c.id && e.action === "restart" && recorder.events.indexOf(e) >= before,
      30_000,
      "the container that was unhealthy before the agent started was not restarted",
    );
    const events = await readStored(
      client,
      `fleetheal.v1.evt.late-agent.${c.id}.unhealthy`,
      ContainerEvent,
    );
    expect(events).toHaveLength(1);
    expect(events[0]?.source).toBe("reconcile");
    expect(events[0]?.container.startedAt).toBeDefined();
    // The image's id, as Docker's inspect has it (the image breaker counts by it).
    const { Image } = await engine.docker.getContainer(c.id).inspect();
    expect(Image).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(events[0]?.container.imageId).toBe(Image);
  });

  it("keeps a snapshot of a host with 200 containers and still forwards transitions", async () => {
    await freshHost("big-host");
    const manyNames = Array.from({ length: 200 }, (_, i) => `many-${i}`);
    const ids: string[] = [];
    for (let i = 0; i < manyNames.length; i += 10) {
      const batch = await Promise.all(
        manyNames
          .slice(i, i + 10)
          .map((name) => runTestContainer(engine, { name, healthcheck: false })),
      );
      ids.push(...batch.map((c) => c.id));
    }
    const watched = await runTestContainer(engine, {
      name: "many-watched",
      labels: { autoheal: "true" },
    });
    await startAgent("big-host");
    const kv = await import("@nats-io/kv").then(({ Kvm }) => new Kvm(client).open(HOSTS_BUCKET));
    const snapshot = await waitFor(
      async () => {
        const entry = await kv.get("big-host");
        const decoded = entry && decode(HostSnapshot, entry.value);
        if (!decoded?.ok) return undefined;
        const names = new Set(decoded.value.containers.map((c) => c.name));
        const listed = ["many-watched", ...manyNames].every((name) => names.has(name));
        return listed ? decoded.value : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 250, message: "snapshot never listed all 201 containers" },
    );
    const ours = snapshot.containers.filter((c) => c.name.startsWith("many-"));
    expect(ours).toHaveLength(201);
    expect(ours.every((c) => c.state === "running")).toBe(true);
    expect(snapshot.containers.find((c) => c.name === "many-watched")?.optedIn).toBe(true);
    await waitForHealth(engine, watched.id, "healthy", 20_000);
    await makeUnhealthy(engine, watched.id);
    const events = await waitFor(
      async () => {
        const stored = await readStored(
          client,
          `fleetheal.v1.evt.big-host.${watched.id}.unhealthy`,
          ContainerEvent,
        );
        return stored.length > 0 ? stored : undefined;
      },
      {
        timeoutMs: 20_000,
        message: "unhealthy event of a container on the big host never arrived",
      },
    );
    expect(events[0]?.source).toBe("docker");
    expect(ids).toHaveLength(200);
  });
});
