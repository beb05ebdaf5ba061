// The gateway on real parts: a nats-server, two dockerd engines as hosts with their agents, a
// handler and the gateway, all started through the CLI. It checks the API against what Docker
// and the handlers really did: healing shows up in /events, the live stream and /metrics; the
// policy set over HTTP quarantines a container that restarts do not fix, and releasing it over
// HTTP is recorded; a manual restart really restarts and is audited; a silent agent turns its
// host stale, then down; and a restarted gateway rebuilds the same view from NATS alone.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ContainerDetail,
  ContainerPage,
  EventsPage,
  HostList,
  PolicyDocument,
  RestartResult,
} from "../gateway/http/api-schemas.js";
import { HealthReport } from "../gateway/view/health-report.js";
import {
  breakPersistently,
  makeUnhealthy,
  runTestContainer,
  waitForHealth,
} from "./support/containers.js";
import { type Fleet, type FleetGateway, type FleetHost, startFleet } from "./support/fleet.js";
import { openSse } from "./support/sse.js";
import { waitFor } from "./support/wait.js";

const ADMIN = "gateway-test-admin-token-0123456789";

let fleet: Fleet;
let gateway: FleetGateway;
let base: string;

const admin = { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" };

async function get<T>(path: string, schema: { parse(v: unknown): T }): Promise<T> {
  const res = await fetch(`${base}${path}`);
  const body = await res.json();
  if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${JSON.stringify(body)}`);
  return schema.parse(body);
}

async function post(path: string, body: unknown = {}, headers: Record<string, string> = {}) {
  const res = await fetch(`${base}${path}`, {
    method: "POST",
    headers: { ...admin, ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

function host(index: number): FleetHost {
  const h = [...fleet.hosts.values()][index];
  if (!h) throw new Error(`no host ${index}`);
  return h;
}

beforeAll(async () => {
  fleet = await startFleet({
    nats: "plain",
    hosts: ["gw-host-1", "gw-host-2"],
    gateway: { adminToken: ADMIN },
  });
  gateway = fleet.gateway;
  base = gateway.url;
});

afterAll(async () => {
  await fleet?.[Symbol.asyncDispose]();
});

describe("the gateway on a real fleet", () => {
  it("lists hosts and containers as the agents report them", async () => {
    const h = host(0);
    const c = await runTestContainer(h.engine, { name: "api-web", labels: { autoheal: "true" } });
    await runTestContainer(host(1).engine, {
      name: "api-other",
      labels: { "fleetheal.team": "db" },
    });
    await waitForHealth(h.engine, c.id, "healthy", 20_000);

    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    const { hosts: listed } = await waitFor(
      async () => {
        const list = await get("/hosts", HostList);
        return list.hosts.length === 2 && list.hosts.every((x) => x.status === "up")
          ? list
          : undefined;
      },
      { timeoutMs: 15_000, message: "/hosts never listed both hosts as up" },
    );
    expect(listed.map((x) => x.id)).toEqual(["gw-host-1", "gw-host-2"]);

    const page = await waitFor(
      async () => {
        const p = await get("/containers?health=healthy&host=gw-host-1", ContainerPage);
        return p.containers.some((x) => x.id === c.id) ? p : undefined;
      },
      { timeoutMs: 15_000, message: "api-web never listed as healthy" },
    );
    expect(page.containers.every((x) => x.host === "gw-host-1" && x.health === "healthy")).toBe(
      true,
    );
    // api-other's host reports on its own heartbeat: wait for it rather than race it.
    const db = await waitFor(
      async () => {
        const p = await get("/containers?label=fleetheal.team=db", ContainerPage);
        return p.containers.length > 0 ? p : undefined;
      },
      { timeoutMs: 15_000, message: "api-other never listed by its label" },
    );
    expect(db.containers.map((x) => x.name)).toEqual(["api-other"]);
    const detail = await get(`/containers/gw-host-1/api-web`, ContainerDetail);
    expect(detail.container.id).toBe(c.id);
    expect(detail.container.optedIn).toBe(true);
  });

  it("shows a heal live on the stream, in the history, the ledger and the metrics", async () => {
    const h = host(0);
    const c = await runTestContainer(h.engine, { name: "heal-live", labels: { autoheal: "true" } });
    await waitForHealth(h.engine, c.id, "healthy", 20_000);
    await using sse = await openSse(`${base}/events/stream?host=${h.id}&kind=remediation`);
    await sse.nextMatching((m) => m.event === "health", 5_000, "the first health message");

    await makeUnhealthy(h.engine, c.id);
    const restarted = await sse.nextMatching(
      (m) =>
        m.event === "record" &&
        JSON.parse(m.data).remediation?.containerId === c.id &&
        JSON.parse(m.data).remediation?.phase === "restarted",
      30_000,
      "a live `restarted` record for heal-live",
    );
    expect(Number(restarted.id)).toBeGreaterThan(0);
    await h.docker.waitFor(
      (e) => e.id === c.id && e.action === "restart",
      5_000,
      "Docker never restarted heal-live",
    );

    const history = await get(
      `/events?host=${h.id}&container=${c.id}&since=5m&limit=1000`,
      EventsPage,
    );
    const kinds = history.records.map((r) =>
      r.kind === "event" ? r.event.action : `act:${r.remediation.phase}`,
    );
    expect(kinds).toContain("unhealthy");
    expect(kinds).toContain("act:decided");
    expect(kinds).toContain("act:restarted");
    expect(kinds.indexOf("unhealthy")).toBeLessThan(kinds.indexOf("act:restarted"));

    const detail = await waitFor(
      async () => {
        const d = await get(`/containers/${h.id}/${c.id}`, ContainerDetail);
        return d.healing.restarts.length === 1 ? d : undefined;
      },
      { timeoutMs: 10_000, message: "the ledger restart never reached the gateway's view" },
    );
    expect(detail.healing.restarts[0]?.outcome).toBe("restarted");

    const metrics = await (await fetch(`${base}/metrics`)).text();
    // The handler's restart is the handler's to count: the gateway counts only what it sends.
    expect(metrics).not.toMatch(/fleetheal_restarts_total\{host=/);
    expect(metrics).toContain('fleetheal_restarts_total{trigger="manual",outcome="restarted"} 0');
    expect(metrics).toMatch(/fleetheal_event_lag_seconds_count [1-9]/);
    expect(metrics).toContain('fleetheal_hosts{status="up"} 2');
    // The breakers bucket is followed; one heal opens no breaker.
    expect(metrics).toContain("fleetheal_image_breakers_open 0");
    // One status at 1, the others at 0 (whether a container is still unhealthy here is not this
    // test's business).
    const statuses = [...metrics.matchAll(/^fleetheal_fleet_status\{status="(\w+)"\} (\d)$/gm)];
    expect(statuses.map((m) => m[1])).toEqual(["healthy", "degraded", "unhealthy"]);
    expect(statuses.map((m) => Number(m[2])).reduce((a, b) => a + b)).toBe(1);
    // Each host's own series, from the snapshots its agent sends.
    for (const id of fleet.hosts.keys()) {
      expect(metrics).toContain(`fleetheal_host_up{host="${id}"} 1`);
      expect(metrics).toContain(`fleetheal_host_docker_up{host="${id}"} 1`);
      expect(metrics).toMatch(
        new RegExp(`fleetheal_agent_build_info\\{host="${id}",version="[^"]+"\\} 1`),
      );
      expect(metrics).toMatch(
        new RegExp(`fleetheal_agent_reconciles_total\\{host="${id}"\\} [1-9]`),
      );
      expect(metrics).toMatch(
        new RegExp(`fleetheal_host_last_seen_timestamp_seconds\\{host="${id}"\\} \\d`),
      );
      expect(metrics).toContain(
        `fleetheal_agent_commands_refused_total{host="${id}",code="unsigned"} 0`,
      );
    }
  });

  it("restarts by hand, once per idempotency key, and audits it", async () => {
    const h = host(1);
    const c = await runTestContainer(h.engine, { name: "by-hand", labels: { autoheal: "true" } });
    await waitForHealth(h.engine, c.id, "healthy", 20_000);
    await waitFor(async () => (await fetch(`${base}/containers/${h.id}/by-hand`)).status === 200, {
      timeoutMs: 10_000,
      message: "by-hand never appeared in the view",
    });
    const path = `/containers/${h.id}/by-hand/restart`;
    const key = { "idempotency-key": "gateway-test-1" };
    const first = await post(path, { reason: "test: stuck" }, key);
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    const result = RestartResult.parse(first.body);
    expect(result).toMatchObject({ outcome: "restarted", duplicate: false });
    const again = await post(path, { reason: "test: stuck" }, key);
    expect(again.status).toBe(200);
    expect(RestartResult.parse(again.body)).toMatchObject({
      commandId: result.commandId,
      duplicate: true,
    });
    expect(h.docker.count((e) => e.id === c.id && e.action === "restart")).toBe(1);
    // Counted once by the gateway that sent it: the repeat was answered from the first run.
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toContain('fleetheal_restarts_total{trigger="manual",outcome="restarted"} 1');
    expect(metrics).toContain('fleetheal_restarts_total{trigger="manual",outcome="failed"} 0');

    const audit = await waitFor(
      async () => {
        const page = await get(
          `/events?host=${h.id}&container=${c.id}&kind=remediation&since=5m`,
          EventsPage,
        );
        const records = page.records.flatMap((r) => (r.kind === "remediation" ? [r] : []));
        return records.some((r) => r.remediation.phase === "restarted") ? records : undefined;
      },
      { timeoutMs: 10_000, message: "no audit records for the manual restart" },
    );
    for (const r of audit) {
      expect(r.remediation).toMatchObject({ code: "by-hand", actor: "gateway:admin" });
    }
    expect(audit.map((r) => r.remediation.phase)).toEqual(["restarting", "restarted"]);

    // Without the token, nothing happens.
    const refused = await fetch(`${base}${path}`, { method: "POST" });
    expect(refused.status).toBe(401);
    expect(h.docker.count((e) => e.id === c.id && e.action === "restart")).toBe(1);
  });

  it("quarantines by the policy set over HTTP, counts it in /health, and releases over HTTP", async () => {
    const put = await fetch(`${base}/policy`, {
      method: "PUT",
      headers: { ...admin, "if-match": '"0"' },
      body: JSON.stringify({ backoff: { initialSeconds: 0 }, budget: { restarts: 1 } }),
    });
    expect(put.status, await put.clone().text()).toBe(200);
    expect(PolicyDocument.parse(await put.json()).policy.budget.restarts).toBe(1);

    const h = host(1);
    const c = await runTestContainer(h.engine, { name: "hopeless", labels: { autoheal: "true" } });
    await waitForHealth(h.engine, c.id, "healthy", 20_000);
    await breakPersistently(h.engine, c.id);
    const quarantined = await waitFor(
      async () => {
        const page = await get(`/containers?quarantined=1&host=${h.id}`, ContainerPage);
        return page.containers.find((x) => x.id === c.id);
      },
      { timeoutMs: 60_000, message: "hopeless was never listed as quarantined" },
    );
    expect(quarantined.restarts).toBe(1);
    // On a starved machine another test container's health check can time out and be
    // quarantined too, so /health's counts are compared with the list rather than with 1.
    await waitFor(
      async () => {
        const health = await get("/health", HealthReport);
        const all = await get("/containers?quarantined=1", ContainerPage);
        const here = all.containers.filter((x) => x.host === h.id).length;
        return (
          all.containers.some((x) => x.id === c.id) &&
          health.totals.quarantined === all.containers.length &&
          health.hosts.find((x) => x.id === h.id)?.quarantined === here
        );
      },
      { timeoutMs: 10_000, message: "/health's quarantined counts never matched the list" },
    );

    const released = await post(`/containers/${h.id}/${c.id.slice(0, 12)}/release`, {
      reason: "fixed the config",
    });
    expect(released.status, JSON.stringify(released.body)).toBe(200);
    expect(released.body).toMatchObject({ host: h.id, containerId: c.id, name: "hopeless" });
    const again = await post(`/containers/${h.id}/${c.id}/release`);
    // Released, unless the handler already quarantined it again (it is still broken).
    expect([200, 409]).toContain(again.status);
    const history = await get(
      `/events?host=${h.id}&container=${c.id}&kind=remediation&since=5m&limit=1000`,
      EventsPage,
    );
    const release = history.records.find(
      (r) => r.kind === "remediation" && r.remediation.phase === "released",
    );
    expect(release?.kind === "remediation" && release.remediation.actor).toBe("gateway:admin");
    await h.engine.docker.getContainer(c.id).remove({ force: true });
    const reset = await fetch(`${base}/policy`, {
      method: "PUT",
      headers: admin,
      body: JSON.stringify({}),
    });
    expect(reset.status).toBe(200);
  });

  it("turns a silent host stale, then down, and leaves its containers out", async () => {
    const h = host(1);
    const hostUp = async () => {
      const text = await (await fetch(`${base}/metrics`)).text();
      return new RegExp(`^fleetheal_host_up\\{host="${h.id}"\\} (\\d)$`, "m").exec(text)?.[1];
    };
    expect(await hostUp()).toBe("1");
    await h.agent.stop("SIGKILL");
    const stale = await waitFor(
      async () => {
        const report = await get("/health", HealthReport);
        return report.hosts.find((x) => x.id === h.id)?.status === "stale" ? report : undefined;
      },
      { timeoutMs: 10_000, message: `${h.id} never turned stale` },
    );
    expect(stale.status).toBe("degraded");
    // /metrics reads the same report: the host is not up once it is stale.
    expect(await hostUp()).toBe("0");
    const degraded = await (await fetch(`${base}/metrics`)).text();
    expect(degraded).toContain('fleetheal_fleet_status{status="degraded"} 1');
    const down = await waitFor(
      async () => {
        const report = await get("/health", HealthReport);
        return report.hosts.find((x) => x.id === h.id)?.status === "down" ? report : undefined;
      },
      { timeoutMs: 15_000, message: `${h.id} never turned down` },
    );
    const live = down.hosts.find((x) => x.id === host(0).id);
    expect(down.totals.containers.total).toBe(live?.containers.total);
    const strict = await fetch(`${base}/health?strict=1`);
    expect(strict.status).toBe(503);
    expect(await hostUp()).toBe("0");
    expect(await (await fetch(`${base}/metrics`)).text()).toContain(
      'fleetheal_hosts{status="down"} 1',
    );
  });

  it("a restarted gateway rebuilds the same view from NATS", async () => {
    const before = await get("/containers?host=gw-host-1&limit=1000", ContainerPage);
    await gateway.stop("SIGTERM");
    gateway = await fleet.startGateway({ name: "gateway-2", adminToken: ADMIN });
    base = gateway.url;
    await waitFor(async () => (await fetch(`${base}/readyz`)).status === 200, {
      timeoutMs: 10_000,
      message: "the restarted gateway never became ready",
    });
    const after = await get("/containers?host=gw-host-1&limit=1000", ContainerPage);
    expect(after.containers.map((c) => [c.id, c.restarts])).toEqual(
      before.containers.map((c) => [c.id, c.restarts]),
    );
    const report = await get("/health", HealthReport);
    expect(report.hosts.map((x) => [x.id, x.status])).toEqual([
      ["gw-host-1", "up"],
      ["gw-host-2", "down"],
    ]);
  });
});
