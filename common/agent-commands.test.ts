import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type Msg,
  type NatsConnection,
  headers as natsHeaders,
  RequestError,
  TimeoutError,
} from "@nats-io/nats-core";
import { describe, expect, it } from "vitest";
import {
  COMMAND_SIGNATURE_HEADERS,
  decode,
  encode,
  RestartCommand,
  StopCommand,
} from "../contracts/index.js";
import { configError } from "../test/support/config-error.js";
import { commandReply, restartDraft } from "../test/support/fixtures.js";
import { commandSigningFrom, sendAgentCommand, signCommand } from "./agent-commands.js";
import {
  commandSigningKeyFromSeed,
  commandVerifier,
  generateCommandSigningSeed,
} from "./command-signing.js";

const KEY = commandSigningKeyFromSeed(generateCommandSigningSeed());
const NOW = Date.parse("2026-11-27T20:00:00.000Z");
const DRAFT = restartDraft({
  commandId: "heal-0123456789abcdef",
  host: "host-a",
  containerId: "a".repeat(64),
  reason: "unhealthy",
  requestedBy: "handler:heal",
  requireUnhealthy: true,
});

describe("signCommand", () => {
  it("stamps the lifetime from now and signs the exact payload bytes", () => {
    const { command, payload, headers } = signCommand(DRAFT, { key: KEY, ttlMs: 30_000 }, NOW);
    expect(command).toEqual({
      ...DRAFT,
      issuedAt: "2026-11-27T20:00:00.000Z",
      expiresAt: "2026-11-27T20:00:30.000Z",
    });
    expect(RestartCommand.parse(command)).toEqual(command);
    expect(decode(RestartCommand, payload)).toEqual({ ok: true, value: command });
    expect(headers?.get(COMMAND_SIGNATURE_HEADERS.key)).toBe(KEY.publicKey);
    const signature = headers?.get(COMMAND_SIGNATURE_HEADERS.signature) ?? "";
    expect(commandVerifier([KEY.publicKey]).verify(KEY.publicKey, payload, signature)).toBe("ok");
  });

  it("a stop is signed the same way", () => {
    const stop = { ...DRAFT, type: "fleetheal.cmd.v1.stop" as const, requireUnhealthy: undefined };
    const { command } = signCommand(stop, { key: KEY, ttlMs: 1_000 }, NOW);
    expect(StopCommand.safeParse(command).success).toBe(true);
  });

  it("each attempt is signed afresh: same command id, new times and signature", () => {
    const first = signCommand(DRAFT, { key: KEY, ttlMs: 30_000 }, NOW);
    const again = signCommand(DRAFT, { key: KEY, ttlMs: 30_000 }, NOW + 5_000);
    expect(again.command.commandId).toBe(first.command.commandId);
    expect(again.command.issuedAt).toBe("2026-11-27T20:00:05.000Z");
    expect(again.headers?.get(COMMAND_SIGNATURE_HEADERS.signature)).not.toBe(
      first.headers?.get(COMMAND_SIGNATURE_HEADERS.signature),
    );
  });

  it("without a key the command goes unsigned, still with its lifetime", () => {
    const { command, headers } = signCommand(DRAFT, { ttlMs: 30_000 }, NOW);
    expect(headers).toBeUndefined();
    expect(command.expiresAt).toBe("2026-11-27T20:00:30.000Z");
  });
});

describe("commandSigningFrom", () => {
  it("reads the seed file", () => {
    const dir = mkdtempSync(join(tmpdir(), "fleetheal-signer-"));
    const file = join(dir, "seed");
    const seed = generateCommandSigningSeed();
    writeFileSync(file, `${seed}\n`, { mode: 0o600 });
    const signing = commandSigningFrom({
      FLEETHEAL_COMMAND_SIGNING_KEY_FILE: file,
      FLEETHEAL_COMMAND_TTL_MS: 10_000,
    });
    expect(signing.key?.publicKey).toBe(commandSigningKeyFromSeed(seed).publicKey);
    expect(signing.ttlMs).toBe(10_000);
    expect(commandSigningFrom({ FLEETHEAL_COMMAND_TTL_MS: 30_000 })).toEqual({ ttlMs: 30_000 });
  });

  it("names the variable and the problem, never the seed", () => {
    const dir = mkdtempSync(join(tmpdir(), "fleetheal-signer-"));
    const file = join(dir, "seed");
    writeFileSync(file, "SUAB not a seed\n");
    const bad = configError(() =>
      commandSigningFrom({ FLEETHEAL_COMMAND_SIGNING_KEY_FILE: file, FLEETHEAL_COMMAND_TTL_MS: 1 }),
    );
    expect(bad.message).toBe(
      `invalid configuration:\n  FLEETHEAL_COMMAND_SIGNING_KEY_FILE=${JSON.stringify(file)}: is not an operator nkey seed (58 characters starting with SO)`,
    );
    const missing = configError(() =>
      commandSigningFrom({
        FLEETHEAL_COMMAND_SIGNING_KEY_FILE: join(dir, "none"),
        FLEETHEAL_COMMAND_TTL_MS: 1,
      }),
    );
    expect(missing.message).toContain("cannot read it");
  });
});

/** A connection whose request answers with `answer` (or throws it), recording what was sent. */
function fakeNats(answer: Partial<Msg> | Error) {
  const sent: { subject: string; payload: Uint8Array; headers: string | undefined }[] = [];
  const nc = {
    request: async (subject: string, payload: Uint8Array, opts: { headers?: Msg["headers"] }) => {
      sent.push({
        subject,
        payload,
        headers: opts.headers?.get(COMMAND_SIGNATURE_HEADERS.key),
      });
      if (answer instanceof Error) throw answer;
      return answer as Msg;
    },
  } as unknown as NatsConnection;
  return { nc, sent };
}

function serviceError(code: string, message: string): Partial<Msg> {
  const h = natsHeaders();
  h.set("Nats-Service-Error-Code", code);
  h.set("Nats-Service-Error", message);
  return { headers: h, data: new Uint8Array(0) };
}

const options = { signing: { key: KEY, ttlMs: 30_000 }, timeoutMs: 1_000 };

describe("sendAgentCommand", () => {
  it("sends the signed command to the host's verb and reads the reply", async () => {
    const reply = commandReply({
      commandId: DRAFT.commandId,
      host: "host-a",
      containerId: DRAFT.containerId,
      message: "restarted",
      startedAt: "2026-11-27T20:00:00.000Z",
      durationMs: 3,
    });
    const { nc, sent } = fakeNats({ data: encode(reply) });
    expect(await sendAgentCommand(nc, DRAFT, options)).toEqual({ ok: true, reply });
    expect(sent).toHaveLength(1);
    expect(sent[0]?.subject).toBe("fleetheal.v1.cmd.host-a.restart");
    expect(sent[0]?.headers).toBe(KEY.publicKey);
  });

  it("a 403 is a refusal, with the agent's reason", async () => {
    const { nc } = fakeNats(serviceError("403", "expired: expired at x"));
    expect(await sendAgentCommand(nc, DRAFT, options)).toEqual({
      ok: false,
      code: "command-refused",
      message: "expired: expired at x",
    });
  });

  it("another service error is a rejection with its status", async () => {
    const { nc } = fakeNats(serviceError("400", "FLEETHEAL_ERR_SCHEMA: containerId"));
    expect(await sendAgentCommand(nc, DRAFT, options)).toEqual({
      ok: false,
      code: "rejected",
      status: 400,
      message: "FLEETHEAL_ERR_SCHEMA: containerId",
    });
  });

  it("an answer that is not a reply is a bad reply", async () => {
    const { nc } = fakeNats({ data: new TextEncoder().encode("{}") });
    expect(await sendAgentCommand(nc, DRAFT, options)).toMatchObject({
      ok: false,
      code: "bad-reply",
    });
  });

  it.each([
    ["no-responders", new RequestError("no responders", { cause: new Error("503") })],
    ["timeout", new TimeoutError()],
    ["error", new Error("connection closed")],
  ])("no answer: %s", async (code, error) => {
    const { nc } = fakeNats(error);
    expect(await sendAgentCommand(nc, DRAFT, options)).toMatchObject({ ok: false, code });
  });
});
