import { describe, expect, it } from "vitest";
import { type ContainerEvent, MonitoredContainer } from "../contracts/index.js";
import { containerEvent } from "../test/support/fixtures.js";
import { fakeHandlerContext } from "../test/support/handler-context.js";
import { autoMonitorHandler, decideAutoMonitor } from "./auto-monitor.js";
import type { Decision } from "./decisions.js";

const CID = "4f1c2b3a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a";

function startEvent(
  patch: { optedIn?: boolean; time?: string; action?: ContainerEvent["action"] } = {},
): ContainerEvent {
  return containerEvent({
    id: `host-a:${CID}:1795808489981234560:start`,
    host: "host-a",
    action: patch.action ?? "start",
    timeNano: "1795808489981234560",
    time: patch.time ?? "2026-11-27T19:41:29.981Z",
    container: {
      id: CID,
      name: "shop_web_1",
      image: "nginx:1.27",
      labels: { autoheal: "true" },
      optedIn: patch.optedIn ?? true,
      startedAt: "2026-11-27T19:41:29.98123456Z",
    },
  });
}

const ctx = fakeHandlerContext({ now: new Date("2026-11-27T19:41:30.000Z") });

function updateOf(decisions: Decision[]) {
  const d = decisions.find((x) => x.kind === "update");
  if (d?.kind !== "update") throw new Error("no update decision");
  return d;
}

describe("autoMonitorHandler", () => {
  it("subscribes to start events", () => {
    expect(autoMonitorHandler().subject).toBe("fleetheal.v1.evt.*.*.start");
    expect(autoMonitorHandler().name).toBe("auto-monitor");
  });
});

describe("decideAutoMonitor", () => {
  it("not opted in -> nothing", () => {
    expect(decideAutoMonitor(startEvent({ optedIn: false }), ctx)).toEqual([]);
  });

  it("other actions -> nothing", () => {
    expect(decideAutoMonitor(startEvent({ action: "die" }), ctx)).toEqual([]);
  });

  it("opted in -> an update of the monitored store and an info log", () => {
    const decisions = decideAutoMonitor(startEvent(), ctx);
    expect(decisions.map((d) => d.kind)).toEqual(["update", "log"]);
    const update = updateOf(decisions);
    expect(update.store).toBe("monitored");
    expect(update.key).toBe(`host-a.${CID}`);
    const log = decisions[1];
    expect(log).toEqual({
      kind: "log",
      level: "info",
      msg: "Auto-monitoring enabled for container 'shop_web_1' (4f1c2b3a9d8e) on host host-a",
      fields: { host: "host-a", containerId: CID, name: "shop_web_1", image: "nginx:1.27" },
    });
  });

  it("first start: starts 1, firstSeenAt = event time", () => {
    const next = updateOf(decideAutoMonitor(startEvent(), ctx)).update(undefined);
    expect(MonitoredContainer.parse(next)).toEqual({
      v: 1,
      host: "host-a",
      containerId: CID,
      name: "shop_web_1",
      image: "nginx:1.27",
      firstSeenAt: "2026-11-27T19:41:29.981Z",
      lastStartedAt: "2026-11-27T19:41:29.981Z",
      starts: 1,
    });
  });

  it("a later start counts one more and keeps firstSeenAt", () => {
    const previous: MonitoredContainer = {
      v: 1,
      host: "host-a",
      containerId: CID,
      name: "old_name",
      image: "nginx:1.26",
      firstSeenAt: "2026-11-01T00:00:00.000Z",
      lastStartedAt: "2026-11-20T00:00:00.000Z",
      starts: 4,
    };
    const next = updateOf(decideAutoMonitor(startEvent(), ctx)).update(previous);
    expect(next).toEqual({
      v: 1,
      host: "host-a",
      containerId: CID,
      name: "shop_web_1",
      image: "nginx:1.27",
      firstSeenAt: "2026-11-01T00:00:00.000Z",
      lastStartedAt: "2026-11-27T19:41:29.981Z",
      starts: 5,
    });
  });

  it("a redelivered start (same lastStartedAt) does not count twice", () => {
    const update = updateOf(decideAutoMonitor(startEvent(), ctx)).update;
    const once = update(undefined) as MonitoredContainer;
    const twice = update(once) as MonitoredContainer;
    expect(twice.starts).toBe(1);
    expect(twice).toEqual(once);
  });
});
