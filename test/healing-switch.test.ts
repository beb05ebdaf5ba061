// The run-time healing switch on real parts: nats-server, one dockerd, and fleetheal's agent,
// handler and gateway as processes. Switched off through the API, it is in the stored policy and
// audited on the stream; it survives restarts of the gateway and the handler, and a recreate of
// the container under the same name; the CLI, run as a process, switches it back on.

import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CONFIG_BUCKET,
  decode,
  HealPolicy,
  POLICY_KEY,
  RemediationRecord,
} from "../contracts/index.js";
import { ContainerDetail, HealingSwitchResult } from "../gateway/http/api-schemas.js";
import { HealthReport } from "../gateway/view/health-report.js";
import { makeUnhealthy, runTestContainer, waitForHealth } from "./support/containers.js";
import type { DockerEngine } from "./support/dockerd.js";
import { type Fleet, startFleet } from "./support/fleet.js";
import { runCommand } from "./support/fleetheal.js";
import { readStored } from "./support/stream.js";
import { waitFor } from "./support/wait.js";

const HOST = "switch-host";
const NAME = "api";
const ADMIN_TOKEN = randomBytes(24).toString("base64url");

let fleet: Fleet;
let engine: DockerEngine;
let client: NatsConnection;
let tokenFile: string;

beforeAll(async () => {
  fleet = await startFleet({
    nats: "plain",
    hosts: [HOST],
    gateway: { adminToken: ADMIN_TOKEN },
    heartbeatMs: 1_000,
  });
  engine = fleet.host(HOST).engine;
  client = await fleet.nats.connect({ name: "healing-switch-test" });
  const dir = await mkdtemp(join(tmpdir(), "fleetheal-switch-"));
  fleet.defer(() => rm(dir, { recursive: true, force: true }));
  tokenFile = join(dir, "admin-token");
  await writeFile(tokenFile, `${ADMIN_TOKEN}\n`, { mode: 0o600 });
}, 120_000);

afterAll(async () => {
  await fleet?.[Symbol.asyncDispose]();
});

/** The stored policy and its revision, read from KV as every role reads it. */
async function storedPolicy(): Promise<{ policy: HealPolicy; revision: number }> {
  const kv = await new Kvm(client).open(CONFIG_BUCKET);
  const entry = await kv.get(POLICY_KEY);
  if (entry?.operation !== "PUT") throw new Error("no policy is stored");
  const decoded = decode(HealPolicy, entry.value);
  if (!decoded.ok) throw new Error(`the stored policy is invalid: ${decoded.error.message}`);
  return { policy: decoded.value, revision: entry.revision };
}

function records(containerId: string): Promise<RemediationRecord[]> {
  return readStored(client, `fleetheal.v1.act.${HOST}.${containerId}.>`, RemediationRecord);
}

async function switchHealing(
  enabled: boolean,
  reason?: string,
  name = NAME,
): Promise<HealingSwitchResult> {
  const res = await fetch(`${fleet.gateway.url}/containers/${HOST}/${name}/healing`, {
    method: "PUT",
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ enabled, ...(reason ? { reason } : {}) }),
  });
  const body: unknown = await res.json();
  expect(res.status, JSON.stringify(body)).toBe(200);
  return HealingSwitchResult.parse(body);
}

/** The container detail once the gateway shows `id` under NAME with the switch as `off`. */
function detailOnceSwitched(id: string, off: boolean): Promise<ContainerDetail> {
  return waitFor(
    async () => {
      const res = await fetch(`${fleet.gateway.url}/containers/${HOST}/${NAME}`);
      if (!res.ok) return undefined;
      const detail = ContainerDetail.parse(await res.json());
      return detail.container.id === id && (detail.healing.switchedOff !== undefined) === off
        ? detail
        : undefined;
    },
    {
      timeoutMs: 30_000,
      message: `the gateway never showed ${NAME} (${id.slice(0, 12)}) with healing ${off ? "off" : "on"}`,
    },
  );
}

/** `fleetheal <args>` as a process, pointed at the gateway by FLEETHEAL_GATEWAY_URL. */
function fleetheal(args: string[]): Promise<{ code: number | null; lines: string[] }> {
  return runCommand(args, { FLEETHEAL_GATEWAY_URL: fleet.gateway.url }, 30_000);
}

describe("the healing switch", () => {
  it("is stored by name, audited, and outlives restarts and a recreate", async () => {
    const first = await runTestContainer(engine, { name: NAME, labels: { autoheal: "true" } });
    await waitForHealth(engine, first.id, "healthy", 20_000);
    await detailOnceSwitched(first.id, false);

    // Off through the API: in the stored policy, and one `disabled` record on the stream.
    const off = await switchHealing(false, "investigating the probe");
    expect(off).toMatchObject({
      host: HOST,
      name: NAME,
      containerId: first.id,
      enabled: false,
      changed: true,
      switchedOff: {
        host: HOST,
        name: NAME,
        by: "gateway:admin",
        reason: "investigating the probe",
      },
    });
    const stored = await storedPolicy();
    expect(stored.revision).toBe(off.revision);
    expect(stored.policy.disabled).toEqual([off.switchedOff]);
    const audit = await waitFor(
      async () => {
        const found = (await records(first.id)).filter((r) => r.phase === "disabled");
        return found.length > 0 ? found : undefined;
      },
      { timeoutMs: 10_000, message: "no disabled record on the stream" },
    );
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({
      host: HOST,
      containerId: first.id,
      containerName: NAME,
      actor: "gateway:admin",
      code: "by-hand",
    });

    // Again: nothing changes, nothing more is recorded.
    expect(await switchHealing(false)).toMatchObject({ changed: false, revision: off.revision });
    expect((await storedPolicy()).revision).toBe(off.revision);

    // Unhealthy while switched off: the handler holds it (`disabled`), and the gateway says so
    // in /health, the metric and `fleetheal containers`, and never restarts it.
    const started = (await engine.docker.getContainer(first.id).inspect()).State.StartedAt;
    await makeUnhealthy(engine, first.id);
    const shown = await waitFor(
      async () => {
        const report = HealthReport.parse(
          await (await fetch(`${fleet.gateway.url}/health`)).json(),
        );
        return report.notHealing.containers.find((c) => c.id === first.id);
      },
      { timeoutMs: 30_000, message: "/health never listed the switched-off container" },
    );
    expect(shown).toMatchObject({ host: HOST, name: NAME, reason: "held", code: "disabled" });
    const metrics = await (await fetch(`${fleet.gateway.url}/metrics`)).text();
    expect(metrics).toContain('fleetheal_containers_not_healing{reason="held"} 1');
    const table = await fleetheal(["containers", "--host", HOST, "--name", NAME]);
    expect(table.code, table.lines.join("\n")).toBe(0);
    expect(table.lines[1]).toMatch(/\sheld: disabled\s/);
    expect((await engine.docker.getContainer(first.id).inspect()).State.StartedAt).toBe(started);

    // Every role restarted: the gateway shows it off, the handler loads the policy holding it.
    const handler = fleet.handlers[0];
    if (!handler) throw new Error("the fleet has no handler");
    const restartedHandler = await fleet.restart(handler);
    await restartedHandler.waitForJson(
      (l) => l.msg === "fleet policy loaded" && l.revision === off.revision,
      30_000,
      "the restarted handler did not load the policy that switches healing off",
    );
    await fleet.restart(fleet.gateway);
    const afterRestart = await detailOnceSwitched(first.id, true);
    expect(afterRestart.healing.switchedOff).toEqual(off.switchedOff);

    // Recreated under the same name: a new id, still switched off by name.
    await engine.docker.getContainer(first.id).remove({ force: true });
    const second = await runTestContainer(engine, { name: NAME, labels: { autoheal: "true" } });
    expect(second.id).not.toBe(first.id);
    const recreated = await detailOnceSwitched(second.id, true);
    expect(recreated.healing.switchedOff).toEqual(off.switchedOff);
    const already = await fleetheal([
      "healing",
      "off",
      `${HOST}/${NAME}`,
      "--token-file",
      tokenFile,
    ]);
    expect(already.code, already.lines.join("\n")).toBe(0);
    expect(already.lines[0]).toContain("already so");

    // On through the CLI: out of the policy, and an `enabled` record on the new container.
    const on = await fleetheal(["healing", "on", `${HOST}/${NAME}`, "--token-file", tokenFile]);
    expect(on.code, on.lines.join("\n")).toBe(0);
    expect(on.lines).toEqual([`healing is on for ${NAME} on ${HOST}`]);
    expect((await storedPolicy()).policy.disabled).toEqual([]);
    const enabled = await waitFor(
      async () => (await records(second.id)).find((r) => r.phase === "enabled"),
      { timeoutMs: 10_000, message: "no enabled record on the stream" },
    );
    expect(enabled).toMatchObject({ containerName: NAME, actor: "gateway:admin" });
    await detailOnceSwitched(second.id, false);
    // The first container's records: the switch's one, and the handler's hold while it was off.
    const firstRecords = await records(first.id);
    expect(firstRecords.filter((r) => r.phase === "disabled" || r.phase === "enabled")).toEqual(
      audit,
    );
    expect(firstRecords.filter((r) => r.phase === "skipped").map((r) => r.code)).toEqual([
      "disabled",
    ]);
  });

  it("keeps every concurrent change: each writer retries its compare-and-set", async () => {
    const names = ["c1", "c2", "c3", "c4"];
    const ids = await Promise.all(
      names.map(async (name) => (await runTestContainer(engine, { name })).id),
    );
    await waitFor(
      async () => {
        const res = await fetch(`${fleet.gateway.url}/containers?host=${HOST}&name=c`);
        const body = (await res.json()) as { total: number };
        return body.total === names.length;
      },
      { timeoutMs: 30_000, message: "the gateway never listed the four containers" },
    );
    const pause = fetch(`${fleet.gateway.url}/pause`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
      body: "{}",
    });
    const results = await Promise.all(names.map((name) => switchHealing(false, undefined, name)));
    expect((await pause).status).toBe(200);
    expect(results.every((r) => r.changed)).toBe(true);
    const { policy } = await storedPolicy();
    expect(policy.paused).toBe(true);
    expect(policy.disabled.map((d) => d.name).sort()).toEqual(names);
    for (const id of ids) {
      const phases = await waitFor(
        async () => {
          const found = (await records(id)).map((r) => r.phase);
          return found.length > 0 ? found : undefined;
        },
        { timeoutMs: 10_000, message: `no record for ${id.slice(0, 12)}` },
      );
      expect(phases).toEqual(["disabled"]);
    }
  });
});
