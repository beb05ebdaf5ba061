// The shipped alert rules in a real Prometheus (Debian's package) against a real fleet: a
// nats-server, two dockerd engines with their agents, a handler serving /metrics with a token and
// a gateway with a read token. Prometheus scrapes both roles every second with their tokens from
// files, as infra/prometheus/prometheus.yml does (the agents' series come through the gateway),
// and evaluates the shipped rules every second, their `for:` shortened to seconds and nothing
// else changed. A container no restart repairs is quarantined
// under a budget of one restart, and FleethealContainerQuarantined fires; an agent is stopped and
// FleethealHostDown fires for its host and no other; both as Prometheus's API reports them.

import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isAlive, processesReferencing } from "./support/children.js";
import { breakPersistently, runTestContainer, waitForHealth } from "./support/containers.js";
import { type Fleet, startFleet } from "./support/fleet.js";
import {
  alertRules,
  type PrometheusAlert,
  type PrometheusHandle,
  type PrometheusTarget,
  RULES_FILE,
  startPrometheus,
  withForDurations,
} from "./support/prometheus.js";
import { waitFor } from "./support/wait.js";

const READ = "prometheus-test-read-token-0123456789";
const HANDLER_TOKEN = "prometheus-test-handler-token-0123456789";
/** Every `for:` of the shipped rules, in the variant this test loads. */
const FOR = "2s";

let fleet: Fleet;
let prom: PrometheusHandle;
/** Holds the handler's metrics token file. */
let secrets: string | undefined;

beforeAll(async () => {
  secrets = await mkdtemp(path.join(tmpdir(), "fleetheal-prometheus-test-"));
  const tokenFile = path.join(secrets, "handler-metrics-token");
  await writeFile(tokenFile, HANDLER_TOKEN, { mode: 0o600 });
  fleet = await startFleet({
    nats: "plain",
    hosts: ["prom-a", "prom-b"],
    gateway: { env: { FLEETHEAL_GATEWAY_READ_TOKEN: READ } },
    env: {
      handler: {
        FLEETHEAL_HANDLER_METRICS_PORT: "0",
        FLEETHEAL_HANDLER_METRICS_TOKEN_FILE: tokenFile,
      },
    },
    // One restart, then quarantine: no backoff to wait out between the two.
    policy: { backoff: { initialSeconds: 0 }, budget: { restarts: 1 } },
  });
  const [handler] = fleet.handlers;
  const listening = await handler?.waitForJson(
    (l) => l.msg === "handler metrics listening",
    30_000,
    "the handler never served its metrics",
  );
  prom = await startPrometheus({
    jobs: [
      {
        name: "fleetheal-gateway",
        targets: [new URL(fleet.gateway.url).host],
        bearerToken: READ,
      },
      {
        name: "fleetheal-handler",
        targets: [new URL(String(listening?.url)).host],
        bearerToken: HANDLER_TOKEN,
      },
    ],
    rules: withForDurations(readFileSync(RULES_FILE, "utf8"), FOR),
  });
});

afterAll(async () => {
  await prom?.[Symbol.asyncDispose]();
  await fleet?.[Symbol.asyncDispose]();
  if (secrets) await rm(secrets, { recursive: true, force: true });
});

/** The alerts Prometheus listed last, for failure messages. */
let lastAlerts: PrometheusAlert[] = [];

/** The alerts named `name` that are firing now. */
async function firing(name: string): Promise<PrometheusAlert[]> {
  lastAlerts = await prom.alerts();
  return lastAlerts.filter((a) => a.labels.alertname === name && a.state === "firing");
}

/** Waits until the alert `name` fires; resolves with its firing alerts. */
function untilFiring(name: string, timeoutMs: number): Promise<PrometheusAlert[]> {
  return waitFor(
    async () => {
      const found = await firing(name);
      return found.length > 0 ? found : undefined;
    },
    {
      timeoutMs,
      intervalMs: 250,
      message: () =>
        `${name} never fired; Prometheus's alerts: ${JSON.stringify(lastAlerts)} (log: ${prom.logFile})`,
    },
  );
}

describe("the shipped alert rules in a real Prometheus", () => {
  it("scrape the gateway and the handler with their tokens and evaluate every rule, none firing", async () => {
    const unauthenticated = await fetch(`${fleet.gateway.url}/metrics`);
    await unauthenticated.body?.cancel();
    expect(unauthenticated.status).toBe(401);

    let targets: PrometheusTarget[] = [];
    await waitFor(
      async () => {
        targets = await prom.targets();
        return targets.length === 2 && targets.every((t) => t.health === "up");
      },
      {
        timeoutMs: 20_000,
        message: () => `the targets never turned up: ${JSON.stringify(targets)}`,
      },
    );
    const roles = await waitFor(
      async () => {
        const info = await prom.query("max by (job, role) (fleetheal_build_info)");
        return info.length === 2 ? info.map((s) => [s.metric.job, s.metric.role]) : undefined;
      },
      { timeoutMs: 20_000, message: "Prometheus never had both roles' build_info" },
    );
    expect(roles.sort()).toEqual([
      ["fleetheal-gateway", "gateway"],
      ["fleetheal-handler", "handler"],
    ]);
    await waitFor(
      async () => {
        const up = await prom.query("max by (host) (fleetheal_host_up)");
        return up.length === 2 && up.every((s) => s.value === 1);
      },
      { timeoutMs: 30_000, message: "Prometheus never saw both hosts up" },
    );
    const names = alertRules(readFileSync(RULES_FILE, "utf8")).map((r) => r.alert);
    const rules = await waitFor(
      async () => {
        const loaded = await prom.rules();
        return loaded.length === names.length && loaded.every((r) => r.health !== "unknown")
          ? loaded
          : undefined;
      },
      { timeoutMs: 20_000, message: "Prometheus never evaluated every rule" },
    );
    expect(rules.map((r) => [r.name, r.health, r.lastError ?? ""])).toEqual(
      names.map((n) => [n, "ok", ""]),
    );
    expect((await prom.alerts()).filter((a) => a.state === "firing")).toEqual([]);
  });

  it("fire FleethealContainerQuarantined for a container quarantined after its one restart", async () => {
    const host = fleet.host("prom-a");
    const c = await runTestContainer(host.engine, {
      name: "prom-hopeless",
      labels: { autoheal: "true" },
    });
    await waitForHealth(host.engine, c.id, "healthy", 20_000);
    expect(await firing("FleethealContainerQuarantined")).toEqual([]);

    await breakPersistently(host.engine, c.id);
    const [alert] = await untilFiring("FleethealContainerQuarantined", 90_000);
    expect(alert?.labels).toEqual({
      alertname: "FleethealContainerQuarantined",
      severity: "warning",
    });
    expect(alert?.annotations.summary).toMatch(
      /^[1-9]\d* container\(s\) quarantined by fleetheal$/,
    );
    expect(alert?.annotations.runbook_url).toBe("docs/ALERTS.md#fleethealcontainerquarantined");
    const restarts = host.docker.count((e) => e.id === c.id && e.action === "restart");
    expect(restarts).toBe(1);
  });

  it("fire FleethealHostDown for a host whose agent stopped, and for no other", async () => {
    expect(await firing("FleethealHostDown")).toEqual([]);
    await fleet.host("prom-b").agent.stop();
    const alerts = await untilFiring("FleethealHostDown", 60_000);
    expect(alerts.map((a) => a.labels)).toEqual([
      { alertname: "FleethealHostDown", host: "prom-b", severity: "critical" },
    ]);
    expect(alerts[0]?.annotations.summary).toBe("fleetheal host prom-b is not reporting");
  });

  it("leaves no Prometheus process behind once disposed", async () => {
    const { pid, dir } = prom;
    await prom[Symbol.asyncDispose]();
    expect(await isAlive(pid)).toBe(false);
    expect(await processesReferencing(dir)).toEqual([]);
  });
});
