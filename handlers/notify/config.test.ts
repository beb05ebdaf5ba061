import { describe, expect, it } from "vitest";
import { ConfigError } from "../../common/errors.js";
import { loadNotifyConfig } from "./config.js";

const SECRET = "T0K3N-very-secret";

function configError(env: NodeJS.ProcessEnv): ConfigError {
  try {
    loadNotifyConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error("expected a ConfigError");
}

describe("loadNotifyConfig", () => {
  it("is off without targets", () => {
    expect(loadNotifyConfig({})).toBeUndefined();
    expect(loadNotifyConfig({ FLEETHEAL_NOTIFY_URLS: "" })).toBeUndefined();
  });

  it("defaults", () => {
    const config = loadNotifyConfig({ FLEETHEAL_NOTIFY_URLS: "slack+https://h.example/x" });
    expect(config?.targets.map((t) => t.label)).toEqual(["#1 slack https://h.example/…"]);
    expect(config).toMatchObject({
      events: ["restarted", "failed", "quarantined", "released"],
      timeoutMs: 5_000,
      maxAgeMs: 3_600_000,
    });
  });

  it("reads events (or all), the timeout and the maximum age", () => {
    const config = loadNotifyConfig({
      FLEETHEAL_NOTIFY_URLS: "https://h.example/x",
      FLEETHEAL_NOTIFY_EVENTS: " failed quarantined,failed ",
      FLEETHEAL_NOTIFY_TIMEOUT_MS: "2500",
      FLEETHEAL_NOTIFY_MAX_AGE_MS: "60000",
    });
    expect(config).toMatchObject({
      events: ["failed", "quarantined"],
      timeoutMs: 2_500,
      maxAgeMs: 60_000,
    });
    const all = loadNotifyConfig({
      FLEETHEAL_NOTIFY_URLS: "https://h.example/x",
      FLEETHEAL_NOTIFY_EVENTS: "all",
    });
    expect(all?.events).toEqual([
      "decided",
      "restarting",
      "restarted",
      "failed",
      "skipped",
      "quarantined",
      "released",
    ]);
  });

  it("names every bad variable at once, and never quotes a target URL", () => {
    const error = configError({
      FLEETHEAL_NOTIFY_URLS: `slack+https://hooks.example/${SECRET} gopher://x/${SECRET}`,
      FLEETHEAL_NOTIFY_EVENTS: "restarted,exploded",
      FLEETHEAL_NOTIFY_TIMEOUT_MS: "5s",
      FLEETHEAL_NOTIFY_MAX_AGE_MS: "10",
    });
    const lines = error.message.split("\n");
    expect(lines[0]).toBe("invalid configuration:");
    expect(lines.slice(1)).toEqual([
      "  FLEETHEAL_NOTIFY_URLS: target 2: json: not an http:// or https:// URL (written <kind>+<url> or as a plain URL)",
      '  FLEETHEAL_NOTIFY_EVENTS="restarted,exploded": "exploded" is not a phase (expected decided, restarting, restarted, failed, skipped, quarantined, released, or "all")',
      '  FLEETHEAL_NOTIFY_TIMEOUT_MS="5s": must be a whole number',
      '  FLEETHEAL_NOTIFY_MAX_AGE_MS="10": must be at least 1000',
    ]);
    expect(error.message).not.toContain(SECRET);
  });

  it("validates the other variables even without targets", () => {
    expect(configError({ FLEETHEAL_NOTIFY_TIMEOUT_MS: "0" }).message).toContain(
      'FLEETHEAL_NOTIFY_TIMEOUT_MS="0": must be at least 100',
    );
  });
});
