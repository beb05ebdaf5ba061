import { describe, expect, it } from "vitest";
import {
  formatDuration,
  MAX_PROBE_ERROR,
  MAX_PROBE_TARGET,
  PROBE_DEFAULTS,
  parseDuration,
  parseProbeLabels,
} from "./probe-spec.js";

const P = "autoheal.probe.";

function ok(labels: Record<string, string>) {
  const r = parseProbeLabels(labels);
  if (!r?.ok) throw new Error(`expected a valid probe, got ${JSON.stringify(r)}`);
  return r.spec;
}

function bad(labels: Record<string, string>) {
  const r = parseProbeLabels(labels);
  if (r === undefined || r.ok) throw new Error(`expected an error, got ${JSON.stringify(r)}`);
  return r;
}

describe("parseDuration", () => {
  it.each([
    ["500ms", 500],
    ["10s", 10_000],
    ["1m30s", 90_000],
    ["2h", 7_200_000],
    ["1h30m", 5_400_000],
    ["1.5s", 1_500],
    [".5s", 500],
    ["30", 30_000],
    ["0.25", 250],
    ["0", 0],
    ["0s", 0],
    ["1m0.5s", 60_500],
    ["30s1m", 90_000],
  ])("%s = %d ms", (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each([
    "",
    "soon",
    "-1",
    "-1s",
    "+1s",
    "1d",
    "10 s",
    " 10s",
    "10s\n",
    "1S",
    "0x50",
    "1e3",
    "s",
    "ms",
    "1.2.3s",
    "１０s", // full-width digits
    "10ｓ",
    "NaN",
    "Infinity",
    "9".repeat(65),
    "1h".repeat(40),
  ])("rejects %j", (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });

  it("rejects amounts beyond safe integers", () => {
    expect(parseDuration(`${"9".repeat(30)}h`)).toBeUndefined();
  });

  it("formats durations for messages", () => {
    expect(formatDuration(0)).toBe("0s");
    expect(formatDuration(250)).toBe("250ms");
    expect(formatDuration(90_000)).toBe("1m30s");
    expect(formatDuration(3_600_000)).toBe("1h");
  });
});

describe("parseProbeLabels", () => {
  it("is undefined without autoheal.probe.* labels", () => {
    expect(parseProbeLabels({})).toBeUndefined();
    expect(parseProbeLabels({ autoheal: "true", "autoheal.stop.timeout": "5", probe: "x" })).toBe(
      undefined,
    );
  });

  it("reads an exec probe with the defaults", () => {
    expect(ok({ [`${P}exec`]: "test -f /tmp/healthy", autoheal: "true" })).toEqual({
      kind: "exec",
      target: "test -f /tmp/healthy",
      command: ["sh", "-c", "test -f /tmp/healthy"],
      ...PROBE_DEFAULTS,
    });
    expect(PROBE_DEFAULTS).toEqual({
      intervalMs: 30_000,
      timeoutMs: 10_000,
      retries: 3,
      startPeriodMs: 0,
    });
  });

  it("keeps a multi-line or unicode exec command as given", () => {
    const cmd = 'set -e\ncurl -fsS http://localhost/ | grep -q "ok ✓"';
    expect(ok({ [`${P}exec`]: cmd })).toMatchObject({ command: ["sh", "-c", cmd], target: cmd });
  });

  it.each([
    ["8080", { port: 8080 }],
    [":8080", { port: 8080 }],
    ["127.0.0.1:6379", { host: "127.0.0.1", port: 6379 }],
    ["db.internal:5432", { host: "db.internal", port: 5432 }],
    ["my_service:80", { host: "my_service", port: 80 }],
    ["[::1]:80", { host: "::1", port: 80 }],
    ["1", { port: 1 }],
    ["65535", { port: 65535 }],
  ])("reads tcp %j", (value, expected) => {
    const spec = ok({ [`${P}tcp`]: value });
    expect(spec).toMatchObject({ kind: "tcp", target: value, ...expected });
    if (!("host" in expected) && spec.kind === "tcp") expect(spec.host).toBeUndefined();
  });

  it.each([
    ["http://127.0.0.1:8080/healthz", { url: "http://127.0.0.1:8080/healthz" }],
    ["https://example.com/health?deep=1", { url: "https://example.com/health?deep=1" }],
    ["HTTP://Example.com:81", { url: "http://example.com:81/" }],
    ["http://[::1]:8080/", { url: "http://[::1]:8080/" }],
    [":8080/healthz", { port: 8080, path: "/healthz" }],
    [":8080", { port: 8080, path: "/" }],
    [":80/a/b?c=d&e=%20", { port: 80, path: "/a/b?c=d&e=%20" }],
  ])("reads http %j", (value, expected) => {
    expect(ok({ [`${P}http`]: value })).toMatchObject({ kind: "http", target: value, ...expected });
  });

  it("reads timing options, with limits inclusive", () => {
    expect(
      ok({
        [`${P}tcp`]: "80",
        [`${P}interval`]: "1m30s",
        [`${P}timeout`]: "500ms",
        [`${P}retries`]: "5",
        [`${P}start_period`]: "2",
      }),
    ).toMatchObject({ intervalMs: 90_000, timeoutMs: 500, retries: 5, startPeriodMs: 2_000 });
    expect(
      ok({
        [`${P}tcp`]: "80",
        [`${P}interval`]: "250ms",
        [`${P}timeout`]: "100ms",
        [`${P}retries`]: "1",
        [`${P}start_period`]: "0s",
      }),
    ).toMatchObject({ intervalMs: 250, timeoutMs: 100, retries: 1, startPeriodMs: 0 });
    expect(
      ok({
        [`${P}tcp`]: "80",
        [`${P}interval`]: "1h",
        [`${P}timeout`]: "10m",
        [`${P}retries`]: "100",
        [`${P}start_period`]: "3600",
      }),
    ).toMatchObject({ intervalMs: 3_600_000, timeoutMs: 600_000, retries: 100 });
  });

  // [labels, the label named in the error, a fragment of the error]
  it.each<[string, Record<string, string>, string, string]>([
    ["port out of range", { tcp: ":99999" }, 'autoheal.probe.tcp=":99999"', "1 to 65535"],
    ["port 0", { tcp: "0" }, "autoheal.probe.tcp", "1 to 65535"],
    ["bare 99999", { tcp: "99999" }, "autoheal.probe.tcp", "1 to 65535"],
    ["negative port", { tcp: "-1" }, 'autoheal.probe.tcp="-1"', "expected host:port"],
    ["hex port", { tcp: "0x50" }, 'autoheal.probe.tcp="0x50"', "expected host:port"],
    ["host without port", { tcp: "localhost" }, "autoheal.probe.tcp", "expected host:port"],
    ["empty host port", { tcp: "db:" }, "autoheal.probe.tcp", "1 to 65535"],
    ["numeric host", { tcp: "0x7f.1:80" }, "autoheal.probe.tcp", "plain host name"],
    ["short ipv4", { tcp: "127.1:80" }, "autoheal.probe.tcp", "plain host name"],
    ["unbracketed ipv6", { tcp: "::1:80" }, "autoheal.probe.tcp", "[brackets]"],
    ["unicode host", { tcp: "exämple.com:80" }, "autoheal.probe.tcp", "plain host name"],
    ["empty tcp", { tcp: "" }, "autoheal.probe.tcp", "expected host:port"],
    ["newline in tcp", { tcp: "80\n" }, 'autoheal.probe.tcp="80\\n"', "expected host:port"],
    ["file url", { http: "file:///etc/passwd" }, "autoheal.probe.http", "scheme file"],
    ["ftp url", { http: "ftp://example.com/" }, "autoheal.probe.http", "scheme ftp"],
    ["javascript url", { http: "javascript:alert(1)" }, "autoheal.probe.http", "scheme"],
    ["http without host", { http: "http://" }, 'autoheal.probe.http="http://"', "missing host"],
    ["http triple slash", { http: "http:///x" }, "autoheal.probe.http", "missing host"],
    ["http bad port", { http: "http://h:99999/" }, "autoheal.probe.http", "not a valid URL"],
    ["http port 0", { http: "http://h:0/" }, "autoheal.probe.http", "1 to 65535"],
    ["http short bad port", { http: ":99999/x" }, "autoheal.probe.http", "1 to 65535"],
    ["http short no port", { http: ":/x" }, "autoheal.probe.http", "expected :port"],
    ["http no scheme", { http: "example.com/x" }, "autoheal.probe.http", "expected http://"],
    ["http credentials", { http: "http://u:p@h/" }, "autoheal.probe.http", "credentials"],
    ["http numeric host", { http: "http://0x7f.1/" }, "autoheal.probe.http", "plain host"],
    ["http space", { http: "http://h/a b" }, "autoheal.probe.http", "spaces"],
    ["http unicode", { http: "http://h/✓" }, "autoheal.probe.http", "non-ASCII"],
    ["empty exec", { exec: "" }, "autoheal.probe.exec", "empty command"],
    ["blank exec", { exec: " \n\t" }, "autoheal.probe.exec", "empty command"],
    ["NUL in exec", { exec: "true\u0000x" }, "autoheal.probe.exec", "NUL"],
    ["huge exec", { exec: "x".repeat(4097) }, "(4097 characters)", "longer than 4096"],
    ["bad interval", { tcp: "80", interval: "soon" }, 'interval="soon"', "not a duration"],
    ["interval too short", { tcp: "80", interval: "100ms" }, "interval", "250ms and 1h"],
    ["interval too long", { tcp: "80", interval: "61m" }, "interval", "250ms and 1h"],
    ["timeout too short", { tcp: "80", timeout: "99ms" }, "timeout", "100ms and 10m"],
    ["timeout too long", { tcp: "80", timeout: "601" }, "timeout", "100ms and 10m"],
    ["start period too long", { tcp: "80", start_period: "2h" }, "start_period", "0s and 1h"],
    ["negative start", { tcp: "80", start_period: "-1s" }, "start_period", "not a duration"],
    ["retries 0", { tcp: "80", retries: "0" }, 'retries="0"', "from 1 to 100"],
    ["retries 101", { tcp: "80", retries: "101" }, "retries", "from 1 to 100"],
    ["retries hex", { tcp: "80", retries: "0x50" }, "retries", "from 1 to 100"],
    ["retries -1", { tcp: "80", retries: "-1" }, "retries", "from 1 to 100"],
    ["retries 1e2", { tcp: "80", retries: "1e2" }, "retries", "from 1 to 100"],
    ["retries 2.5", { tcp: "80", retries: "2.5" }, "retries", "from 1 to 100"],
    ["unknown key", { tcp: "80", intervall: "5s" }, 'autoheal.probe.intervall="5s"', "unknown"],
    ["empty key", { tcp: "80", "": "x" }, 'autoheal.probe.="x"', "unknown label"],
    [
      "two kinds",
      { exec: "true", tcp: "80" },
      'autoheal.probe.exec="true" and autoheal.probe.tcp="80"',
      "exactly one of",
    ],
    ["three kinds", { exec: "true", tcp: "80", http: ":80" }, "autoheal.probe.http", "exactly one"],
    ["no kind", { interval: "10s" }, 'autoheal.probe.interval="10s"', "no probe kind"],
  ])("rejects %s", (_name, labels, named, fragment) => {
    const r = bad(Object.fromEntries(Object.entries(labels).map(([k, v]) => [P + k, v])));
    expect(r.error).toContain(named);
    expect(r.error).toContain(fragment);
    expect(r.error.length).toBeLessThanOrEqual(MAX_PROBE_ERROR);
  });

  it("reports the kind and target of invalid labels when it knows them", () => {
    expect(bad({ [`${P}tcp`]: ":99999" })).toMatchObject({ kind: "tcp", target: ":99999" });
    expect(bad({ [`${P}tcp`]: "80", [`${P}interval`]: "soon" })).toMatchObject({
      kind: "tcp",
      target: "80",
    });
    const two = bad({ [`${P}http`]: ":80", [`${P}exec`]: "true" });
    expect(two.kind).toBe("exec");
    const none = bad({ [`${P}retries`]: "3" });
    expect(none.kind).toBeUndefined();
    expect(none.target).toBe("");
  });

  it("lists every problem at once", () => {
    const r = bad({ [`${P}tcp`]: "0x50", [`${P}interval`]: "soon", [`${P}retries`]: "0" });
    expect(r.error).toContain("autoheal.probe.tcp");
    expect(r.error).toContain("autoheal.probe.interval");
    expect(r.error).toContain("autoheal.probe.retries");
  });

  it("keeps hostile values out of messages: escaped, shortened, bounded", () => {
    const hostile = `\u202e\u0000\u001b[31m"\\${"💥".repeat(5000)}`;
    for (const key of ["tcp", "http", "interval", "retries", `x${"y".repeat(10_000)}`]) {
      const r = bad({ [`${P}exec`]: "true", [`${P}${key}`]: hostile });
      expect(r.error.length).toBeLessThanOrEqual(MAX_PROBE_ERROR);
      expect(r.target.length).toBeLessThanOrEqual(MAX_PROBE_TARGET);
      // Only printable ASCII (and the ellipsis) in the message.
      expect(r.error).toMatch(/^[\x20-\x7e…]*$/);
      expect(r.error).toContain("\\u202e");
    }
    const huge = bad({ [`${P}tcp`]: "9".repeat(100_000) });
    expect(huge.error.length).toBeLessThanOrEqual(MAX_PROBE_ERROR);
    expect(huge.target.length).toBeLessThanOrEqual(MAX_PROBE_TARGET);
    expect(huge.error).toContain("(100000 characters)");
  });

  it("accepts values up to 4096 characters", () => {
    const cmd = `true ${"#".repeat(4091)}`;
    expect(cmd).toHaveLength(4096);
    expect(ok({ [`${P}exec`]: cmd }).target).toBe(cmd);
  });

  it("never throws on odd inputs", () => {
    const weird = [
      { [`${P}exec`]: undefined as unknown as string },
      { [`${P}tcp`]: 80 as unknown as string },
      { [`${P}__proto__`]: "x" },
      JSON.parse('{"autoheal.probe.__proto__": "x", "autoheal.probe.tcp": "80"}'),
      { [`${P}constructor`]: "x" },
    ];
    for (const labels of weird) {
      expect(() => parseProbeLabels(labels)).not.toThrow();
    }
    expect(parseProbeLabels({ [`${P}tcp`]: 80 as unknown as string })).toMatchObject({ ok: true });
    expect(bad(weird[3]).error).toContain('autoheal.probe.__proto__="x": unknown label');
  });
});
