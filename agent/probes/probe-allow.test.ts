import { describe, expect, it } from "vitest";
import {
  allowsAddress,
  allowsName,
  ipNumber,
  MAX_PROBE_ALLOW_ENTRIES,
  NOTHING_ALLOWED,
  type ProbeAllowList,
  parseProbeAllow,
} from "./probe-allow.js";

function allow(...items: string[]): ProbeAllowList {
  const r = parseProbeAllow(items);
  if (!r.ok) throw new Error(`unexpected errors: ${r.errors.join("; ")}`);
  return r.allow;
}

describe("parseProbeAllow", () => {
  it("reads CIDR blocks, single addresses and host names", () => {
    const list = allow("10.0.0.0/8", "192.168.1.7", "fd00::/8", "::1", "DB.Internal.", "cache");
    expect(list.ranges.map((r) => [r.text, r.family, r.prefix])).toEqual([
      ["10.0.0.0/8", 4, 8],
      ["192.168.1.7", 4, 32],
      ["fd00::/8", 6, 8],
      ["::1", 6, 128],
    ]);
    expect([...list.names]).toEqual(["db.internal", "cache"]);
  });

  it("an empty list allows nothing", () => {
    expect(allow()).toEqual({ names: new Set(), ranges: [] });
    expect(allowsAddress(NOTHING_ALLOWED, "127.0.0.1")).toBe(false);
    expect(allowsName(NOTHING_ALLOWED, "localhost")).toBe(false);
  });

  it.each([
    ["10.0.0.0/33", "malformed CIDR"],
    ["10.0.0.0/", "malformed CIDR"],
    ["10.0.0.0/-1", "malformed CIDR"],
    ["fd00::/129", "malformed CIDR"],
    ["::ffff:10.0.0.0/95", "malformed CIDR"],
    ["10.0.0/8", "neither a CIDR block"],
    ["host/8", "neither a CIDR block"],
    ["fe80::1%eth0", "neither a CIDR block"],
    ["*.example.com", "neither a CIDR block"],
    ["http://example.com", "neither a CIDR block"],
    ["1.2.3", "neither a CIDR block"],
    ["0x7f000001", "neither a CIDR block"],
  ])("refuses %s (%s), quoting it", (item, why) => {
    const r = parseProbeAllow(["10.0.0.0/8", item]);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]).toContain(JSON.stringify(item));
    expect(r.errors[0]).toContain(why);
  });

  it(`refuses more than ${MAX_PROBE_ALLOW_ENTRIES} entries`, () => {
    const items = Array.from({ length: MAX_PROBE_ALLOW_ENTRIES + 1 }, (_, i) => `h${i}`);
    const r = parseProbeAllow(items);
    expect(r.ok ? [] : r.errors).toEqual([`at most ${MAX_PROBE_ALLOW_ENTRIES} entries`]);
    expect(parseProbeAllow(items.slice(1)).ok).toBe(true);
  });
});

describe("allowsAddress: IPv4", () => {
  it.each([
    ["127.0.0.1", "127.0.0.0/8", true],
    ["127.255.255.255", "127.0.0.0/8", true],
    ["128.0.0.1", "127.0.0.0/8", false],
    ["169.254.169.254", "169.254.169.254/32", true],
    ["169.254.169.253", "169.254.169.254/32", false],
    ["169.254.169.254", "169.254.169.254", true],
    ["10.1.2.3", "10.0.0.0/8", true],
    ["11.1.2.3", "10.0.0.0/8", false],
    ["192.168.1.200", "192.168.1.128/25", true],
    ["192.168.1.127", "192.168.1.128/25", false],
    ["8.8.8.8", "0.0.0.0/0", true],
  ])("%s in %s: %s", (address, block, expected) => {
    expect(allowsAddress(allow(block), address)).toBe(expected);
  });

  it("ignores the host bits of a block, as ip route does", () => {
    expect(allowsAddress(allow("10.1.2.3/8"), "10.200.0.1")).toBe(true);
  });
});

describe("allowsAddress: IPv6", () => {
  it.each([
    ["fd00::1", "fd00::/8", true],
    ["fdff:ffff::1", "fd00::/8", true],
    ["fe00::1", "fd00::/8", false],
    ["::1", "::1", true],
    ["0:0:0:0:0:0:0:1", "::1/128", true],
    ["::2", "::1/128", false],
    ["2001:db8:0:1::5", "2001:db8::/32", true],
    ["2001:db9::5", "2001:db8::/32", false],
    ["FD00::ABCD", "fd00::abcd/128", true],
    ["2001:db8::1", "::/0", true],
  ])("%s in %s: %s", (address, block, expected) => {
    expect(allowsAddress(allow(block), address)).toBe(expected);
  });

  it("judges an IPv4-mapped address as the IPv4 address it reaches", () => {
    expect(allowsAddress(allow("127.0.0.0/8"), "::ffff:127.0.0.1")).toBe(true);
    expect(allowsAddress(allow("127.0.0.0/8"), "::ffff:7f00:1")).toBe(true);
    // All of IPv6 is not IPv4 loopback, however the address is written.
    expect(allowsAddress(allow("::/0"), "::ffff:127.0.0.1")).toBe(false);
    expect(allowsAddress(allow("::/0"), "127.0.0.1")).toBe(false);
    // A mapped block counts its prefix in IPv6 bits.
    expect(allowsAddress(allow("::ffff:10.0.0.0/104"), "10.9.9.9")).toBe(true);
    expect(allowsAddress(allow("::ffff:10.0.0.0/104"), "11.0.0.1")).toBe(false);
  });

  it("never allows an address with a zone, nor anything that is not an address", () => {
    expect(allowsAddress(allow("fe80::/10"), "fe80::1%eth0")).toBe(false);
    expect(allowsAddress(allow("0.0.0.0/0", "::/0"), "localhost")).toBe(false);
    expect(allowsAddress(allow("0.0.0.0/0"), "")).toBe(false);
  });

  it("reads every form of an IPv6 address to the same number", () => {
    const forms = ["2001:db8::1:0:0:1", "2001:0db8:0:0:1:0:0:1", "2001:DB8:0000::1:0:0:1"];
    const values = forms.map((f) => ipNumber(f));
    expect(values[0]).toEqual({ family: 6, value: 0x20010db8000000000001000000000001n });
    expect(new Set(values.map((v) => v?.value))).toEqual(new Set([values[0]?.value]));
    expect(ipNumber("::")).toEqual({ family: 6, value: 0n });
    expect(ipNumber("::ffff:1.2.3.4")).toEqual({ family: 4, value: 0x01020304n });
    expect(ipNumber("64:ff9b::1.2.3.4")?.family).toBe(6);
  });
});

describe("allowsName", () => {
  it("matches names whole, in any case, with or without the trailing dot", () => {
    const list = allow("db.internal", "10.0.0.0/8");
    expect(allowsName(list, "db.internal")).toBe(true);
    expect(allowsName(list, "DB.INTERNAL.")).toBe(true);
    expect(allowsName(list, "x.db.internal")).toBe(false);
    expect(allowsName(list, "internal")).toBe(false);
    expect(allowsName(list, "10.0.0.1")).toBe(false);
  });
});
