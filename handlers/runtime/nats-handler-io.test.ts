import type { JetStreamClient } from "@nats-io/jetstream";
import { headers, type MsgHdrs, type NatsConnection } from "@nats-io/nats-core";
import { ServiceErrorCodeHeader, ServiceErrorHeader } from "@nats-io/services";
import { describe, expect, it } from "vitest";
import {
  commandSigningKeyFromSeed,
  commandVerifier,
  generateCommandSigningSeed,
} from "../../common/command-signing.js";
import type { FleetJetStream } from "../../common/jetstream-resources.js";
import {
  COMMAND_SIGNATURE_HEADERS,
  DEAD_LETTER_HEADERS,
  encode,
  type RestartCommand,
} from "../../contracts/index.js";
import { commandReply, restartDraft } from "../../test/support/fixtures.js";
import { natsHandlerIo } from "./nats-handler-io.js";

const SIGNER = commandSigningKeyFromSeed(generateCommandSigningSeed());
const CID = "c1".repeat(6);

const command = restartDraft({
  commandId: "heal-0001",
  host: "h1",
  containerId: CID,
  reason: "unhealthy",
  requestedBy: "handler:heal",
});

/** A connection whose agent answers every request with `answer`, and what was sent. */
function connection(answer: { data: Uint8Array; headers?: MsgHdrs }) {
  const requests: { subject: string; payload: Uint8Array; headers: MsgHdrs | undefined }[] = [];
  const published: { subject: string; data: Uint8Array; opts: Record<string, unknown> }[] = [];
  const nc = {
    request: async (subject: string, payload: Uint8Array, opts: { headers?: MsgHdrs }) => {
      requests.push({ subject, payload, headers: opts.headers });
      return answer;
    },
  } as unknown as NatsConnection;
  const js = {
    publish: async (subject: string, data: Uint8Array, opts: Record<string, unknown>) => {
      published.push({ subject, data, opts });
      return { seq: published.length };
    },
  } as unknown as JetStreamClient;
  const io = natsHandlerIo({
    nc,
    fjs: { js } as FleetJetStream,
    commandSigning: { key: SIGNER, ttlMs: 20_000 },
  });
  return { io, requests, published };
}

const reply = commandReply({
  commandId: "heal-0001",
  host: "h1",
  containerId: CID,
  message: "restarted",
  startedAt: "2026-11-28T00:00:00.000Z",
});

describe("natsHandlerIo", () => {
  it("a restart is stamped with its lifetime and signed when it is sent", async () => {
    const { io, requests } = connection({ data: encode(reply) });
    const sentAfter = Date.now();
    expect(await io.sendCommand(command, 5_000)).toMatchObject({ ok: true, reply });
    const [sent] = requests;
    if (!sent) throw new Error("no request was sent");
    expect(sent.subject).toBe("fleetheal.v1.cmd.h1.restart");
    const stamped = JSON.parse(new TextDecoder().decode(sent.payload)) as RestartCommand;
    expect(stamped).toMatchObject({ commandId: "heal-0001", host: "h1" });
    const issued = Date.parse(stamped.issuedAt);
    expect(issued).toBeGreaterThanOrEqual(sentAfter);
    expect(Date.parse(stamped.expiresAt) - issued).toBe(20_000);
    const signature = sent.headers?.get(COMMAND_SIGNATURE_HEADERS.signature) ?? "";
    expect(sent.headers?.get(COMMAND_SIGNATURE_HEADERS.key)).toBe(SIGNER.publicKey);
    expect(
      commandVerifier([SIGNER.publicKey]).verify(SIGNER.publicKey, sent.payload, signature),
    ).toBe("ok");
  });

  it("an agent's service error other than a refusal is a bad reply", async () => {
    const h = headers();
    h.set(ServiceErrorHeader, "invalid command");
    h.set(ServiceErrorCodeHeader, "400");
    const { io } = connection({ data: new Uint8Array(), headers: h });
    expect(await io.sendCommand(command, 5_000)).toMatchObject({
      ok: false,
      code: "bad-reply",
      message: "agent error: invalid command",
    });
  });

  it("a dead letter carries why, on one line, under a message id of its handler and sequence", async () => {
    const { io, published } = connection({ data: new Uint8Array() });
    await io.deadLetter({
      handler: "heal",
      subject: "fleetheal.v1.evt.h1.c1.unhealthy",
      data: new Uint8Array([1]),
      reason: "FLEETHEAL_ERR_SCHEMA: bad\nvery bad",
      deliveries: 3,
      streamSeq: 42,
    });
    const [letter] = published;
    expect(letter?.subject).toBe("fleetheal.v1.dlq.heal");
    expect(letter?.opts.msgID).toBe("heal:42");
    const h = letter?.opts.headers as MsgHdrs;
    expect(h.get(DEAD_LETTER_HEADERS.reason)).toBe("FLEETHEAL_ERR_SCHEMA: bad very bad");
    expect(h.get(DEAD_LETTER_HEADERS.subject)).toBe("fleetheal.v1.evt.h1.c1.unhealthy");
    expect(h.get(DEAD_LETTER_HEADERS.deliveries)).toBe("3");
    expect(h.get(DEAD_LETTER_HEADERS.streamSeq)).toBe("42");
  });
});
