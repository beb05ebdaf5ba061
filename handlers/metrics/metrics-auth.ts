import { createHash, timingSafeEqual } from "node:crypto";

/**
 * Whether an `Authorization` header carries the bearer token. Both sides are compared as
 * SHA-256 digests with `timingSafeEqual`, so the check takes the same time whatever the length
 * or content of a guess.
 */
export function bearerCheck(token: string): (authorization: string | undefined) => boolean {
  const expected = digest(token);
  return (authorization) => {
    if (authorization === undefined) return false;
    const match = /^Bearer[ ]+(\S+)\s*$/i.exec(authorization);
    return match?.[1] !== undefined && timingSafeEqual(digest(match[1]), expected);
  };
}

function digest(token: string): Buffer {
  return createHash("sha256").update(token, "utf8").digest();
}
