// Signed, expiring commands on real parts: a nats-server, a dockerd engine and real agent
// processes. The agent must refuse, unexecuted, a restart or stop that is unsigned, signed by a
// key it does not trust, tampered with, expired, or a valid one replayed after the agent
// restarted; each refusal is a 403 with its code, logged once and counted in the host snapshot.
// Docker's own event stream is the witness that nothing was restarted or stopped, and a
// correctly signed command still works afterwards.

import type { Msg, MsgHdrs, NatsConnection } from "@nats-io/nats-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ContainerCommandDraft } from "../common/agent-commands.js";
import {
  commandSigningKeyFromSeed,
  generateCommandSigningSeed,
} from "../common/command-signing.js";
import { CommandReply, commandSubject, decode, encode, HostSnapshot } from "../contracts/index.js";
import { signedCommand } from "./support/command-signing.js";
import { type DockerEventRecorder, runTestContainer } from "./support/containers.js";
import type { DockerEngine } from "./support/dockerd.js";
import { restartDraft, snapshotRequest, stopDraft } from "./support/fixtures.js";
import { type Fleet, startFleet } from "./support/fleet.js";
import type { FleetProcess } from "./support/fleetheal.js";
import { waitFor } from "./support/wait.js";

const HOST = "signed-host";
let fleet: Fleet;
let engine: DockerEngine;
let recorder: DockerEventRecorder;
let client: NatsConnection;
let agent: FleetProcess;
let target: { id: string; name: string };
let seq = 0;

beforeAll(async () => {
  fleet = await startFleet({
    nats: "plain",
    hosts: [{ id: HOST, agent: false }],
    handlers: 0,
    heartbeatMs: 5_000,
  });
  ({ engine, docker: recorder } = fleet.host(HOST));
  client = await fleet.nats.connect({ name: "test-signer" });
  target = await runTestContainer(engine, { name: "target", labels: { autoheal: "true" } });
  agent = await fleet.startAgent(HOST, { name: "agent" });
});

afterAll(async () => {
  await fleet?.[Symbol.asyncDispose]();
});

function draft(verb: "restart" | "stop"): ContainerCommandDraft {
  const fields = {
    commandId: `signed-test-${Date.now()}-${seq++}`,
    host: HOST,
    containerId: target.id,
    reason: "signing test",
  };
  return verb === "restart" ? restartDraft(fields) : stopDraft(fields);
}

function send(
  verb: "restart" | "stop",
  payload: Uint8Array,
  headers: MsgHdrs | undefined,
): Promise<Msg> {
  return client.request(commandSubject(HOST, verb), payload, {
    timeout: 30_000,
    ...(headers ? { headers } : {}),
  });
}

/** Expects the agent's 403 with `code`, and returns its message. */
function refusal(msg: Msg, code: string): string {
  expect(msg.headers?.get("Nats-Service-Error-Code")).toBe("403");
  const message = msg.headers?.get("Nats-Service-Error") ?? "";
  expect(message.startsWith(`${code}: `), message).toBe(true);
  expect(msg.data.length).toBe(0);
  return message;
}

function reply(msg: Msg): CommandReply {
  const decoded = decode(CommandReply, msg.data);
  if (!decoded.ok)
    throw new Error(`not a command reply: ${msg.headers?.get("Nats-Service-Error")}`);
  return decoded.value;
}

async function snapshot(): Promise<HostSnapshot> {
  const msg = await client.request(
    commandSubject(HOST, "snapshot"),
    encode(snapshotRequest(HOST)),
    { timeout: 10_000 },
  );
  return HostSnapshot.parse(JSON.parse(msg.string()));
}

/** The agent's "command refused" log lines, by code. */
function refusalLogs(of: FleetProcess): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const line of of.json) {
    if (line.msg === "command refused")
      counts[String(line.code)] = (counts[String(line.code)] ?? 0) + 1;
  }
  return counts;
}

/** Waits for the agent's log (a pipe, behind its NATS replies) to hold exactly `expected`. */
async function loggedRefusals(of: FleetProcess, expected: Record<string, number>): Promise<void> {
  const total = Object.values(expected).reduce((a, b) => a + b, 0);
  await waitFor(() => Object.values(refusalLogs(of)).reduce((a, b) => a + b, 0) >= total, {
    timeoutMs: 5_000,
    message: "the agent did not log every refusal",
  });
  expect(refusalLogs(of)).toEqual(expected);
}

/** Docker's record of what happened to the target container that a command could cause. */
const touched = (action: string) =>
  recorder.count((e) => e.id === target.id && e.action === action);

describe("signed, expiring commands", () => {
  it("refuses unsigned, untrusted, tampered and expired commands, and a replay after an agent restart", async () => {
    // Unsigned, a restart and a stop.
    const unsignedRestart = signedCommand(draft("restart"), { key: null });
    refusal(await send("restart", unsignedRestart.payload, undefined), "unsigned");
    const unsignedStop = signedCommand(draft("stop"), { key: null });
    refusal(await send("stop", unsignedStop.payload, undefined), "unsigned");

    // Signed by a key the agent does not trust.
    const stranger = commandSigningKeyFromSeed(generateCommandSigningSeed());
    const untrusted = signedCommand(draft("stop"), { key: stranger });
    const untrustedMessage = refusal(
      await send("stop", untrusted.payload, untrusted.headers),
      "untrusted-key",
    );
    expect(untrustedMessage).toContain(stranger.publicKey);

    // Signed by the trusted key, then changed on the way: another reason, same signature.
    const genuine = signedCommand(draft("restart"));
    const tampered = new TextEncoder().encode(
      new TextDecoder().decode(genuine.payload).replace("signing test", "signing tesT"),
    );
    refusal(await send("restart", tampered, genuine.headers), "bad-signature");
    // A signature for a stop, sent with a restart's payload.
    const stopSignature = signedCommand(draft("stop"));
    refusal(await send("restart", genuine.payload, stopSignature.headers), "bad-signature");

    // Correctly signed, but it expired two minutes ago (well past the 30 s skew).
    const expired = signedCommand(draft("restart"), { at: Date.now() - 150_000 });
    const expiredMessage = refusal(
      await send("restart", expired.payload, expired.headers),
      "expired",
    );
    expect(expiredMessage).toContain("skew allowed: 30000 ms");

    // Each refusal was logged once with its code, and is counted in the host snapshot.
    const expected = { unsigned: 2, "untrusted-key": 1, "bad-signature": 2, expired: 1 };
    await loggedRefusals(agent, expected);
    const counted = (await snapshot()).agent;
    expect(counted.commandRefusals?.refused).toMatchObject({ ...expected, "no-trusted-keys": 0 });
    expect(counted.acceptsUnsignedCommands).toBe(false);
    expect(counted.commandKeys).toHaveLength(1);

    // A valid command works, once; the exact same bytes are kept for a replay.
    const valid = signedCommand(draft("restart"), { ttlMs: 300_000 });
    expect(reply(await send("restart", valid.payload, valid.headers))).toMatchObject({
      outcome: "restarted",
      duplicate: false,
    });
    await recorder.waitFor(
      (e) => e.id === target.id && e.action === "restart",
      20_000,
      "the valid command did not restart the container",
    );

    // The agent restarts: it has forgotten the command id, and the command is still within its
    // lifetime, yet a replay of it must not restart the container again.
    agent = await fleet.restart(agent);
    const replayMessage = refusal(
      await send("restart", valid.payload, valid.headers),
      "issued-before-start",
    );
    expect(replayMessage).toContain(JSON.parse(new TextDecoder().decode(valid.payload)).issuedAt);
    await loggedRefusals(agent, { "issued-before-start": 1 });
    expect((await snapshot()).agent.commandRefusals?.refused).toMatchObject({
      "issued-before-start": 1,
      unsigned: 0,
    });

    // Signed now, it works: and it is the barrier for Docker's witness. Docker reports events
    // in order, so once this restart is seen, any earlier one would have been seen too.
    const after = signedCommand(draft("restart"));
    expect(reply(await send("restart", after.payload, after.headers))).toMatchObject({
      outcome: "restarted",
    });
    await recorder.waitFor(
      (e) => e.id === target.id && e.action === "restart" && touched("restart") === 2,
      20_000,
      "the command signed after the agent restarted did not restart the container",
    );
    // Docker's restart is kill, die, stop, start, restart: the two restarts account for every
    // kill and stop, so neither refused stop ran.
    expect(touched("restart")).toBe(2);
    expect(touched("kill")).toBe(2);
    expect(touched("stop")).toBe(2);
    expect(
      (await engine.docker.getContainer(target.id).inspect()).State.Running,
      "the refused stops must have left the container running",
    ).toBe(true);
  });
});
