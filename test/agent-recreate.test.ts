// The agent's recreate command on real parts: a dockerd, NATS, a signed command, and a local
// registry (Debian's docker-registry) for the recreate that pulls first. Docker itself is the
// witness: which containers exist under which names, what they run, what their volumes hold.

import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { NatsConnection } from "@nats-io/nats-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CommandReply, commandSubject, decode, type RecreateCommand } from "../contracts/index.js";
import { ensureBusyboxImage, importTestImage, TEST_IMAGE } from "./support/busybox-image.js";
import { signedCommand } from "./support/command-signing.js";
import { type DockerEventRecorder, execOutput, runTestContainer } from "./support/containers.js";
import type { DockerEngine } from "./support/dockerd.js";
import { recreateDraft } from "./support/fixtures.js";
import { type Fleet, startFleet } from "./support/fleet.js";
import { pushImage, type RegistryHandle, startRegistry } from "./support/registry.js";
import { importRootfs } from "./support/rootfs.js";

const HOST = "recreate-host";
/** A host whose engine has bridge networking (in a namespace of its own), for named networks. */
const NET_HOST = "recreate-net";
let fleet: Fleet;
let engine: DockerEngine;
let netEngine: DockerEngine;
let recorder: DockerEventRecorder;
let client: NatsConnection;
let registry: RegistryHandle;

beforeAll(async () => {
  fleet = await startFleet({
    nats: "plain",
    hosts: [
      { id: HOST, agent: false },
      { id: NET_HOST, agent: false, engine: { netns: true } },
    ],
    handlers: 0,
    streams: true,
    heartbeatMs: 5_000,
  });
  ({ engine, docker: recorder } = fleet.host(HOST));
  netEngine = fleet.host(NET_HOST).engine;
  client = await fleet.nats.connect({ name: "test-recreator" });
  registry = await startRegistry();
  await Promise.all([ensureBusyboxImage(engine), ensureBusyboxImage(netEngine)]);
  await fleet.startAgent(HOST, { name: "agent" });
  await fleet.startAgent(NET_HOST, { name: "net-agent" });
});

afterAll(async () => {
  await registry?.[Symbol.asyncDispose]();
  await fleet?.[Symbol.asyncDispose]();
});

type Draft = Parameters<typeof recreateDraft>[0];

/** Sends a recreate signed as the control plane signs it (or unsigned), and returns the answer. */
async function send(draft: Omit<RecreateCommand, "issuedAt" | "expiresAt">, signed = true) {
  const { payload, headers } = signedCommand(draft, signed ? {} : { key: null });
  return client.request(commandSubject(draft.host, "recreate"), payload, {
    timeout: 60_000,
    ...(headers ? { headers } : {}),
  });
}

async function recreate(
  draft: Omit<RecreateCommand, "issuedAt" | "expiresAt">,
): Promise<CommandReply> {
  const msg = await send(draft);
  const reply = decode(CommandReply, msg.data);
  if (!reply.ok) throw new Error(`bad reply: ${reply.error.message}: ${msg.string()}`);
  return reply.value;
}

function draftFor(containerId: string, patch: Draft = {}) {
  return recreateDraft({ host: HOST, containerId, requestedBy: "test", ...patch });
}

/** The containers whose name starts with `name` (Docker's filter matches substrings). */
async function containersNamed(name: string) {
  const all = await engine.docker.listContainers({ all: true, filters: { name: [name] } });
  return all.map((c) => ({ id: c.Id, names: c.Names, state: c.State, imageId: c.ImageID }));
}

async function inspect(id: string) {
  return engine.docker.getContainer(id).inspect();
}

describe("agent recreate", () => {
  it("is served, signed, as the micro service's recreate endpoint", async () => {
    const reply = await client.request("$SRV.INFO.fleetheal-agent", undefined, { timeout: 5_000 });
    const info = reply.json<{
      metadata: Record<string, string>;
      endpoints: { name: string; subject: string }[];
    }>();
    // Either host's agent may answer first.
    const host = info.metadata.host as string;
    expect([HOST, NET_HOST]).toContain(host);
    expect(info.endpoints.find((e) => e.name === "recreate")?.subject).toBe(
      `fleetheal.v1.cmd.${host}.recreate`,
    );
  });

  it("makes a new container under the same name, with its labels and its volumes' data, once per command id", async () => {
    const old = await runTestContainer(engine, {
      name: "keeper",
      labels: { autoheal: "true", "app.role": "store" },
      create: {
        Volumes: { "/anon": {} },
        HostConfig: { Binds: ["fh-recreate-named:/data"] },
      },
    });
    await execOutput(engine, old.id, [
      "sh",
      "-c",
      "echo named-kept > /data/file && echo anon-kept > /anon/file",
    ]);
    const before = await inspect(old.id);
    const command = draftFor(old.id);
    const reply = await recreate(command);
    expect(reply).toMatchObject({
      verb: "recreate",
      outcome: "recreated",
      code: "recreated",
      duplicate: false,
    });
    const newId = reply.newContainerId as string;
    expect(newId).toMatch(/^[0-9a-f]{64}$/);
    expect(newId).not.toBe(old.id);
    const after = await inspect(newId);
    expect(after.Name).toBe("/keeper");
    expect(after.State.Running).toBe(true);
    expect(after.Config.Labels).toEqual(before.Config.Labels);
    expect(await execOutput(engine, newId, ["cat", "/data/file", "/anon/file"])).toBe(
      "named-kept\nanon-kept\n",
    );
    // The anonymous volume is the old one, mounted again by its name.
    const volumeAt = (info: typeof before, at: string) =>
      info.Mounts.find((m) => m.Destination === at)?.Name;
    expect(volumeAt(after, "/anon")).toBe(volumeAt(before, "/anon"));
    await expect(inspect(old.id)).rejects.toMatchObject({ statusCode: 404 });
    expect((await containersNamed("keeper")).map((c) => c.id)).toEqual([newId]);
    await recorder.waitFor(
      (e) => e.id === old.id && e.action === "destroy",
      10_000,
      "the old container was not removed",
    );

    const again = await recreate(command);
    expect(again).toMatchObject({ outcome: "recreated", duplicate: true, newContainerId: newId });
    expect((await containersNamed("keeper")).map((c) => c.id)).toEqual([newId]);
  });

  it("pulls the reference again first, and runs the image the registry has now", async () => {
    const repo = `${registry.host}/app`;
    const ref = `${repo}:1`;
    const tagAs = async (image: string) => {
      await engine.docker.getImage(image).tag({ repo, tag: "1" });
    };
    const imageA = await importTestImage(engine, "fh-recreate-a:1");
    const imageB = await importTestImage(engine, "fh-recreate-b:1");
    expect(imageB).not.toBe(imageA);
    await tagAs("fh-recreate-b:1");
    await pushImage(engine, repo, "1");
    // The registry has B; this engine's tag goes back to A, so only a pull can bring B.
    await tagAs("fh-recreate-a:1");
    const old = await runTestContainer(engine, {
      name: "pulled",
      image: ref,
      labels: { autoheal: "true" },
    });
    expect((await inspect(old.id)).Image).toBe(imageA);

    const reply = await recreate(draftFor(old.id, { pull: true }));
    expect(reply).toMatchObject({ outcome: "recreated", code: "recreated" });
    const after = await inspect(reply.newContainerId as string);
    expect(after.Image).toBe(imageB);
    expect(after.Config.Image).toBe(ref);
    expect(after.Name).toBe("/pulled");

    // Tagged here, never pushed: the registry has no such manifest.
    await engine.docker.getImage(ref).tag({ repo: `${registry.host}/gone`, tag: "1" });
    const gone = await runTestContainer(engine, {
      name: "gone",
      image: `${registry.host}/gone:1`,
      labels: { autoheal: "true" },
    });
    const failed = await recreate(draftFor(gone.id, { pull: true }));
    expect(failed).toMatchObject({ outcome: "failed", code: "pull-failed" });
    expect((await inspect(gone.id)).State.Running).toBe(true);
    expect((await containersNamed("gone")).map((c) => c.id)).toEqual([gone.id]);
  });

  it("puts the old container back, running, when the new one cannot start", async () => {
    const ref = "fh-recreate-fragile:1";
    await engine.docker.getImage(TEST_IMAGE).tag({ repo: "fh-recreate-fragile", tag: "1" });
    const old = await runTestContainer(engine, {
      name: "fragile",
      image: ref,
      labels: { autoheal: "true" },
    });
    const startedAt = (await inspect(old.id)).State.StartedAt;
    // The reference now names an image without a shell: a new container of it cannot start.
    const dir = await mkdtemp(path.join(os.tmpdir(), "fh-no-shell-"));
    try {
      await writeFile(path.join(dir, "README"), "no shell here\n");
      await importRootfs(engine, dir, ref, []);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const reply = await recreate(draftFor(old.id));
    expect(reply).toMatchObject({ outcome: "failed", code: "docker-error" });
    expect(reply.message).toContain("start failed");
    expect(reply.message).toContain("the old container is back as fragile, running");
    expect(reply.newContainerId).toBeUndefined();
    const back = await inspect(old.id);
    expect(back.Name).toBe("/fragile");
    expect(back.State.Running).toBe(true);
    expect(back.State.StartedAt).not.toBe(startedAt);
    expect(await containersNamed("fragile")).toEqual([
      expect.objectContaining({ id: old.id, state: "running" }),
    ]);

    // And when it cannot even be created: the reference names no image any more.
    await engine.docker.getImage(ref).remove();
    const uncreatable = await recreate(draftFor(old.id));
    expect(uncreatable).toMatchObject({ outcome: "failed", code: "docker-error" });
    expect(uncreatable.message).toContain("create failed");
    expect(uncreatable.message).toContain("the old container is back as fragile, running");
    expect(await containersNamed("fragile")).toEqual([
      expect.objectContaining({ id: old.id, state: "running" }),
    ]);
  });

  it("moves a network child onto its parent's new network namespace, and refuses it for others", async () => {
    const netns = (id: string) => execOutput(engine, id, ["readlink", "/proc/self/ns/net"]);
    const parent = await runTestContainer(engine, { name: "vpn", healthcheck: false });
    const child = await runTestContainer(engine, {
      name: "behind-vpn",
      labels: { autoheal: "true" },
      create: { HostConfig: { NetworkMode: `container:${parent.id}` } },
    });
    const oldNamespace = await netns(parent.id);
    expect(await netns(child.id)).toBe(oldNamespace);
    // The parent is recreated by hand: the child is left in a namespace nobody else is in.
    await engine.docker.getContainer(parent.id).remove({ force: true });
    const newParent = await runTestContainer(engine, { name: "vpn", healthcheck: false });
    const newNamespace = await netns(newParent.id);
    expect(newNamespace).not.toBe(oldNamespace);

    const reply = await recreate(draftFor(child.id, { networkParent: newParent.id }));
    expect(reply).toMatchObject({ outcome: "recreated" });
    const moved = reply.newContainerId as string;
    expect((await inspect(moved)).HostConfig.NetworkMode).toBe(`container:${newParent.id}`);
    expect(await netns(moved)).toBe(newNamespace);
    expect((await containersNamed("behind-vpn")).map((c) => c.id)).toEqual([moved]);

    const refused = await recreate(draftFor(newParent.id, { networkParent: parent.id }));
    expect(refused).toMatchObject({ outcome: "refused", code: "not-opted-in" });
    const loner = await runTestContainer(engine, { name: "loner", labels: { autoheal: "true" } });
    const notChild = await recreate(draftFor(loner.id, { networkParent: newParent.id }));
    expect(notChild).toMatchObject({ outcome: "refused", code: "not-network-child" });
    expect((await inspect(loner.id)).State.Running).toBe(true);
  });

  it("keeps its networks: the first at create, the others connected, with their aliases", async () => {
    for (const Name of ["front", "back"]) await netEngine.docker.createNetwork({ Name });
    const old = await runTestContainer(netEngine, {
      name: "multi",
      labels: { autoheal: "true" },
      create: {
        HostConfig: { NetworkMode: "front" },
        NetworkingConfig: { EndpointsConfig: { front: { Aliases: ["web"] } } },
      },
    });
    await netEngine.docker
      .getNetwork("back")
      .connect({ Container: old.id, EndpointConfig: { Aliases: ["api"] } });
    const reply = await recreate(draftFor(old.id, { host: NET_HOST }));
    expect(reply).toMatchObject({ outcome: "recreated", host: NET_HOST });
    const newId = reply.newContainerId as string;
    const after = await netEngine.docker.getContainer(newId).inspect();
    expect(after.State.Running).toBe(true);
    expect(after.HostConfig.NetworkMode).toBe("front");
    const networks = after.NetworkSettings.Networks;
    expect(Object.keys(networks).sort()).toEqual(["back", "front"]);
    expect(networks.front?.Aliases).toContain("web");
    expect(networks.back?.Aliases).toContain("api");
    for (const n of Object.values(networks)) {
      expect(n.Aliases ?? []).not.toContain(old.id.slice(0, 12));
      expect(n.IPAddress).not.toBe("");
    }
    // Docker's default hostname was the old id's; the new container has its own.
    expect(after.Config.Hostname).toBe(newId.slice(0, 12));
  });

  it("refuses an unsigned recreate, as an unsigned restart, and leaves the container alone", async () => {
    const target = await runTestContainer(engine, {
      name: "unsigned-target",
      labels: { autoheal: "true" },
    });
    const msg = await send(draftFor(target.id), false);
    expect(msg.headers?.get("Nats-Service-Error-Code")).toBe("403");
    expect(msg.headers?.get("Nats-Service-Error")).toMatch(/^unsigned: /);
    expect((await containersNamed("unsigned-target")).map((c) => c.id)).toEqual([target.id]);
    expect(
      recorder.count((e) => e.id === target.id && ["kill", "stop", "destroy"].includes(e.action)),
    ).toBe(0);
  });
});
