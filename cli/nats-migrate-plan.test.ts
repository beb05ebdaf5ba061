import { describe, expect, it } from "vitest";
import type { ExportedConsumer } from "./nats-migrate-file.js";
import {
  DurablePositions,
  LastValues,
  MIGRATED_STREAMS,
  type MigratedStream,
  publisherKey,
  publisherOf,
  resumePoint,
} from "./nats-migrate-plan.js";

describe("MIGRATED_STREAMS", () => {
  it("carries every stream but the storm guard's buckets, events first", () => {
    expect(MIGRATED_STREAMS.map((s) => s.name)).toEqual([
      "FLEETHEAL_EVENTS",
      "FLEETHEAL_DLQ",
      "KV_fleetheal_hosts",
      "KV_fleetheal_ledger",
      "KV_fleetheal_monitored",
      "KV_fleetheal_config",
      "KV_fleetheal_breakers",
    ]);
  });
});

describe("publisherOf", () => {
  it("gives a host's events and snapshot key to its agent, the rest to the handler", () => {
    expect(publisherOf("fleetheal.v1.evt.web-1.abc.start")).toEqual({
      role: "agent",
      host: "web-1",
    });
    expect(publisherOf("$KV.fleetheal_hosts.web-1")).toEqual({ role: "agent", host: "web-1" });
    expect(publisherOf("fleetheal.v1.act.web-1.abc.restarted")).toEqual({ role: "handler" });
    expect(publisherOf("fleetheal.v1.dlq.heal")).toEqual({ role: "handler" });
    expect(publisherOf("$KV.fleetheal_ledger.web-1.abc")).toEqual({ role: "handler" });
    expect(publisherOf("$KV.fleetheal_config.policy")).toEqual({ role: "handler" });
  });

  it("finds no user for a subject that names no valid host", () => {
    expect(publisherOf("fleetheal.v1.evt.h%st.abc.start")).toBeUndefined();
    expect(publisherOf("$KV.fleetheal_hosts.a.b")).toBeUndefined();
  });

  it("keys connections by user", () => {
    expect(publisherKey({ role: "handler" })).toBe("handler");
    expect(publisherKey({ role: "agent", host: "h" })).toBe("agent:h");
  });
});

describe("DurablePositions", () => {
  const consumer = (name: string, filter: string, ackFloor: number): ExportedConsumer => ({
    t: "consumer",
    stream: "FLEETHEAL_EVENTS",
    name,
    filter,
    ackFloor,
    delivered: ackFloor,
    ackPending: 0,
  });

  it("starts each durable after the imported events at or below its floor, gaps and all", () => {
    const positions = new DurablePositions([
      consumer("fleetheal-heal", "fleetheal.v1.evt.>", 105),
      consumer("fleetheal-auto-monitor", "fleetheal.v1.evt.*.*.start", 103),
      consumer("fleetheal-dependents", "fleetheal.v1.act.*.*.restarted", 0),
    ]);
    // The old stream began at 101 (older events aged out) and 104 was never imported.
    const events: [number, string][] = [
      [101, "fleetheal.v1.evt.h.c.start"],
      [102, "fleetheal.v1.act.h.c.restarted"],
      [103, "fleetheal.v1.evt.h.c.stop"],
      [105, "fleetheal.v1.evt.h.c.start"],
      [106, "fleetheal.v1.evt.h.c.unhealthy"],
      [107, "fleetheal.v1.act.h.c.restarted"],
    ];
    for (const [seq, subject] of events) positions.observe(seq, subject);
    expect(
      positions.result.map(({ consumer: c, passed, toHandle }) => [c.name, passed, toHandle]),
    ).toEqual([
      ["fleetheal-heal", 4, 1],
      ["fleetheal-auto-monitor", 3, 1],
      ["fleetheal-dependents", 0, 2],
    ]);
  });
});

describe("LastValues", () => {
  it("keeps each subject's last message, in the order of those, and drops deleted keys", () => {
    const last = new LastValues();
    const m = (oldSeq: number, subject: string, del = false) => ({
      oldSeq,
      subject,
      headers: del ? ([["KV-Operation", "DEL"]] as [string, string][]) : [],
      data: "",
    });
    last.add(m(1, "$KV.b.a"));
    last.add(m(2, "$KV.b.b"));
    last.add(m(3, "$KV.b.a"));
    last.add(m(4, "$KV.b.gone"));
    last.add(m(5, "$KV.b.gone", true));
    expect(last.values().map((v) => v.oldSeq)).toEqual([2, 3]);
  });
});

describe("resumePoint", () => {
  const events = MIGRATED_STREAMS[0] as MigratedStream;
  const ledger = MIGRATED_STREAMS[3] as MigratedStream;

  it("starts an empty stream at the beginning", () => {
    expect(resumePoint(events, 10, { messages: 0, lastSeq: 0 }, false)).toEqual({ from: 0 });
  });

  it("goes on after what an interrupted import of the same file stored", () => {
    expect(resumePoint(events, 10, { messages: 4, lastSeq: 4 }, true)).toEqual({ from: 4 });
    // A bucket keeps a limited history: its middle may be gone.
    expect(resumePoint(ledger, 10, { messages: 2, lastSeq: 6 }, true)).toEqual({ from: 6 });
  });

  it("refuses a stream that holds other messages, and says why", () => {
    const refused = resumePoint(events, 10, { messages: 3, lastSeq: 3 }, false);
    expect(refused).toMatchObject({
      refuse: expect.stringMatching(/^FLEETHEAL_EVENTS holds 3 messages/),
    });
    expect((refused as { refuse: string }).refuse).toMatch(/durable consumers.*wrong event/);
    expect(resumePoint(events, 10, { messages: 11, lastSeq: 11 }, true)).toHaveProperty("refuse");
    expect(resumePoint(events, 10, { messages: 3, lastSeq: 4 }, true)).toHaveProperty("refuse");
    expect(resumePoint(ledger, 10, { messages: 1, lastSeq: 1 }, false)).toHaveProperty("refuse");
  });
});
