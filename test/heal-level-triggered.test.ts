// Level-triggered healing on real parts (issue 17): an opted-in, running, unhealthy container is
// decided again at every resync of its agent, whatever happened to the trigger that Docker sent
// once. A trigger that went stale while the handlers were down, a restart that failed, and a hold
// that ended all lead to a heal with no new health transition from Docker; a quarantined
// container is left alone, and its history does not grow while the resyncs keep coming.

import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  breakPersistently,
  makeUnhealthy,
  runTestContainer,
  type TestContainerOptions,
  waitForHealth,
} from "./support/containers.js";
import { type Fleet, type FleetHost, startFleet } from "./support/fleet.js";
import {
  describeRecords,
  dockerActions,
  eventMs,
  type HealWatch,
  watchHeal,
} from "./support/heal-watch.js";
import { waitFor } from "./support/wait.js";

/** Triggers older than this are stale (the handlers' FLEETHEAL_MAX_EVENT_AGE_MS). */
const MAX_EVENT_AGE_MS = 2_000;
/** The agent's resync interval (FLEETHEAL_RECONCILE_INTERVAL_MS). */
const RESYNC_MS = 1_500;
/** What a heal may take beyond the resync interval on two busy cores: the decision, the restart. */
const MARGIN_MS = 6_000;

let fleet: Fleet;
let host: FleetHost;
let watch: HealWatch;

beforeAll(async () => {
  fleet = await startFleet({
    nats: "plain",
    hosts: ["level"],
    env: {
      handler: { FLEETHEAL_MAX_EVENT_AGE_MS: String(MAX_EVENT_AGE_MS) },
      agent: { FLEETHEAL_RECONCILE_INTERVAL_MS: String(RESYNC_MS) },
    },
  });
  host = fleet.host("level");
  watch = await watchHeal(fleet);
});

afterAll(async () => {
  await fleet?.[Symbol.asyncDispose]();
});

/** An opted-in test container, healthy; its checks every second, never timing out under load. */
async function healthyContainer(
  name: string,
  labels: Record<string, string> = {},
  more: Partial<TestContainerOptions> = {},
): Promise<{ id: string; name: string }> {
  const c = await runTestContainer(host.engine, {
    name,
    labels: { autoheal: "true", ...labels },
    healthIntervalMs: 1_000,
    healthTimeoutMs: 30_000,
    ...more,
  });
  await waitForHealth(host.engine, c.id, "healthy", 30_000);
  return c;
}

async function startedAt(id: string): Promise<string> {
  return (await host.engine.docker.getContainer(id).inspect()).State.StartedAt;
}

/** Docker's `health_status: unhealthy` events about the container up to `beforeMs`. */
function unhealthyTransitions(id: string, beforeMs = Number.POSITIVE_INFINITY): number {
  return dockerActions(host.docker, id, "health_status: unhealthy").filter(
    (e) => eventMs(e) < beforeMs,
  ).length;
}

describe("level-triggered healing", () => {
  it("heals a container whose trigger went stale while the handlers were down, at the next resync", async () => {
    const c = await healthyContainer("stale-trigger", { "autoheal.backoff.initial": "0" });
    const before = await startedAt(c.id);
    for (const handler of fleet.handlers) await handler.stop();

    await makeUnhealthy(host.engine, c.id);
    const transition = await host.docker.waitFor(
      (e) => e.id === c.id && e.action === "health_status: unhealthy",
      20_000,
      "the container never turned unhealthy",
    );
    const trigger = await waitFor(
      () => watch.events(c.id, "unhealthy").find((e) => e.source === "docker"),
      { timeoutMs: 10_000, message: "the agent never published Docker's unhealthy event" },
    );
    // The trigger must be history by the time a handler first sees it.
    await waitFor(() => Date.now() - Date.parse(trigger.time) > MAX_EVENT_AGE_MS + 500, {
      timeoutMs: MAX_EVENT_AGE_MS + 10_000,
      message: "the trigger never got older than the maximum event age",
    });
    expect(dockerActions(host.docker, c.id, "restart")).toHaveLength(0);

    await fleet.startHandler();
    const back = Date.now();
    const stale = await watch.waitForRecord(
      c.id,
      (r) => r.phase === "skipped" && r.triggerEventId === trigger.id,
      20_000,
      "the stale trigger was not recorded as skipped",
    );
    expect(stale.code).toBe("stale-event");

    const restart = await host.docker.waitFor(
      (e) => e.id === c.id && e.action === "restart" && e.timeNano > transition.timeNano,
      RESYNC_MS + MARGIN_MS + 10_000,
      "the container was not restarted after the handlers came back",
    );
    console.info(
      `stale trigger: restarted ${eventMs(restart) - back} ms after the handler was back`,
    );
    expect(eventMs(restart) - back).toBeLessThanOrEqual(RESYNC_MS + MARGIN_MS);
    // No new transition: Docker said "unhealthy" once, and the resync did the rest.
    expect(unhealthyTransitions(c.id, eventMs(restart))).toBe(1);
    const restarted = await watch.waitForRecord(
      c.id,
      (r) => r.phase === "restarted",
      20_000,
      "no restarted record",
    );
    const decided = watch
      .records(c.id)
      .find((r) => r.phase === "decided" && r.commandId === restarted.commandId);
    expect(decided, describeRecords(watch.records(c.id))).toBeDefined();
    const cause = watch.event(decided?.triggerEventId ?? "");
    expect(cause?.source, `the restart's trigger ${decided?.triggerEventId}`).toBe("resync");
    expect(cause?.unhealthySince).toBeDefined();
    await waitForHealth(host.engine, c.id, "healthy", 30_000);
    expect(await startedAt(c.id)).not.toBe(before);
  });

  it("retries a restart that failed, under the backoff, and counts the failures in the budget", async () => {
    const source = await mkdtemp(join(tmpdir(), "fh-bind-"));
    fleet.defer(() => rm(source, { recursive: true, force: true }));
    const BACKOFF_S = 2;
    const c = await healthyContainer(
      "failing-restart",
      {
        "autoheal.backoff.initial": `${BACKOFF_S}s`,
        "autoheal.backoff.max": `${BACKOFF_S}s`,
        "autoheal.budget.restarts": "10",
      },
      { create: { HostConfig: { Mounts: [{ Type: "bind", Source: source, Target: "/data" }] } } },
    );
    const incident = await startedAt(c.id);
    // Docker refuses to start a container whose bind source is gone: every restart fails now.
    await rm(source, { recursive: true, force: true });
    await makeUnhealthy(host.engine, c.id);

    const failed = (attempt: number) =>
      watch.waitForRecord(
        c.id,
        (r) => r.phase === "failed" && (r.attempt ?? 1) === attempt,
        30_000,
        `attempt ${attempt} did not fail`,
      );
    await failed(1);
    await failed(2);
    await mkdir(source, { recursive: true });
    const restarted = await watch.waitForRecord(
      c.id,
      (r) => r.phase === "restarted",
      30_000,
      "no attempt succeeded once the bind source was back",
    );
    expect(restarted.attempt ?? 0).toBeGreaterThanOrEqual(3);
    await waitForHealth(host.engine, c.id, "healthy", 30_000);

    const decided = watch
      .records(c.id)
      .filter((r) => r.phase === "decided")
      .sort((a, b) => (a.attempt ?? 1) - (b.attempt ?? 1));
    expect(decided.map((r) => r.attempt ?? 1)).toEqual(
      Array.from({ length: decided.length }, (_, i) => i + 1),
    );
    expect(decided.length).toBe(restarted.attempt);
    expect(new Set(decided.map((r) => r.incident))).toEqual(new Set([incident]));
    // The backoff runs from each decision; a little slack for the clocks of two processes.
    for (let i = 1; i < decided.length; i++) {
      const gap = Date.parse(decided[i]?.at ?? "") - Date.parse(decided[i - 1]?.at ?? "");
      expect(gap, `gap before attempt ${i + 1}`).toBeGreaterThanOrEqual(BACKOFF_S * 1000 - 200);
    }
    const entry = await watch.ledger(host.id, c.id);
    const attempts = entry?.restarts.filter((r) => r.incident === incident) ?? [];
    expect(attempts.filter((r) => r.outcome === "failed").length).toBeGreaterThanOrEqual(2);
    expect(attempts.filter((r) => r.outcome === "restarted")).toHaveLength(1);
    expect(attempts).toHaveLength(decided.length);
  });

  it("heals after a pause is lifted, with no new health transition", async () => {
    const c = await healthyContainer("paused-then-resumed", { "autoheal.backoff.initial": "0" });
    await fleet.putPolicy({ paused: true });
    try {
      await makeUnhealthy(host.engine, c.id);
      const held = await watch.waitForNotHealing(
        host.id,
        c.id,
        (n) => n.reason === "held",
        20_000,
        "the paused fleet did not hold the container",
      );
      expect(held.code).toBe("paused");
      // Held across resyncs: nothing restarts it while the fleet is paused.
      await watch.waitForResyncs(c.id, 2, RESYNC_MS * 2 + 10_000);
      expect(dockerActions(host.docker, c.id, "restart")).toHaveLength(0);
    } finally {
      // Resumed whatever happened: the next cases need a fleet that heals.
      await fleet.putPolicy({});
    }
    const resumed = Date.now();
    const restart = await host.docker.waitFor(
      (e) => e.id === c.id && e.action === "restart",
      RESYNC_MS + MARGIN_MS + 10_000,
      "the container was not restarted after the pause was lifted",
    );
    expect(eventMs(restart) - resumed).toBeLessThanOrEqual(RESYNC_MS + MARGIN_MS);
    expect(unhealthyTransitions(c.id, eventMs(restart))).toBe(1);
    await waitForHealth(host.engine, c.id, "healthy", 30_000);
  });

  it("leaves a quarantined container alone, and its history does not grow while it is held", async () => {
    const c = await healthyContainer("quarantined", {
      "autoheal.backoff.initial": "0",
      "autoheal.budget.restarts": "1",
    });
    // No restart repairs it: restarted once, then unhealthy again in its next run.
    await breakPersistently(host.engine, c.id);
    const quarantined = await watch.waitForRecord(
      c.id,
      (r) => r.phase === "quarantined",
      40_000,
      "the container was never quarantined",
    );
    expect(quarantined.code).toBe("budget-spent");
    const history = watch.records(c.id).length;
    const restarts = dockerActions(host.docker, c.id, "restart").length;
    expect(restarts).toBe(1);

    // Several resyncs re-assert that it is unhealthy; each is decided, and none writes anything.
    await watch.waitForResyncs(c.id, 4, RESYNC_MS * 4 + 15_000);
    expect(describeRecords(watch.records(c.id).slice(history))).toBe("[]");
    expect(watch.records(c.id).filter((r) => r.phase === "quarantined")).toHaveLength(1);
    expect(dockerActions(host.docker, c.id, "restart")).toHaveLength(restarts);
    const entry = await watch.ledger(host.id, c.id);
    expect(entry?.quarantine).toBeDefined();
  });
});
