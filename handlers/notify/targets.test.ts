import { inspect } from "node:util";
import { describe, expect, it } from "vitest";
import { MAX_TARGETS, type NotifyTarget, parseTargets, redactUrl, scrub } from "./targets.js";

const TOKEN = "xoxb-S3CR3T-t0k3n";

function only(raw: string): NotifyTarget {
  const { targets, problems } = parseTargets(raw);
  expect(problems).toEqual([]);
  expect(targets).toHaveLength(1);
  return targets[0] as NotifyTarget;
}

describe("parseTargets", () => {
  it("reads every kind, and a plain URL as json", () => {
    const { targets, problems } = parseTargets(
      [
        "https://example.com/hook",
        "json+https://example.com/json",
        "slack+https://hooks.slack.com/services/T0/B0/abc",
        "discord+https://discord.com/api/webhooks/1/abc",
        "ntfy+https://ntfy.sh/fleet-alerts",
        "apprise+http://apprise:8000/notify/fleet",
      ].join(","),
    );
    expect(problems).toEqual([]);
    expect(targets.map((t) => [t.index, t.kind, t.redacted])).toEqual([
      [1, "json", "https://example.com/…"],
      [2, "json", "https://example.com/…"],
      [3, "slack", "https://hooks.slack.com/…"],
      [4, "discord", "https://discord.com/…"],
      [5, "ntfy", "https://ntfy.sh/…"],
      [6, "apprise", "http://apprise:8000/…"],
    ]);
    expect(targets[2]?.url).toBe("https://hooks.slack.com/services/T0/B0/abc");
  });

  it("splits on commas, spaces and newlines, and ignores empty entries", () => {
    const { targets } = parseTargets(
      " slack+https://a.example/x ,\n\tntfy+https://b.example/t,, https://c.example/ ",
    );
    expect(targets.map((t) => t.label)).toEqual([
      "#1 slack https://a.example/…",
      "#2 ntfy https://b.example/…",
      "#3 json https://c.example/…",
    ]);
  });

  it("takes the kind case-insensitively", () => {
    expect(only("SLACK+https://a.example/x").kind).toBe("slack");
  });

  it("turns userinfo into an Authorization header and drops it from the URL", () => {
    const basic = only("json+https://alice:p%40ss@h.example/hook#frag");
    expect(basic.url).toBe("https://h.example/hook");
    expect(basic.authorization).toBe(`Basic ${Buffer.from("alice:p@ss").toString("base64")}`);
    const bearer = only(`ntfy+https://:${TOKEN}@ntfy.example/topic`);
    expect(bearer.url).toBe("https://ntfy.example/topic");
    expect(bearer.authorization).toBe(`Bearer ${TOKEN}`);
    expect(only("https://h.example/x").authorization).toBeUndefined();
  });

  it("reports bad entries by position, without quoting them", () => {
    const { targets, problems } = parseTargets(
      [
        `teams+https://x.example/${TOKEN}`,
        `ftp://x.example/${TOKEN}`,
        `slack+not-a-url-${TOKEN}`,
        `ntfy+https://ntfy.sh/?auth=${TOKEN}`,
        "apprise+http://apprise:8000",
        "https://ok.example/x",
      ].join(" "),
    );
    expect(problems).toEqual([
      'target 1: unknown kind "teams" (expected json, slack, discord, ntfy, apprise, or a plain URL for json)',
      "target 2: json: not an http:// or https:// URL (written <kind>+<url> or as a plain URL)",
      "target 3: slack: not an http:// or https:// URL (written <kind>+<url> or as a plain URL)",
      "target 4: ntfy https://ntfy.sh/…: the URL needs a path, as in ntfy+https://ntfy.sh/<topic>",
      "target 5: apprise http://apprise:8000/…: the URL needs a path, as in apprise+http://apprise:8000/notify/<key>",
    ]);
    expect(targets.map((t) => t.index)).toEqual([6]);
    expect(problems.join("\n")).not.toContain("S3CR3T");
  });

  it("limits the number of targets", () => {
    const raw = Array.from({ length: MAX_TARGETS + 1 }, (_, i) => `https://h${i}.example/x`);
    const { targets, problems } = parseTargets(raw.join(","));
    expect(targets).toHaveLength(MAX_TARGETS);
    expect(problems).toEqual([`${MAX_TARGETS + 1} targets; at most ${MAX_TARGETS} are allowed`]);
  });

  it("returns nothing for an empty value", () => {
    expect(parseTargets(" , ")).toEqual({ targets: [], problems: [] });
  });
});

describe("redaction", () => {
  const target = only(
    `slack+https://user:pw-${TOKEN}@hooks.slack.com/services/${TOKEN}?t=${TOKEN}`,
  );

  it("shows scheme, host and port only", () => {
    expect(redactUrl(new URL("http://[::1]:8080/a/b?c=d"))).toBe("http://[::1]:8080/…");
    expect(target.label).toBe("#1 slack https://hooks.slack.com/…");
  });

  it("never serialises the URL or credentials", () => {
    const shown = [
      JSON.stringify(target),
      JSON.stringify({ decision: { target } }),
      inspect(target),
      inspect({ target }, { depth: 5, showHidden: true }),
      String(Object.keys(target)),
    ].join("\n");
    expect(shown).not.toContain(TOKEN);
    expect(shown).not.toContain("pw-");
    expect(JSON.parse(JSON.stringify(target))).toEqual({
      index: 1,
      kind: "slack",
      url: "https://hooks.slack.com/…",
    });
  });

  it("scrubs every secret part from a text", () => {
    const text = `request to ${target.url} failed; path /services/${TOKEN} query t=${TOKEN} pw pw-${TOKEN} auth ${target.authorization}`;
    const clean = scrub(text, [target]);
    expect(clean).not.toContain(TOKEN);
    expect(clean).not.toContain(target.authorization as string);
    expect(clean).toContain("request to … failed");
  });
});
