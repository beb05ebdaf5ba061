// The agent's command service on real parts: NATS micro service discovery, and restart, stop,
// inspect and snapshot requests, including the ones it must refuse.

import type { NatsConnection } from "@nats-io/nats-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ContainerCommandDraft, RestartDraft } from "../common/agent-commands.js";
import {
  CommandReply,
  commandSubject,
  decode,
  encode,
  HostSnapshot,
  InspectReply,
} from "../contracts/index.js";
import { signedCommand } from "./support/command-signing.js";
import { type DockerEventRecorder, runTestContainer } from "./support/containers.js";
import type { DockerEngine } from "./support/dockerd.js";
import { inspectRequest, restartDraft, snapshotRequest, stopDraft } from "./support/fixtures.js";
import { type Fleet, startFleet } from "./support/fleet.js";

const HOST = "cmd-host";
let fleet: Fleet;
let engine: DockerEngine;
let recorder: DockerEventRecorder;
let client: NatsConnection;
let optedIn: { id: string; name: string };
let notOptedIn: { id: string; name: string };
let seq = 0;

beforeAll(async () => {
  // The streams exist before any agent starts, as the handler of a deployment creates them.
  fleet = await startFleet({
    nats: "plain",
    hosts: [{ id: HOST, agent: false }],
    handlers: 0,
    streams: true,
    heartbeatMs: 5_000,
  });
  ({ engine, docker: recorder } = fleet.host(HOST));
  client = await fleet.nats.connect({ name: "test-commander" });
  optedIn = await runTestContainer(engine, { name: "mine", labels: { autoheal: "true" } });
  notOptedIn = await runTestContainer(engine, { name: "not-mine" });
  await fleet.startAgent(HOST, { name: "agent" });
});

afterAll(async () => {
  await fleet?.[Symbol.asyncDispose]();
});

function restartCommand(patch: Partial<RestartDraft> = {}): RestartDraft {
  return restartDraft({
    commandId: `test-${Date.now()}-${seq++}`,
    host: HOST,
    containerId: optedIn.id,
    ...patch,
  });
}

/** Sends `body` as it is, or a restart or stop signed as the control plane signs it. */
async function send(verb: "restart" | "stop" | "inspect" | "snapshot", body: unknown) {
  if (typeof body === "string") {
    return client.request(commandSubject(HOST, verb), new TextEncoder().encode(body), {
      timeout: 30_000,
    });
  }
  if (verb === "restart" || verb === "stop") {
    const { payload, headers } = signedCommand(body as ContainerCommandDraft);
    return client.request(commandSubject(HOST, verb), payload, { timeout: 30_000, headers });
  }
  return client.request(commandSubject(HOST, verb), encode(body), { timeout: 30_000 });
}

async function command(verb: "restart" | "stop", body: unknown): Promise<CommandReply> {
  const msg = await send(verb, body);
  const reply = decode(CommandReply, msg.data);
  if (!reply.ok) throw new Error(`bad reply: ${reply.error.message}: ${msg.string()}`);
  return reply.value;
}

function restartsOf(id: string): number {
  return recorder.count((e) => e.id === id && e.action === "restart");
}

describe("agent commands", () => {
  it("is discoverable as the fleetheal-agent micro service with its host", async () => {
    const reply = await client.request("$SRV.INFO.fleetheal-agent", undefined, { timeout: 5_000 });
    const info = reply.json<{
      name: string;
      metadata: Record<string, string>;
      endpoints: { name: string; subject: string }[];
    }>();
    expect(info.name).toBe("fleetheal-agent");
    expect(info.metadata.host).toBe(HOST);
    expect(info.endpoints.map((e) => e.name).sort()).toEqual([
      "inspect",
      "recreate",
      "restart",
      "snapshot",
      "stop",
    ]);
    expect(info.endpoints.find((e) => e.name === "restart")?.subject).toBe(
      `fleetheal.v1.cmd.${HOST}.restart`,
    );
  });

  it("restarts an opted-in container once per command id", async () => {
    const before = restartsOf(optedIn.id);
    const cmd = restartCommand();
    const first = await command("restart", cmd);
    expect(first).toMatchObject({
      outcome: "restarted",
      code: "restarted",
      duplicate: false,
      verb: "restart",
    });
    const again = await command("restart", cmd);
    expect(again).toMatchObject({
      outcome: "restarted",
      duplicate: true,
      commandId: cmd.commandId,
    });
    await recorder.waitFor(
      (e) => e.id === optedIn.id && e.action === "restart",
      10_000,
      "no restart",
    );
    expect(restartsOf(optedIn.id)).toBe(before + 1);
  });

  it("refuses a container that has not opted in, and leaves it alone", async () => {
    const reply = await command("restart", restartCommand({ containerId: notOptedIn.id }));
    expect(reply).toMatchObject({ outcome: "refused", code: "not-opted-in" });
    const stop = await command(
      "stop",
      stopDraft({ commandId: `test-stop-${seq++}`, host: HOST, containerId: notOptedIn.id }),
    );
    expect(stop).toMatchObject({ outcome: "refused", code: "not-opted-in", verb: "stop" });
    expect(
      recorder.count(
        (e) => e.id === notOptedIn.id && ["kill", "stop", "restart"].includes(e.action),
      ),
    ).toBe(0);
  });

  it("skips a stale command whose incident is over, and says why", async () => {
    const inspected = await engine.docker.getContainer(optedIn.id).inspect();
    const before = restartsOf(optedIn.id);
    const reply = await command(
      "restart",
      restartCommand({ incident: "2020-01-01T00:00:00.000000000Z" }),
    );
    expect(reply.outcome).toBe("skipped");
    expect(reply.code).toBe("stale-incident");
    expect(reply.message).toContain(inspected.State.StartedAt);
    expect(restartsOf(optedIn.id)).toBe(before);
    const current = await command(
      "restart",
      restartCommand({ incident: inspected.State.StartedAt }),
    );
    expect(current.outcome).toBe("restarted");
    await recorder.waitFor(
      () => restartsOf(optedIn.id) === before + 1,
      10_000,
      "the current incident's restart was not seen",
    );
  });

  it("answers inspect and snapshot requests with contract payloads", async () => {
    const inspect = decode(
      InspectReply,
      (await send("inspect", inspectRequest({ host: HOST, containerId: optedIn.id }))).data,
    );
    expect(inspect.ok && inspect.value.container).toMatchObject({
      id: optedIn.id,
      name: "mine",
      optedIn: true,
      state: "running",
    });
    const missing = await send(
      "inspect",
      inspectRequest({ host: HOST, containerId: "0".repeat(64) }),
    );
    expect(missing.headers?.get("Nats-Service-Error-Code")).toBe("404");
    const snapshot = decode(HostSnapshot, (await send("snapshot", snapshotRequest(HOST))).data);
    expect(snapshot.ok).toBe(true);
    if (snapshot.ok) {
      expect(snapshot.value.host).toBe(HOST);
      expect(snapshot.value.docker.status).toBe("up");
      expect(snapshot.value.containers.map((c) => c.name).sort()).toEqual(["mine", "not-mine"]);
    }
  });

  it("rejects malformed requests with a 400 service error and keeps serving", async () => {
    const bad = await send("restart", "{not json");
    expect(bad.headers?.get("Nats-Service-Error-Code")).toBe("400");
    expect(bad.headers?.get("Nats-Service-Error")).toContain("FLEETHEAL_ERR_BAD_JSON");
    const wrong = await send("restart", { ...restartCommand(), containerId: "../etc" });
    expect(wrong.headers?.get("Nats-Service-Error-Code")).toBe("400");
    expect(wrong.headers?.get("Nats-Service-Error")).toContain("containerId");
    const stopped = await command(
      "stop",
      stopDraft({ commandId: `test-stop-${seq++}`, host: HOST, containerId: optedIn.id }),
    );
    expect(stopped).toMatchObject({ outcome: "stopped", code: "stopped" });
    expect((await engine.docker.getContainer(optedIn.id).inspect()).State.Running).toBe(false);
  });
});
