import { describe, expect, it } from "vitest";
import {
  isoFromTimeNano,
  labelsFromAttributes,
  parseDockerEventLine,
  sinceFromIso,
  sinceFromTimeNano,
  timeNanoFromSince,
} from "./docker-event.js";

const CID = "4f1c2b3a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a";

/** A line as Docker 20.10 writes it on /events. */
function dockerLine(
  action: string,
  options: { type?: string; timeNano?: string; attributes?: Record<string, string> } = {},
): string {
  const type = options.type ?? "container";
  const timeNano = options.timeNano ?? "1795808494172958659";
  const time = timeNano.slice(0, 10);
  const attributes = options.attributes ?? {
    autoheal: "true",
    image: "nginx:1.27",
    name: "web",
  };
  return `{"status":${JSON.stringify(action)},"id":"${CID}","from":"nginx:1.27","Type":"${type}","Action":${JSON.stringify(action)},"Actor":{"ID":"${CID}","Attributes":${JSON.stringify(attributes)}},"scope":"local","time":${time},"timeNano":${timeNano}}`;
}

describe("parseDockerEventLine", () => {
  it("health_status: unhealthy -> unhealthy", () => {
    const result = parseDockerEventLine(dockerLine("health_status: unhealthy"));
    expect(result).toEqual({
      ok: true,
      event: {
        containerId: CID,
        action: "unhealthy",
        timeNano: "1795808494172958659",
        attributes: { autoheal: "true", image: "nginx:1.27", name: "web" },
      },
    });
  });

  it.each([
    ["health_status: healthy", "healthy"],
    ["health_status: starting", "starting"],
    ["start", "start"],
    ["die", "die"],
    ["kill", "kill"],
    ["stop", "stop"],
    ["restart", "restart"],
    ["oom", "oom"],
    ["destroy", "destroy"],
    ["create", "create"],
    ["pause", "pause"],
    ["unpause", "unpause"],
  ])("%s -> %s", (dockerAction, action) => {
    const result = parseDockerEventLine(dockerLine(dockerAction));
    expect(result.ok && result.event.action).toBe(action);
  });

  it.each([
    ["exec_create: /bin/sh -c wget -q -O- http://localhost/ || exit 1"],
    ["exec_start: /bin/sh -c wget -q -O- http://localhost/ || exit 1"],
    ["exec_die"],
    ["attach"],
    ["resize"],
    ["rename"],
    ["health_status: bogus"],
  ])("%s -> not-forwarded", (action) => {
    expect(parseDockerEventLine(dockerLine(action))).toEqual({
      ok: false,
      reason: "not-forwarded",
    });
  });

  it("a network event is not forwarded", () => {
    const line = dockerLine("connect", {
      type: "network",
      attributes: { container: CID, name: "bridge", type: "bridge" },
    });
    expect(parseDockerEventLine(line)).toEqual({ ok: false, reason: "not-forwarded" });
  });

  it("a network event named like a container action is not forwarded", () => {
    expect(parseDockerEventLine(dockerLine("destroy", { type: "network" }))).toEqual({
      ok: false,
      reason: "not-forwarded",
    });
  });

  it.each([['{"Type":"container"'], ["not json"], [""]])("bad JSON %j", (line) => {
    expect(parseDockerEventLine(line)).toEqual({ ok: false, reason: "bad-json" });
  });

  it.each([
    ["missing Actor", '{"Type":"container","Action":"start","time":1,"timeNano":1}'],
    [
      "timeNano as a string",
      `{"Type":"container","Action":"start","Actor":{"ID":"${CID}"},"time":1,"timeNano":"1"}`,
    ],
    ["array", "[1,2,3]"],
    ["null", "null"],
    [
      "non-string attribute",
      `{"Type":"container","Action":"start","Actor":{"ID":"${CID}","Attributes":{"exitCode":0}},"time":1,"timeNano":1}`,
    ],
  ])("bad shape: %s", (_why, line) => {
    expect(parseDockerEventLine(line)).toEqual({ ok: false, reason: "bad-shape" });
  });

  it("keeps every digit of a timeNano above 2^53", () => {
    const timeNano = "1795808494172958659";
    expect(BigInt(timeNano) > 2n ** 53n).toBe(true);
    // The number JSON.parse gives back is not the same integer.
    expect(BigInt(JSON.parse(timeNano) as number).toString()).not.toBe(timeNano);
    const result = parseDockerEventLine(dockerLine("die", { timeNano }));
    expect(result.ok && result.event.timeNano).toBe("1795808494172958659");
  });

  it("reads timeNano exactly even with whitespace after the colon", () => {
    const line = dockerLine("start").replace('"timeNano":', '"timeNano" :  ');
    const result = parseDockerEventLine(line);
    expect(result.ok && result.event.timeNano).toBe("1795808494172958659");
  });

  it("is not fooled by a label value that looks like a timeNano", () => {
    const line = dockerLine("start", {
      attributes: { note: '"timeNano":1', name: "web", image: "x" },
    });
    const result = parseDockerEventLine(line);
    expect(result.ok && result.event.timeNano).toBe("1795808494172958659");
  });

  it("defaults attributes to {} when Docker sends none", () => {
    const line = `{"Type":"container","Action":"start","Actor":{"ID":"${CID}"},"time":1795808494,"timeNano":1795808494172958659}`;
    const result = parseDockerEventLine(line);
    expect(result.ok && result.event.attributes).toEqual({});
  });
});

describe("labelsFromAttributes", () => {
  it("drops name, image, exitCode, signal and execDuration", () => {
    expect(
      labelsFromAttributes({
        name: "web",
        image: "nginx:1.27",
        exitCode: "137",
        signal: "9",
        execDuration: "3",
        autoheal: "true",
        "autoheal.stop.timeout": "20",
        "com.docker.compose.project": "shop",
      }),
    ).toEqual({
      autoheal: "true",
      "autoheal.stop.timeout": "20",
      "com.docker.compose.project": "shop",
    });
  });

  it("returns {} when there are only Docker's attributes", () => {
    expect(labelsFromAttributes({ name: "web", image: "busybox" })).toEqual({});
  });
});

describe("sinceFromTimeNano", () => {
  it.each([
    ["1795808494172958659", "1795808494.172958659"],
    ["1795808494000000007", "1795808494.000000007"],
    ["1795808494012345678", "1795808494.012345678"],
    ["1795808494000000000", "1795808494.000000000"],
    ["5", "0.000000005"],
  ])("%s -> %s", (timeNano, since) => {
    expect(sinceFromTimeNano(timeNano)).toBe(since);
  });
});

describe("isoFromTimeNano", () => {
  it.each([
    ["1795808494172958659", "2026-11-27T19:41:34.172Z"],
    ["1795808494999999999", "2026-11-27T19:41:34.999Z"],
    ["0", "1970-01-01T00:00:00.000Z"],
  ])("%s -> %s", (timeNano, iso) => {
    expect(isoFromTimeNano(timeNano)).toBe(iso);
  });
});

describe("sinceFromIso", () => {
  // 2026-11-27T19:53:18Z
  const S = Date.parse("2026-11-27T19:53:18Z") / 1000;

  it.each([
    ["Docker's SystemTime, nanoseconds", "2026-11-27T19:53:18.613456789Z", `${S}.613456789`],
    ["trailing zeros trimmed", "2026-11-27T19:53:18.61345678Z", `${S}.613456780`],
    ["milliseconds", "2026-11-27T19:53:18.613Z", `${S}.613000000`],
    ["one digit", "2026-11-27T19:53:18.5Z", `${S}.500000000`],
    ["leading zeros kept", "2026-11-27T19:53:18.000000007Z", `${S}.000000007`],
    ["whole seconds", "2026-11-27T19:53:18Z", `${S}.000000000`],
    ["an offset", "2026-11-27T20:53:18.613456789+01:00", `${S}.613456789`],
    ["a negative offset", "2026-11-27T14:53:18.1-05:00", `${S}.100000000`],
    ["digits beyond nanoseconds are cut", "2026-11-27T19:53:18.6134567891234Z", `${S}.613456789`],
  ])("%s: %s", (_why, iso, since) => {
    expect(sinceFromIso(iso)).toBe(since);
  });

  it("gives the format sinceFromTimeNano gives", () => {
    expect(sinceFromIso("2026-11-27T19:41:34.172958659Z")).toBe(
      sinceFromTimeNano("1795808494172958659"),
    );
  });

  it.each([
    ["empty", ""],
    ["not a time", "yesterday"],
    ["no zone", "2026-11-27T19:53:18.613456789"],
    ["space instead of T", "2026-11-27 19:53:18Z"],
    ["offset without colon", "2026-11-27T19:53:18+0100"],
    ["a date only", "2026-11-27"],
    ["an impossible month", "2026-13-27T19:53:18Z"],
    ["an impossible hour", "2026-11-27T25:53:18Z"],
    ["an empty fraction", "2026-11-27T19:53:18.Z"],
  ])("%s -> undefined", (_why, iso) => {
    expect(sinceFromIso(iso)).toBeUndefined();
  });
});

describe("timeNanoFromSince", () => {
  it.each([
    ["1795808494.172958659", "1795808494172958659"],
    ["1795808494.000000007", "1795808494000000007"],
    ["1795808494.5", "1795808494500000000"],
    ["1795808494.05", "1795808494050000000"],
    ["1795808494", "1795808494000000000"],
    ["1795808494.1729586591", "1795808494172958659"],
    ["0.000000005", "5"],
  ])("%s -> %s", (since, timeNano) => {
    expect(timeNanoFromSince(since)).toBe(timeNano);
  });

  it.each(["1795808494172958659", "1795808494000000000", "1", "999999999"])(
    "inverts sinceFromTimeNano (%s)",
    (timeNano) => {
      expect(timeNanoFromSince(sinceFromTimeNano(timeNano))).toBe(timeNano);
    },
  );

  it("is exact beyond 2^53 and keeps the order of times", () => {
    const a = timeNanoFromSince("1795808494.172958659");
    const b = timeNanoFromSince("1795808494.172958660");
    expect(BigInt(b) - BigInt(a)).toBe(1n);
  });
});
