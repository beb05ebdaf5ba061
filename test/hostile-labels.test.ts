// Hostile label values on a real host: containers whose probe, timeout and policy labels are
// empty, out of range, huge, unicode or aimed at things they must not reach. Each one gets a
// clear error in the host snapshot (and the gateway), nothing crashes, and the rest of the host
// keeps being healed, including a container whose policy labels are all bad (the fleet defaults
// apply to it).

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ContainerDetail } from "../gateway/http/api-schemas.js";
import {
  type DockerEventRecorder,
  makeUnhealthy,
  recordDockerEvents,
  runTestContainer,
  waitForHealth,
} from "./support/containers.js";
import { type DockerEngine, startDockerEngine } from "./support/dockerd.js";
import { type FleetProcess, gatewayUrl, startRole } from "./support/fleetheal.js";
import { type NatsServerHandle, startNatsServer } from "./support/nats-server.js";
import { waitFor } from "./support/wait.js";

const HOST = "hostile";
const cleanups: (() => PromiseLike<unknown>)[] = [];
const exited: string[] = [];
let engine: DockerEngine;
let recorder: DockerEventRecorder;
let base: string;
let agent: FleetProcess;

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
  const nats: NatsServerHandle = await startNatsServer();
  cleanups.push(() => nats[Symbol.asyncDispose]());
  engine = await startDockerEngine("hostile");
  cleanups.push(() => engine[Symbol.asyncDispose]());
  recorder = await recordDockerEvents(engine);
  cleanups.push(async () => recorder.close());
  const common = { FLEETHEAL_NATS_URL: nats.url };
  const handler = await startRole("handler", "handler", common);
  cleanups.push(() => handler[Symbol.asyncDispose]());
  const gateway = await startRole("gateway", "gateway", {
    ...common,
    FLEETHEAL_GATEWAY_PORT: "0",
    FLEETHEAL_GATEWAY_HOST: "127.0.0.1",
  });
  cleanups.push(() => gateway[Symbol.asyncDispose]());
  base = gatewayUrl(gateway);
  // The containers exist before the agent starts, so its first snapshot must already cope.
  for (const [name, { labels }] of Object.entries(BAD_PROBES)) {
    await runTestContainer(engine, {
      name,
      healthcheck: false,
      labels: { autoheal: "true", ...labels },
    });
  }
  agent = await startRole("agent", "agent", {
    ...common,
    FLEETHEAL_HOST_ID: HOST,
    DOCKER_HOST: engine.dockerHost,
    FLEETHEAL_HEARTBEAT_MS: "500",
  });
  cleanups.push(() => agent[Symbol.asyncDispose]());
  for (const role of [handler, gateway, agent]) void role.exited.then(() => exited.push(role.name));
});

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) {
    await Promise.resolve(cleanup()).catch((e) => console.error(e));
  }
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
    const c = await runTestContainer(engine, {
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
    const fine = await runTestContainer(engine, { name: "fine", labels: { autoheal: "true" } });
    await waitForHealth(engine, c.id, "healthy", 20_000);
    await waitForHealth(engine, fine.id, "healthy", 20_000);

    const d = await waitFor(() => detail("bad-policy"), {
      timeoutMs: 15_000,
      message: "bad-policy never appeared in the gateway",
    });
    expect(d.healing.labelErrors).toHaveLength(5);
    expect(d.healing.labelErrors.join("\n")).toMatch(/autoheal\.backoff\.initial="soon"/);
    expect(d.healing.policy.budget.restarts).toBe(5);
    expect(d.healing.policy.dryRun).toBe(false);

    for (const target of [c, fine]) {
      await makeUnhealthy(engine, target.id);
      await recorder.waitFor(
        (e) => e.id === target.id && e.action === "restart",
        30_000,
        `${target.name} was not healed next to the hostile labels`,
      );
      await waitForHealth(engine, target.id, "healthy", 20_000);
    }
    expect(recorder.count((e) => e.id === c.id && e.action === "restart")).toBe(1);
    expect(recorder.count((e) => e.id === fine.id && e.action === "restart")).toBe(1);
    // The hostile probes' containers were never touched.
    const names = new Set(Object.keys(BAD_PROBES));
    expect(recorder.count((e) => names.has(e.name) && e.action === "restart")).toBe(0);
    expect(exited).toEqual([]);
  });
});
