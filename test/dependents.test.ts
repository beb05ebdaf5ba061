// Dependent restarts on real parts: one dockerd engine, nats-server, an agent and one handler
// replica, all started through the CLI. Docker's own event stream is the witness for what was
// restarted, in which order and how often.

import { PassThrough } from "node:stream";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { Msg, NatsConnection } from "@nats-io/nats-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  decode,
  EVENTS_STREAM,
  HOSTS_BUCKET,
  HostSnapshot,
  MONITORED_BUCKET,
  parseRemediationSubject,
  RemediationRecord,
} from "../contracts/index.js";
import { TEST_IMAGE } from "./support/busybox-image.js";
import {
  type DockerEventRecord,
  type DockerEventRecorder,
  makeUnhealthy,
  runTestContainer,
  waitForHealth,
} from "./support/containers.js";
import type { DockerEngine } from "./support/dockerd.js";
import { type Fleet, startFleet } from "./support/fleet.js";
import type { FleetProcess } from "./support/fleetheal.js";
import { waitFor } from "./support/wait.js";

const HOST = "deps-host";
let fleet: Fleet;
let engine: DockerEngine;
let recorder: DockerEventRecorder;
let external: NatsConnection;
let handler: FleetProcess;
const seen: Msg[] = [];

/** A long-running container joined to another's network namespace, created with dockerode. */
async function runDependent(
  name: string,
  networkMode: string,
  labels: Record<string, string>,
): Promise<{ id: string; name: string }> {
  const container = await engine.docker.createContainer({
    name,
    Image: TEST_IMAGE,
    Cmd: ["sh", "-c", "trap 'exit 0' TERM\nwhile :; do sleep 1 & wait $!; done"],
    Labels: labels,
    StopTimeout: 2,
    HostConfig: { NetworkMode: networkMode },
  });
  await container.start();
  return { id: container.id, name };
}

/**
 * The records of a container, each once: a redelivered round publishes its records again, with
 * the same ids, and the stream keeps one (subscribers of the stream see one).
 */
function records(containerId: string): RemediationRecord[] {
  const ids = new Set<string>();
  return seen
    .filter((m) => parseRemediationSubject(m.subject)?.containerId === containerId)
    .map((m) => {
      const decoded = decode(RemediationRecord, m.data);
      if (!decoded.ok) throw decoded.error;
      return decoded.value;
    })
    .filter((r) => {
      if (ids.has(r.id)) return false;
      ids.add(r.id);
      return true;
    });
}

/** Waits until the agent's snapshot in KV shows every one of `ids`. */
async function snapshotShows(ids: string[]): Promise<HostSnapshot> {
  const kv = await new Kvm(external).open(HOSTS_BUCKET);
  return waitFor(
    async () => {
      const entry = await kv.get(HOST);
      if (!entry) return undefined;
      const snapshot = HostSnapshot.parse(entry.json());
      return ids.every((id) => snapshot.containers.some((c) => c.id === id)) ? snapshot : undefined;
    },
    { timeoutMs: 20_000, message: "the host snapshot never showed the test containers" },
  );
}

/**
 * Waits until the dependents handlers have finished with every message they were given (the
 * heal handler's own deferrals are not this test's business).
 */
async function dependentsSettled(): Promise<void> {
  const jsm = await jetstreamManager(external);
  let last = "";
  await waitFor(
    async () => {
      let busy = 0;
      last = "";
      for (const durable of DEPENDENTS_DURABLES) {
        const info = await jsm.consumers.info(EVENTS_STREAM, durable);
        last += `${durable}: pending ${info.num_pending}, ack pending ${info.num_ack_pending}, redelivered ${info.num_redelivered}; `;
        busy += info.num_pending + info.num_ack_pending + info.num_redelivered;
      }
      return busy === 0;
    },
    {
      timeoutMs: 60_000,
      message: () =>
        `the dependents consumers never settled (${last}); handler said: ${handler.json
          .filter((l) => String(l.handler).startsWith("dependents") && Number(l.level) >= 30)
          .slice(-10)
          .map((l) => JSON.stringify(l))
          .join("\n")}`,
    },
  );
}

const DEPENDENTS_DURABLES = [
  "fleetheal-dependents",
  "fleetheal-dependents-start",
  "fleetheal-dependents-recreated",
];

/** The network namespace of a container's first process, as `net:[inode]`. */
async function netns(id: string): Promise<string> {
  const exec = await engine.docker
    .getContainer(id)
    .exec({ Cmd: ["readlink", "/proc/1/ns/net"], AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({ hijack: true, stdin: false });
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on("data", (b: Buffer) => chunks.push(b));
  engine.docker.modem.demuxStream(stream, out, out);
  await new Promise((resolve) => {
    stream.once("end", resolve);
    stream.once("close", resolve);
  });
  const text = Buffer.concat(chunks).toString().trim();
  if (!/^net:\[\d+\]$/.test(text)) throw new Error(`readlink in ${id} said: ${text}`);
  return text;
}

/** The container of that name now, if there is one. */
function inspectByName(name: string) {
  return engine.docker
    .getContainer(name)
    .inspect()
    .catch(() => undefined);
}

/** A start event's id for `containerId` (`<host>:<id>:<timeNano>:start`). */
const isStartOf = (containerId: string, id: string | undefined) =>
  id?.startsWith(`${HOST}:${containerId}:`) === true && id.endsWith(":start");

const isRestart = (id: string) => (e: DockerEventRecord) => e.id === id && e.action === "restart";
const touched = (id: string) => (e: DockerEventRecord) =>
  e.id === id && ["kill", "die", "stop", "start", "restart"].includes(e.action);

/** Makes `parent` unhealthy and returns Docker's `restart` event for it. */
async function healParent(parent: { id: string; name: string }): Promise<DockerEventRecord> {
  const before = recorder.events.length;
  await makeUnhealthy(engine, parent.id);
  return recorder.waitFor(
    (e) => isRestart(parent.id)(e) && recorder.events.indexOf(e) >= before,
    30_000,
    `heal never restarted ${parent.name}`,
  );
}

beforeAll(async () => {
  fleet = await startFleet({ nats: "plain", hosts: [HOST] });
  ({ engine, docker: recorder } = fleet.host(HOST));
  handler = fleet.handlers[0] as FleetProcess;
  external = await fleet.nats.connect({ name: "dependents-test" });
  external.subscribe("fleetheal.v1.act.>", {
    callback: (_e, m) => {
      seen.push(m);
    },
  });
});

afterAll(async () => {
  await fleet?.[Symbol.asyncDispose]();
});

describe("dependents: restarted after their parent", () => {
  it("restarts network_mode container: dependents after the parent, transitively, once each", async () => {
    const parent = await runTestContainer(engine, {
      name: "net-parent",
      labels: { autoheal: "true" },
    });
    await waitForHealth(engine, parent.id, "healthy", 20_000);
    const child = await runDependent("net-child", `container:${parent.id}`, { autoheal: "true" });
    // By name, which Docker keeps as written or turns into the id; either way it is followed.
    const grandchild = await runDependent("net-grandchild", "container:net-child", {
      autoheal: "true",
    });
    const optedOut = await runDependent("net-opted-out", `container:${parent.id}`, {
      autoheal: "true",
      "autoheal.dependents": "false",
    });
    const snapshot = await snapshotShows([parent.id, child.id, grandchild.id, optedOut.id]);
    console.info(
      "network modes in the snapshot:",
      snapshot.containers.map((c) => `${c.name}=${c.networkMode}`).join(", "),
    );

    const parentRestart = await healParent(parent);
    const childRestart = await recorder.waitFor(
      (e) => isRestart(child.id)(e) && e.timeNano > parentRestart.timeNano,
      30_000,
      "the dependent was not restarted after its parent",
    );
    const grandchildRestart = await recorder.waitFor(
      (e) => isRestart(grandchild.id)(e) && e.timeNano > childRestart.timeNano,
      30_000,
      "the dependent's dependent was not restarted after it",
    );
    console.info(
      `parent restart -> child restart in ${Number(childRestart.timeNano - parentRestart.timeNano) / 1e6} ms, ` +
        `-> grandchild in ${Number(grandchildRestart.timeNano - childRestart.timeNano) / 1e6} ms`,
    );
    // The child went down only after the parent was back: its kill follows the parent's restart.
    const childKill = recorder.events.find((e) => e.id === child.id && e.action === "kill");
    expect(childKill && childKill.timeNano > parentRestart.timeNano).toBe(true);

    await waitForHealth(engine, parent.id, "healthy", 20_000);
    await dependentsSettled();
    const waits = handler.json.filter(
      (l) => l.handler === "dependents" && l.msg === "deferred; JetStream will redeliver",
    );
    console.info(`deliveries deferred for a fresh snapshot: ${waits.length}`);
    expect(recorder.count(isRestart(parent.id))).toBe(1);
    expect(recorder.count(isRestart(child.id))).toBe(1);
    expect(recorder.count(isRestart(grandchild.id))).toBe(1);
    expect(recorder.count(touched(optedOut.id))).toBe(1); // its own start only
    for (const id of [child.id, grandchild.id, optedOut.id]) {
      expect((await engine.docker.getContainer(id).inspect()).State.Running).toBe(true);
    }

    const parentRecord = records(parent.id).find((r) => r.phase === "restarted");
    expect(parentRecord?.actor).toBe("handler:heal");
    for (const dep of [child, grandchild]) {
      const phases = records(dep.id).map((r) => `${r.phase}:${r.code}`);
      expect(phases).toEqual(["restarting:dependent", "restarted:restarted"]);
      for (const r of records(dep.id)) {
        expect(r).toMatchObject({ actor: "handler:dependents", containerName: dep.name });
        // heal's record starts the round; the parent's start event, if it is handled after
        // heal's answer is in, may get there first: one round either way (the ledger claims).
        expect(
          r.triggerEventId === parentRecord?.id || isStartOf(parent.id, r.triggerEventId),
        ).toBe(true);
      }
    }
    expect(records(optedOut.id).map((r) => `${r.phase}:${r.code}`)).toEqual([
      "skipped:dependents-disabled",
    ]);
  });

  it("restarts a compose depends_on dependent after its parent, in the same project only", async () => {
    const compose = (project: string, service: string, dependsOn: string) => ({
      autoheal: "true",
      "com.docker.compose.project": project,
      "com.docker.compose.service": service,
      "com.docker.compose.depends_on": dependsOn,
    });
    const db = await runTestContainer(engine, {
      name: "shop-db-1",
      labels: compose("shop", "db", ""),
    });
    const web = await runTestContainer(engine, {
      name: "shop-web-1",
      labels: compose("shop", "web", "db:service_started:false"),
      healthcheck: false,
    });
    const elsewhere = await runTestContainer(engine, {
      name: "blog-web-1",
      labels: compose("blog", "web", "db:service_started:false"),
      healthcheck: false,
    });
    await waitForHealth(engine, db.id, "healthy", 20_000);
    await snapshotShows([db.id, web.id, elsewhere.id]);

    const dbRestart = await healParent(db);
    await recorder.waitFor(
      (e) => isRestart(web.id)(e) && e.timeNano > dbRestart.timeNano,
      30_000,
      "the compose dependent was not restarted after its parent",
    );
    await waitForHealth(engine, db.id, "healthy", 20_000);
    await dependentsSettled();
    expect(recorder.count(isRestart(db.id))).toBe(1);
    expect(recorder.count(isRestart(web.id))).toBe(1);
    expect(recorder.count(touched(elsewhere.id))).toBe(1); // its own start only
    const restarting = records(web.id).find((r) => r.phase === "restarting");
    expect(restarting?.message).toContain("depends_on db (service_started)");
    expect(records(elsewhere.id)).toEqual([]);
  });
});

describe("dependents: any new run of the parent", () => {
  it("restarts a dependent after a plain docker restart of its parent, onto its new namespace", async () => {
    // Not opted in, no healthcheck: nothing of fleetheal touches the parent.
    const parent = await runTestContainer(engine, { name: "plain-parent", healthcheck: false });
    const child = await runDependent("plain-child", `container:${parent.id}`, {
      autoheal: "true",
    });
    await snapshotShows([parent.id, child.id]);
    const before = await netns(parent.id);
    expect(await netns(child.id)).toBe(before);
    // A run shorter than half a second cannot be told from the next by a start event alone
    // (docs/DEPENDENTS.md): let the first one be older than that, as a real parent's is.
    const { State } = await engine.docker.getContainer(parent.id).inspect();
    await waitFor(async () => Date.now() - Date.parse(State.StartedAt) > 1_000 || undefined, {
      timeoutMs: 5_000,
      message: "the parent's first run never got a second old",
    });

    await engine.docker.getContainer(parent.id).restart({ t: 1 });
    const parentRestart = await recorder.waitFor(
      isRestart(parent.id),
      30_000,
      "docker restart did not restart the parent",
    );
    await recorder.waitFor(
      (e) => isRestart(child.id)(e) && e.timeNano > parentRestart.timeNano,
      30_000,
      "the dependent was not restarted after its parent's docker restart",
    );
    await dependentsSettled();
    expect(recorder.count(isRestart(child.id))).toBe(1);
    const after = await netns(parent.id);
    expect(after).not.toBe(before);
    expect(await netns(child.id)).toBe(after);
    const childRecords = records(child.id);
    expect(childRecords.map((r) => `${r.phase}:${r.code}`)).toEqual([
      "restarting:dependent",
      "restarted:restarted",
    ]);
    expect(isStartOf(parent.id, childRecords[0]?.triggerEventId)).toBe(true);
  });

  it("recreates a network_mode: container: child onto its parent's successor (an update tool)", async () => {
    const vpn = await runTestContainer(engine, {
      name: "vpn",
      labels: { autoheal: "true" },
      healthcheck: false,
    });
    const app = await runDependent("vpn-app", `container:${vpn.id}`, { autoheal: "true" });
    await snapshotShows([vpn.id, app.id]);
    // fleetheal knows the old container's name from auto-monitor's record of its start.
    const monitored = await new Kvm(external).open(MONITORED_BUCKET);
    await waitFor(async () => (await monitored.get(`${HOST}.${vpn.id}`)) ?? undefined, {
      timeoutMs: 20_000,
      message: "auto-monitor never recorded the parent",
    });

    // What watchtower does: remove the parent, and run a new one under the same name.
    await engine.docker.getContainer(vpn.id).remove({ force: true });
    const successor = await runTestContainer(engine, {
      name: "vpn",
      labels: { autoheal: "true" },
      healthcheck: false,
    });
    const reattached = await waitFor(
      async () => {
        const info = await inspectByName("vpn-app");
        const joined = info?.HostConfig.NetworkMode === `container:${successor.id}`;
        return info && info.Id !== app.id && info.State.Running && joined ? info : undefined;
      },
      { timeoutMs: 60_000, message: "vpn-app was never recreated onto the new vpn" },
    );
    expect(await netns(reattached.Id)).toBe(await netns(successor.id));
    await dependentsSettled();
    const appRecords = records(app.id);
    expect(appRecords.map((r) => `${r.phase}:${r.code}`)).toEqual([
      "restarting:dependent",
      "recreated:recreated",
    ]);
    expect(appRecords[0]).toMatchObject({ action: "recreate" });
    expect(isStartOf(successor.id, appRecords[0]?.triggerEventId)).toBe(true);
    // One recreate: the old container went once, and one new one was made.
    expect(recorder.count((e) => e.action === "create" && e.name === "vpn-app")).toBe(2);
  });

  it("recreates a network_mode: container: child onto its parent after heal recreates the parent", async () => {
    const vpn = await runTestContainer(engine, {
      name: "heal-vpn",
      labels: { autoheal: "true", "autoheal.action": "recreate" },
    });
    await waitForHealth(engine, vpn.id, "healthy", 20_000);
    const app = await runDependent("heal-vpn-app", `container:${vpn.id}`, { autoheal: "true" });
    await snapshotShows([vpn.id, app.id]);

    await makeUnhealthy(engine, vpn.id);
    const successor = await waitFor(
      async () => {
        const info = await inspectByName("heal-vpn");
        return info && info.Id !== vpn.id && info.State.Running ? info : undefined;
      },
      { timeoutMs: 60_000, message: "heal never recreated heal-vpn" },
    );
    const reattached = await waitFor(
      async () => {
        const info = await inspectByName("heal-vpn-app");
        const joined = info?.HostConfig.NetworkMode === `container:${successor.Id}`;
        return info && info.Id !== app.id && info.State.Running && joined ? info : undefined;
      },
      { timeoutMs: 60_000, message: "heal-vpn-app was never recreated onto the new heal-vpn" },
    );
    expect(await netns(reattached.Id)).toBe(await netns(successor.Id));
    await dependentsSettled();
    const recreated = records(vpn.id).find((r) => r.phase === "recreated");
    expect(recreated).toMatchObject({ actor: "handler:heal", action: "recreate" });
    const appRecords = records(app.id);
    expect(
      appRecords.map((r) => `${r.phase}:${r.code}`),
      JSON.stringify(appRecords, null, 1) +
        recorder.events
          .filter((e) => e.name.startsWith("heal-vpn") && !e.action.startsWith("exec"))
          .map((e) => `${e.timeNano} ${e.name} ${e.id.slice(0, 8)} ${e.action}`)
          .join("\n"),
    ).toEqual(["restarting:dependent", "recreated:recreated"]);
    // heal's record or the new container's start event: one round either way.
    const trigger = appRecords[0]?.triggerEventId;
    expect(trigger === recreated?.id || isStartOf(successor.Id, trigger)).toBe(true);
    expect(recorder.count((e) => e.action === "create" && e.name === "heal-vpn-app")).toBe(2);
  });
});
