// A handler replica's /metrics (issue 19), on real parts: nats-server with the accounts of
// `fleetheal nats-auth`, one dockerd, an agent and a handler replica started through the CLI
// with its metrics on a free port behind a bearer token. One container is healed; the replica's
// own counters, read over HTTP, say so: one heal restart, one latency sample no longer than
// Docker's own unhealthy-to-kill time, and its consumers' levels from JetStream.

import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  makeUnhealthyUntilRestarted,
  runTestContainer,
  waitForHealth,
} from "./support/containers.js";
import { type Fleet, startFleet } from "./support/fleet.js";
import { waitFor } from "./support/wait.js";

const TOKEN = "handler-metrics-test-token-0123456789";

let fleet: Fleet;
let url: string;

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), "fleetheal-handler-metrics-"));
  const tokenFile = join(dir, "metrics.token");
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  fleet = await startFleet({
    hosts: ["metrics-host"],
    env: {
      handler: {
        FLEETHEAL_HANDLER_METRICS_PORT: "0",
        FLEETHEAL_HANDLER_METRICS_TOKEN_FILE: tokenFile,
      },
    },
  });
  const [handler] = fleet.handlers;
  if (!handler) throw new Error("the fleet started no handler");
  const listening = await handler.waitForJson(
    (l) => l.msg === "handler metrics listening",
    10_000,
    "the handler never logged where its metrics listen",
  );
  url = String(listening.url);
});

afterAll(async () => {
  await fleet?.[Symbol.asyncDispose]();
});

/** The replica's metrics, over HTTP with the token. */
async function scrape(): Promise<string> {
  const response = await fetch(url, { headers: { authorization: `Bearer ${TOKEN}` } });
  if (response.status !== 200) throw new Error(`GET ${url}: ${response.status}`);
  return response.text();
}

/** The value of one series, or undefined when the scrape does not have it. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe("a handler replica's /metrics", () => {
  it("is served on the port the replica picked, to a scraper with the token only", async () => {
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    expect((await fetch(url)).status).toBe(401);
    const wrong = await fetch(url, { headers: { authorization: "Bearer not-the-token-at-all" } });
    expect(wrong.status).toBe(401);
    const text = await scrape();
    expect(text).toContain('fleetheal_build_info{role="handler"');
    expect(sample(text, 'fleetheal_restarts_total{trigger="heal",outcome="restarted"}')).toBe(0);
  });

  it("counts a heal: the restart, its latency from Docker's unhealthy event, and the consumers", async () => {
    const host = fleet.host("metrics-host");
    const { id } = await runTestContainer(host.engine, {
      name: "metrics-web",
      labels: { autoheal: "true" },
    });
    await waitForHealth(host.engine, id, "healthy", 30_000);
    const kill = await makeUnhealthyUntilRestarted(host.engine, host.docker, id, {
      timeoutMs: 30_000,
      message: "the handler did not restart the unhealthy container",
      action: "kill",
    });
    const unhealthy = host.docker.events.find(
      (e) => e.id === id && e.action === "health_status: unhealthy",
    );
    if (!unhealthy) throw new Error("Docker reported no unhealthy event");
    // Counted once the agent's answer is recorded, a moment after Docker's kill.
    const text = await waitFor(
      async () => {
        const t = await scrape();
        return sample(t, 'fleetheal_restarts_total{trigger="heal",outcome="restarted"}') === 1 &&
          sample(t, "fleetheal_heal_latency_seconds_count") === 1
          ? t
          : undefined;
      },
      {
        timeoutMs: 20_000,
        intervalMs: 250,
        message: "the replica's metrics never counted the heal restart and its latency",
      },
    );
    // From Docker's unhealthy event to the agent's start of the restart: before Docker's kill.
    const latency = sample(text, "fleetheal_heal_latency_seconds_sum") ?? Number.NaN;
    const dockerSeconds = Number(BigInt(kill.timeNano) - BigInt(unhealthy.timeNano)) / 1e9;
    expect(latency).toBeGreaterThan(0);
    expect(latency).toBeLessThanOrEqual(dockerSeconds + 0.002);
    expect(sample(text, 'fleetheal_restarts_total{trigger="heal",outcome="failed"}')).toBe(0);
    expect(sample(text, 'fleetheal_decisions_total{handler="heal",phase="restarted"}')).toBe(1);
    expect(
      sample(text, 'fleetheal_handler_messages_total{handler="heal",result="handled"}'),
    ).toBeGreaterThan(0);
    // Read from JetStream at the scrape: the replicas' shared consumers and the dead letters.
    for (const consumer of ["fleetheal-heal", "fleetheal-dependents", "fleetheal-auto-monitor"]) {
      expect(
        sample(text, `fleetheal_consumer_pending{consumer="${consumer}"}`),
        consumer,
      ).toBeGreaterThanOrEqual(0);
      expect(
        sample(text, `fleetheal_consumer_ack_pending{consumer="${consumer}"}`),
        consumer,
      ).toBeGreaterThanOrEqual(0);
      expect(
        sample(text, `fleetheal_consumer_redelivered{consumer="${consumer}"}`),
        consumer,
      ).toBeGreaterThanOrEqual(0);
    }
    expect(sample(text, "fleetheal_dlq_messages")).toBe(0);
  });

  it("closes with the replica on SIGTERM", async () => {
    const [handler] = fleet.handlers;
    const status = await handler?.stop("SIGTERM", 25_000);
    expect(status?.code).toBe(0);
    await expect(fetch(url)).rejects.toThrow();
  });
});
