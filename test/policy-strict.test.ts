// The stored policy is decoded strictly, on real parts: a nats-server, a dockerd with its agent,
// a handler and the gateway, all started through the CLI. The attack replaced a stored
// pause with a JetStream ack, {"stream":"FLEETHEAL_EVENTS","seq":1}, which the old decoder read
// as the defaults. Here the pause holds (Docker's own event stream shows no restart), /health and
// /metrics report the invalid policy, a handler and a gateway started while it is invalid start
// paused, and a valid policy ends it all: healing resumes.

import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CONFIG_BUCKET, encode, POLICY_KEY, RemediationRecord } from "../contracts/index.js";
import { PolicyDocument } from "../gateway/http/api-schemas.js";
import { HealthReport } from "../gateway/view/health-report.js";
import { makeUnhealthy, runTestContainer, waitForHealth } from "./support/containers.js";
import { type Fleet, type FleetHost, startFleet } from "./support/fleet.js";
import type { FleetProcess } from "./support/fleetheal.js";
import { readStored } from "./support/stream.js";
import { waitFor } from "./support/wait.js";

const HOST = "strict-1";
const ADMIN = "policy-strict-admin-token-0123456789";
/** What the issue found stored under the policy key. */
const ECHOED_ACK = { stream: "FLEETHEAL_EVENTS", seq: 1 };

let fleet: Fleet;
let host: FleetHost;
let client: NatsConnection;

async function startGateway(name: string): Promise<string> {
  return (await fleet.startGateway({ name, adminToken: ADMIN })).url;
}

function startHandler(name: string): Promise<FleetProcess> {
  return fleet.startHandler({ name });
}

async function putPolicy(base: string, policy: unknown): Promise<PolicyDocument> {
  const res = await fetch(`${base}/policy`, {
    method: "PUT",
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
    body: JSON.stringify(policy),
  });
  const body = await res.json();
  if (res.status !== 200) throw new Error(`PUT /policy: ${res.status} ${JSON.stringify(body)}`);
  return PolicyDocument.parse(body);
}

async function health(base: string): Promise<HealthReport> {
  return HealthReport.parse(await (await fetch(`${base}/health`)).json());
}

async function metrics(base: string): Promise<string> {
  return (await fetch(`${base}/metrics`)).text();
}

/** The heal handler's `skipped`/`paused` records for a container. */
async function pausedRecords(containerId: string): Promise<RemediationRecord[]> {
  const records = await readStored(
    client,
    `fleetheal.v1.act.${HOST}.${containerId}.skipped`,
    RemediationRecord,
  );
  return records.filter((r) => r.code === "paused");
}

/**
 * Runs an opted-in container, makes it unhealthy, and returns once the heal handler has
 * deferred it for the pause (its `skipped`/`paused` record is stored).
 */
async function unhealthyWhilePaused(name: string): Promise<{ id: string; name: string }> {
  const c = await runTestContainer(host.engine, { name, labels: { autoheal: "true" } });
  await waitForHealth(host.engine, c.id, "healthy", 20_000);
  await makeUnhealthy(host.engine, c.id);
  await waitFor(async () => (await pausedRecords(c.id)).length > 0, {
    timeoutMs: 30_000,
    message: `the handler never deferred ${name} for the pause`,
  });
  return c;
}

const kills = (id: string) => host.docker.count((e) => e.id === id && e.action === "kill");

beforeAll(async () => {
  // No handler yet: each test starts the ones whose decisions it judges.
  fleet = await startFleet({ nats: "plain", hosts: [HOST], handlers: 0 });
  host = fleet.host(HOST);
  client = await fleet.nats.connect({ name: "policy-strict-test" });
});

afterAll(async () => {
  await fleet?.[Symbol.asyncDispose]();
});

describe("a stored policy that does not validate", () => {
  it("keeps the pause in force, is reported, survives restarts paused, and a valid one ends it", async () => {
    let handler = await startHandler("handler-1");
    let base = await startGateway("gateway-1");
    const kv = await new Kvm(client).open(CONFIG_BUCKET);

    // A valid pause, set the supported way, and in force in the handler.
    const paused = await putPolicy(base, { paused: true });
    await handler.waitForJson(
      (l) => l.msg === "fleet policy loaded" && l.revision === paused.revision,
      10_000,
      "the handler never loaded the pause",
    );
    await waitFor(async () => (await health(base)).policy.revision === paused.revision, {
      timeoutMs: 10_000,
      message: "the gateway never saw the pause",
    });

    // The write: a JetStream ack stored as the policy.
    const bad = await kv.put(POLICY_KEY, encode(ECHOED_ACK));
    const rejected = await handler.waitForJson(
      (l) =>
        l.msg === "stored fleet policy is invalid; keeping the previous one" && l.revision === bad,
      10_000,
      "the handler did not reject the invalid policy",
    );
    expect(rejected).toMatchObject({
      level: "error",
      inForce: "stored",
      inForceRevision: paused.revision,
    });
    expect(String(rejected.err)).toMatch(/Unrecognized keys: "stream", "seq"/);

    const report = await waitFor(
      async () => {
        const r = await health(base);
        return r.policy.status === "invalid" && r;
      },
      { timeoutMs: 10_000, message: "/health never reported the invalid policy" },
    );
    expect(report.policy).toMatchObject({
      inForce: "stored",
      revision: paused.revision,
      invalid: { revision: bad },
    });
    expect(report.policy.invalid?.error).toMatch(/stream/);
    expect(report.status).toBe("degraded");
    const text = await metrics(base);
    expect(text).toContain("fleetheal_policy_invalid 1");
    expect(text).toContain(`fleetheal_policy_invalid_revision ${bad}`);
    expect(text).toContain(`fleetheal_policy_revision ${paused.revision}`);

    // Healing stays paused: a container that turns unhealthy is deferred, not restarted.
    const first = await unhealthyWhilePaused("first");
    expect(kills(first.id)).toBe(0);

    // A handler and a gateway started while the stored policy is invalid have no good policy
    // to keep: they start paused, never on the defaults.
    await handler.stop();
    handler = await startHandler("handler-2");
    expect(handler.json).toContainEqual(
      expect.objectContaining({
        level: "error",
        revision: bad,
        msg: "stored fleet policy is invalid and no valid one is known; healing is PAUSED until a valid policy is stored",
      }),
    );
    base = await startGateway("gateway-2");
    const restarted = await health(base);
    expect(restarted.policy).toMatchObject({
      status: "invalid",
      inForce: "paused",
      revision: 0,
      invalid: { revision: bad },
    });
    expect(restarted.status).toBe("degraded");
    expect(await metrics(base)).toContain('fleetheal_policy_in_force{origin="paused"} 1');

    // Only the restarted handler runs: this deferral is its decision.
    const second = await unhealthyWhilePaused("second");
    expect(kills(first.id)).toBe(0);
    expect(kills(second.id)).toBe(0);

    // A valid policy ends it: reported as valid, and the deferred triggers are healed.
    const resumed = await putPolicy(base, { paused: false });
    await handler.waitForJson(
      (l) =>
        l.msg === "fleet policy loaded" &&
        l.revision === resumed.revision &&
        l.replacesInvalid === bad,
      10_000,
      "the handler never loaded the valid policy",
    );
    await waitFor(
      async () => {
        const r = await health(base);
        return r.policy.status === "valid" && r.policy.revision === resumed.revision;
      },
      { timeoutMs: 10_000, message: "/health still reports the invalid policy" },
    );
    for (const c of [first, second]) {
      await host.docker.waitFor(
        (e) => e.id === c.id && e.action === "restart",
        60_000,
        `${c.name} was not healed once a valid policy was stored`,
      );
    }
    const healed = await waitFor(
      async () => {
        const r = await health(base);
        return r.status === "healthy" && r;
      },
      { timeoutMs: 30_000, message: "the fleet never became healthy again" },
    );
    expect(healed.policy).toEqual({
      status: "valid",
      inForce: "stored",
      revision: resumed.revision,
    });
    expect(await metrics(base)).toContain("fleetheal_policy_invalid 0");
  });

  it("deleting the key brings back the defaults: a fresh fleet heals", async () => {
    // Only this test's handler heals, so that what Docker does is its doing.
    await Promise.all(fleet.handlers.map((r) => r.stop()));
    const kv = await new Kvm(client).open(CONFIG_BUCKET);
    await kv.put(POLICY_KEY, encode({ paused: true, typo: 1 }));
    const handler = await startHandler("handler-3");
    expect(handler.json.some((l) => /healing is PAUSED/.test(String(l.msg)))).toBe(true);
    await kv.delete(POLICY_KEY);
    await handler.waitForJson(
      (l) => l.msg === "fleet policy removed; using the defaults",
      10_000,
      "the handler did not take the deleted key as the defaults",
    );
    const c = await runTestContainer(host.engine, { name: "third", labels: { autoheal: "true" } });
    await waitForHealth(host.engine, c.id, "healthy", 20_000);
    await makeUnhealthy(host.engine, c.id);
    await host.docker.waitFor(
      (e) => e.id === c.id && e.action === "restart",
      30_000,
      "a container was not healed with the defaults after the key was deleted",
    );
  });
});
