/**
 * The URLs as they may be printed: the credentials a URL can carry before its `@` (a user and
 * password, or a token: `nats://tok@host`) become `[redacted]`. Takes one URL, a comma-separated
 * list (as `FLEETHEAL_NATS_URL` may be) or an array of them; anything else is kept as it is, so
 * that the printed form still names the servers.
 */
export function withoutCredentials(urls: string | readonly string[]): string {
  const text = typeof urls === "string" ? urls : urls.join(",");
  return text.replace(/(^|[\s,]|\/\/)[^\s,/@]+@/g, "$1[redacted]@");
}
