import { describe, expect, it } from "vitest";
import {
  commandSigningKeyFromSeed,
  commandVerifier,
  generateCommandSigningSeed,
} from "../common/command-signing.js";
import { COMMAND_REFUSAL_CODES, CommandRefusals } from "../contracts/index.js";
import {
  authoriseCommand,
  type CommandAuthPolicy,
  CommandRefusalCounter,
  type CommandToAuthorise,
} from "./command-auth.js";

const SIGNER = commandSigningKeyFromSeed(generateCommandSigningSeed());
const STRANGER = commandSigningKeyFromSeed(generateCommandSigningSeed());
/** The agent's clock, and when it started: a minute earlier. */
const NOW = Date.parse("2026-11-27T20:00:00.000Z");
const STARTED = NOW - 60_000;
const SKEW = 30_000;

const iso = (ms: number) => new Date(ms).toISOString();

function policy(patch: Partial<CommandAuthPolicy> = {}): CommandAuthPolicy {
  return {
    verifier: commandVerifier([SIGNER.publicKey]),
    acceptUnsigned: false,
    clockSkewMs: SKEW,
    startedAtMs: STARTED,
    replayFloorMs: undefined,
    ...patch,
  };
}

/** A command issued at `issued`, living `lifetimeMs`, signed by `key` (null: unsigned). */
function command(
  issued = NOW,
  lifetimeMs = 30_000,
  key: typeof SIGNER | null = SIGNER,
): CommandToAuthorise {
  const issuedAt = iso(issued);
  const expiresAt = iso(issued + lifetimeMs);
  const payload = new TextEncoder().encode(
    JSON.stringify({ type: "fleetheal.cmd.v1.restart", host: "host-a", issuedAt, expiresAt }),
  );
  return {
    payload,
    signature: { key: key?.publicKey, signature: key?.sign(payload) },
    issuedAt,
    expiresAt,
  };
}

const codeOf = (c: CommandToAuthorise, p = policy(), now = NOW) =>
  authoriseCommand(c, p, now)?.code;

describe("authoriseCommand: who signed it", () => {
  it("accepts a current command signed by a trusted key", () => {
    expect(authoriseCommand(command(), policy(), NOW)).toBeUndefined();
  });

  it("accepts any of several trusted keys (a rotation)", () => {
    const both = policy({ verifier: commandVerifier([STRANGER.publicKey, SIGNER.publicKey]) });
    expect(codeOf(command(NOW, 30_000, STRANGER), both)).toBeUndefined();
    expect(codeOf(command(), both)).toBeUndefined();
  });

  it("refuses a command without signature headers: unsigned", () => {
    const refusal = authoriseCommand(command(NOW, 30_000, null), policy(), NOW);
    expect(refusal).toEqual({
      code: "unsigned",
      detail: "no Fleetheal-Signing-Key and Fleetheal-Signature headers",
    });
  });

  it("refuses a command with only one of the two headers: unsigned", () => {
    const c = command();
    expect(
      authoriseCommand(
        { ...c, signature: { ...c.signature, signature: undefined } },
        policy(),
        NOW,
      ),
    ).toEqual({ code: "unsigned", detail: "no Fleetheal-Signature header" });
    expect(codeOf({ ...c, signature: { ...c.signature, key: undefined } })).toBe("unsigned");
  });

  it("refuses a key it does not trust: untrusted-key, naming the key", () => {
    const refusal = authoriseCommand(command(NOW, 30_000, STRANGER), policy(), NOW);
    expect(refusal).toEqual({
      code: "untrusted-key",
      detail: `${STRANGER.publicKey} is not in FLEETHEAL_COMMAND_KEYS`,
    });
  });

  it("refuses a tampered payload: bad-signature", () => {
    const c = command();
    const tampered = new TextEncoder().encode(
      new TextDecoder().decode(c.payload).replace("host-a", "host-b"),
    );
    expect(codeOf({ ...c, payload: tampered })).toBe("bad-signature");
  });

  it("refuses another command's signature: bad-signature", () => {
    const a = command();
    const b = command(NOW + 1);
    expect(codeOf({ ...b, signature: a.signature })).toBe("bad-signature");
  });

  it.each([
    ["not base64url", "!".repeat(86)],
    ["too short", "AAAA"],
    ["too long", "A".repeat(87)],
    ["empty", ""],
  ])("refuses a malformed signature header (%s): bad-signature", (_why, signature) => {
    const c = command();
    expect(codeOf({ ...c, signature: { key: SIGNER.publicKey, signature } })).toBe("bad-signature");
  });

  it("a malformed key header is simply not trusted, and is cut and made printable", () => {
    const c = command();
    const key = `O\u0000${"X".repeat(100)}`;
    const refusal = authoriseCommand({ ...c, signature: { ...c.signature, key } }, policy(), NOW);
    expect(refusal?.code).toBe("untrusted-key");
    expect(refusal?.detail).toBe(`O?${"X".repeat(55)}... is not in FLEETHEAL_COMMAND_KEYS`);
  });

  it("trusting no key refuses everything, signed or not: no-trusted-keys", () => {
    const none = policy({ verifier: commandVerifier([]) });
    expect(codeOf(command(), none)).toBe("no-trusted-keys");
    expect(codeOf(command(NOW, 30_000, null), none)).toBe("no-trusted-keys");
  });

  it("accepts an unsigned command only with FLEETHEAL_INSECURE_UNSIGNED_COMMANDS", () => {
    const insecure = policy({ acceptUnsigned: true, verifier: commandVerifier([]) });
    expect(codeOf(command(NOW, 30_000, null), insecure)).toBeUndefined();
    // A signature that is there is still checked.
    expect(codeOf(command(), insecure)).toBe("no-trusted-keys");
    expect(codeOf(command(NOW, 30_000, STRANGER), policy({ acceptUnsigned: true }))).toBe(
      "untrusted-key",
    );
    // And so is the lifetime.
    expect(codeOf(command(NOW - 120_000, 30_000, null), insecure)).toBe("expired");
  });
});

describe("authoriseCommand: whether it is current", () => {
  it("accepts the edges of the allowed skew", () => {
    expect(codeOf(command(NOW + SKEW))).toBeUndefined();
    // Expired exactly `skew` ago.
    expect(codeOf(command(NOW - SKEW - 30_000))).toBeUndefined();
  });

  it("refuses a command issued later than the clock plus the skew: issued-in-future", () => {
    const refusal = authoriseCommand(command(NOW + SKEW + 1), policy(), NOW);
    expect(refusal).toEqual({
      code: "issued-in-future",
      detail: `issued at ${iso(NOW + SKEW + 1)}, 30001 ms ahead of this agent's clock (skew allowed: 30000 ms)`,
    });
  });

  it("refuses a command that expired longer ago than the skew: expired", () => {
    const refusal = authoriseCommand(command(NOW - SKEW - 30_001), policy(), NOW);
    expect(refusal).toEqual({
      code: "expired",
      detail: `expired at ${iso(NOW - SKEW - 1)}, 30001 ms ago (skew allowed: 30000 ms)`,
    });
  });

  it.each([
    ["zero", 0],
    ["negative", -1_000],
    ["over 300 s", 300_001],
  ])("refuses a lifetime that is %s: bad-lifetime", (_why, lifetime) => {
    expect(codeOf(command(NOW, lifetime))).toBe("bad-lifetime");
  });

  it("accepts the longest lifetime", () => {
    expect(codeOf(command(NOW, 300_000))).toBeUndefined();
  });

  it("refuses a command issued before the agent started, however current: issued-before-start", () => {
    expect(codeOf(command(STARTED - 1, 300_000))).toBe("issued-before-start");
    expect(codeOf(command(STARTED, 300_000))).toBeUndefined();
  });

  it("refuses a command issued at or before the replay floor: replay-window", () => {
    const floor = policy({ replayFloorMs: NOW - 5_000 });
    expect(codeOf(command(NOW - 5_000), floor)).toBe("replay-window");
    expect(codeOf(command(NOW - 4_999), floor)).toBeUndefined();
  });

  it("judges by the clock it is given", () => {
    const c = command();
    expect(codeOf(c, policy(), NOW + 30_000 + SKEW)).toBeUndefined();
    expect(codeOf(c, policy(), NOW + 30_000 + SKEW + 1)).toBe("expired");
  });
});

describe("CommandRefusalCounter", () => {
  it("counts refusals per code and rejections per verb, for the snapshot", () => {
    const counter = new CommandRefusalCounter();
    const empty = counter.snapshot();
    expect(CommandRefusals.parse(empty)).toEqual(empty);
    expect(Object.keys(empty.refused)).toEqual(COMMAND_REFUSAL_CODES);
    expect(Object.values(empty.refused).every((n) => n === 0)).toBe(true);
    expect(empty.last).toBeUndefined();

    counter.refusal({ code: "expired", detail: "expired at x" });
    counter.refusal({ code: "expired", detail: "expired at y" });
    counter.rejection("inspect", "FLEETHEAL_ERR_SCHEMA: containerId");
    counter.refusal({ code: "unsigned", detail: "no headers" });
    const snap = counter.snapshot();
    expect(snap.refused).toMatchObject({ expired: 2, unsigned: 1, "bad-signature": 0 });
    expect(snap.malformed).toEqual({ restart: 0, stop: 0, recreate: 0, inspect: 1, snapshot: 0 });
    expect(snap.last).toBe("unsigned: no headers");
    expect(counter.rejections("inspect")).toEqual({
      rejected: 1,
      last: "FLEETHEAL_ERR_SCHEMA: containerId",
    });
    expect(counter.rejections("restart")).toEqual({ rejected: 0 });
  });
});
