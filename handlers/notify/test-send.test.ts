import { describe, expect, it } from "vitest";
import { RemediationRecord } from "../../contracts/index.js";
import { loadNotifyConfig, type NotifyConfig } from "./config.js";
import { type DeliveryResult, type Notifier, NotifyError, type NotifySend } from "./notifier.js";
import { notifyTestCommand, sampleRecord, sendTestNotifications } from "./test-send.js";

const SECRET = "S3CR3T-test-send";

function config(): NotifyConfig {
  const c = loadNotifyConfig({
    FLEETHEAL_NOTIFY_URLS: [
      `slack+https://hooks.example/${SECRET}`,
      `https://json.example/hook?token=${SECRET}`,
      `ntfy+https://ntfy.example/${SECRET}`,
    ].join(","),
    FLEETHEAL_NOTIFY_EVENTS: "quarantined",
  });
  if (!c) throw new Error("no config");
  return c;
}

/** Answers per target index. */
function notifier(results: Record<number, DeliveryResult | Error>) {
  const sends: NotifySend[] = [];
  const n: Notifier = {
    deliver: async (send) => {
      sends.push(send);
      const result = results[send.target.index] ?? new Error("unexpected");
      if (result instanceof Error) throw result;
      return result;
    },
  };
  return { n, sends };
}

describe("sampleRecord", () => {
  it("is a valid remediation record", () => {
    const r = sampleRecord(new Date("2026-01-02T03:04:05.000Z"), "host-a");
    expect(RemediationRecord.parse(r)).toEqual(r);
    expect(r).toMatchObject({ phase: "restarted", host: "host-a", code: "notify-test" });
  });
});

describe("sendTestNotifications", () => {
  it("sends to every target whatever the phase filter, and prints one redacted line each", async () => {
    const { n, sends } = notifier({
      1: { outcome: "sent", status: 200, attempts: 1, durationMs: 12 },
      2: new NotifyError("#2 json https://json.example/…", 4, "HTTP 500"),
      3: { outcome: "rejected", status: 403, attempts: 1, durationMs: 3 },
    });
    const lines: string[] = [];
    const ok = await sendTestNotifications(config(), {
      notifier: n,
      write: (l) => lines.push(l),
      host: "host-a",
    });
    expect(ok).toBe(false);
    expect(lines).toEqual([
      "OK      #1 slack https://hooks.example/… (HTTP 200, 1 attempt, 12 ms)",
      "FAILED  #2 json https://json.example/…: failed after 4 attempts: HTTP 500",
      "FAILED  #3 ntfy https://ntfy.example/…: rejected with HTTP 403 (not retried)",
    ]);
    expect(lines.join("\n")).not.toContain(SECRET);
    expect(sends.map((s) => s.target.kind)).toEqual(["slack", "json", "ntfy"]);
    expect(JSON.parse(sends[0]?.payload.body ?? "")).toEqual({
      text: expect.stringContaining("fleetheal-notify-test restarted on host-a"),
    });
  });

  it("is true when every target took it", async () => {
    const sent: DeliveryResult = { outcome: "sent", status: 204, attempts: 2, durationMs: 510 };
    const { n } = notifier({ 1: sent, 2: sent, 3: sent });
    const lines: string[] = [];
    expect(
      await sendTestNotifications(config(), { notifier: n, write: (l) => lines.push(l) }),
    ).toBe(true);
    expect(lines[0]).toBe(
      "OK      #1 slack https://hooks.example/… (HTTP 204, 2 attempts, 510 ms)",
    );
  });
});

describe("notifyTestCommand", () => {
  it("exits 2 without targets or with a bad configuration", async () => {
    const err: string[] = [];
    const out = () => {};
    expect(await notifyTestCommand({}, out, (t) => err.push(t))).toBe(2);
    expect(
      await notifyTestCommand(
        { FLEETHEAL_NOTIFY_URLS: `teams+https://x.example/${SECRET}` },
        out,
        (t) => err.push(t),
      ),
    ).toBe(2);
    expect(err).toEqual([
      "fleetheal notify-test: neither FLEETHEAL_NOTIFY_URLS nor autoheal's WEBHOOK_URL or APPRISE_URL is set; there is nothing to test\n",
      expect.stringContaining('FLEETHEAL_NOTIFY_URLS: target 1: unknown kind "teams"'),
    ]);
    expect(err.join("")).not.toContain(SECRET);
  });
});
