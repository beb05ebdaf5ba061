import { z } from "zod";

/**
 * A subject token: the characters that are safe in every position of a NATS subject and in a
 * JetStream KV key. Dots, wildcards and whitespace would change the meaning of a subject.
 */
export const TOKEN_PATTERN = /^[A-Za-z0-9_-]+$/;

/** Longest token accepted; keeps subjects and KV keys well under NATS' limits. */
export const MAX_TOKEN_LENGTH = 128;

/** A single subject token. */
export const Token = z
  .string()
  .min(1, "must not be empty")
  .max(MAX_TOKEN_LENGTH, `must be at most ${MAX_TOKEN_LENGTH} characters`)
  .regex(TOKEN_PATTERN, "may contain only letters, digits, '_' and '-'");

/** The id of a host (one agent per host). Chosen by the operator, validated when an agent starts. */
export const HostId = Token.describe("host id");
export type HostId = z.infer<typeof HostId>;

/**
 * A Docker container id. Docker's full ids are 64 hex characters; short ids (12+) are accepted
 * because operators type them.
 */
export const ContainerId = z
  .string()
  .regex(/^[0-9a-f]{12,64}$/, "must be a Docker container id (12 to 64 lowercase hex characters)")
  .describe("container id");
export type ContainerId = z.infer<typeof ContainerId>;

/** Returns true when `value` can be used as one subject token. */
export function isToken(value: string): boolean {
  return Token.safeParse(value).success;
}

/**
 * Turns an arbitrary name (a hostname, for example) into a valid token, for use as a default.
 * Operators who set ids explicitly get validation, not rewriting.
 */
export function toToken(value: string): string {
  const cleaned = value.replace(/[^A-Za-z0-9_-]+/g, "-").replace(/^-+|-+$/g, "");
  return (cleaned || "host").slice(0, MAX_TOKEN_LENGTH);
}
