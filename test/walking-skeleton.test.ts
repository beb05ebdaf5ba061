// End to end on real parts: one nats-server, two dockerd engines standing in for two hosts, an
// agent per host, two handler replicas and the gateway, all started through the CLI. Docker's own
// event stream is the witness for what was restarted and how often.

import { jetstreamManager } from "@nats-io/jetstream";
import type { Msg, NatsConnection } from "@nats-io/nats-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ContainerEvent,
  decode,
  EVENTS_STREAM,
  parseEventSubject,
  parseRemediationSubject,
  RemediationRecord,
} from "../contracts/index.js";
import { HealthReport } from "../gateway/view/health-report.js";
import {
  makeHealthy,
  makeUnhealthy,
  runTestContainer,
  waitForHealth,
} from "./support/containers.js";
import { type Fleet, type FleetHost, startFleet } from "./support/fleet.js";
import { waitFor } from "./support/wait.js";

let fleet: Fleet;
let hosts: FleetHost[];
let external: NatsConnection;
const seen: Msg[] = [];

async function fetchHealth() {
  const res = await fetch(`${fleet.gateway.url}/health`);
  expect(res.status).toBe(200);
  return HealthReport.parse(await res.json());
}

/** Waits until both heal replicas have finished with every message they were given. */
async function healConsumerSettled(): Promise<void> {
  const jsm = await jetstreamManager(external);
  await waitFor(
    async () => {
      const info = await jsm.consumers.info(EVENTS_STREAM, "fleetheal-heal");
      return info.num_pending === 0 && info.num_ack_pending === 0 && info.num_redelivered === 0;
    },
    { timeoutMs: 30_000, message: "heal consumer still has pending or unacked messages" },
  );
}

function remediations(containerId: string): RemediationRecord[] {
  return seen
    .filter((m) => parseRemediationSubject(m.subject)?.containerId === containerId)
    .map((m) => {
      const decoded = decode(RemediationRecord, m.data);
      if (!decoded.ok) throw decoded.error;
      return decoded.value;
    });
}

function restartsOf(host: FleetHost, id: string): number {
  return host.docker.count((e) => e.id === id && e.action === "restart");
}

beforeAll(async () => {
  fleet = await startFleet({
    nats: "plain",
    hosts: ["host-a", "host-b"],
    handlers: 2,
    gateway: true,
  });
  hosts = [...fleet.hosts.values()];
  external = await fleet.nats.connect({ name: "external-subscriber" });
  external.subscribe("fleetheal.v1.>", {
    callback: (_error, m) => {
      seen.push(m);
    },
  });
});

afterAll(async () => {
  await fleet?.[Symbol.asyncDispose]();
});

describe("walking skeleton: two hosts, two handler replicas, one gateway", () => {
  it("restarts an opted-in unhealthy container exactly once per incident, on each host", async () => {
    for (const host of hosts) {
      const c = await runTestContainer(host.engine, {
        name: `heal-me-${host.id}`,
        // No backoff, so that the second incident is healed at once too.
        labels: { autoheal: "true", "autoheal.backoff.initial": "0" },
      });
      await waitForHealth(host.engine, c.id, "healthy", 20_000);

      for (let incident = 1; incident <= 2; incident++) {
        const before = host.docker.events.length;
        await makeUnhealthy(host.engine, c.id);
        const unhealthy = await host.docker.waitFor(
          (e) =>
            e.id === c.id &&
            e.action === "health_status: unhealthy" &&
            host.docker.events.indexOf(e) >= before,
          20_000,
          `${host.id}: container never turned unhealthy (incident ${incident})`,
        );
        const kill = await host.docker.waitFor(
          (e) => e.id === c.id && e.action === "kill" && e.timeNano > unhealthy.timeNano,
          20_000,
          `${host.id}: fleetheal did not restart the container (incident ${incident})`,
        );
        console.info(
          `${host.id} incident ${incident}: unhealthy -> kill in ${Number(kill.timeNano - unhealthy.timeNano) / 1e6} ms`,
        );
        // The restart recreates /tmp/healthy, so the incident ends.
        await waitForHealth(host.engine, c.id, "healthy", 20_000);
        await healConsumerSettled();
        expect(restartsOf(host, c.id)).toBe(incident);
      }

      const phases = remediations(c.id).map((r) => r.phase);
      expect(phases.filter((p) => p === "restarted")).toHaveLength(2);
      expect(phases.filter((p) => p === "decided")).toHaveLength(2);
    }
  });

  it("never restarts an unlabelled unhealthy container or a healthy labelled one", async () => {
    const host = hosts[0] as FleetHost;
    const unlabelled = await runTestContainer(host.engine, { name: "not-mine" });
    const fine = await runTestContainer(host.engine, {
      name: "fine",
      labels: { autoheal: "true" },
    });
    await waitForHealth(host.engine, unlabelled.id, "healthy", 20_000);
    await waitForHealth(host.engine, fine.id, "healthy", 20_000);
    await makeUnhealthy(host.engine, unlabelled.id);
    await waitForHealth(host.engine, unlabelled.id, "unhealthy", 20_000);

    // The heal handler saw the event and said why it did nothing.
    const skipped = await waitFor(
      () => remediations(unlabelled.id).find((r) => r.phase === "skipped"),
      { timeoutMs: 20_000, message: "no skipped record for the unlabelled container" },
    );
    expect(skipped.code).toBe("not-opted-in");
    await healConsumerSettled();
    for (const id of [unlabelled.id, fine.id]) {
      expect(
        host.docker.count((e) => e.id === id && (e.action === "kill" || e.action === "restart")),
      ).toBe(0);
    }
    await makeHealthy(host.engine, unlabelled.id);
  });

  it("reports both hosts with correct counts in GET /health", async () => {
    const expected = await Promise.all(
      hosts.map(async (host) => {
        const list = await host.engine.docker.listContainers({ all: true });
        const counts = { total: list.length, healthy: 0, unhealthy: 0, starting: 0, none: 0 };
        for (const c of list) {
          const health = (await host.engine.docker.getContainer(c.Id).inspect()).State.Health
            ?.Status;
          counts[(health ?? "none") as keyof typeof counts]++;
        }
        return { id: host.id, counts };
      }),
    );
    const report = await waitFor(
      async () => {
        const r = await fetchHealth();
        const matches = expected.every(
          (e) =>
            JSON.stringify(r.hosts.find((h) => h.id === e.id)?.containers) ===
            JSON.stringify(e.counts),
        );
        return matches ? r : undefined;
      },
      {
        timeoutMs: 20_000,
        message: () => `GET /health never matched Docker's state: ${JSON.stringify(expected)}`,
      },
    );
    expect(report.hosts.map((h) => h.id).sort()).toEqual(["host-a", "host-b"]);
    expect(report.hosts.every((h) => h.status === "up" && h.docker === "up")).toBe(true);
    expect(report.totals.hosts).toEqual({ total: 2, up: 2, stale: 0, down: 0 });
    const total = expected.reduce((n, e) => n + e.counts.total, 0);
    expect(report.totals.containers.total).toBe(total);
    expect(report.status).toBe(report.totals.containers.unhealthy === 0 ? "healthy" : "degraded");
  });

  it("lets a plain NATS subscriber follow the unhealthy event and the remediation", async () => {
    const host = hosts[1] as FleetHost;
    const healed = (await host.engine.docker.listContainers()).find((c) =>
      c.Names.includes(`/heal-me-${host.id}`),
    );
    expect(healed).toBeDefined();
    const id = healed?.Id as string;
    const unhealthy = seen.filter((m) => {
      const parts = parseEventSubject(m.subject);
      return parts?.host === host.id && parts.containerId === id && parts.action === "unhealthy";
    });
    expect(unhealthy.length).toBeGreaterThanOrEqual(2);
    for (const m of unhealthy) {
      const event = decode(ContainerEvent, m.data);
      expect(event.ok && event.value.container.optedIn).toBe(true);
    }
    const restarted = remediations(id).filter((r) => r.phase === "restarted");
    expect(restarted.map((r) => r.host)).toEqual([host.id, host.id]);
    expect(restarted.every((r) => r.code === "restarted" && r.commandId?.startsWith("heal-"))).toBe(
      true,
    );
  });
});
