import { afterEach, describe, expect, it } from "vitest";
import { VERSION } from "../../common/version.js";
import type { HostSnapshot } from "../../contracts/index.js";
import { containerEvent, remediationRecord } from "../../test/support/fixtures.js";
import {
  hostSnapshot,
  startTestGateway,
  T0,
  type TestGateway,
} from "../../test/support/gateway-fakes.js";
import { boundedCounts, versionLabel } from "./metrics-hosts.js";

let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.app.close();
  gw = undefined;
});

async function start() {
  gw = await startTestGateway();
  return gw;
}

async function scrape(g: TestGateway): Promise<string> {
  const res = await g.app.inject({ method: "GET", url: "/metrics" });
  expect(res.statusCode).toBe(200);
  return res.body;
}

/** The sample lines of one metric (no HELP or TYPE), in the order exposed. */
function samples(text: string, name: string): string[] {
  return text
    .split("\n")
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `));
}

/** A snapshot with agent counters, as an agent of this release sends it. */
function counted(host: string, patch: Partial<HostSnapshot["agent"]> = {}): HostSnapshot {
  const s = hostSnapshot(host, ["healthy"]);
  return {
    ...s,
    outbox: { depth: 4, capacity: 100, published: 50, dropped: 2, unpublishable: 1 },
    agent: {
      ...s.agent,
      version: "0.3.0-rc.1+build.7",
      counters: { reconciles: 12, probeResults: { pass: 30, fail: 3, error: 1, refused: 2 } },
      commandRefusals: {
        refused: { unsigned: 2, expired: 1 },
        malformed: { restart: 1 },
      },
      ...patch,
    },
  };
}

describe("GET /metrics: the gateway itself", () => {
  it("exports build_info with the gateway's role and version", async () => {
    const text = await scrape(await start());
    expect(samples(text, "fleetheal_build_info")).toEqual([
      `fleetheal_build_info{role="gateway",version="${VERSION}"} 1`,
    ]);
  });

  it("exports the fleet's status as one 1 among healthy, degraded, unhealthy", async () => {
    const g = await start();
    // No host at all: unhealthy.
    expect(samples(await scrape(g), "fleetheal_fleet_status")).toEqual([
      'fleetheal_fleet_status{status="healthy"} 0',
      'fleetheal_fleet_status{status="degraded"} 0',
      'fleetheal_fleet_status{status="unhealthy"} 1',
    ]);
    g.view.apply(hostSnapshot("h1", ["healthy"]), T0);
    let text = await scrape(g);
    expect(text).toContain('fleetheal_fleet_status{status="healthy"} 1');
    expect(text).toContain('fleetheal_fleet_status{status="unhealthy"} 0');
    // The deprecated gauge stays, and agrees.
    expect(text).toContain("fleetheal_fleet_healthy 1");
    g.view.apply(hostSnapshot("h2", ["unhealthy"]), T0);
    text = await scrape(g);
    expect(samples(text, "fleetheal_fleet_status")).toEqual([
      'fleetheal_fleet_status{status="healthy"} 0',
      'fleetheal_fleet_status{status="degraded"} 1',
      'fleetheal_fleet_status{status="unhealthy"} 0',
    ]);
    expect(text).toContain("fleetheal_fleet_healthy 0");
  });

  it("counts the restarts it sent by outcome and failure code, and none from the events feed", async () => {
    const g = await start();
    // Before any: every series at 0, so that rate() sees the first one.
    let text = await scrape(g);
    expect(text).toContain('fleetheal_restarts_total{trigger="manual",outcome="restarted"} 0');
    expect(text).toContain('fleetheal_restart_failures_total{trigger="manual",code="other"} 0');
    g.metrics.restarted();
    g.metrics.restarted();
    g.metrics.restartFailed("timeout");
    g.metrics.restartFailed("docker-error");
    // A code an agent made up is counted under `other`, never as itself.
    g.metrics.restartFailed("made-up-code");
    g.metrics.restartFailed("x".repeat(60));
    // Restarts on the events stream (a handler's, or another gateway's) are not counted here.
    g.metrics.observe(
      {
        kind: "remediation",
        seq: 1,
        subject: "fleetheal.v1.act.h1.c.restarted",
        storedAt: new Date(T0).toISOString(),
        remediation: remediationRecord({ host: "h1", phase: "restarted", code: "unhealthy" }),
      },
      T0,
    );
    text = await scrape(g);
    expect(samples(text, "fleetheal_restarts_total")).toEqual([
      'fleetheal_restarts_total{trigger="manual",outcome="restarted"} 2',
      'fleetheal_restarts_total{trigger="manual",outcome="failed"} 4',
    ]);
    const failures = samples(text, "fleetheal_restart_failures_total");
    expect(failures).toContain(
      'fleetheal_restart_failures_total{trigger="manual",code="timeout"} 1',
    );
    expect(failures).toContain(
      'fleetheal_restart_failures_total{trigger="manual",code="docker-error"} 1',
    );
    expect(failures).toContain('fleetheal_restart_failures_total{trigger="manual",code="other"} 2');
    expect(failures).toHaveLength(8);
    expect(text).not.toContain("made-up-code");
    // The feed-based count by host is gone.
    expect(text).not.toMatch(/fleetheal_restarts_total\{[^}]*host=/);
  });

  it("exports the open image breakers as read at scrape time, 0 until it can read them", async () => {
    const g = await start();
    expect(samples(await scrape(g), "fleetheal_image_breakers_open")).toEqual([
      "fleetheal_image_breakers_open 0",
    ]);
    let open = 2;
    g.metrics.watchBreakers(() => open);
    expect(await scrape(g)).toContain("fleetheal_image_breakers_open 2");
    open = 0;
    expect(await scrape(g)).toContain("fleetheal_image_breakers_open 0");
  });

  it("still times events from the feed", async () => {
    const g = await start();
    const at = T0 - 40;
    g.metrics.observe(
      {
        kind: "event",
        seq: 1,
        subject: "fleetheal.v1.evt.h1.c.unhealthy",
        storedAt: new Date(at).toISOString(),
        event: containerEvent({ host: "h1", timeNano: `${at}000000` }),
      },
      T0,
    );
    const text = await scrape(g);
    expect(text).toContain('fleetheal_event_lag_seconds_bucket{le="0.05"} 1');
    expect(text).toContain('fleetheal_event_lag_seconds_bucket{le="0.025"} 0');
  });
});

describe("GET /metrics: each host, from its last snapshot", () => {
  it("exports up, last seen, Docker, the outbox, the version and the agent's counters", async () => {
    const g = await start();
    g.view.apply(counted("h1"), T0 - 500);
    const text = await scrape(g);
    expect(samples(text, "fleetheal_host_up")).toEqual(['fleetheal_host_up{host="h1"} 1']);
    expect(samples(text, "fleetheal_host_last_seen_timestamp_seconds")).toEqual([
      `fleetheal_host_last_seen_timestamp_seconds{host="h1"} ${(T0 - 500) / 1000}`,
    ]);
    expect(samples(text, "fleetheal_host_docker_up")).toEqual([
      'fleetheal_host_docker_up{host="h1"} 1',
    ]);
    expect(samples(text, "fleetheal_agent_outbox_depth")).toEqual([
      'fleetheal_agent_outbox_depth{host="h1"} 4',
    ]);
    expect(samples(text, "fleetheal_agent_outbox_dropped_total")).toEqual([
      'fleetheal_agent_outbox_dropped_total{host="h1"} 2',
    ]);
    expect(samples(text, "fleetheal_agent_unpublishable_events_total")).toEqual([
      'fleetheal_agent_unpublishable_events_total{host="h1"} 1',
    ]);
    // The deprecated gauge, kept with the same value.
    expect(samples(text, "fleetheal_agent_unpublishable_events")).toEqual([
      'fleetheal_agent_unpublishable_events{host="h1"} 1',
    ]);
    expect(samples(text, "fleetheal_agent_build_info")).toEqual([
      'fleetheal_agent_build_info{host="h1",version="0.3.0-rc.1+build.7"} 1',
    ]);
    expect(samples(text, "fleetheal_agent_reconciles_total")).toEqual([
      'fleetheal_agent_reconciles_total{host="h1"} 12',
    ]);
    expect(samples(text, "fleetheal_agent_probe_results_total")).toEqual([
      'fleetheal_agent_probe_results_total{host="h1",result="pass"} 30',
      'fleetheal_agent_probe_results_total{host="h1",result="fail"} 3',
      'fleetheal_agent_probe_results_total{host="h1",result="error"} 1',
      'fleetheal_agent_probe_results_total{host="h1",result="refused"} 2',
    ]);
    expect(samples(text, "fleetheal_agent_commands_refused_total")).toEqual([
      'fleetheal_agent_commands_refused_total{host="h1",code="unsigned"} 2',
      'fleetheal_agent_commands_refused_total{host="h1",code="expired"} 1',
    ]);
    expect(text).toMatch(/# TYPE fleetheal_agent_reconciles_total counter/);
    expect(text).toMatch(/# TYPE fleetheal_host_up gauge/);
  });

  it("turns host_up to 0 when the host goes stale and down, and shows Docker down", async () => {
    const g = await start();
    const s = hostSnapshot("h1", ["healthy"]);
    g.view.apply({ ...s, docker: { status: "down", error: "no socket" } }, T0);
    expect(await scrape(g)).toContain('fleetheal_host_docker_up{host="h1"} 0');
    // Stale after 3 heartbeats of 1 s, down after 12 (startTestGateway's staleness).
    g.advance(3_001);
    expect(samples(await scrape(g), "fleetheal_host_up")).toEqual([
      'fleetheal_host_up{host="h1"} 0',
    ]);
    g.advance(10_000);
    const text = await scrape(g);
    expect(text).toContain('fleetheal_host_up{host="h1"} 0');
    expect(text).toContain('fleetheal_hosts{status="down"} 1');
    // Last seen stays when it was heard, whatever the time now.
    expect(text).toContain(`fleetheal_host_last_seen_timestamp_seconds{host="h1"} ${T0 / 1000}`);
    g.view.apply(s, g.now());
    expect(await scrape(g)).toContain('fleetheal_host_up{host="h1"} 1');
  });

  it("leaves out the counters an older agent does not send", async () => {
    const g = await start();
    const s = hostSnapshot("old", ["healthy"]);
    const { counters: _c, commandRefusals: _r, ...agent } = s.agent;
    g.view.apply({ ...s, agent, outbox: { depth: 0, capacity: 10, published: 0, dropped: 0 } }, T0);
    const text = await scrape(g);
    expect(text).toContain('fleetheal_host_up{host="old"} 1');
    expect(text).toContain('fleetheal_agent_unpublishable_events_total{host="old"} 0');
    expect(samples(text, "fleetheal_agent_reconciles_total")).toEqual([]);
    expect(samples(text, "fleetheal_agent_probe_results_total")).toEqual([]);
    expect(samples(text, "fleetheal_agent_commands_refused_total")).toEqual([]);
  });

  it("bounds what a host writes: its version, unknown codes and results become other", async () => {
    const g = await start();
    const hostile = counted("h1", {
      version: '1"} 1\nfleetheal_forged{a="b',
      counters: {
        reconciles: 1,
        probeResults: { pass: 1, timeout: 5, "made-up": 2 } as Record<string, number>,
      },
      commandRefusals: {
        refused: { unsigned: 1, "no-such-code": 3, 'x"}': 4 } as Record<string, number>,
        malformed: {},
      },
    });
    g.view.apply(hostile, T0);
    const text = await scrape(g);
    // No line of its own: the version stays inside its label value.
    expect(text).not.toMatch(/^fleetheal_forged/m);
    expect(text).not.toContain("no-such-code");
    expect(samples(text, "fleetheal_agent_build_info")).toEqual([
      'fleetheal_agent_build_info{host="h1",version="1___1_fleetheal_forged_a__b"} 1',
    ]);
    expect(samples(text, "fleetheal_agent_probe_results_total")).toEqual([
      'fleetheal_agent_probe_results_total{host="h1",result="pass"} 1',
      'fleetheal_agent_probe_results_total{host="h1",result="other"} 7',
    ]);
    expect(samples(text, "fleetheal_agent_commands_refused_total")).toEqual([
      'fleetheal_agent_commands_refused_total{host="h1",code="unsigned"} 1',
      'fleetheal_agent_commands_refused_total{host="h1",code="other"} 7',
    ]);
  });

  it("drops a removed host's series", async () => {
    const g = await start();
    g.view.apply(counted("a-host"), T0);
    g.view.apply(counted("b-host"), T0);
    expect(await scrape(g)).toContain('fleetheal_host_up{host="b-host"} 1');
    g.view.remove("b-host");
    const text = await scrape(g);
    expect(text).toContain('fleetheal_host_up{host="a-host"} 1');
    expect(text).not.toContain('host="b-host"');
  });
});

describe("versionLabel", () => {
  it.each([
    ["0.2.0", "0.2.0"],
    ["1.0.0-rc.1+sha.abc_def~x", "1.0.0-rc.1+sha.abc_def~x"],
    ["", "unknown"],
    ["v1 (dirty)", "v1__dirty_"],
    ['a"b\\c\nd', "a_b_c_d"],
    ["é€😀", "____"],
    ["x".repeat(500), "x".repeat(64)],
  ])("%j -> %j", (version, label) => {
    expect(versionLabel(version)).toBe(label);
    expect(versionLabel(version).length).toBeLessThanOrEqual(64);
  });
});

describe("boundedCounts", () => {
  it("keeps known keys, sums the others as other, and skips what is not a count", () => {
    expect(
      Object.fromEntries(
        boundedCounts({ a: 1, b: 2, zz: 3, yy: 4, c: undefined, d: -1, e: Number.NaN }, [
          "a",
          "b",
          "c",
        ]),
      ),
    ).toEqual({ a: 1, b: 2, other: 7 });
  });
});
