import { afterEach, describe, expect, it } from "vitest";
import { DEFAULT_HEAL_POLICY, RemediationRecord } from "../../contracts/index.js";
import { INITIAL_POLICY_STATE, nextPolicyState } from "../../policy/policy-state.js";
import { ledgerEntry } from "../../test/support/fixtures.js";
import {
  hostSnapshot,
  startTestGateway,
  T0,
  type TestGateway,
} from "../../test/support/gateway-fakes.js";
import { ContainerDetail, ContainerPage, HealingSwitchResult } from "./api-schemas.js";

const ADMIN = "admin-token-0123456789abcdef";
const READ = "read-token-0123456789abcdef";
const auth = (token: string) => ({ authorization: `Bearer ${token}` });

let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.app.close();
  gw = undefined;
});

async function start(options: Parameters<typeof startTestGateway>[0] = {}) {
  gw = await startTestGateway({ tokens: { adminToken: ADMIN, readToken: READ }, ...options });
  gw.view.apply(
    hostSnapshot("h1", ["unhealthy", "healthy"], {
      containers: hostSnapshot("h1", ["unhealthy", "healthy"]).containers.map((c) => ({
        ...c,
        startedAt: "2026-11-27T19:50:00.123456789Z",
      })),
    }),
    T0,
  );
  return gw;
}

const idOf = (g: TestGateway, index: number) => {
  const c = g.view.get("h1")?.snapshot.containers[index];
  if (!c) throw new Error(`no container ${index}`);
  return c;
};

function put(g: TestGateway, ref: string, body: unknown, token = ADMIN) {
  return g.app.inject({
    method: "PUT",
    url: `/containers/h1/${ref}/healing`,
    headers: auth(token),
    payload: body as object,
  });
}

describe("PUT /containers/:host/:id/healing", () => {
  it("switches off by name, idempotently, with one audit record", async () => {
    const g = await start();
    const c = idOf(g, 0);
    const res = await put(g, c.id.slice(0, 8), { enabled: false, reason: "flaky probe" });
    expect(res.statusCode, res.body).toBe(200);
    const state = HealingSwitchResult.parse(res.json());
    expect(state).toEqual({
      host: "h1",
      name: c.name,
      containerId: c.id,
      enabled: false,
      changed: true,
      revision: 1,
      switchedOff: {
        host: "h1",
        name: c.name,
        since: "2026-11-27T20:00:00.000Z",
        by: "gateway:admin",
        reason: "flaky probe",
      },
    });
    const policy = (await g.control.getPolicy()).policy;
    expect(policy.disabled).toEqual([state.switchedOff]);
    expect(g.control.switchRecords).toHaveLength(1);
    const record = RemediationRecord.parse(g.control.switchRecords[0]);
    expect(record).toMatchObject({
      phase: "disabled",
      host: "h1",
      containerId: c.id,
      containerName: c.name,
      actor: "gateway:admin",
      code: "by-hand",
    });
    expect(record.message).toContain("flaky probe");

    // Again: nothing written, nothing recorded, the first entry kept.
    const again = await put(g, c.name, { enabled: false, reason: "other" });
    expect(again.statusCode).toBe(200);
    expect(again.json()).toMatchObject({ enabled: false, changed: false, revision: 1 });
    expect(again.json().switchedOff.reason).toBe("flaky probe");
    expect(g.control.switchRecords).toHaveLength(1);
  });

  it("the detail shows who switched it off, from the policy in force", async () => {
    const entry = {
      host: "h1",
      name: "h1-0",
      since: "2026-11-27T19:00:00.000Z",
      by: "gateway:admin",
      reason: "noisy",
    };
    const inForce = nextPolicyState(INITIAL_POLICY_STATE, {
      operation: "PUT",
      revision: 1,
      value: JSON.stringify({ disabled: [entry] }),
    }).state;
    const g = await start({ policy: () => inForce });
    const detail = ContainerDetail.parse(
      (await g.app.inject({ url: "/containers/h1/h1-0", headers: auth(READ) })).json(),
    );
    expect(detail.healing.switchedOff).toEqual(entry);
    const other = ContainerDetail.parse(
      (await g.app.inject({ url: "/containers/h1/h1-1", headers: auth(READ) })).json(),
    );
    expect(other.healing.switchedOff).toBeUndefined();
  });

  it("switches back on, and a name no container has only while it is switched off", async () => {
    const g = await start();
    await g.control.putPolicy({
      ...DEFAULT_HEAL_POLICY,
      disabled: [{ host: "h1", name: "old.api", since: "2026-11-27T19:00:00.000Z", by: "cli" }],
    });
    const on = await put(g, "old.api", { enabled: true });
    expect(on.statusCode, on.body).toBe(200);
    expect(on.json()).toEqual({
      host: "h1",
      name: "old.api",
      enabled: true,
      changed: true,
      revision: 2,
    });
    const record = RemediationRecord.parse(g.control.switchRecords[0]);
    expect(record.phase).toBe("enabled");
    expect(record.containerName).toBe("old.api");
    // The stand-in id of a name: the same for every record of it, never a current container's.
    expect(record.containerId).toMatch(/^[0-9a-f]{64}$/);

    const again = await put(g, "old.api", { enabled: true });
    expect(again.statusCode).toBe(404);
    expect(again.json().error.code).toBe("FLEETHEAL_ERR_NOT_FOUND");
    // Switching off needs a container that exists now.
    expect((await put(g, "nosuch", { enabled: false })).statusCode).toBe(404);
    // A current container that is on answers its state, unchanged.
    const current = await put(g, idOf(g, 1).name, { enabled: true });
    expect(current.json()).toMatchObject({ enabled: true, changed: false });
    expect(g.control.switchRecords).toHaveLength(1);
  });

  it("needs the admin token and a valid body", async () => {
    const g = await start();
    expect((await put(g, "h1-0", { enabled: false }, READ)).statusCode).toBe(401);
    const noBody = await g.app.inject({
      method: "PUT",
      url: "/containers/h1/h1-0/healing",
      headers: auth(ADMIN),
    });
    expect(noBody.statusCode).toBe(400);
    const extra = await put(g, "h1-0", { enabled: false, why: "x" });
    expect(extra.statusCode).toBe(400);
    expect((await put(g, "h1-0", { enabled: "no" })).statusCode).toBe(400);
    expect(g.control.switchRecords).toHaveLength(0);
  });
});

describe("notHealing in the container summaries", () => {
  it("appears on the unhealthy container whose ledger says why, for its current run", async () => {
    const g = await start();
    const c = idOf(g, 0);
    const notHealing = {
      reason: "stuck" as const,
      code: "docker-error",
      message: "restart failed: boom",
      since: "2026-11-27T19:58:00.000Z",
      incident: "2026-11-27T19:50:00.123Z",
    };
    g.view.applyLedger("h1", c.id, ledgerEntry({ host: "h1", containerId: c.id, notHealing }));
    const page = ContainerPage.parse(
      (await g.app.inject({ url: "/containers", headers: auth(READ) })).json(),
    );
    const { incident: _, ...shown } = notHealing;
    expect(page.containers.find((x) => x.id === c.id)?.notHealing).toEqual(shown);
    expect(page.containers.find((x) => x.id !== c.id)?.notHealing).toBeUndefined();
    const detail = ContainerDetail.parse(
      (await g.app.inject({ url: `/containers/h1/${c.id}`, headers: auth(READ) })).json(),
    );
    expect(detail.healing.notHealing).toEqual(shown);
    const health = (await g.app.inject({ url: "/health", headers: auth(READ) })).json();
    expect(health.notHealing).toEqual({
      total: 1,
      byReason: { held: 0, stuck: 1 },
      containers: [{ host: "h1", id: c.id, name: c.name, ...shown }],
    });
    const metrics = (await g.app.inject({ url: "/metrics", headers: auth(READ) })).body;
    expect(metrics).toContain('fleetheal_containers_not_healing{reason="stuck"} 1');
  });
});
