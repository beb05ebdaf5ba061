import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  commandSigningKeyFromSeed,
  generateCommandSigningSeed,
} from "../common/command-signing.js";
import { configError } from "../test/support/config-error.js";
import { loadGatewayConfig } from "./config.js";

describe("loadGatewayConfig", () => {
  it("defaults", () => {
    expect(loadGatewayConfig({})).toEqual({
      natsUrl: "nats://127.0.0.1:4222",
      nats: { jsReplicas: 1 },
      port: 8080,
      host: "0.0.0.0",
      staleAfterHeartbeats: 3,
      downAfterHeartbeats: 12,
      corsOrigins: [],
      actionsPerMinute: 30,
      maxStreams: 100,
      maxStreamsPerClient: 10,
      trustProxy: false,
      commandTimeoutMs: 60_000,
      commandSigning: { ttlMs: 30_000 },
    });
  });

  it("signs manual restarts with the key in FLEETHEAL_COMMAND_SIGNING_KEY_FILE", () => {
    const dir = mkdtempSync(join(tmpdir(), "fleetheal-gw-signing-"));
    try {
      const file = join(dir, "command-signing.nk");
      const seed = generateCommandSigningSeed();
      writeFileSync(file, `${seed}\n`, { mode: 0o600 });
      const config = loadGatewayConfig({
        FLEETHEAL_COMMAND_SIGNING_KEY_FILE: file,
        FLEETHEAL_COMMAND_TTL_MS: "5000",
      });
      expect(config.commandSigning.ttlMs).toBe(5_000);
      expect(config.commandSigning.key?.publicKey).toBe(commandSigningKeyFromSeed(seed).publicKey);
      writeFileSync(file, "not a seed\n");
      expect(
        configError(() => loadGatewayConfig({ FLEETHEAL_COMMAND_SIGNING_KEY_FILE: file })).message,
      ).toContain("FLEETHEAL_COMMAND_SIGNING_KEY_FILE=");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("reads tokens, origins and limits", () => {
    expect(
      loadGatewayConfig({
        FLEETHEAL_GATEWAY_ADMIN_TOKEN: "a".repeat(32),
        FLEETHEAL_GATEWAY_READ_TOKEN: "r".repeat(16),
        FLEETHEAL_GATEWAY_CORS_ORIGINS: "https://ops.example.com, http://localhost:3000",
        FLEETHEAL_GATEWAY_ACTIONS_PER_MINUTE: "5",
        FLEETHEAL_GATEWAY_TRUST_PROXY: "true",
      }),
    ).toMatchObject({
      adminToken: "a".repeat(32),
      readToken: "r".repeat(16),
      corsOrigins: ["https://ops.example.com", "http://localhost:3000"],
      actionsPerMinute: 5,
      trustProxy: true,
    });
  });

  it("reads the proxies to trust as addresses, CIDR blocks and range names", () => {
    const config = loadGatewayConfig({
      FLEETHEAL_GATEWAY_TRUST_PROXY: "10.0.0.7, 192.168.0.0/16,fd00::/8, loopback",
      FLEETHEAL_GATEWAY_STREAMS_PER_CLIENT: "3",
    });
    expect(config.trustProxy).toEqual(["10.0.0.7", "192.168.0.0/16", "fd00::/8", "loopback"]);
    expect(config.maxStreamsPerClient).toBe(3);
    expect(loadGatewayConfig({ FLEETHEAL_GATEWAY_TRUST_PROXY: "no" }).trustProxy).toBe(false);
  });

  it("never prints a token in its error", () => {
    const error = configError(() =>
      loadGatewayConfig({ FLEETHEAL_GATEWAY_ADMIN_TOKEN: "hunter2 secret" }),
    );
    expect(error.message).toContain("FLEETHEAL_GATEWAY_ADMIN_TOKEN=<14 characters, not shown>");
    expect(error.message).toContain("must be at least 16 characters");
    expect(error.message).not.toContain("hunter2");
  });

  it("reads a token from a file, without its trailing newline", () => {
    const dir = mkdtempSync(join(tmpdir(), "fleetheal-token-"));
    const file = join(dir, "admin");
    writeFileSync(file, `${"s".repeat(20)}\n`);
    try {
      expect(loadGatewayConfig({ FLEETHEAL_GATEWAY_ADMIN_TOKEN_FILE: file }).adminToken).toBe(
        "s".repeat(20),
      );
      expect(
        configError(() =>
          loadGatewayConfig({
            FLEETHEAL_GATEWAY_ADMIN_TOKEN_FILE: file,
            FLEETHEAL_GATEWAY_ADMIN_TOKEN: "t".repeat(20),
          }),
        ).message,
      ).toContain("set only one");
      writeFileSync(file, "short");
      const short = configError(() =>
        loadGatewayConfig({ FLEETHEAL_GATEWAY_ADMIN_TOKEN_FILE: file }),
      );
      expect(short.message).toContain("must be at least 16 characters");
      expect(short.message).not.toContain('short"');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(
      configError(() => loadGatewayConfig({ FLEETHEAL_GATEWAY_READ_TOKEN_FILE: "/nonexistent/t" }))
        .message,
    ).toContain('FLEETHEAL_GATEWAY_READ_TOKEN_FILE="/nonexistent/t": cannot read it');
  });

  it("rejects the same token for reads and actions", () => {
    const token = "x".repeat(20);
    expect(
      configError(() =>
        loadGatewayConfig({
          FLEETHEAL_GATEWAY_ADMIN_TOKEN: token,
          FLEETHEAL_GATEWAY_READ_TOKEN: token,
        }),
      ).message,
    ).toContain("must differ from the admin token");
  });

  it.each([
    ["FLEETHEAL_GATEWAY_CORS_ORIGINS", "*", "each origin looks like"],
    ["FLEETHEAL_GATEWAY_CORS_ORIGINS", "https://a.example.com/path", "each origin looks like"],
    ["FLEETHEAL_GATEWAY_TRUST_PROXY", "maybe", '"maybe" is not an IP address, a CIDR block'],
    // Fastify 5 trusts no one for a hop count (it cannot check the nearest peer): refused here.
    ["FLEETHEAL_GATEWAY_TRUST_PROXY", "2", '"2" is not an IP address'],
    ["FLEETHEAL_GATEWAY_TRUST_PROXY", "10.0.0.0/33", '"10.0.0.0/33" is not'],
    ["FLEETHEAL_GATEWAY_TRUST_PROXY", "10.0.0.1, ::1/129", '"::1/129" is not'],
    ["FLEETHEAL_GATEWAY_TRUST_PROXY", "10.0.0.0/8/1", '"10.0.0.0/8/1" is not'],
    ["FLEETHEAL_GATEWAY_STREAMS_PER_CLIENT", "0", "must be at least 1"],
    ["FLEETHEAL_GATEWAY_ACTIONS_PER_MINUTE", "0", "must be at least 1"],
  ])("%s=%j is rejected", (name, value, message) => {
    expect(configError(() => loadGatewayConfig({ [name]: value })).message).toContain(message);
  });

  it("reads values and treats empty as unset", () => {
    expect(
      loadGatewayConfig({
        FLEETHEAL_GATEWAY_PORT: "0",
        FLEETHEAL_GATEWAY_HOST: "",
        FLEETHEAL_STALE_AFTER_HEARTBEATS: "2",
        FLEETHEAL_DOWN_AFTER_HEARTBEATS: "3",
      }),
    ).toMatchObject({ port: 0, host: "0.0.0.0", staleAfterHeartbeats: 2, downAfterHeartbeats: 3 });
  });

  it.each([
    ["http", 'FLEETHEAL_GATEWAY_PORT="http": '],
    ["65536", 'FLEETHEAL_GATEWAY_PORT="65536": must be at most 65535'],
    ["-1", 'FLEETHEAL_GATEWAY_PORT="-1": must be at least 0'],
    ["80.5", 'FLEETHEAL_GATEWAY_PORT="80.5": must be a whole number'],
  ])("port %j is rejected", (port, expected) => {
    expect(
      configError(() => loadGatewayConfig({ FLEETHEAL_GATEWAY_PORT: port })).message,
    ).toContain(expected);
  });

  it.each([
    ["5", "5"],
    ["5", "4"],
    ["20", undefined],
  ])("DOWN_AFTER must exceed STALE_AFTER (stale %s, down %s)", (stale, down) => {
    const error = configError(() =>
      loadGatewayConfig({
        FLEETHEAL_STALE_AFTER_HEARTBEATS: stale,
        ...(down === undefined ? {} : { FLEETHEAL_DOWN_AFTER_HEARTBEATS: down }),
      }),
    );
    expect(error.message).toContain(
      "FLEETHEAL_DOWN_AFTER_HEARTBEATS must be greater than FLEETHEAL_STALE_AFTER_HEARTBEATS",
    );
    expect(error.message).toContain("FLEETHEAL_DOWN_AFTER_HEARTBEATS");
    if (down !== undefined)
      expect(error.message).toContain(`FLEETHEAL_DOWN_AFTER_HEARTBEATS="${down}"`);
  });

  it("reports the ordering problem together with other bad variables", () => {
    const error = configError(() =>
      loadGatewayConfig({
        FLEETHEAL_GATEWAY_PORT: "http",
        FLEETHEAL_STALE_AFTER_HEARTBEATS: "10",
        FLEETHEAL_DOWN_AFTER_HEARTBEATS: "5",
      }),
    );
    expect(error.message).toContain('FLEETHEAL_GATEWAY_PORT="http": ');
    expect(error.message).toContain(
      "FLEETHEAL_DOWN_AFTER_HEARTBEATS must be greater than FLEETHEAL_STALE_AFTER_HEARTBEATS",
    );
  });

  it("does not add an ordering complaint when one of the two counts is itself invalid", () => {
    const error = configError(() =>
      loadGatewayConfig({
        FLEETHEAL_STALE_AFTER_HEARTBEATS: "abc",
        FLEETHEAL_DOWN_AFTER_HEARTBEATS: "5",
      }),
    );
    expect(error.message).toContain(
      'FLEETHEAL_STALE_AFTER_HEARTBEATS="abc": must be a whole number',
    );
    expect(error.message).not.toContain("must be greater than");
  });
});
