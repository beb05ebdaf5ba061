import { createHash, timingSafeEqual } from "node:crypto";

// Bearer tokens, as the gateway's API and the handlers' /metrics check them. Both sides of a
// comparison are SHA-256 digests compared with `timingSafeEqual`, so a check takes the same time
// whatever the length or content of a guess.

/** The digest a token is kept and compared as. */
export function tokenDigest(token: string): Buffer {
  return createHash("sha256").update(token, "utf8").digest();
}

/** The digest of the token an `Authorization: Bearer <token>` header carries, if it carries one. */
export function bearerDigest(header: string | undefined): Buffer | undefined {
  if (header === undefined) return undefined;
  const match = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
  return match?.[1] === undefined ? undefined : tokenDigest(match[1]);
}

/** Whether two digests are the same, in constant time. */
export function sameDigest(a: Buffer, b: Buffer): boolean {
  return timingSafeEqual(a, b);
}

/** Whether an `Authorization` header carries `token`. */
export function bearerCheck(token: string): (authorization: string | undefined) => boolean {
  const expected = tokenDigest(token);
  return (authorization) => {
    const given = bearerDigest(authorization);
    return given !== undefined && sameDigest(given, expected);
  };
}
