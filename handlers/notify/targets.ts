import { z } from "zod";

/** The webhook flavours fleetheal can talk to; docs/NOTIFY.md shows each payload. */
export const TARGET_KINDS = ["json", "slack", "discord", "ntfy", "apprise"] as const;
export type TargetKind = (typeof TARGET_KINDS)[number];

/** The variable that lists the targets. */
export const NOTIFY_URLS_ENV = "FLEETHEAL_NOTIFY_URLS";

/** More targets than this is a configuration mistake, not a use case. */
export const MAX_TARGETS = 32;

const HttpUrl = z.url({ protocol: /^https?$/ });
const KIND_PREFIX = /^([A-Za-z][A-Za-z0-9-]{0,19})\+(.*)$/s;

/**
 * One webhook target. Webhook URLs are credentials (Slack and Discord put the token in the path,
 * others in the query string or userinfo), so the URL and the authorization header are private
 * fields: they are not enumerable, and serialising a target (pino, JSON.stringify, util.inspect)
 * shows only its redacted form.
 */
export class NotifyTarget {
  readonly #url: string;
  readonly #authorization: string | undefined;
  readonly #secrets: string[];

  constructor(
    /** Position in FLEETHEAL_NOTIFY_URLS, from 1. Part of the dedup key of each send. */
    readonly index: number,
    readonly kind: TargetKind,
    url: URL,
  ) {
    this.#authorization = authorizationFrom(url);
    const clean = new URL(url.href);
    clean.username = "";
    clean.password = "";
    clean.hash = "";
    this.#url = clean.href;
    this.redacted = redactUrl(clean);
    this.#secrets = secretsOf(url, clean, this.#authorization);
  }

  /** `scheme://host[:port]/…`: safe to log. */
  readonly redacted: string;

  /** The URL to POST to, without userinfo. Secret: never log it. */
  get url(): string {
    return this.#url;
  }

  /** `Authorization` header value derived from the URL's userinfo, if any. Secret. */
  get authorization(): string | undefined {
    return this.#authorization;
  }

  /** `#2 slack https://hooks.slack.com/…`: how logs and the CLI name a target. */
  get label(): string {
    return `#${this.index} ${this.kind} ${this.redacted}`;
  }

  /** Every string in this target that must never reach a log or an error message. */
  get secrets(): readonly string[] {
    return this.#secrets;
  }

  toJSON(): object {
    return { index: this.index, kind: this.kind, url: this.redacted };
  }

  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return `NotifyTarget(${this.label})`;
  }
}

/** `scheme://host[:port]/…`: what may be shown of a webhook URL. */
export function redactUrl(url: URL): string {
  return `${url.protocol}//${url.host}/…`;
}

/**
 * `https://user:pass@host` becomes Basic auth (fetch refuses URLs with credentials); a password
 * with no user (`https://:tk_xxx@ntfy.example`) becomes a Bearer token, which is what ntfy's
 * access tokens and most token-protected proxies expect.
 */
function authorizationFrom(url: URL): string | undefined {
  const user = safeDecode(url.username);
  const password = safeDecode(url.password);
  if (!user && !password) return undefined;
  if (!user) return `Bearer ${password}`;
  return `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
}

/** The URL's secret parts, raw and decoded, longest first (shorter than 4 characters: ignored). */
function secretsOf(original: URL, clean: URL, authorization: string | undefined): string[] {
  const parts = [
    original.href,
    clean.href,
    clean.href.slice(clean.origin.length),
    clean.pathname,
    safeDecode(clean.pathname),
    clean.search,
    clean.search.slice(1),
    ...clean.searchParams.values(),
    original.username,
    original.password,
    safeDecode(original.username),
    safeDecode(original.password),
    authorization,
    authorization?.replace(/^\w+ /, ""),
  ];
  const unique = new Set(parts.filter((p): p is string => typeof p === "string" && p.length >= 4));
  return [...unique].sort((a, b) => b.length - a.length);
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** Result of {@link parseTargets}: the targets, and readable (redacted) problems if any. */
export interface ParsedTargets {
  targets: NotifyTarget[];
  problems: string[];
}

/**
 * Parses FLEETHEAL_NOTIFY_URLS: targets separated by commas or whitespace, each `<kind>+<url>` or
 * a plain http(s) URL (kind `json`). Problems never quote a URL, only its redacted form.
 */
export function parseTargets(raw: string): ParsedTargets {
  const entries = raw.split(/[\s,]+/).filter((entry) => entry.length > 0);
  const targets: NotifyTarget[] = [];
  const problems: string[] = [];
  if (entries.length > MAX_TARGETS) {
    problems.push(`${entries.length} targets; at most ${MAX_TARGETS} are allowed`);
  }
  entries.slice(0, MAX_TARGETS).forEach((entry, i) => {
    const index = i + 1;
    const parsed = parseTarget(entry, index);
    if (typeof parsed === "string") problems.push(`target ${index}: ${parsed}`);
    else targets.push(parsed);
  });
  return { targets, problems };
}

function parseTarget(entry: string, index: number): NotifyTarget | string {
  let kind: TargetKind = "json";
  let rawUrl = entry;
  const prefixed = KIND_PREFIX.exec(entry);
  if (prefixed) {
    const name = (prefixed[1] as string).toLowerCase();
    if (!(TARGET_KINDS as readonly string[]).includes(name)) {
      return `unknown kind "${name}" (expected ${TARGET_KINDS.join(", ")}, or a plain URL for json)`;
    }
    kind = name as TargetKind;
    rawUrl = prefixed[2] as string;
  }
  if (!HttpUrl.safeParse(rawUrl).success) {
    return `${kind}: not an http:// or https:// URL (written <kind>+<url> or as a plain URL)`;
  }
  const url = new URL(rawUrl);
  const target = new NotifyTarget(index, kind, url);
  if ((kind === "ntfy" || kind === "apprise") && (url.pathname === "/" || url.pathname === "")) {
    const example =
      kind === "ntfy" ? "ntfy+https://ntfy.sh/<topic>" : "apprise+http://apprise:8000/notify/<key>";
    return `${target.kind} ${target.redacted}: the URL needs a path, as in ${example}`;
  }
  return target;
}

/**
 * Replaces every secret of the given targets in `text` with `…`. Used on error messages from
 * fetch and the network stack before they are logged or thrown.
 */
export function scrub(text: string, targets: readonly NotifyTarget[]): string {
  let out = text;
  const secrets = targets.flatMap((t) => t.secrets).sort((a, b) => b.length - a.length);
  for (const secret of secrets) out = out.split(secret).join("…");
  return out;
}
