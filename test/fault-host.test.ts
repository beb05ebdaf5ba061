// A fault on one host, judged by healing (test/agent-forwarding.test.ts judges the event stream):
// an agent SIGKILLed while a container turns unhealthy, and dockerd restarted under a running
// agent. Each incident is healed exactly once, by Docker's own event stream.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeUnhealthy, runTestContainer, waitForHealth } from "./support/containers.js";
import { type Fleet, type FleetHost, startFleet } from "./support/fleet.js";

const HOST = "faulty";
let fleet: Fleet;
let host: FleetHost;

beforeAll(async () => {
  fleet = await startFleet({ nats: "plain", hosts: [HOST] });
  host = fleet.host(HOST);
});

afterAll(async () => {
  await fleet?.[Symbol.asyncDispose]();
});

const restarts = (id: string) => host.docker.count((e) => e.id === id && e.action === "restart");

describe("faults on a host", () => {
  it("heals, once, a container that turned unhealthy while its agent was dead", async () => {
    const c = await runTestContainer(host.engine, {
      name: "orphaned",
      labels: { autoheal: "true" },
    });
    await waitForHealth(host.engine, c.id, "healthy", 20_000);
    await host.agent.stop("SIGKILL");
    await makeUnhealthy(host.engine, c.id);
    await waitForHealth(host.engine, c.id, "unhealthy", 20_000);
    const restartedAt = Date.now();

    await fleet.startAgent(HOST, { name: "agent-2" });
    await host.docker.waitFor(
      (e) => e.id === c.id && e.action === "restart",
      30_000,
      "the restarted agent's replay did not lead to a heal",
    );
    console.info(
      `agent SIGKILL: healed ${Date.now() - restartedAt} ms after the agent was started again`,
    );
    await waitForHealth(host.engine, c.id, "healthy", 20_000);
    expect(restarts(c.id)).toBe(1);
  });

  it("heals, once, after dockerd restarted under a running agent", async () => {
    // The agent's event stream breaks and comes back, and a reconcile follows; healing must not
    // wait on it (docs/benchmarks/RELIABILITY.md, "Not tried yet", had this case out of the suite).
    await host.engine.restart();
    const c = await runTestContainer(host.engine, {
      name: "after-restart",
      labels: { autoheal: "true" },
    });
    await waitForHealth(host.engine, c.id, "healthy", 20_000);
    await makeUnhealthy(host.engine, c.id);
    // Docker's own event, not a poll of its state: the heal may be over before a poll sees it.
    await host.docker.waitFor(
      (e) => e.id === c.id && e.action === "health_status: unhealthy",
      20_000,
      "the container did not turn unhealthy",
    );
    const unhealthyAt = Date.now();
    await host.docker.waitFor(
      (e) => e.id === c.id && e.action === "restart",
      30_000,
      "a container that turned unhealthy after a dockerd restart was not healed",
    );
    console.info(`dockerd restart: healed ${Date.now() - unhealthyAt} ms after turning unhealthy`);
    await waitForHealth(host.engine, c.id, "healthy", 20_000);
    expect(restarts(c.id)).toBe(1);
  });
});
