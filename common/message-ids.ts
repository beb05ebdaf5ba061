import { createHmac, randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

/**
 * The `Nats-Msg-Id` of a message whose natural id is `id`, under `secret`: deterministic, so a
 * retried publish is still dropped as a duplicate, but not computable without the secret. Every
 * publisher to the events stream shares its duplicate window, and any of them may set any message
 * id: with natural ids as message ids, a compromised host could publish another's next id first
 * and have the real message dropped.
 */
export function keyedMessageId(secret: Uint8Array, id: string): string {
  return createHmac("sha256", secret).update(id).digest("base64url");
}

/**
 * A secret of 32 random bytes kept in `file` (mode 0600, its directory 0700): created on first
 * use, the same one after a restart, so message ids stay the same across runs.
 */
export function fileSecret(file: string): Uint8Array {
  try {
    const existing = readFileSync(file);
    if (existing.length >= 32) return existing;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const secret = randomBytes(32);
  writeFileSync(file, secret, { mode: 0o600 });
  chmodSync(file, 0o600);
  return secret;
}

/** Random bytes for a new secret. */
export const newSecret = () => randomBytes(32);
