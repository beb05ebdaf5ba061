// Hostile label values on a real host: containers whose probe, timeout and policy labels are
// empty, out of range, huge, unicode or aimed at things they must not reach. Each one gets a
// clear error in the host snapshot (and the gateway), nothing crashes, and the rest of the host
// keeps being healed, including a container whose policy labels are all bad (the fleet defaults
// apply to it).

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ContainerDetail } from "../gateway/http/api-schemas.js";
import { makeUnhealthy, runTestContainer, waitForHealth } from "./support/containers.js";
import { type Fleet, type FleetHost, startFleet } from "./support/fleet.js";
import { waitFor } from "./support/wait.js";

const HOST = "hostile";
const exited: string[] = [];
let fleet: Fleet;
let host: FleetHost;
let base: string;

/** Probe labels that must each be refused with a reason naming the label. */
const BAD_PROBES: Record<string, { labels: Record<string, string>; error: RegExp }> = {
  "probe-empty-exec": {
    labels: { "autoheal.probe.exec": "" },
    error: /autoheal\.probe\.exec/,
  },
  "probe-bad-timing": {
    labels: {
      "autoheal.probe.exec": "true",
      "autoheal.probe.interval": "-1s",
      "autoheal.probe.timeout": "forever",
      "autoheal.probe.retries": "1e9",
    },
    error:
      /autoheal\.probe\.interval.*autoheal\.probe\.timeout|autoheal\.probe\.timeout.*autoheal\.probe\.interval/,
  },
  "probe-two-kinds": {
    labels: { "autoheal.probe.tcp": "8080", "autoheal.probe.http": ":8080/health" },
    error: /autoheal\.probe/,
  },
  "probe-bad-url": {
    labels: { "autoheal.probe.http": "file:///etc/passwd" },
    error: /autoheal\.probe\.http/,
  },
  "probe-bad-port": {
    labels: { "autoheal.probe.tcp": "localhost:99999" },
    error: /autoheal\.probe\.tcp.*port/,
  },
  "probe-unknown-unicode": {
    labels: { "autoheal.probe.ехес": "true", "autoheal.probe.exec": "true\u0000; rm -rf /" },
    error: /unknown label/,
  },
  "probe-huge": {
    labels: {
      "autoheal.probe.exec": "x".repeat(20_000),
      "autoheal.probe.interval": "9".repeat(500),
    },
    error: /autoheal\.probe/,
  },
};

beforeAll(async () => {
  fleet = await startFleet({ nats: "plain", hosts: [{ id: HOST, agent: false }], gateway: true });
  host = fleet.host(HOST);
  base = fleet.gateway.url;
  // The containers exist before the agent starts, so its first snapshot must already cope.
  for (const [name, { labels }] of Object.entries(BAD_PROBES)) {
    await runTestContainer(host.engine, {
      name,
      healthcheck: false,
      labels: { autoheal: "true", ...labels },
    });
  }
  const agent = await fleet.startAgent(HOST);
  for (const role of [...fleet.handlers, fleet.gateway, agent]) {
    void role.exited.then(() => exited.push(role.name));
  }
});

afterAll(async () => {
  await fleet?.[Symbol.asyncDispose]();
});

async function detail(name: string): Promise<ContainerDetail> {
  const res = await fetch(`${base}/containers/${HOST}/${name}`);
  if (res.status !== 200) throw new Error(`GET ${name}: ${res.status} ${await res.text()}`);
  return ContainerDetail.parse(await res.json());
}

describe("hostile label values", () => {
  it("reports each bad probe with a reason naming the label, and runs none of them", async () => {
    for (const [name, { error }] of Object.entries(BAD_PROBES)) {
      const d = await waitFor(() => detail(name), {
        timeoutMs: 15_000,
        message: `${name} never appeared in the gateway`,
      });
      expect(d.container.probe?.error, name).toMatch(error);
      expect(d.container.probe?.error?.length ?? 0, name).toBeLessThanOrEqual(512);
      // Not probed: its health stays unknown, and nothing restarts it.
      expect(d.container.healthSource, name).not.toBe("probe");
    }
    expect(exited).toEqual([]);
  });

  it("heals a container whose policy and timeout labels are all bad, with the fleet defaults", async () => {
    const c = await runTestContainer(host.engine, {
      name: "bad-policy",
      labels: {
        autoheal: "true",
        "autoheal.stop.timeout": "-5",
        "autoheal.backoff.initial": "soon",
        "autoheal.budget.restarts": "0",
        "autoheal.budget.window": "💥",
        "autoheal.dry_run": "maybe",
        "autoheal.start_period": "9".repeat(300),
      },
    });
    const fine = await runTestContainer(host.engine, {
      name: "fine",
      labels: { autoheal: "true" },
    });
    await waitForHealth(host.engine, c.id, "healthy", 20_000);
    await waitForHealth(host.engine, fine.id, "healthy", 20_000);

    const d = await waitFor(() => detail("bad-policy"), {
      timeoutMs: 15_000,
      message: "bad-policy never appeared in the gateway",
    });
    expect(d.healing.labelErrors).toHaveLength(5);
    expect(d.healing.labelErrors.join("\n")).toMatch(/autoheal\.backoff\.initial="soon"/);
    expect(d.healing.policy.budget.restarts).toBe(5);
    expect(d.healing.policy.dryRun).toBe(false);

    for (const target of [c, fine]) {
      await makeUnhealthy(host.engine, target.id);
      await host.docker.waitFor(
        (e) => e.id === target.id && e.action === "restart",
        30_000,
        `${target.name} was not healed next to the hostile labels`,
      );
      await waitForHealth(host.engine, target.id, "healthy", 20_000);
    }
    expect(host.docker.count((e) => e.id === c.id && e.action === "restart")).toBe(1);
    expect(host.docker.count((e) => e.id === fine.id && e.action === "restart")).toBe(1);
    // The hostile probes' containers were never touched.
    const names = new Set(Object.keys(BAD_PROBES));
    expect(host.docker.count((e) => names.has(e.name) && e.action === "restart")).toBe(0);
    expect(exited).toEqual([]);
  });
});
