import { describe, expect, it } from "vitest";
import type { RemediationRecord } from "../../contracts/index.js";
import { remediationRecord } from "../../test/support/fixtures.js";
import { buildPayload, notifyDetail, notifyText, notifyTitle } from "./payloads.js";

const CID = "4f1c2b3a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a";

function record(patch: Partial<RemediationRecord> = {}): RemediationRecord {
  return remediationRecord({
    id: "heal:host-a:4f1c:restarted",
    remediationId: "heal:host-a:4f1c",
    host: "host-a",
    containerId: CID,
    containerName: "web",
    phase: "restarted",
    code: "restarted",
    message: "restarted (stop timeout 10s)",
    actor: "heal",
    at: "2026-11-27T19:41:35.000Z",
    ...patch,
  });
}

const TEXT =
  "[fleetheal] web restarted on host-a: restarted (stop timeout 10s) [code restarted, container 4f1c2b3a9d8e]";

describe("texts", () => {
  it("says what happened to which container where", () => {
    expect(notifyTitle(record())).toBe("web restarted on host-a");
    expect(notifyDetail(record())).toBe(
      "restarted (stop timeout 10s) [code restarted, container 4f1c2b3a9d8e]",
    );
    expect(notifyText(record())).toBe(TEXT);
  });

  it("adds the attempt, the hold's end and the health check's output, escaped as recorded", () => {
    const detail = notifyDetail(
      record({
        phase: "unhealed",
        code: "unhealthy-too-long",
        message: "unhealthy for 12 min and not being healed",
        attempt: 3,
        until: "2026-11-27T19:50:00.000Z",
        healthOutput: "\\u001b[31mdb down\\u0007\nretrying",
      }),
    );
    expect(detail).toBe(
      "unhealthy for 12 min and not being healed [code unhealthy-too-long, container 4f1c2b3a9d8e, attempt 3, until 2026-11-27T19:50:00.000Z]\nhealth check: \\u001b[31mdb down\\u0007\nretrying",
    );
    for (const kind of ["json", "slack", "discord", "ntfy", "apprise"] as const) {
      const { body } = buildPayload(kind, record({ healthOutput: "\\u001b[31mx" }));
      // biome-ignore lint/suspicious/noControlCharactersInRegex: the point of the check
      expect(body).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f]/);
      expect(body).toContain("u001b[31mx");
    }
  });

  it("words each phase", () => {
    const titles = (
      ["decided", "restarting", "failed", "skipped", "quarantined", "released"] as const
    ).map((phase) => notifyTitle(record({ phase })));
    expect(titles).toEqual([
      "web restart decided on host-a",
      "web restarting on host-a",
      "web restart failed on host-a",
      "web restart skipped on host-a",
      "web quarantined on host-a",
      "web released from quarantine on host-a",
    ]);
  });

  it("uses the short id for an unnamed container, and marks dry runs", () => {
    const r = record({ containerName: "", message: "", dryRun: true });
    expect(notifyText(r)).toBe(
      "[fleetheal] 4f1c2b3a9d8e restarted on host-a: [code restarted, container 4f1c2b3a9d8e, dry run]",
    );
  });
});

describe("buildPayload", () => {
  it("json: the record with a title, a text and a severity", () => {
    const r = record({ phase: "failed", code: "agent-timeout", message: "no answer" });
    const payload = buildPayload("json", r);
    expect(payload.headers).toEqual({ "Content-Type": "application/json" });
    expect(JSON.parse(payload.body)).toEqual({
      type: "fleetheal.notify.v1.remediation",
      v: 1,
      title: "web restart failed on host-a",
      text: "[fleetheal] web restart failed on host-a: no answer [code agent-timeout, container 4f1c2b3a9d8e]",
      severity: "failure",
      record: r,
    });
  });

  it("slack: {text}, with &, < and > escaped", () => {
    const payload = buildPayload("slack", record({ message: "exit <1> & more" }));
    expect(payload.headers).toEqual({ "Content-Type": "application/json" });
    expect(payload.body).toBe(
      JSON.stringify({
        text: "[fleetheal] web restarted on host-a: exit &lt;1&gt; &amp; more [code restarted, container 4f1c2b3a9d8e]",
      }),
    );
  });

  it("discord: {content} without mentions, at most 2000 characters", () => {
    expect(JSON.parse(buildPayload("discord", record()).body)).toEqual({
      content: TEXT,
      allowed_mentions: { parse: [] },
    });
    const long = JSON.parse(buildPayload("discord", record({ message: "x".repeat(2048) })).body);
    expect(long.content).toHaveLength(2000);
    expect(long.content.endsWith("…")).toBe(true);
  });

  it("ntfy: a text body with Title, Priority and Tags headers", () => {
    expect(buildPayload("ntfy", record())).toEqual({
      headers: {
        "Content-Type": "text/plain; charset=utf-8",
        Title: "fleetheal: web restarted on host-a",
        Priority: "3",
        Tags: "white_check_mark,fleetheal,host-a",
      },
      body: "restarted (stop timeout 10s) [code restarted, container 4f1c2b3a9d8e]",
    });
    const quarantined = buildPayload(
      "ntfy",
      record({ phase: "quarantined", containerName: "wéb" }),
    );
    expect(quarantined.headers).toMatchObject({
      Title: "fleetheal: w?b quarantined on host-a",
      Priority: "5",
      Tags: "rotating_light,fleetheal,host-a",
    });
  });

  it("apprise: {title, body, type}", () => {
    expect(JSON.parse(buildPayload("apprise", record({ phase: "quarantined" })).body)).toEqual({
      title: "fleetheal: web quarantined on host-a",
      body: "restarted (stop timeout 10s) [code restarted, container 4f1c2b3a9d8e]",
      type: "warning",
    });
    expect(JSON.parse(buildPayload("apprise", record({ phase: "released" })).body).type).toBe(
      "success",
    );
  });
});
