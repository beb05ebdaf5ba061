// The heal policy on real parts: a container that no restart repairs is restarted at the backoff
// intervals, then quarantined with an alert and left alone; a storm of failures across three
// hosts never has more restarts in flight than the storm guard allows; and the image breaker
// holds back an image (by id) failing on two hosts, but not on one host's failures alone.

import type { NatsConnection } from "@nats-io/nats-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RemediationRecord } from "../contracts/index.js";
import { importTestImage } from "./support/busybox-image.js";
import {
  breakPersistently,
  copyImage,
  type DockerEventRecord,
  makeHealthy,
  makeUnhealthy,
  runTestContainer,
  waitForHealth,
} from "./support/containers.js";
import { type Fleet, type FleetHost, startFleet } from "./support/fleet.js";
import { CLI, type FleetProcess, REPO } from "./support/fleetheal.js";
import { startProcess } from "./support/process.js";
import { readStored } from "./support/stream.js";
import { waitFor } from "./support/wait.js";

/** The gateway's admin token, which `fleetheal release` needs. */
const ADMIN_TOKEN = "heal-policy-admin-token-0123456789";

let fleet: Fleet;
let client: NatsConnection;
let hosts: FleetHost[];
let handlers: readonly FleetProcess[];

beforeAll(async () => {
  fleet = await startFleet({
    nats: "plain",
    hosts: ["pol-1", "pol-2", "pol-3"],
    handlers: 2,
    heartbeatMs: 5_000,
  });
  hosts = [...fleet.hosts.values()];
  handlers = fleet.handlers;
  client = await fleet.nats.connect({ name: "policy-test" });
  // A handler counts the fleet's hosts at its first trouble and keeps the answer; counted before
  // every agent had stored its snapshot, "one host" would let one host open the image breaker.
  await fleet.waitForHosts();
});

afterAll(async () => {
  await fleet?.[Symbol.asyncDispose]();
});

async function records(containerId: string): Promise<RemediationRecord[]> {
  return readStored(client, `fleetheal.v1.act.*.${containerId}.>`, RemediationRecord);
}

describe("heal policy", () => {
  it("backs off, then quarantines a container no restart repairs, and leaves it alone", async () => {
    const host = hosts[0] as FleetHost;
    const c = await runTestContainer(host.engine, {
      name: "hopeless",
      labels: {
        autoheal: "true",
        "autoheal.backoff.initial": "1s",
        "autoheal.backoff.max": "2s",
        "autoheal.budget.restarts": "3",
        "autoheal.budget.window": "10m",
      },
    });
    await waitForHealth(host.engine, c.id, "healthy", 20_000);
    await breakPersistently(host.engine, c.id);

    const quarantined = await waitFor(
      async () => (await records(c.id)).find((r) => r.phase === "quarantined"),
      { timeoutMs: 60_000, intervalMs: 250, message: "the container was never quarantined" },
    );
    expect(quarantined.code).toBe("budget-spent");
    const kills = host.docker.events.filter(
      (e: DockerEventRecord) => e.id === c.id && e.action === "kill",
    );
    expect(kills).toHaveLength(3);
    const gaps = [1, 2].map((i) =>
      Number(
        ((kills[i] as DockerEventRecord).timeNano - (kills[i - 1] as DockerEventRecord).timeNano) /
          1_000_000n,
      ),
    );
    // The second restart waits 1 s after the first, the third 2 s (the cap). The backoff runs
    // from each decision, and a decision reaches Docker some milliseconds later, so a kill can
    // come up to that latency early relative to the previous kill.
    expect(gaps[0]).toBeGreaterThanOrEqual(1_000 - 200);
    expect(gaps[1]).toBeGreaterThanOrEqual(2_000 - 200);

    // Left alone: it goes healthy and unhealthy again within the same run, and a handler
    // says so: the new trigger is skipped because the container is quarantined.
    await makeHealthy(host.engine, c.id);
    await waitForHealth(host.engine, c.id, "healthy", 20_000);
    await makeUnhealthy(host.engine, c.id);
    await waitFor(
      async () =>
        (await records(c.id)).some((r) => r.phase === "skipped" && r.code === "quarantined"),
      { timeoutMs: 30_000, message: "the quarantined container's new trigger was not skipped" },
    );
    expect(host.docker.count((e) => e.id === c.id && e.action === "kill")).toBe(3);

    // Released by hand (through a gateway, as every client command), it is healed again at its
    // next trouble, with a fresh budget.
    const gateway = await fleet.startGateway({ adminToken: ADMIN_TOKEN });
    const release = await startProcess({
      name: "release",
      command: process.execPath,
      args: [CLI, "release", host.id, "hopeless"],
      cwd: REPO,
      env: { FLEETHEAL_GATEWAY_URL: gateway.url, FLEETHEAL_GATEWAY_TOKEN: ADMIN_TOKEN },
    });
    expect((await release.exited).code).toBe(0);
    expect(release.lines.join("\n")).toContain("released hopeless");
    const released = await records(c.id);
    expect(released.some((r) => r.phase === "released" && r.code === "by-hand")).toBe(true);
    await makeHealthy(host.engine, c.id);
    await waitForHealth(host.engine, c.id, "healthy", 20_000);
    await makeUnhealthy(host.engine, c.id);
    await host.docker.waitFor(
      () => host.docker.count((e) => e.id === c.id && e.action === "kill") === 4,
      30_000,
      "the released container was not restarted at its next trouble",
    );
  });

  it("never has more restarts in flight than the storm guard allows", async () => {
    await fleet.putPolicy({
      storm: {
        maxConcurrentPerHost: 5,
        maxConcurrentFleet: 5,
        maxPerMinutePerHost: 1000,
        maxPerMinuteFleet: 1000,
        // Thirty containers of one image failing together would trip the image breaker, which
        // has its own test; here the concurrency cap is under test.
        imageBreaker: { failures: 0, windowSeconds: 60 },
      },
    });
    // Created a few at a time: thirty containers starting at once on two cores would fail
    // their own health checks.
    const containers: { host: FleetHost; id: string; name: string }[] = [];
    for (let i = 0; i < 10; i += 5) {
      const batch = await Promise.all(
        hosts.flatMap((host) =>
          Array.from({ length: 5 }, async (_, j) => {
            const c = await runTestContainer(host.engine, {
              name: `storm-${i + j}`,
              // Slow restarts (the stop takes a second), so that caps are actually tested.
              labels: { autoheal: "true", "autoheal.stop.timeout": "1" },
              healthIntervalMs: 4_000,
            });
            return { host, ...c };
          }),
        ),
      );
      containers.push(...batch);
    }
    await Promise.all(containers.map((c) => waitForHealth(c.host.engine, c.id, "healthy", 60_000)));
    const since = new Map(hosts.map((h) => [h.id, h.docker.events.length]));
    await Promise.all(containers.map((c) => makeUnhealthy(c.host.engine, c.id)));
    for (const c of containers) {
      await c.host.docker.waitFor(
        (e) =>
          e.id === c.id &&
          e.action === "restart" &&
          c.host.docker.events.indexOf(e) >= (since.get(c.host.id) ?? 0),
        120_000,
        `storm container ${c.name} on ${c.host.id} was never restarted`,
      );
    }
    // Docker's own timeline: a restart is in flight from its kill to its restart event.
    const edges: { t: bigint; delta: number }[] = [];
    let restarts = 0;
    for (const c of containers) {
      let open: bigint | undefined;
      for (const e of c.host.docker.events) {
        if (e.id !== c.id) continue;
        if (e.action === "kill" && open === undefined) open = e.timeNano;
        if (e.action === "restart" && open !== undefined) {
          edges.push({ t: open, delta: 1 }, { t: e.timeNano, delta: -1 });
          open = undefined;
          restarts++;
        }
      }
    }
    edges.sort((a, b) => (a.t === b.t ? a.delta - b.delta : a.t < b.t ? -1 : 1));
    let inFlight = 0;
    let peak = 0;
    for (const edge of edges) {
      inFlight += edge.delta;
      peak = Math.max(peak, inFlight);
    }
    console.info(`storm: ${restarts} restarts, at most ${peak} in flight (cap 5)`);
    expect(restarts).toBeGreaterThanOrEqual(30);
    expect(peak).toBeLessThanOrEqual(5);
    expect(peak).toBeGreaterThanOrEqual(2);
    const waited = (await Promise.all(containers.map((c) => records(c.id))))
      .flat()
      .filter((r) => r.code === "storm-cap");
    expect(waited.length).toBeGreaterThan(0);
  });

  it("holds back an image failing on two hosts, never on one host's failures alone, and alerts", async () => {
    // In force on both replicas before the first failure: every failure below is counted.
    await fleet.putPolicy({ storm: { imageBreaker: { failures: 3, windowSeconds: 600 } } });
    const [third, first, second] = hosts as [FleetHost, FleetHost, FleetHost];
    const image = "fleetheal-test/breaker:v1";
    // One image on two hosts, with one id (as pulled from one registry); on a third host another
    // image under the same name.
    const imageId = await importTestImage(first.engine, image);
    expect(await copyImage(first.engine, second.engine, image)).toBe(imageId);
    expect(await importTestImage(third.engine, image)).not.toBe(imageId);
    const run = async (host: FleetHost, name: string) => ({
      host,
      ...(await runTestContainer(host.engine, {
        name,
        image,
        labels: { autoheal: "true" },
        healthIntervalMs: 1_000,
        // Every failure is the test's own, in the test's order: a check that merely timed out
        // under load would add one, out of turn.
        healthTimeoutMs: 60_000,
      })),
    });
    const onFirst = await Promise.all([0, 1, 2, 3].map((i) => run(first, `breaker-a${i}`)));
    const onSecond = await run(second, "breaker-b0");
    const onThird = await run(third, "breaker-c0");
    const containers = [...onFirst, onSecond, onThird];
    await Promise.all(containers.map((c) => waitForHealth(c.host.engine, c.id, "healthy", 30_000)));
    // One after another, so that the order of failures (and so the breaker) is certain.
    for (const c of containers) {
      await makeUnhealthy(c.host.engine, c.id);
      await waitFor(async () => (await records(c.id)).length > 0, {
        timeoutMs: 30_000,
        message: `no decision about ${c.name}`,
      });
    }
    const decided = await Promise.all(containers.map((c) => records(c.id)));
    const held = decided.map((rs) => rs.some((r) => r.code === "image-breaker"));
    // The first host's four failures count for two of the three: they open nothing. The second
    // host's failure opens it. The third host's image is another one, whatever its name.
    expect(held).toEqual([false, false, false, false, true, false]);
    const alert = decided[4]?.find((r) => r.code === "image-breaker");
    expect(alert?.phase).toBe("quarantined");
    expect(alert?.message).toContain(`${image} (${imageId})`);
    expect(alert?.message).toContain("on 2 hosts");
    for (const c of [...onFirst, onThird]) {
      await c.host.docker.waitFor(
        (e) => e.id === c.id && e.action === "restart",
        30_000,
        `${c.name} on ${c.host.id} was not restarted`,
      );
    }
    for (const c of containers) {
      const restarted = c.host.docker.count((e) => e.id === c.id && e.action === "restart");
      expect(restarted).toBe(c === onSecond ? 0 : 1);
    }
    // The handlers counted the hosts (rather than falling back to "several" for want of a count).
    const uncounted = handlers
      .flatMap((h) => h.json)
      .filter((l) => /count the fleet/.test(`${l.msg}`));
    expect(uncounted).toEqual([]);
  });
});
