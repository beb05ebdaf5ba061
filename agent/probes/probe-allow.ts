// Which explicit probe targets an agent may reach: FLEETHEAL_PROBE_ALLOW.
//
// A label probe runs from the agent's network namespace, and labels can come from an image's
// LABEL. So a probe that names its own host or IP could scan the host's loopback or the cloud
// metadata service and publish what it found in the snapshot. Only the `:port` and `:port/path`
// forms (the container's own address, which Docker reports) run without permission; a target
// with a host runs only when the operator allows that host, by name or by CIDR, on this agent.

import { isIP, isIPv4, isIPv6 } from "node:net";
import { hostError } from "./probe-spec.js";

/** Most entries in FLEETHEAL_PROBE_ALLOW: each probe checks them all. */
export const MAX_PROBE_ALLOW_ENTRIES = 256;

/** The variable that holds the allow list, as refusals name it. */
export const PROBE_ALLOW_ENV = "FLEETHEAL_PROBE_ALLOW";

/** An address as a number: IPv4 in 32 bits, IPv6 in 128. */
export interface IpNumber {
  family: 4 | 6;
  value: bigint;
}

/** A CIDR block, e.g. 10.0.0.0/8 or fd00::/8. */
export interface IpRange extends IpNumber {
  prefix: number;
  /** As the operator wrote it, for messages. */
  text: string;
}

/** The hosts probes with an explicit host may reach. Empty: none. */
export interface ProbeAllowList {
  /** Host names, lower case, without a trailing dot. */
  names: ReadonlySet<string>;
  ranges: readonly IpRange[];
}

/** Nothing allowed: the default, and what a configuration built by hand gets. */
export const NOTHING_ALLOWED: ProbeAllowList = { names: new Set(), ranges: [] };

/**
 * Reads the items of FLEETHEAL_PROBE_ALLOW: CIDR blocks (`10.0.0.0/8`, `fd00::/8`), single
 * addresses (a block of one) and host names. Returns the list, or one message per bad item.
 */
export function parseProbeAllow(
  items: readonly string[],
): { ok: true; allow: ProbeAllowList } | { ok: false; errors: string[] } {
  const errors: string[] = [];
  const names = new Set<string>();
  const ranges: IpRange[] = [];
  if (items.length > MAX_PROBE_ALLOW_ENTRIES) {
    errors.push(`at most ${MAX_PROBE_ALLOW_ENTRIES} entries`);
  }
  for (const item of items.slice(0, MAX_PROBE_ALLOW_ENTRIES)) {
    const range = parseRange(item);
    if (range === undefined) {
      errors.push(`${JSON.stringify(item)}: malformed CIDR (expected e.g. 10.0.0.0/8 or fd00::/8)`);
    } else if (range !== null) {
      ranges.push(range);
    } else if (isIP(item) === 0 && hostError(item) === undefined) {
      names.add(normalName(item));
    } else {
      errors.push(
        `${JSON.stringify(item.length > 64 ? `${item.slice(0, 64)}…` : item)}: neither a CIDR block, an IP address nor a host name`,
      );
    }
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, allow: { names, ranges } };
}

/** Whether `name` (a host name, not an address) is in the list by name. */
export function allowsName(allow: ProbeAllowList, name: string): boolean {
  return allow.names.has(normalName(name));
}

/**
 * Whether `address` lies in one of the list's blocks. An IPv4-mapped IPv6 address
 * (`::ffff:127.0.0.1`) is judged as the IPv4 address it reaches, so `::/0` does not let IPv4
 * loopback through. An address with a zone (`fe80::1%eth0`) is never allowed.
 */
export function allowsAddress(allow: ProbeAllowList, address: string): boolean {
  const ip = ipNumber(address);
  if (ip === undefined) return false;
  return allow.ranges.some((r) => r.family === ip.family && sameBlock(r, ip));
}

/** An IP address as a number, IPv4-mapped IPv6 as IPv4; undefined for anything else. */
export function ipNumber(address: string): IpNumber | undefined {
  if (isIPv4(address)) return { family: 4, value: ipv4Value(address) };
  if (!isIPv6(address) || address.includes("%")) return undefined;
  const value = ipv6Value(address);
  if (value === undefined) return undefined;
  // ::ffff:a.b.c.d connects to a.b.c.d.
  if (value >> 32n === 0xffffn) return { family: 4, value: value & 0xffff_ffffn };
  return { family: 6, value };
}

function sameBlock(range: IpRange, ip: IpNumber): boolean {
  const bits = range.family === 4 ? 32 : 128;
  const shift = BigInt(bits - range.prefix);
  return range.value >> shift === ip.value >> shift;
}

/**
 * A CIDR block or single address; null when `item` does not start with an address (it may be
 * a host name); undefined when it is a malformed block.
 */
function parseRange(item: string): IpRange | null | undefined {
  const slash = item.indexOf("/");
  const addressText = slash === -1 ? item : item.slice(0, slash);
  const ip = ipNumber(addressText);
  if (ip === undefined) return null;
  const bits = ip.family === 4 ? 32 : 128;
  // A mapped address is IPv4 from here on: its prefix counts IPv4 bits only if written that way.
  const written = isIPv4(addressText) ? 32 : 128;
  let prefix = bits;
  if (slash !== -1) {
    const text = item.slice(slash + 1);
    if (!/^[0-9]{1,3}$/.test(text) || Number(text) > written) return undefined;
    prefix = Number(text) - (written - bits);
    if (prefix < 0) return undefined;
  }
  const shift = BigInt(bits - prefix);
  // The address bits past the prefix are ignored, as `ip route` does: 10.1.2.3/8 is 10.0.0.0/8.
  return { family: ip.family, value: (ip.value >> shift) << shift, prefix, text: item };
}

function ipv4Value(address: string): bigint {
  return address.split(".").reduce((n, part) => (n << 8n) | BigInt(Number(part)), 0n);
}

/** An IPv6 address (already valid by isIPv6) as 128 bits. */
function ipv6Value(address: string): bigint | undefined {
  let text = address.toLowerCase();
  // A dotted IPv4 tail is two groups.
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)?.[1];
  if (tail !== undefined) {
    const v4 = ipv4Value(tail);
    text = `${text.slice(0, -tail.length)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const head = halves[0] === "" ? [] : (halves[0] ?? "").split(":");
  const rest = halves.length === 2 ? (halves[1] === "" ? [] : (halves[1] ?? "").split(":")) : [];
  const missing = 8 - head.length - rest.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill("0"), ...rest];
  let value = 0n;
  for (const group of groups) {
    if (!/^[0-9a-f]{1,4}$/.test(group)) return undefined;
    value = (value << 16n) | BigInt(Number.parseInt(group, 16));
  }
  return value;
}

function normalName(name: string): string {
  return name.toLowerCase().replace(/\.$/, "");
}
