import { describe, expect, it } from "vitest";
import { parsePid, runsConfig } from "./embedded-nats-process.js";

describe("parsePid", () => {
  it("reads the pid nats-server writes, with or without a newline", () => {
    expect(parsePid("4242")).toBe(4242);
    expect(parsePid("4242\n")).toBe(4242);
  });

  it("refuses anything that is not a process other than init", () => {
    for (const bad of ["", "\n", "abc", "0", "1", "-5", "12.5", "1e3x", "99999999999999999999"]) {
      expect(parsePid(bad), JSON.stringify(bad)).toBeUndefined();
    }
  });
});

describe("runsConfig", () => {
  const config = "/data/nats-server.conf";

  it("recognises a server started with our configuration, and its watchdog", () => {
    expect(runsConfig(["nats-server", "-c", config], config)).toBe(true);
    expect(runsConfig(["/usr/local/bin/nats-server", "-c", config], config)).toBe(true);
    expect(
      runsConfig(
        ["sh", "-c", "exec 3<&0 …", "fleetheal-nats-watchdog", "nats-server", "-c", config],
        config,
      ),
    ).toBe(true);
  });

  it("refuses a process that took the pid over, or another up's server", () => {
    expect(runsConfig(["sleep", "600"], config)).toBe(false);
    expect(runsConfig(["nats-server", "-c", "/other/nats-server.conf"], config)).toBe(false);
    expect(runsConfig(["nats-server", "-c", `${config}.bak`], config)).toBe(false);
    expect(runsConfig(["nats-server", `-c${config}`], config)).toBe(false);
    expect(runsConfig(["nats-server", "-c"], config)).toBe(false);
    expect(runsConfig(["less", config], config)).toBe(false);
    expect(runsConfig([], config)).toBe(false);
  });
});
