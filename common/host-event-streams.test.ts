import { DiscardPolicy, type StreamConfig } from "@nats-io/jetstream";
import { describe, expect, it } from "vitest";
import { EVENTS_STREAM, SUBJECTS } from "../contracts/index.js";
import { InMemoryStreams } from "../test/support/host-streams-memory.js";
import {
  ensureHostEventStreams,
  fleetStreamChange,
  hostEventsStream,
  hostEventsStreamConfig,
} from "./host-event-streams.js";
import { FILTER_ANCHOR_SOURCE } from "./jetstream-resources.js";

const DAY_NS = 86_400_000_000_000;
const ANCHOR = { name: FILTER_ANCHOR_SOURCE.name, external: { ...FILTER_ANCHOR_SOURCE.external } };
const HOUR_MS = 3_600_000;
const SETTINGS = { hostMaxBytes: 4 * 1024 * 1024, hostWindowMs: 24 * HOUR_MS };

function fleetStream(patch: Partial<StreamConfig> = {}): StreamConfig {
  return {
    name: EVENTS_STREAM,
    subjects: [SUBJECTS.remediations],
    max_age: 7 * DAY_NS,
    max_bytes: 1024 ** 3,
    duplicate_window: 600_000_000_000,
    num_replicas: 3,
    sources: [ANCHOR],
    ...patch,
  } as StreamConfig;
}

describe("hostEventsStreamConfig", () => {
  it("bounds the host by its share of one window, refusing new messages past it", () => {
    const config = hostEventsStreamConfig("web-1", SETTINGS, fleetStream());
    expect(config).toMatchObject({
      name: "FLEETHEAL_EVENTS_HOST_web-1",
      subjects: ["fleetheal.v1.evt.web-1.>"],
      discard: DiscardPolicy.New,
      max_bytes: SETTINGS.hostMaxBytes,
      max_age: DAY_NS,
      duplicate_window: 600_000_000_000,
      num_replicas: 3,
    });
  });

  it("never keeps a host's messages longer than the fleet's stream does", () => {
    const fleet = fleetStream({ max_age: DAY_NS / 2 });
    const week = { ...SETTINGS, hostWindowMs: 7 * 24 * HOUR_MS };
    expect(hostEventsStreamConfig("a", week, fleet).max_age).toBe(DAY_NS / 2);
    // A fleet stream kept forever (max_age 0) leaves the window as it is.
    expect(hostEventsStreamConfig("a", week, fleetStream({ max_age: 0 })).max_age).toBe(7 * DAY_NS);
  });

  it("deduplicates within the window, as the server requires", () => {
    const minute = { ...SETTINGS, hostWindowMs: 60_000 };
    expect(hostEventsStreamConfig("a", minute, fleetStream()).duplicate_window).toBe(
      60_000_000_000,
    );
    // The server's default window (0) stays the default.
    const fleet = fleetStream({ duplicate_window: 0 });
    expect(hostEventsStreamConfig("a", SETTINGS, fleet).duplicate_window).toBe(0);
  });
});

describe("fleetStreamChange", () => {
  it("drops the subject of the old layout, which would overlap every ingest stream, and anchors the filters", () => {
    const change = fleetStreamChange(
      fleetStream({ subjects: [SUBJECTS.events, SUBJECTS.remediations], sources: undefined }),
      [],
    );
    expect(change).toEqual({
      subjects: [SUBJECTS.remediations],
      sources: [FILTER_ANCHOR_SOURCE],
      added: [],
    });
  });

  it("adds the missing sources and keeps an operator's", () => {
    const operator = { name: "OTHER", external: { api: "$JS.x.API" } };
    const current = fleetStream({
      sources: [ANCHOR, operator, { name: hostEventsStream("a") }],
    });
    const change = fleetStreamChange(current, [hostEventsStream("a"), hostEventsStream("b")]);
    expect(change).toEqual({
      sources: [ANCHOR, operator, { name: hostEventsStream("a") }, { name: hostEventsStream("b") }],
      added: [hostEventsStream("b")],
    });
  });

  it("has nothing to change once every ingest stream is sourced", () => {
    const current = fleetStream({ sources: [ANCHOR, { name: hostEventsStream("a") }] });
    expect(fleetStreamChange(current, [hostEventsStream("a")])).toBeUndefined();
  });
});

describe("ensureHostEventStreams", () => {
  it("migrates the old layout, then creates and sources each host's stream", async () => {
    const js = new InMemoryStreams();
    js.streams.set(
      EVENTS_STREAM,
      fleetStream({ subjects: [SUBJECTS.events, SUBJECTS.remediations], sources: undefined }),
    );
    const pass = await ensureHostEventStreams(js, ["a", "b"], SETTINGS);
    expect(pass).toMatchObject({ migrated: true, created: ["a", "b"], failed: [] });
    expect(js.streams.get(EVENTS_STREAM)).toMatchObject({
      subjects: [SUBJECTS.remediations],
      sources: [ANCHOR, { name: hostEventsStream("a") }, { name: hostEventsStream("b") }],
    });
    expect(js.streams.get(hostEventsStream("a"))?.max_bytes).toBe(SETTINGS.hostMaxBytes);
  });

  it("changes nothing on a second pass", async () => {
    const js = new InMemoryStreams();
    js.streams.set(EVENTS_STREAM, fleetStream());
    await ensureHostEventStreams(js, ["a"], SETTINGS);
    js.calls.length = 0;
    const pass = await ensureHostEventStreams(js, ["a"], SETTINGS);
    expect(pass).toMatchObject({ migrated: false, created: [], sourced: [] });
    expect(js.calls.filter((c) => !c.startsWith("info"))).toEqual([]);
  });

  it("re-adds a source that a concurrent update dropped", async () => {
    const js = new InMemoryStreams();
    js.streams.set(EVENTS_STREAM, fleetStream());
    // Another replica sources "b" between this pass's read and its update, which then wins.
    js.beforeUpdate = () => {
      const fleet = js.streams.get(EVENTS_STREAM) as StreamConfig;
      js.streams.set(EVENTS_STREAM, {
        ...fleet,
        sources: [ANCHOR, { name: hostEventsStream("b") }],
      });
    };
    await ensureHostEventStreams(js, ["a"], SETTINGS);
    expect(js.streams.get(EVENTS_STREAM)?.sources).toEqual([
      ANCHOR,
      { name: hostEventsStream("a") },
    ]);
    await ensureHostEventStreams(js, ["a", "b"], SETTINGS);
    expect(js.streams.get(EVENTS_STREAM)?.sources).toEqual([
      ANCHOR,
      { name: hostEventsStream("a") },
      { name: hostEventsStream("b") },
    ]);
  });

  it("does nothing before the fleet stream exists", async () => {
    const js = new InMemoryStreams();
    expect(await ensureHostEventStreams(js, ["a"], SETTINGS)).toMatchObject({
      noFleetStream: true,
      created: [],
    });
    expect(js.streams.size).toBe(0);
  });

  it("reports a host whose stream cannot be created, and sources the others", async () => {
    const js = new InMemoryStreams();
    js.streams.set(EVENTS_STREAM, fleetStream());
    js.streams.set("SQUATTER", {
      name: "SQUATTER",
      subjects: ["fleetheal.v1.evt.b.>"],
    } as StreamConfig);
    const pass = await ensureHostEventStreams(js, ["a", "b"], SETTINGS);
    expect(pass.failed).toEqual([{ host: "b", error: "subjects overlap with an existing stream" }]);
    expect(js.streams.get(EVENTS_STREAM)?.sources).toEqual([
      ANCHOR,
      { name: hostEventsStream("a") },
    ]);
  });
});
