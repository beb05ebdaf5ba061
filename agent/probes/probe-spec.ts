// Label probes: a health check defined by container labels, for images without a HEALTHCHECK.
//
// Label values are free text written by whoever created the container. Nothing here throws on
// them: every problem becomes one readable error that names the label and (quoted, escaped and
// shortened) its value, so it can go into logs and the host snapshot as is.

import { isIPv4, isIPv6 } from "node:net";
import { z } from "zod";
import { formatDuration, parseDuration } from "../../contracts/index.js";

export const PROBE_LABEL_PREFIX = "autoheal.probe.";

export const PROBE_KINDS = ["exec", "tcp", "http"] as const;
export type ProbeKind = (typeof PROBE_KINDS)[number];

/** Longest label value accepted, in characters. */
export const MAX_PROBE_LABEL_VALUE = 4096;

/** Longest error message produced (the snapshot's `probe.error` limit). */
export const MAX_PROBE_ERROR = 512;

/** Longest target shown in views and snapshots (the snapshot's `probe.target` limit). */
export const MAX_PROBE_TARGET = 1024;

export const PROBE_DEFAULTS = {
  intervalMs: 30_000,
  timeoutMs: 10_000,
  retries: 3,
  startPeriodMs: 0,
} as const;

/** Inclusive limits; durations in milliseconds. */
export const PROBE_LIMITS = {
  interval: { min: 250, max: 3_600_000 },
  timeout: { min: 100, max: 600_000 },
  start_period: { min: 0, max: 3_600_000 },
  retries: { min: 1, max: 100 },
} as const;

/** The `autoheal.probe.*` labels that set a probe's timing (the others name its kind). */
export const PROBE_OPTION_KEYS = ["interval", "timeout", "retries", "start_period"] as const;
export type ProbeOptionKey = (typeof PROBE_OPTION_KEYS)[number];
const OPTION_KEYS = PROBE_OPTION_KEYS;

interface ProbeTiming {
  /** The label value as given. */
  target: string;
  intervalMs: number;
  timeoutMs: number;
  /** Consecutive failures (outside the start period) that make the container unhealthy. */
  retries: number;
  startPeriodMs: number;
}

/** `autoheal.probe.exec`: run as `["sh", "-c", value]` inside the container; exit 0 passes. */
export interface ExecProbeSpec extends ProbeTiming {
  kind: "exec";
  command: string[];
}

/** `autoheal.probe.tcp`: a TCP connect that succeeds passes. */
export interface TcpProbeSpec extends ProbeTiming {
  kind: "tcp";
  /** Absent when the label gave only a port: the container's own address is probed then. */
  host?: string;
  port: number;
}

/**
 * `autoheal.probe.http`: a GET answered with a status 200..399 passes. Redirects are not
 * followed: a 3xx passes, and its Location is never requested.
 */
export type HttpProbeSpec = ProbeTiming & { kind: "http" } & (
    | {
        /** The full URL, when the label gave one. */ url: string;
        port?: undefined;
        path?: undefined;
      }
    | {
        url?: undefined;
        /** With `:port/path`, the container's own address is probed. */
        port: number;
        /** Starts with `/`; may carry a query. */
        path: string;
      }
  );

export type ProbeSpec = ExecProbeSpec | TcpProbeSpec | HttpProbeSpec;

export type ProbeLabelsResult =
  | { ok: true; spec: ProbeSpec }
  | {
      ok: false;
      /** The probe kind label present (the first one, when several are). */
      kind?: ProbeKind;
      /** That label's value, shortened to {@link MAX_PROBE_TARGET}; "" when no kind label is set. */
      target: string;
      /** What is wrong, naming the label(s) and value(s); at most {@link MAX_PROBE_ERROR} chars. */
      error: string;
    };

/**
 * Reads the `autoheal.probe.*` labels of a container. Returns undefined when there are none,
 * otherwise the probe or why the labels are unusable. Never throws.
 */
export function parseProbeLabels(labels: Record<string, string>): ProbeLabelsResult | undefined {
  // No prototype: a label named autoheal.probe.__proto__ must be an ordinary (unknown) key.
  const own: Record<string, string> = Object.create(null);
  let any = false;
  for (const [key, value] of Object.entries(labels)) {
    if (!key.startsWith(PROBE_LABEL_PREFIX)) continue;
    own[key.slice(PROBE_LABEL_PREFIX.length)] = typeof value === "string" ? value : String(value);
    any = true;
  }
  if (!any) return undefined;

  const errors: string[] = [];
  const kinds = PROBE_KINDS.filter((k) => own[k] !== undefined);
  const kind = kinds[0];
  const target = kind === undefined ? "" : shorten(own[kind] ?? "", MAX_PROBE_TARGET);

  const known = new Set<string>([...PROBE_KINDS, ...OPTION_KEYS]);
  const knownList = `${PROBE_LABEL_PREFIX}{${[...known].join(",")}}`;
  for (const key of Object.keys(own)) {
    if (!known.has(key)) {
      errors.push(`${labelAndValue(key, own[key] ?? "")}: unknown label (known: ${knownList})`);
    }
  }
  const kindLabels = PROBE_KINDS.map((k) => PROBE_LABEL_PREFIX + k).join(", ");
  if (kinds.length > 1) {
    errors.push(
      `${kinds.map((k) => labelAndValue(k, own[k] ?? "")).join(" and ")}: give exactly one of ${kindLabels}`,
    );
  } else if (kinds.length === 0) {
    const set = OPTION_KEYS.filter((k) => own[k] !== undefined).map((k) =>
      labelAndValue(k, own[k] ?? ""),
    );
    errors.push(
      `no probe kind: ${set.length > 0 ? `${set.join(", ")} given but ` : ""}none of ${kindLabels} is set`,
    );
  }

  const parsed = ProbeLabels.safeParse(own);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const key = String(issue.path[0] ?? "");
      errors.push(`${labelAndValue(key, own[key] ?? "")}: ${issue.message}`);
    }
  }

  if (errors.length > 0 || !parsed.success) {
    return {
      ok: false,
      ...(kind === undefined ? {} : { kind }),
      target,
      error: shorten(errors.join("; "), MAX_PROBE_ERROR),
    };
  }

  const p = parsed.data;
  const probe = p.exec ?? p.tcp ?? p.http;
  if (kind === undefined || probe === undefined) {
    // Unreachable: exactly one kind was checked above.
    return { ok: false, target, error: "no probe kind" };
  }
  const timing: ProbeTiming = {
    target: own[kind] ?? "",
    intervalMs: p.interval ?? PROBE_DEFAULTS.intervalMs,
    timeoutMs: p.timeout ?? PROBE_DEFAULTS.timeoutMs,
    retries: p.retries ?? PROBE_DEFAULTS.retries,
    startPeriodMs: p.start_period ?? PROBE_DEFAULTS.startPeriodMs,
  };
  return { ok: true, spec: { ...timing, ...probe } };
}

// --- zod schemas for the individual label values ----------------------------------------------

/** What a label value converter returns for an unusable value. */
class Invalid {
  constructor(readonly message: string) {}
}

function invalid(message: string): Invalid {
  return new Invalid(message);
}

/** A label value, at most MAX_PROBE_LABEL_VALUE long, checked and converted by `convert`. */
function labelValue<R>(convert: (value: string) => R) {
  return z.string().transform((value, ctx): Exclude<R, Invalid> => {
    if (value.length > MAX_PROBE_LABEL_VALUE) {
      ctx.addIssue({ code: "custom", message: `longer than ${MAX_PROBE_LABEL_VALUE} characters` });
      return z.NEVER;
    }
    const result = convert(value);
    if (result instanceof Invalid) {
      ctx.addIssue({ code: "custom", message: result.message });
      return z.NEVER;
    }
    return result as Exclude<R, Invalid>;
  });
}

function durationValue(key: keyof typeof PROBE_LIMITS) {
  const { min, max } = PROBE_LIMITS[key];
  return labelValue((value) => {
    const ms = parseDuration(value);
    if (ms === undefined) {
      return invalid("not a duration: use e.g. 500ms, 10s, 1m30s, 2h or a number of seconds");
    }
    if (ms < min || ms > max) {
      return invalid(`must be between ${formatDuration(min)} and ${formatDuration(max)}`);
    }
    return ms;
  });
}

const Retries = labelValue((value) => {
  const { min, max } = PROBE_LIMITS.retries;
  if (!/^[0-9]{1,3}$/.test(value) || Number(value) < min || Number(value) > max) {
    return invalid(`must be a whole number from ${min} to ${max}`);
  }
  return Number(value);
});

const ExecTarget = labelValue((value) => {
  if (value.trim() === "") return invalid("empty command");
  if (value.includes("\u0000")) return invalid("contains a NUL character");
  return { kind: "exec" as const, command: ["sh", "-c", value] };
});

const TcpTarget = labelValue((value) => {
  const hp = parseHostPort(value);
  if ("error" in hp) return invalid(hp.error);
  return { kind: "tcp" as const, ...hp };
});

const HttpTarget = labelValue((value) => {
  if (!isPrintableAscii(value)) {
    return invalid("contains spaces, control or non-ASCII characters (percent-encode them)");
  }
  const short = /^:([0-9]+)(\/.*)?$/.exec(value);
  if (short) {
    const port = parsePort(short[1] ?? "");
    if (port === undefined) return invalid("port must be a number from 1 to 65535");
    return { kind: "http" as const, port, path: short[2] ?? "/" };
  }
  if (value.startsWith(":")) return invalid("expected :port or :port/path");
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(value)?.[1]?.toLowerCase();
  if (scheme === undefined) {
    return invalid("expected http://host:port/path, https://host:port/path or :port/path");
  }
  if (scheme !== "http" && scheme !== "https") {
    return invalid(`scheme ${scheme} is not allowed: use http or https`);
  }
  if (!/^https?:\/\/[^/?#]/i.test(value)) return invalid("missing host");
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return invalid("not a valid URL");
  }
  if (url.username !== "" || url.password !== "") {
    return invalid("credentials in the URL are not allowed (they would be published)");
  }
  const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
  // The URL parser rewrites hosts such as 0x7f.1 to 127.0.0.1; only plain names and addresses.
  if (!value.toLowerCase().includes(host.toLowerCase()) || hostError(host) !== undefined) {
    return invalid("host must be a plain host name or IP address");
  }
  if (url.port === "0") return invalid("port must be a number from 1 to 65535");
  return { kind: "http" as const, url: url.href };
});

const ProbeLabels = z.object({
  exec: ExecTarget.optional(),
  tcp: TcpTarget.optional(),
  http: HttpTarget.optional(),
  interval: durationValue("interval").optional(),
  timeout: durationValue("timeout").optional(),
  retries: Retries.optional(),
  start_period: durationValue("start_period").optional(),
});

// --- helpers ------------------------------------------------------------------------------------

function parsePort(text: string): number | undefined {
  if (!/^[0-9]{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return port >= 1 && port <= 65_535 ? port : undefined;
}

/** `host:port`, `[v6]:port`, `:port` or `port`. */
function parseHostPort(value: string): { host?: string; port: number } | { error: string } {
  const portError = { error: "port must be a number from 1 to 65535" };
  const shape = { error: "expected host:port, :port or port" };
  if (/^[0-9]+$/.test(value) || /^:[0-9]+$/.test(value)) {
    const port = parsePort(value.replace(/^:/, ""));
    return port === undefined ? portError : { port };
  }
  let host: string;
  let portText: string;
  const v6 = /^\[([^\]]*)\]:([^:]*)$/.exec(value);
  if (v6) {
    host = v6[1] ?? "";
    portText = v6[2] ?? "";
    if (!isIPv6(host)) return { error: "not a valid IPv6 address in [brackets]" };
  } else {
    const colon = value.lastIndexOf(":");
    if (colon <= 0) return shape;
    host = value.slice(0, colon);
    portText = value.slice(colon + 1);
    if (host.includes(":")) return { error: "put an IPv6 address in [brackets]" };
    const bad = hostError(host);
    if (bad !== undefined) return { error: bad };
  }
  const port = parsePort(portText);
  return port === undefined ? portError : { host, port };
}

const HOST_LABEL = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;

/** Why `host` is not a plain host name or IP address, or undefined when it is one. */
export function hostError(host: string): string | undefined {
  if (isIPv4(host) || isIPv6(host)) return undefined;
  const invalid = "host must be a plain host name or IP address";
  if (host.length === 0 || host.length > 253) return invalid;
  const labels = host.replace(/\.$/, "").split(".");
  if (!labels.every((l) => HOST_LABEL.test(l))) return invalid;
  // Names such as 1.2.3 or 0x7f would be read as addresses by the resolver; not plain.
  if (!/^[A-Za-z_]/.test(labels.at(-1) ?? "")) return invalid;
  return undefined;
}

function isPrintableAscii(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}

/** `autoheal.probe.<key>="<value>"`, escaped to printable ASCII and shortened. */
export function labelAndValue(key: string, value: string): string {
  return `${escapeText(shorten(PROBE_LABEL_PREFIX + key, 80))}=${quote(value)}`;
}

/** A value as a double-quoted, escaped string of at most ~100 characters. */
export function quote(value: string): string {
  const limit = 64;
  const head = escapeText(value.length > limit ? value.slice(0, limit) : value);
  return value.length > limit ? `"${head}…" (${value.length} characters)` : `"${head}"`;
}

/** Escapes quotes, backslashes and every character outside printable ASCII. */
function escapeText(value: string): string {
  let out = "";
  for (const ch of value) {
    const c = ch.codePointAt(0) ?? 0;
    if (ch === '"' || ch === "\\") out += `\\${ch}`;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (c >= 0x20 && c < 0x7f) out += ch;
    else if (c <= 0xffff) out += `\\u${c.toString(16).padStart(4, "0")}`;
    else out += `\\u{${c.toString(16)}}`;
  }
  return out;
}

/** At most `max` characters, ending in "…" when shortened. */
export function shorten(value: string, max: number): string {
  return value.length <= max ? value : `${value.slice(0, max - 1)}…`;
}

export { formatDuration, parseDuration };
