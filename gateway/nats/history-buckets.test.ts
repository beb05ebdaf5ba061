import { describe, expect, it } from "vitest";
import { encode } from "../../contracts/index.js";
import { containerEvent } from "../../test/support/fixtures.js";
import { countedAs, HistoryTally, MAX_HOSTS_LISTED, seriesSubject } from "./history-buckets.js";

const CID = "ab".repeat(32);
const T = Date.parse("2026-12-07T10:30:20.000Z");
const none = () => new Uint8Array();

describe("HistoryTally", () => {
  it("has 60 one-minute buckets for 1h, aligned, the last one holding now", () => {
    const tally = new HistoryTally("1h", T);
    const result = tally.result(undefined, { scanned: 0 });
    expect(result.bucketSeconds).toBe(60);
    expect(result.buckets).toHaveLength(60);
    expect(result.buckets.at(-1)?.start).toBe("2026-12-07T10:30:00.000Z");
    expect(result.from).toBe("2026-12-07T09:31:00.000Z");
    expect(result.to).toBe(new Date(T).toISOString());
  });

  it("has 96 quarter-hour buckets for 24h", () => {
    const result = new HistoryTally("24h", T).result(undefined, { scanned: 0 });
    expect(result.bucketSeconds).toBe(900);
    expect(result.buckets).toHaveLength(96);
    expect(result.buckets.at(-1)?.start).toBe("2026-12-07T10:30:00.000Z");
    expect(result.buckets[0]?.start).toBe("2026-12-06T10:45:00.000Z");
  });

  it("counts each record in the bucket of its time, by series and host, and drops the rest", () => {
    const tally = new HistoryTally("1h", T);
    expect(tally.add("restarts", "a", Date.parse("2026-12-07T10:30:01.000Z"))).toBe(true);
    expect(tally.add("restarts", "b", Date.parse("2026-12-07T10:29:59.999Z"))).toBe(true);
    expect(tally.add("unhealthy", "a", Date.parse("2026-12-07T09:31:00.000Z"))).toBe(true);
    expect(tally.add("failed", "a", Date.parse("2026-12-07T10:30:59.999Z"))).toBe(true);
    // Before the first bucket (an ordered consumer may go back), and after the last.
    expect(tally.add("restarts", "a", Date.parse("2026-12-07T09:30:59.999Z"))).toBe(false);
    expect(tally.add("restarts", "a", Date.parse("2026-12-07T10:31:00.000Z"))).toBe(false);
    expect(tally.add("restarts", "a", Number.NaN)).toBe(false);
    const result = tally.result(undefined, { scanned: 7 });
    expect(result.buckets.at(-1)).toMatchObject({ restarts: 1, failed: 1, unhealthy: 0 });
    expect(result.buckets.at(-2)).toMatchObject({ restarts: 1, failed: 0, unhealthy: 0 });
    expect(result.buckets[0]).toMatchObject({ restarts: 0, failed: 0, unhealthy: 1 });
    expect(result.totals).toEqual({ restarts: 2, failed: 1, unhealthy: 1 });
    expect(result.hosts).toEqual([
      { host: "a", restarts: 1, failed: 1, unhealthy: 1 },
      { host: "b", restarts: 1, failed: 0, unhealthy: 0 },
    ]);
    expect(result.scanned).toBe(7);
    expect(result.truncated).toBeUndefined();
    // The buckets add up to the totals.
    const sum = result.buckets.reduce((n, b) => n + b.restarts + b.failed + b.unhealthy, 0);
    expect(sum).toBe(4);
  });

  it("lists the busiest hosts only, and says how many more there are", () => {
    const tally = new HistoryTally("1h", T);
    for (let i = 0; i < MAX_HOSTS_LISTED + 5; i++) tally.add("restarts", `h${i}`, T);
    tally.add("restarts", "h7", T);
    const result = tally.result(undefined, { scanned: 1, truncated: "scan-limit" });
    expect(result.hosts).toHaveLength(MAX_HOSTS_LISTED);
    expect(result.hosts[0]).toMatchObject({ host: "h7", restarts: 2 });
    expect(result.hostsOmitted).toBe(5);
    expect(result.totals.restarts).toBe(MAX_HOSTS_LISTED + 6);
    expect(result.truncated).toBe("scan-limit");
  });
});

describe("countedAs", () => {
  it("counts restarted and failed records by subject, and no other phase", () => {
    expect(countedAs(`fleetheal.v1.act.h1.${CID}.restarted`, none)).toEqual({
      series: "restarts",
      host: "h1",
    });
    expect(countedAs(`fleetheal.v1.act.h1.${CID}.failed`, none)).toEqual({
      series: "failed",
      host: "h1",
    });
    expect(countedAs(`fleetheal.v1.act.h1.${CID}.skipped`, none)).toBeUndefined();
    expect(countedAs(`fleetheal.v1.act.h1.${CID}.bogus`, none)).toBeUndefined();
    expect(countedAs(`fleetheal.v1.evt.h1.${CID}.restart`, none)).toBeUndefined();
  });

  it("counts unhealthy transitions, not resync re-assertions nor payloads that do not fit", () => {
    const subject = `fleetheal.v1.evt.h1.${CID}.unhealthy`;
    const event = (source: "docker" | "resync" | "probe", host = "h1") =>
      encode(containerEvent({ host, action: "unhealthy", source, container: { id: CID } }));
    expect(countedAs(subject, () => event("docker"))).toEqual({ series: "unhealthy", host: "h1" });
    expect(countedAs(subject, () => event("probe"))).toEqual({ series: "unhealthy", host: "h1" });
    expect(countedAs(subject, () => event("resync"))).toBeUndefined();
    expect(countedAs(subject, () => event("docker", "h2"))).toBeUndefined();
    expect(countedAs(subject, () => encode({ not: "an event" }))).toBeUndefined();
    expect(countedAs(subject, () => new TextEncoder().encode("{"))).toBeUndefined();
  });

  it("matches what the series' filter subjects select", () => {
    expect(seriesSubject("restarts", undefined)).toBe("fleetheal.v1.act.*.*.restarted");
    expect(seriesSubject("failed", "h1")).toBe("fleetheal.v1.act.h1.*.failed");
    expect(seriesSubject("unhealthy", "h1")).toBe("fleetheal.v1.evt.h1.*.unhealthy");
  });
});
