import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  commandSigningKeyFromSeed,
  generateCommandSigningSeed,
} from "../common/command-signing.js";
import { ConfigError } from "../common/errors.js";
import { loadHandlerConfig } from "./config.js";

describe("loadHandlerConfig", () => {
  it("defaults", () => {
    expect(loadHandlerConfig({})).toEqual({
      natsUrl: "nats://127.0.0.1:4222",
      nats: { jsReplicas: 1 },
      maxEventAgeMs: 300_000,
      commandTimeoutMs: 60_000,
      hostEventsMaxBytes: 8 * 1024 * 1024,
      hostEventsWindowMs: 86_400_000,
      commandSigning: { ttlMs: 30_000 },
    });
  });

  it("reads values and treats empty as unset", () => {
    expect(
      loadHandlerConfig({
        FLEETHEAL_NATS_URL: "nats://n1:4222,nats://n2:4222",
        FLEETHEAL_MAX_EVENT_AGE_MS: "",
        FLEETHEAL_COMMAND_TIMEOUT_MS: "90000",
        FLEETHEAL_COMMAND_TTL_MS: "60000",
        FLEETHEAL_EVENTS_HOST_MAX_BYTES: "1048576",
        FLEETHEAL_EVENTS_HOST_WINDOW_MS: "3600000",
      }),
    ).toEqual({
      natsUrl: "nats://n1:4222,nats://n2:4222",
      nats: { jsReplicas: 1 },
      maxEventAgeMs: 300_000,
      commandTimeoutMs: 90_000,
      hostEventsMaxBytes: 1_048_576,
      hostEventsWindowMs: 3_600_000,
      commandSigning: { ttlMs: 60_000 },
    });
  });

  it("reads the command signing key from its seed file", () => {
    const file = join(mkdtempSync(join(tmpdir(), "fleetheal-handler-")), "command-signing.nk");
    const seed = generateCommandSigningSeed();
    writeFileSync(file, `${seed}\n`, { mode: 0o600 });
    const config = loadHandlerConfig({ FLEETHEAL_COMMAND_SIGNING_KEY_FILE: file });
    expect(config.commandSigning.key?.publicKey).toBe(commandSigningKeyFromSeed(seed).publicKey);
  });

  it.each([
    ["FLEETHEAL_EVENTS_HOST_MAX_BYTES", "1048575", "must be at least 1048576"],
    ["FLEETHEAL_EVENTS_HOST_MAX_BYTES", "64MiB", "must be a whole number"],
    ["FLEETHEAL_EVENTS_HOST_WINDOW_MS", "59999", "must be at least 60000"],
    ["FLEETHEAL_EVENTS_HOST_WINDOW_MS", "604800001", "must be at most 604800000"],
    ["FLEETHEAL_COMMAND_TTL_MS", "0", "must be at least 1000"],
    ["FLEETHEAL_COMMAND_TTL_MS", "300001", "must be at most 300000"],
  ])("%s=%s is rejected", (name, value, message) => {
    expect(() => loadHandlerConfig({ [name]: value })).toThrow(`${name}="${value}": ${message}`);
  });

  it("names every bad variable and its value", () => {
    let error: unknown;
    try {
      loadHandlerConfig({
        FLEETHEAL_MAX_EVENT_AGE_MS: "999",
        FLEETHEAL_COMMAND_TIMEOUT_MS: "1m",
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const m = (error as ConfigError).message;
    expect(m).toContain('FLEETHEAL_MAX_EVENT_AGE_MS="999": must be at least 1000');
    expect(m).toContain('FLEETHEAL_COMMAND_TIMEOUT_MS="1m": ');
    expect(m.split("\n")).toHaveLength(3);
  });

  describe("metrics", () => {
    const tokenFile = (content: string) => {
      const file = join(mkdtempSync(join(tmpdir(), "fleetheal-handler-")), "metrics.token");
      writeFileSync(file, content, { mode: 0o600 });
      return file;
    };

    it("are off by default, and with an empty port", () => {
      expect(loadHandlerConfig({}).metrics).toBeUndefined();
      expect(
        loadHandlerConfig({
          FLEETHEAL_HANDLER_METRICS_PORT: "",
          FLEETHEAL_HANDLER_METRICS_HOST: "0.0.0.0",
        }).metrics,
      ).toBeUndefined();
    });

    it("listen on loopback unless told otherwise; port 0 picks one", () => {
      expect(loadHandlerConfig({ FLEETHEAL_HANDLER_METRICS_PORT: "9464" }).metrics).toEqual({
        port: 9464,
        host: "127.0.0.1",
      });
      expect(
        loadHandlerConfig({
          FLEETHEAL_HANDLER_METRICS_PORT: "0",
          FLEETHEAL_HANDLER_METRICS_HOST: "::",
        }).metrics,
      ).toEqual({ port: 0, host: "::" });
    });

    it("read the bearer token from its file, without its newline", () => {
      const file = tokenFile("s3cret-metrics-token-0123456789\n");
      expect(
        loadHandlerConfig({
          FLEETHEAL_HANDLER_METRICS_PORT: "9464",
          FLEETHEAL_HANDLER_METRICS_TOKEN_FILE: file,
        }).metrics,
      ).toEqual({ port: 9464, host: "127.0.0.1", token: "s3cret-metrics-token-0123456789" });
    });

    it.each([
      ["FLEETHEAL_HANDLER_METRICS_PORT", "65536", "must be at most 65535"],
      ["FLEETHEAL_HANDLER_METRICS_PORT", "-1", "must be a whole number (0 picks a free port)"],
      ["FLEETHEAL_HANDLER_METRICS_PORT", "http", "must be a whole number (0 picks a free port)"],
      ["FLEETHEAL_HANDLER_METRICS_HOST", "host name", "must be an IP address or a host name"],
      ["FLEETHEAL_HANDLER_METRICS_HOST", "-x", "must be an IP address or a host name"],
    ])("%s=%s is rejected", (name, value, message) => {
      expect(() =>
        loadHandlerConfig({ FLEETHEAL_HANDLER_METRICS_PORT: "9464", [name]: value }),
      ).toThrow(`${name}="${value}": ${message}`);
    });

    it.each([
      ["short", "the token must be at least 16 characters"],
      ["with a space in it, long enough", "the token must be printable ASCII without spaces"],
    ])("refuse a token file holding %j", (content, message) => {
      const file = tokenFile(content);
      expect(() =>
        loadHandlerConfig({
          FLEETHEAL_HANDLER_METRICS_PORT: "9464",
          FLEETHEAL_HANDLER_METRICS_TOKEN_FILE: file,
        }),
      ).toThrow(`FLEETHEAL_HANDLER_METRICS_TOKEN_FILE="${file}": ${message}`);
    });

    it("refuse a token file that cannot be read, never showing a token", () => {
      expect(() =>
        loadHandlerConfig({
          FLEETHEAL_HANDLER_METRICS_PORT: "9464",
          FLEETHEAL_HANDLER_METRICS_TOKEN_FILE: "/nonexistent/metrics.token",
        }),
      ).toThrow(ConfigError);
    });
  });
});
