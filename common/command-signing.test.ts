import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createAccount, createOperator, fromPublic } from "@nats-io/nkeys";
import { describe, expect, it } from "vitest";
import {
  commandSigningKeyFromSeed,
  commandVerifier,
  generateCommandSigningSeed,
  isCommandPublicKey,
  loadCommandSigningKey,
} from "./command-signing.js";

const seedOf = (kp: { getSeed(): Uint8Array }) => new TextDecoder().decode(kp.getSeed());
const PAYLOAD = new TextEncoder().encode('{"type":"fleetheal.cmd.v1.restart","host":"host-a"}');

describe("command signing keys", () => {
  it("are operator nkeys: seed SO…, public key O…", () => {
    const seed = generateCommandSigningSeed();
    expect(seed).toMatch(/^SO[A-Z2-7]{56}$/);
    const key = commandSigningKeyFromSeed(seed);
    expect(key.publicKey).toMatch(/^O[A-Z2-7]{55}$/);
    expect(isCommandPublicKey(key.publicKey)).toBe(true);
  });

  it("sign exactly as nkeys does, so either side can be the other's tool", () => {
    const kp = createOperator();
    const key = commandSigningKeyFromSeed(seedOf(kp));
    expect(key.publicKey).toBe(kp.getPublicKey());
    const signature = key.sign(PAYLOAD);
    expect(signature).toMatch(/^[A-Za-z0-9_-]{86}$/);
    expect(Buffer.from(kp.sign(PAYLOAD)).toString("base64url")).toBe(signature);
    expect(fromPublic(key.publicKey).verify(PAYLOAD, Buffer.from(signature, "base64url"))).toBe(
      true,
    );
  });

  it.each([
    ["an account seed", () => seedOf(createAccount())],
    ["a public key", () => createOperator().getPublicKey()],
    ["garbage", () => "not a seed"],
    [
      "a seed with a wrong checksum",
      () => {
        // A character of the key itself: the last one also holds bits the encoding ignores.
        const seed = seedOf(createOperator());
        return `${seed.slice(0, 10)}${seed[10] === "A" ? "B" : "A"}${seed.slice(11)}`;
      },
    ],
  ])("refuse %s", (_what, make) => {
    expect(() => commandSigningKeyFromSeed(make())).toThrow(/seed/);
  });

  it("load from a seed file with its trailing newline", () => {
    const dir = mkdtempSync(join(tmpdir(), "fleetheal-signing-"));
    const seed = generateCommandSigningSeed();
    const file = join(dir, "command-signing.nk");
    writeFileSync(file, `${seed}\n`, { mode: 0o600 });
    expect(loadCommandSigningKey(file).publicKey).toBe(commandSigningKeyFromSeed(seed).publicKey);
    expect(() => loadCommandSigningKey(join(dir, "missing"))).toThrow(/cannot read it/);
  });

  it("isCommandPublicKey: operator public keys only, with a valid checksum", () => {
    const key = createOperator().getPublicKey();
    expect(isCommandPublicKey(key)).toBe(true);
    expect(isCommandPublicKey(createAccount().getPublicKey())).toBe(false);
    expect(isCommandPublicKey(`${key.slice(0, -1)}${key.endsWith("A") ? "B" : "A"}`)).toBe(false);
    expect(isCommandPublicKey(key.toLowerCase())).toBe(false);
    expect(isCommandPublicKey("")).toBe(false);
  });
});

describe("commandVerifier", () => {
  const signer = commandSigningKeyFromSeed(generateCommandSigningSeed());
  const other = commandSigningKeyFromSeed(generateCommandSigningSeed());
  const verifier = commandVerifier([signer.publicKey]);

  it("accepts the signature of a trusted key over the same bytes", () => {
    expect(verifier.keys).toEqual([signer.publicKey]);
    expect(verifier.verify(signer.publicKey, PAYLOAD, signer.sign(PAYLOAD))).toBe("ok");
  });

  it("refuses a key it does not trust, even with a good signature", () => {
    expect(verifier.verify(other.publicKey, PAYLOAD, other.sign(PAYLOAD))).toBe("untrusted-key");
  });

  it("refuses a signature by the wrong key under a trusted key's name", () => {
    expect(verifier.verify(signer.publicKey, PAYLOAD, other.sign(PAYLOAD))).toBe("bad-signature");
  });

  it("refuses a tampered payload, down to one byte", () => {
    const signature = signer.sign(PAYLOAD);
    const tampered = Uint8Array.from(PAYLOAD);
    const at = tampered.length - 3;
    tampered.set([(tampered[at] ?? 0) ^ 1], at);
    expect(verifier.verify(signer.publicKey, tampered, signature)).toBe("bad-signature");
    // The same JSON with other whitespace is other bytes: no canonical form.
    const spaced = new TextEncoder().encode(new TextDecoder().decode(PAYLOAD).replace(",", ", "));
    expect(verifier.verify(signer.publicKey, spaced, signature)).toBe("bad-signature");
  });

  it.each([
    ["empty", ""],
    ["standard base64 with padding", `${Buffer.alloc(64, 7).toString("base64")}`],
    ["too short", "AAAA"],
    ["one character too many", `${"A".repeat(86)}A`],
    ["spaces", ` ${"A".repeat(85)}`],
  ])("refuses a malformed signature header (%s)", (_why, signature) => {
    expect(verifier.verify(signer.publicKey, PAYLOAD, signature)).toBe("bad-signature");
  });

  it("trusts several keys at once (a rotation), and none when given none", () => {
    const both = commandVerifier([signer.publicKey, other.publicKey]);
    expect(both.verify(other.publicKey, PAYLOAD, other.sign(PAYLOAD))).toBe("ok");
    expect(both.verify(signer.publicKey, PAYLOAD, signer.sign(PAYLOAD))).toBe("ok");
    const none = commandVerifier([]);
    expect(none.keys).toEqual([]);
    expect(none.verify(signer.publicKey, PAYLOAD, signer.sign(PAYLOAD))).toBe("untrusted-key");
  });
});
