import { describe, expect, it } from "vitest";
import { configError } from "../test/support/config-error.js";
import { advertisedUrls, parseHostPort } from "./up-server.js";

describe("parseHostPort", () => {
  it("reads an address and a port, IPv6 in brackets", () => {
    expect(parseHostPort("0.0.0.0:4222", "X")).toEqual({ host: "0.0.0.0", port: 4222 });
    expect(parseHostPort("nats.example:7422", "X")).toEqual({ host: "nats.example", port: 7422 });
    expect(parseHostPort("[::1]:4222", "X")).toEqual({ host: "::1", port: 4222 });
  });

  it("refuses anything else, naming the variable", () => {
    for (const bad of ["4222", ":4222", "host:", "host:70000", "host:0", "a b:1"]) {
      expect(configError(() => parseHostPort(bad, "FLEETHEAL_NATS_LISTEN")).message).toContain(
        `FLEETHEAL_NATS_LISTEN=${JSON.stringify(bad)}`,
      );
    }
  });
});

describe("advertisedUrls", () => {
  it("is empty without a listener for other hosts", () => {
    expect(advertisedUrls({ port: 4222 })).toEqual([]);
  });

  it("names the listen address, or what is advertised instead", () => {
    const listen = { host: "10.0.0.5", port: 4222 };
    expect(advertisedUrls({ port: 4222, listen })).toEqual(["tls://10.0.0.5:4222"]);
    expect(
      advertisedUrls({
        port: 4222,
        listen,
        advertise: [
          { host: "nats.example", port: 443 },
          { host: "fd00::5", port: 4222 },
        ],
      }),
    ).toEqual(["tls://nats.example:443", "tls://[fd00::5]:4222"]);
  });

  it("names this machine's own addresses for a wildcard listener", () => {
    const urls = advertisedUrls({ port: 4222, listen: { host: "0.0.0.0", port: 7000 } });
    expect(urls.length).toBeGreaterThan(0);
    for (const url of urls) expect(url).toMatch(/^tls:\/\/[^:]+:7000$/);
    expect(urls).not.toContain("tls://127.0.0.1:7000");
  });
});
