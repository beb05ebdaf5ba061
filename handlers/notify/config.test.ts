import { describe, expect, it } from "vitest";
import { ConfigError } from "../../common/errors.js";
import { loadNotifyConfig } from "./config.js";
import { buildPayload } from "./payloads.js";
import { sampleRecord } from "./test-send.js";

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
      events: [
        "restarted",
        "failed",
        "quarantined",
        "released",
        "stopped",
        "recreated",
        "alerted",
        "unhealed",
      ],
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
      "stopped",
      "recreated",
      "alerted",
      "unhealed",
      "disabled",
      "enabled",
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
      '  FLEETHEAL_NOTIFY_EVENTS="restarted,exploded": "exploded" is not a phase (expected decided, restarting, restarted, failed, skipped, quarantined, released, stopped, recreated, alerted, unhealed, disabled, enabled, or "all")',
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

describe("loadNotifyConfig: the autoheal container's variables", () => {
  const WEBHOOK = `https://hooks.example/services/${SECRET}`;
  const APPRISE = `http://apprise.example:8000/notify/${SECRET}`;
  const record = sampleRecord(new Date("2026-01-02T03:04:05.000Z"), "host-a");
  const bodyKeys = (kind: Parameters<typeof buildPayload>[0]) =>
    Object.keys(JSON.parse(buildPayload(kind, record).body));

  it("WEBHOOK_URL alone is a discord target: the autoheal image's key is content", () => {
    const config = loadNotifyConfig({ WEBHOOK_URL: WEBHOOK });
    expect(config?.targets.map((t) => t.label)).toEqual(["#1 discord https://hooks.example/…"]);
    expect(config?.targets[0]?.url).toBe(WEBHOOK);
    expect(config?.notes).toEqual([]);
    // The receiver finds the message under the key autoheal used.
    expect(bodyKeys("discord")).toContain("content");
  });

  it("WEBHOOK_JSON_KEY picks the kind that posts under the same key", () => {
    const text = loadNotifyConfig({ WEBHOOK_URL: WEBHOOK, WEBHOOK_JSON_KEY: "text" });
    expect(text?.targets.map((t) => t.kind)).toEqual(["slack"]);
    expect(bodyKeys("slack")).toEqual(["text"]);
    const content = loadNotifyConfig({ WEBHOOK_URL: WEBHOOK, WEBHOOK_JSON_KEY: "content" });
    expect(content?.targets.map((t) => t.kind)).toEqual(["discord"]);
  });

  it("APPRISE_URL is an apprise target (title and body, as autoheal posts)", () => {
    const config = loadNotifyConfig({ WEBHOOK_URL: WEBHOOK, APPRISE_URL: APPRISE });
    expect(config?.targets.map((t) => t.label)).toEqual([
      "#1 discord https://hooks.example/…",
      "#2 apprise http://apprise.example:8000/…",
    ]);
    expect(bodyKeys("apprise")).toEqual(expect.arrayContaining(["title", "body"]));
    const alone = loadNotifyConfig({ APPRISE_URL: "http://apprise:8000/notify" });
    expect(alone?.targets.map((t) => t.label)).toEqual(["#1 apprise http://apprise:8000/…"]);
  });

  it("the phases, timeout and maximum age apply to them as to any target", () => {
    const config = loadNotifyConfig({
      WEBHOOK_URL: WEBHOOK,
      FLEETHEAL_NOTIFY_EVENTS: "restarted,failed",
      FLEETHEAL_NOTIFY_TIMEOUT_MS: "30000",
    });
    expect(config).toMatchObject({ events: ["restarted", "failed"], timeoutMs: 30_000 });
  });

  it("blanks around the URL are dropped; an empty variable means unset", () => {
    const config = loadNotifyConfig({ WEBHOOK_URL: ` ${WEBHOOK}\n` });
    expect(config?.targets[0]?.url).toBe(WEBHOOK);
    expect(loadNotifyConfig({ WEBHOOK_URL: "", APPRISE_URL: "", WEBHOOK_JSON_KEY: "" })).toBe(
      undefined,
    );
    // A key without a URL turns nothing on.
    expect(loadNotifyConfig({ WEBHOOK_JSON_KEY: "text" })).toBeUndefined();
  });

  it("FLEETHEAL_NOTIFY_URLS wins, and each ignored variable gets a note without its URL", () => {
    const config = loadNotifyConfig({
      FLEETHEAL_NOTIFY_URLS: "ntfy+https://ntfy.example/fleet",
      WEBHOOK_URL: WEBHOOK,
      WEBHOOK_JSON_KEY: "text",
      APPRISE_URL: APPRISE,
    });
    expect(config?.targets.map((t) => t.label)).toEqual(["#1 ntfy https://ntfy.example/…"]);
    expect(config?.notes).toEqual([
      "WEBHOOK_URL is ignored: FLEETHEAL_NOTIFY_URLS is set and takes precedence; list the URL there as slack+<url> if it should still be notified",
      "APPRISE_URL is ignored: FLEETHEAL_NOTIFY_URLS is set and takes precedence; list the URL there as apprise+<url> if it should still be notified",
    ]);
    expect(JSON.stringify(config)).not.toContain(SECRET);
  });

  it("a FLEETHEAL_NOTIFY_URLS that names no target does not hide them", () => {
    const config = loadNotifyConfig({ FLEETHEAL_NOTIFY_URLS: " , ", WEBHOOK_URL: WEBHOOK });
    expect(config?.targets.map((t) => t.kind)).toEqual(["discord"]);
    expect(config?.notes).toEqual([]);
  });

  it("names the variable that was set, never the URL", () => {
    const error = configError({
      WEBHOOK_URL: `ftp://files.example/${SECRET}`,
      APPRISE_URL: `http://apprise.example:8000?key=${SECRET}`,
    });
    expect(error.message.split("\n").slice(1)).toEqual([
      "  WEBHOOK_URL: not an http:// or https:// URL",
      "  APPRISE_URL: http://apprise.example:8000/… needs the path of the Apprise API's notify endpoint, as in http://apprise:8000/notify/<key>",
    ]);
    expect(error.message).not.toContain(SECRET);
  });

  it("refuses a WEBHOOK_JSON_KEY it cannot honour, rather than post a body the receiver ignores", () => {
    const error = configError({ WEBHOOK_URL: WEBHOOK, WEBHOOK_JSON_KEY: "message" });
    expect(error.message.split("\n").slice(1)).toEqual([
      '  WEBHOOK_JSON_KEY="message": fleetheal can post the message under "text" (a slack target) or "content" (a discord target), not "message"; for another receiver list it in FLEETHEAL_NOTIFY_URLS (docs/MIGRATING.md)',
    ]);
    // JSON keys are case-sensitive, as in autoheal's payload.
    expect(configError({ WEBHOOK_JSON_KEY: "Text" }).message).toContain('WEBHOOK_JSON_KEY="Text"');
  });

  it("validates them even when FLEETHEAL_NOTIFY_URLS wins", () => {
    const error = configError({
      FLEETHEAL_NOTIFY_URLS: "https://h.example/x",
      WEBHOOK_URL: "hooks.example/x",
    });
    expect(error.message).toContain("  WEBHOOK_URL: not an http:// or https:// URL");
  });
});
