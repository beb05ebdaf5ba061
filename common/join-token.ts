// The one-line join token of `fleetheal hosts add`: everything a new host's agent needs to join
// the fleet, so that joining is one command on that host. It holds the host's NKEY seed, so it is
// a secret: shown once, never logged.

import { z } from "zod";
import { HostId } from "../contracts/index.js";
import { isCommandPublicKey } from "./command-signing.js";
import { FleethealError } from "./errors.js";

/** Every join token starts with this, which also names its format's version. */
export const JOIN_TOKEN_PREFIX = "FHJ1-";
/** A token this long or longer is refused before it is decoded. */
const MAX_TOKEN_LENGTH = 32_768;

const NatsUrl = z
  .string()
  .max(512)
  .regex(/^(tls|nats):\/\/[^\s,/]+:\d{1,5}$/, "must be tls://<host>:<port>");

/** What a join token holds. */
export const JoinToken = z.strictObject({
  v: z.literal(1),
  /** The host this token lets join; the server enforces it (its account is this host's). */
  host: HostId,
  /** The NATS servers to connect to, TLS. */
  urls: z.array(NatsUrl).min(1).max(16),
  /** The CA certificate (PEM) that signed the servers' certificates. */
  ca: z
    .string()
    .max(16_384)
    .regex(/^-----BEGIN CERTIFICATE-----[\s\S]+-----END CERTIFICATE-----\s*$/),
  /** The host's agent NKEY seed. */
  seed: z.string().regex(/^SU[A-Z2-7]{56}$/),
  /** Its reply subjects' prefix, which its permissions allow. */
  inboxPrefix: z
    .string()
    .regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/)
    .max(256),
  /** The public keys whose signatures on commands the agent accepts. */
  commandKeys: z
    .array(z.string().refine(isCommandPublicKey, "must be an operator public key (O…)"))
    .min(1)
    .max(8),
});
export type JoinToken = z.infer<typeof JoinToken>;

/** A join token that cannot be used; the message says why, never what it holds. */
export class InvalidJoinTokenError extends FleethealError {
  override readonly name = "InvalidJoinTokenError";
  constructor(message: string) {
    super("FLEETHEAL_ERR_JOIN_TOKEN", message);
  }
}

/** The token's one line. */
export function encodeJoinToken(token: JoinToken): string {
  return `${JOIN_TOKEN_PREFIX}${Buffer.from(JSON.stringify(JoinToken.parse(token))).toString("base64url")}`;
}

/** The token in `text`, checked; an {@link InvalidJoinTokenError} says what is wrong with it. */
export function decodeJoinToken(text: string): JoinToken {
  const line = text.trim();
  if (line.length >= MAX_TOKEN_LENGTH) throw new InvalidJoinTokenError("the token is too long");
  if (!line.startsWith(JOIN_TOKEN_PREFIX)) {
    throw new InvalidJoinTokenError(
      `not a fleetheal join token (it starts with ${JOIN_TOKEN_PREFIX}; copy the whole line that \`fleetheal hosts add\` printed)`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(line.slice(JOIN_TOKEN_PREFIX.length), "base64url").toString());
  } catch {
    throw new InvalidJoinTokenError("the token is damaged (it does not decode)");
  }
  const parsed = JoinToken.safeParse(json);
  if (!parsed.success) {
    const fields = [...new Set(parsed.error.issues.map((i) => i.path.join(".") || "token"))];
    throw new InvalidJoinTokenError(`the token is damaged or incomplete (${fields.join(", ")})`);
  }
  return parsed.data;
}
