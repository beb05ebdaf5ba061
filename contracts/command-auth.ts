/*
 * How a command that changes a container proves who sent it and when: signature headers over
 * the exact payload bytes, and why an agent refuses one. Part of the public command API
 * (commands.ts).
 */

/**
 * The headers that sign a command that changes a container (restart, stop, and any later verb).
 *
 * - `Fleetheal-Signing-Key`: the signer's public key, a NATS operator nkey (`O…`, 56
 *   characters). The agent must list it in `FLEETHEAL_COMMAND_KEYS`.
 * - `Fleetheal-Signature`: the ed25519 signature, by that key, of the request's payload bytes
 *   exactly as sent (no re-encoding, no canonical form), in base64url without padding (86
 *   characters for the 64-byte signature).
 *
 * The payload names the host and the verb (`type`), and carries `issuedAt` and `expiresAt`, so
 * one signature binds a command to its host, its verb and its lifetime. Signers sign each
 * attempt afresh: a command sent again keeps its `commandId` and gets a new `issuedAt`.
 */
export const COMMAND_SIGNATURE_HEADERS = {
  key: "Fleetheal-Signing-Key",
  signature: "Fleetheal-Signature",
} as const;

/** The longest a command may live: `expiresAt - issuedAt` is more than 0 and at most this. */
export const MAX_COMMAND_LIFETIME_MS = 300_000;

/**
 * Why an agent refused a restart or stop without executing it (service error 403, message
 * `<code>: <detail>`). Each refusal is logged once by the agent and counted in its host snapshot
 * (`agent.commandRefusals`).
 */
export const COMMAND_REFUSAL_CODES = [
  /** No signature headers, and the agent does not accept unsigned commands. */
  "unsigned",
  /** Signed with a key the agent does not trust. */
  "untrusted-key",
  /** The signature does not verify over the payload, or is not a signature at all. */
  "bad-signature",
  /** `issuedAt` is later than the agent's clock plus its allowed skew. */
  "issued-in-future",
  /** `expiresAt` is earlier than the agent's clock minus its allowed skew. */
  "expired",
  /** `expiresAt - issuedAt` is not more than 0 and at most {@link MAX_COMMAND_LIFETIME_MS}. */
  "bad-lifetime",
  /** Issued before this agent process started: a replay from an earlier run. */
  "issued-before-start",
  /** The agent trusts no signing key at all, so it can verify nothing. */
  "no-trusted-keys",
  /** Issued at or before a command the agent had to forget early (its memory was full). */
  "replay-window",
] as const;
export type CommandRefusalCode = (typeof COMMAND_REFUSAL_CODES)[number];
