import { describe, expect, it, vi } from "vitest";
import { explicitHost, probeRefusal, resolveProbeHost } from "./probe-access.js";
import { NOTHING_ALLOWED, type ProbeAllowList, parseProbeAllow } from "./probe-allow.js";
import { type ProbeSpec, parseProbeLabels } from "./probe-spec.js";

function spec(kind: "tcp" | "http", target: string): ProbeSpec {
  const r = parseProbeLabels({ [`autoheal.probe.${kind}`]: target });
  if (!r?.ok) throw new Error(`bad test label: ${JSON.stringify(r)}`);
  return r.spec;
}

function allow(...items: string[]): ProbeAllowList {
  const r = parseProbeAllow(items);
  if (!r.ok) throw new Error(r.errors.join("; "));
  return r.allow;
}

describe("explicitHost", () => {
  it("is the label's host, without brackets; none for the container's own address", () => {
    expect(explicitHost(spec("tcp", "db.internal:5432"))).toBe("db.internal");
    expect(explicitHost(spec("tcp", "[::1]:80"))).toBe("::1");
    expect(explicitHost(spec("http", "http://[fd00::5]:8080/x"))).toBe("fd00::5");
    expect(explicitHost(spec("http", "https://Example.COM/x"))).toBe("example.com");
    expect(explicitHost(spec("tcp", ":80"))).toBeUndefined();
    expect(explicitHost(spec("tcp", "80"))).toBeUndefined();
    expect(explicitHost(spec("http", ":80/health"))).toBeUndefined();
  });
});

describe("probeRefusal", () => {
  it("lets the :port and :port/path forms run with an empty list", () => {
    for (const s of [spec("tcp", ":6379"), spec("tcp", "6379"), spec("http", ":80/healthz")]) {
      expect(probeRefusal(s, NOTHING_ALLOWED)).toBeUndefined();
    }
  });

  it("refuses an explicit loopback target, naming the label, its value and the variable", () => {
    const reason = probeRefusal(spec("tcp", "127.0.0.1:6379"), NOTHING_ALLOWED);
    expect(reason).toBe(
      'autoheal.probe.tcp="127.0.0.1:6379": host 127.0.0.1 is not allowed on this agent; probe the container\'s own address with :port, or allow the host with FLEETHEAL_PROBE_ALLOW',
    );
  });

  it.each([
    ["http", "http://169.254.169.254/latest/meta-data/iam"],
    ["http", "http://localhost:2375/containers/json"],
    ["http", "https://[::1]/"],
    ["tcp", "[::ffff:127.0.0.1]:80"],
    ["tcp", "localhost:22"],
    ["tcp", "[fe80::1%eth0]:80"],
    ["tcp", "0.0.0.0:22"],
  ] as const)("refuses %s %s with an empty list", (kind, target) => {
    const reason = probeRefusal(spec(kind, target), NOTHING_ALLOWED);
    expect(reason).toContain(`autoheal.probe.${kind}=${JSON.stringify(target)}`);
    expect(reason).toContain("FLEETHEAL_PROBE_ALLOW");
  });

  it("allows an address in an allowed block, and nothing beside it", () => {
    const list = allow("127.0.0.0/8", "fd00::/8");
    expect(probeRefusal(spec("tcp", "127.0.0.1:80"), list)).toBeUndefined();
    expect(probeRefusal(spec("http", "http://[fd00::5]:8080/x"), list)).toBeUndefined();
    expect(probeRefusal(spec("tcp", "[::ffff:127.0.0.1]:80"), list)).toBeUndefined();
    expect(probeRefusal(spec("http", "http://169.254.169.254/"), list)).toContain(
      "host 169.254.169.254 is not allowed",
    );
  });

  it("allows a listed name; leaves an unlisted name to its resolution only when blocks exist", () => {
    expect(probeRefusal(spec("tcp", "DB.internal:5432"), allow("db.internal"))).toBeUndefined();
    expect(probeRefusal(spec("tcp", "other:5432"), allow("db.internal"))).toContain(
      "host other is not allowed",
    );
    expect(probeRefusal(spec("tcp", "other:5432"), allow("10.0.0.0/8"))).toBeUndefined();
  });

  it("keeps the reason within the snapshot's limit however long the label", () => {
    const url = `http://169.254.169.254/${"a".repeat(4000)}`;
    const reason = probeRefusal(spec("http", url), NOTHING_ALLOWED) ?? "";
    expect(reason.length).toBeLessThanOrEqual(512);
    expect(reason).toContain('autoheal.probe.http="http://169.254.169.254/aaa');
  });
});

describe("resolveProbeHost", () => {
  it("connects to an allowed address as it is, without resolving", async () => {
    const resolve = vi.fn(async () => ["10.0.0.1"]);
    const access = { allow: allow("127.0.0.0/8"), resolve };
    const s = spec("tcp", "127.0.0.1:80");
    expect(await resolveProbeHost(s, "127.0.0.1", access)).toEqual({ address: "127.0.0.1" });
    expect(resolve).not.toHaveBeenCalled();
  });

  it("a listed name is allowed by name, at its first address", async () => {
    const resolve = vi.fn(async () => ["192.0.2.7", "192.0.2.8"]);
    const access = { allow: allow("db.internal"), resolve };
    const s = spec("tcp", "db.internal:5432");
    expect(await resolveProbeHost(s, "db.internal", access)).toEqual({ address: "192.0.2.7" });
    expect(resolve).toHaveBeenCalledTimes(1);
  });

  it("an unlisted name runs only when every address it resolves to is allowed", async () => {
    const s = spec("http", "http://svc.internal/health");
    const inside = { allow: allow("10.0.0.0/8"), resolve: async () => ["10.1.1.1", "10.2.2.2"] };
    expect(await resolveProbeHost(s, "svc.internal", inside)).toEqual({ address: "10.1.1.1" });
    const mixed = { allow: allow("10.0.0.0/8"), resolve: async () => ["10.1.1.1", "127.0.0.1"] };
    expect(await resolveProbeHost(s, "svc.internal", mixed)).toEqual({
      refused:
        'autoheal.probe.http="http://svc.internal/health": host svc.internal resolves to 127.0.0.1, which FLEETHEAL_PROBE_ALLOW does not allow on this agent',
    });
  });

  it("throws when the name resolves to nothing (a failed probe, not a refusal)", async () => {
    const access = { allow: allow("db.internal"), resolve: async () => [] };
    await expect(
      resolveProbeHost(spec("tcp", "db.internal:1"), "db.internal", access),
    ).rejects.toThrow("db.internal resolves to no address");
  });
});
