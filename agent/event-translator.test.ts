import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { ContainerEvent, decode } from "../contracts/index.js";
import type { ContainerDetails } from "./docker-engine.js";
import { EventTranslator } from "./event-translator.js";
import { HostState } from "./host-state.js";
import type { OutboxMessage } from "./outbox.js";
import type { Reported } from "./reconciler.js";

const A = "a1".repeat(32);
const NOW = new Date("2026-11-27T20:00:00.000Z");
const STARTED = "2026-11-27T19:00:00.000Z";

const web: ContainerDetails = {
  id: A,
  name: "web",
  image: "nginx:1.27",
  imageId: `sha256:${"c3".repeat(32)}`,
  state: "running",
  health: "healthy",
  labels: { autoheal: "true", "com.example.team": "shop" },
  startedAt: STARTED,
  restartCount: 0,
  failingStreak: 0,
  hasHealthcheck: true,
  ipAddresses: [],
};

/** A translator on a real HostState, collecting what it enqueues and what it notes. */
function setup(containers: ContainerDetails[], told: Record<string, Reported> = {}) {
  const state = new HostState({
    host: "host-a",
    version: "0.0.0",
    startedAt: NOW,
    heartbeatMs: 60_000,
    optIn: { label: "autoheal", watchAll: false },
    commandKeys: [],
    acceptsUnsignedCommands: false,
  });
  for (const c of containers) state.upsert(c);
  const sent: OutboxMessage[] = [];
  const noted: string[] = [];
  const stats = { forwarded: 0, synthesized: 0, invalidEvents: 0 };
  const translator = new EventTranslator({
    hostId: "host-a",
    label: "autoheal",
    state,
    reported: {
      told: (id) => told[id],
      note: (id, action, _identity, since) =>
        noted.push(`${id.slice(0, 4)}:${action}${since ? ` since ${since}` : ""}`),
      // The reconciler's rule, in short: a re-assertion carries what subscribers were told.
      unhealthySince: (id, at, resync) => (resync ? told[id]?.unhealthySince : at),
    },
    healthOutput: (id) => state.get(id)?.lastHealthOutput,
    enqueue: (message) => sent.push(message),
    log: pino({ level: "silent" }),
    now: () => NOW,
    stats,
  });
  const events = () =>
    sent.map((m) => {
      const d = decode(ContainerEvent, m.payload);
      if (!d.ok) throw new Error(d.error.message);
      return d.value;
    });
  return { translator, sent, noted, stats, events };
}

describe("EventTranslator", () => {
  it("names a Docker event's container from the state, with its opt-in labels only", () => {
    const t = setup([web]);
    t.translator.docker(A, "unhealthy", "1764273600000000001", {});
    const [event] = t.events();
    expect(event).toMatchObject({
      host: "host-a",
      action: "unhealthy",
      source: "docker",
      container: {
        name: "web",
        image: "nginx:1.27",
        imageId: web.imageId,
        labels: { autoheal: "true" },
        optedIn: true,
        startedAt: STARTED,
      },
    });
    expect(t.sent[0]).toMatchObject({
      subject: `fleetheal.v1.evt.host-a.${A}.unhealthy`,
      msgId: event?.id,
      timeNano: "1764273600000000001",
    });
    expect(t.noted).toEqual(["a1a1:unhealthy since 2025-11-27T20:00:00.000Z"]);
    expect(t.stats.forwarded).toBe(1);
  });

  it("says a die was asked for after a kill or stop, and a crash otherwise", () => {
    const t = setup([web]);
    t.translator.docker(A, "kill", "1", { signal: "15" });
    t.translator.docker(A, "die", "2", { exitCode: "143" });
    t.translator.docker(A, "start", "3", {});
    t.translator.docker(A, "die", "4", { exitCode: "1" });
    const dies = t.events().filter((e) => e.action === "die");
    expect(dies.map((e) => [e.stopped, e.exitCode])).toEqual([
      [true, 143],
      [false, 1],
    ]);
  });

  it("leaves out the known StartedAt on a Docker start, which begins a new run", () => {
    const t = setup([web]);
    t.translator.docker(A, "start", "1", {});
    expect(t.events()[0]?.container.startedAt).toBeUndefined();
  });

  it("stamps a synthetic event with the agent's clock and names a vanished container from the baseline", () => {
    const gone: Reported = {
      running: true,
      health: "healthy",
      name: "old-web",
      image: "nginx:1.26",
      imageId: undefined,
      labels: { autoheal: "true" },
      startedAt: STARTED,
    };
    const t = setup([], { [A]: gone });
    t.translator.synthesize(A, "destroy", "reconcile");
    t.translator.synthesize(A, "destroy", "reconcile");
    const [first, second] = t.events();
    expect(first).toMatchObject({
      source: "reconcile",
      time: NOW.toISOString(),
      container: { name: "old-web", image: "nginx:1.26", optedIn: true },
    });
    expect(first?.id).not.toBe(second?.id);
    expect(t.sent[0]?.timeNano).toBeUndefined();
    expect(t.stats).toMatchObject({ synthesized: 2, forwarded: 2 });
  });

  it("counts and drops an event that does not fit the contract", () => {
    const t = setup([web]);
    t.translator.docker(A, "die", "1", { exitCode: "not-a-number" });
    expect(t.sent).toEqual([]);
    expect(t.stats).toMatchObject({ invalidEvents: 1, forwarded: 0 });
  });

  it("an unhealthy event says since when and what the check printed; healthy only the output", () => {
    const t = setup([{ ...web, health: "unhealthy", lastHealthOutput: "\\u001b[31mdown" }]);
    t.translator.docker(A, "unhealthy", "1764273600000000001", {});
    t.translator.docker(A, "healthy", "1764273660000000000", {});
    t.translator.docker(A, "kill", "1764273670000000000", {});
    const [unhealthy, healthy, kill] = t.events();
    expect(unhealthy).toMatchObject({
      unhealthySince: "2025-11-27T20:00:00.000Z",
      healthOutput: "\\u001b[31mdown",
    });
    expect(healthy?.unhealthySince).toBeUndefined();
    expect(healthy?.healthOutput).toBe("\\u001b[31mdown");
    expect(kill?.healthOutput).toBeUndefined();
    expect(t.noted[0]).toBe("a1a1:unhealthy since 2025-11-27T20:00:00.000Z");
  });

  it("a resync re-asserts with the since subscribers were told, or none when unknown", () => {
    const since = "2026-11-27T19:50:00.000Z";
    const told: Reported = {
      running: true,
      health: "unhealthy",
      name: "web",
      image: "nginx:1.27",
      imageId: undefined,
      labels: { autoheal: "true" },
      startedAt: STARTED,
      unhealthySince: since,
    };
    const t = setup([{ ...web, health: "unhealthy", lastHealthOutput: "timeout" }], { [A]: told });
    t.translator.synthesize(A, "unhealthy", "resync");
    expect(t.events()[0]).toMatchObject({
      action: "unhealthy",
      source: "resync",
      time: NOW.toISOString(),
      unhealthySince: since,
      healthOutput: "timeout",
    });
    const unknown = setup([{ ...web, health: "unhealthy" }], {
      [A]: { ...told, unhealthySince: undefined },
    });
    unknown.translator.synthesize(A, "unhealthy", "resync");
    expect(unknown.events()[0]?.unhealthySince).toBeUndefined();
    expect(unknown.events()[0]?.healthOutput).toBeUndefined();
  });
});
