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
});
