import { describe, expect, it } from "vitest";
import { ConfigError } from "../common/errors.js";
import { loadHandlerConfig } from "./config.js";

describe("loadHandlerConfig", () => {
  it("defaults", () => {
    expect(loadHandlerConfig({})).toEqual({
      natsUrl: "nats://127.0.0.1:4222",
      nats: { jsReplicas: 1 },
      maxEventAgeMs: 300_000,
      commandTimeoutMs: 60_000,
    });
  });

  it("reads values and treats empty as unset", () => {
    expect(
      loadHandlerConfig({
        FLEETHEAL_NATS_URL: "nats://n1:4222,nats://n2:4222",
        FLEETHEAL_MAX_EVENT_AGE_MS: "",
        FLEETHEAL_COMMAND_TIMEOUT_MS: "90000",
      }),
    ).toEqual({
      natsUrl: "nats://n1:4222,nats://n2:4222",
      nats: { jsReplicas: 1 },
      maxEventAgeMs: 300_000,
      commandTimeoutMs: 90_000,
    });
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
