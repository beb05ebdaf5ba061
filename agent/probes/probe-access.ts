// Whether a label probe may reach its target, before it runs and again when it runs.
//
// Before: a target with an explicit host is refused unless FLEETHEAL_PROBE_ALLOW allows that
// host by name, or allows the IP address it is (probe-allow.ts). A name that is not in the list
// is judged by what it resolves to, which only the probe run can know.
// When it runs: a name is resolved once, every address it resolves to is checked, and the probe
// connects to the checked address itself. Letting the socket resolve the name again would let
// DNS answer differently the second time (DNS rebinding) and reach an address nobody checked.

import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { allowsAddress, allowsName, PROBE_ALLOW_ENV, type ProbeAllowList } from "./probe-allow.js";
import { labelAndValue, type ProbeSpec } from "./probe-spec.js";

/** Resolves a host name to its addresses, as the system resolver would (/etc/hosts, DNS). */
export type ResolveHost = (host: string) => Promise<string[]>;

/** What a probe may reach: the operator's allow list and how names are resolved. */
export interface ProbeAccess {
  allow: ProbeAllowList;
  /** The system resolver when absent. */
  resolve?: ResolveHost;
}

/** The system resolver: getaddrinfo, every address, in the order the system prefers. */
export const systemResolve: ResolveHost = async (host) =>
  (await lookup(host, { all: true, order: "verbatim" })).map((a) => a.address);

/** The host a tcp or http probe names itself; undefined for exec and the `:port` forms. */
export function explicitHost(spec: ProbeSpec): string | undefined {
  if (spec.kind === "tcp") return spec.host;
  if (spec.kind === "http" && spec.url !== undefined) {
    const host = new URL(spec.url).hostname;
    return host.startsWith("[") ? host.slice(1, -1) : host;
  }
  return undefined;
}

/**
 * Why `spec` may not run on this agent, naming its label; undefined when it may, or when that
 * depends on what its host name resolves to ({@link resolveProbeHost} decides then).
 */
export function probeRefusal(spec: ProbeSpec, allow: ProbeAllowList): string | undefined {
  const host = explicitHost(spec);
  if (host === undefined) return undefined;
  if (isIP(host) !== 0) return allowsAddress(allow, host) ? undefined : refusal(spec, host);
  if (allowsName(allow, host)) return undefined;
  // A name outside the list may still resolve into an allowed block; with no blocks, it cannot.
  return allow.ranges.length === 0 ? refusal(spec, host) : undefined;
}

/**
 * The address the probe of `spec` connects to for `host`, resolved once and checked; or why it
 * is refused, naming the label. A name in the allow list may resolve to anything; any other
 * name is refused unless every address it resolves to is in an allowed block. Throws what the
 * resolver throws (an unknown name is a failed probe, not a refusal).
 */
export async function resolveProbeHost(
  spec: ProbeSpec,
  host: string,
  access: ProbeAccess,
): Promise<{ address: string } | { refused: string }> {
  if (isIP(host) !== 0) {
    return allowsAddress(access.allow, host) ? { address: host } : { refused: refusal(spec, host) };
  }
  const listed = allowsName(access.allow, host);
  // Not even a lookup for a name nothing could allow: the query itself would leave the host.
  if (!listed && access.allow.ranges.length === 0) return { refused: refusal(spec, host) };
  const addresses = await (access.resolve ?? systemResolve)(host);
  const first = addresses[0];
  if (first === undefined) throw new Error(`${host} resolves to no address`);
  if (listed) return { address: first };
  const outside = addresses.find((a) => !allowsAddress(access.allow, a));
  if (outside !== undefined) {
    return {
      refused: `${labelAndValue(spec.kind, spec.target)}: host ${host} resolves to ${outside}, which ${PROBE_ALLOW_ENV} does not allow on this agent`,
    };
  }
  return { address: first };
}

function refusal(spec: ProbeSpec, host: string): string {
  const own = spec.kind === "http" ? ":port/path" : ":port";
  return `${labelAndValue(spec.kind, spec.target)}: host ${host} is not allowed on this agent; probe the container's own address with ${own}, or allow the host with ${PROBE_ALLOW_ENV}`;
}
