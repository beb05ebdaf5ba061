import {
  createPrivateKey,
  createPublicKey,
  sign as ed25519Sign,
  verify as ed25519Verify,
  type KeyObject,
} from "node:crypto";
import { readFileSync } from "node:fs";
import { createOperator, fromPublic, fromSeed } from "@nats-io/nkeys";

/*
 * Keys that sign the commands that change containers (contracts/command-auth.ts). They are NATS
 * operator nkeys (seed `SO…`, public key `O…`), so operators make, store and rotate them like
 * the other NATS keys (`nk -gen operator`, `nsc`). nkeys only encodes and decodes them here: the
 * signing and verifying is node:crypto's native ed25519 rather than nkeys' pure-JS one, because
 * every restart command is signed by its sender and verified by the agent on the way to Docker
 * (what that costs: docs/benchmarks/PERFORMANCE.md, "Heal reaction").
 */

/** Signs command payloads with one operator key. */
export interface CommandSigningKey {
  /** The `O…` public key, sent with every signature. */
  readonly publicKey: string;
  /** The ed25519 signature of exactly these bytes, base64url without padding. */
  sign(payload: Uint8Array): string;
}

/** Checks signatures against the operator keys an agent trusts. */
export interface CommandVerifier {
  /** The trusted `O…` public keys, in the order configured. */
  readonly keys: readonly string[];
  /** `ok`, or why not: the key is not trusted, or the signature does not verify. */
  verify(
    publicKey: string,
    payload: Uint8Array,
    signature: string,
  ): "ok" | "untrusted-key" | "bad-signature";
}

/** DER prefixes that wrap a raw 32-byte ed25519 seed (PKCS#8) and public key (SPKI). */
const PKCS8_ED25519 = Buffer.from("302e020100300506032b657004220420", "hex");
const SPKI_ED25519 = Buffer.from("302a300506032b6570032100", "hex");
const SIGNATURE = /^[A-Za-z0-9_-]{86}$/;

/** A new operator seed (`SO…`), for `fleetheal up` and for tests. */
export function generateCommandSigningSeed(): string {
  return new TextDecoder().decode(createOperator().getSeed());
}

/** The signing key of an operator seed; throws an Error saying what is wrong with it. */
export function commandSigningKeyFromSeed(seed: string): CommandSigningKey {
  const trimmed = seed.trim();
  if (!/^SO[A-Z2-7]{56}$/.test(trimmed)) {
    throw new Error("is not an operator nkey seed (58 characters starting with SO)");
  }
  let publicKey: string;
  try {
    publicKey = fromSeed(new TextEncoder().encode(trimmed)).getPublicKey();
  } catch (error) {
    throw new Error(`is not a valid nkey seed (${(error as Error).message})`);
  }
  // Seed encoding: two prefix bytes, the 32-byte ed25519 seed, a 2-byte checksum.
  const raw = base32Decode(trimmed).subarray(2, 34);
  const privateKey = createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519, raw]),
    format: "der",
    type: "pkcs8",
  });
  // nkeys and node:crypto must derive the same public key from the seed, or nothing verifies.
  const derived = createPublicKey(privateKey).export({ format: "der", type: "spki" });
  if (!derived.subarray(SPKI_ED25519.length).equals(rawPublicKey(publicKey))) {
    throw new Error("decodes to a different public key than nkeys derives");
  }
  return {
    publicKey,
    sign: (payload) => ed25519Sign(null, payload, privateKey).toString("base64url"),
  };
}

/**
 * The signing key in a seed file (the seed and a newline, as `nk -gen operator` writes it).
 * Throws an Error naming the file and what is wrong; callers turn it into a ConfigError.
 */
export function loadCommandSigningKey(file: string): CommandSigningKey {
  let content: string;
  try {
    content = readFileSync(file, "utf8");
  } catch (error) {
    throw new Error(`cannot read it (${(error as Error).message})`);
  }
  return commandSigningKeyFromSeed(content);
}

/** Whether `key` is an operator public key (`O…`) with a valid checksum. */
export function isCommandPublicKey(key: string): boolean {
  if (!/^O[A-Z2-7]{55}$/.test(key)) return false;
  try {
    fromPublic(key);
    return true;
  } catch {
    return false;
  }
}

/** A verifier over `publicKeys`, each checked with {@link isCommandPublicKey} by the caller. */
export function commandVerifier(publicKeys: readonly string[]): CommandVerifier {
  const trusted = new Map<string, KeyObject>();
  for (const key of publicKeys) {
    trusted.set(
      key,
      createPublicKey({
        key: Buffer.concat([SPKI_ED25519, rawPublicKey(key)]),
        format: "der",
        type: "spki",
      }),
    );
  }
  return {
    keys: [...trusted.keys()],
    verify(publicKey, payload, signature) {
      const key = trusted.get(publicKey);
      if (!key) return "untrusted-key";
      if (!SIGNATURE.test(signature)) return "bad-signature";
      return ed25519Verify(null, payload, key, Buffer.from(signature, "base64url"))
        ? "ok"
        : "bad-signature";
    },
  };
}

/** The raw 32 bytes of an `O…` public key: one prefix byte, the key, a 2-byte checksum. */
function rawPublicKey(publicKey: string): Buffer {
  return base32Decode(publicKey).subarray(1, 33);
}

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** RFC 4648 base32 without padding, as nkeys writes it; the callers have validated the text. */
function base32Decode(text: string): Buffer {
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const char of text) {
    value = (value << 5) | BASE32.indexOf(char);
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((value >>> bits) & 0xff);
    }
  }
  return Buffer.from(out);
}
