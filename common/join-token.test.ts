import { createOperator, createUser } from "@nats-io/nkeys";
import { describe, expect, it } from "vitest";
import {
  decodeJoinToken,
  encodeJoinToken,
  InvalidJoinTokenError,
  JOIN_TOKEN_PREFIX,
  type JoinToken,
} from "./join-token.js";

const seed = new TextDecoder().decode(createUser().getSeed());
const token: JoinToken = {
  v: 1,
  host: "web-2",
  urls: ["tls://10.0.0.5:4222", "tls://nats.example:4222"],
  ca: "-----BEGIN CERTIFICATE-----\nMIIBezCCASGgAwIBAgIQ\n-----END CERTIFICATE-----\n",
  seed,
  inboxPrefix: "_INBOX_web-2",
  commandKeys: [createOperator().getPublicKey(), createOperator().getPublicKey()],
};

describe("join tokens", () => {
  it("round-trip through one line", () => {
    const line = encodeJoinToken(token);
    expect(line.startsWith(JOIN_TOKEN_PREFIX)).toBe(true);
    expect(line).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeJoinToken(`  ${line}\n`)).toEqual(token);
  });

  it("refuse what is not one, damaged or incomplete, without showing what it holds", () => {
    const line = encodeJoinToken(token);
    const bad = [
      "",
      "SWMTKN-1-abc",
      `${JOIN_TOKEN_PREFIX}!!!`,
      `${JOIN_TOKEN_PREFIX}${Buffer.from(JSON.stringify({ ...token, urls: [] })).toString("base64url")}`,
      `${JOIN_TOKEN_PREFIX}${Buffer.from(JSON.stringify({ ...token, seed: "SOX" })).toString("base64url")}`,
      `${JOIN_TOKEN_PREFIX}${Buffer.from(JSON.stringify({ ...token, extra: 1 })).toString("base64url")}`,
      line.slice(0, -8),
      `${JOIN_TOKEN_PREFIX}${"A".repeat(40_000)}`,
    ];
    for (const text of bad) {
      const error = (() => {
        try {
          decodeJoinToken(text);
        } catch (e) {
          return e;
        }
      })();
      expect(error, text.slice(0, 40)).toBeInstanceOf(InvalidJoinTokenError);
      expect(String((error as Error).message)).not.toContain(seed);
    }
  });

  it("refuse to encode a token that would not decode", () => {
    expect(() => encodeJoinToken({ ...token, host: "a.b" })).toThrow();
  });
});
