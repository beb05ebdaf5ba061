import { pino } from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ContainerAction } from "../contracts/index.js";
import type { DockerContainerEvent } from "./docker-event.js";
import { InspectFirst } from "./inspect-first.js";

const A = "a1".repeat(32);
const B = "b2".repeat(32);

const event = (containerId: string, action: ContainerAction, timeNano: string) =>
  ({ containerId, action, timeNano, attributes: {} }) satisfies DockerContainerEvent;

/** A hold whose inspects the test finishes, recording what is forwarded and when. */
function setup(waitMs = 2_000) {
  const inspects = new Map<string, () => void>();
  const forwarded: string[] = [];
  const hold = new InspectFirst({
    refresh: (id) =>
      new Promise<void>((resolve) => {
        forwarded.push(`inspect ${id.slice(0, 2)}`);
        inspects.set(id, resolve);
      }),
    forward: (e, inspected) =>
      forwarded.push(`${e.action} ${e.containerId.slice(0, 2)}${inspected ? " (inspected)" : ""}`),
    waitMs,
    log: pino({ level: "silent" }),
  });
  const inspected = async (id: string) => {
    inspects.get(id)?.();
    await hold.idle();
  };
  return { hold, forwarded, inspected };
}

afterEach(() => {
  vi.useRealTimers();
});

describe("InspectFirst", () => {
  it("forwards other events at once", () => {
    const h = setup();
    h.hold.push(event(A, "die", "1"));
    expect(h.forwarded).toEqual(["die a1"]);
    expect(h.hold.holds(A)).toBe(false);
  });

  it("holds a health event until its inspect, with the container's later events behind it", async () => {
    const h = setup();
    h.hold.push(event(A, "unhealthy", "1"));
    h.hold.push(event(B, "start", "2"));
    h.hold.push(event(A, "die", "3"));
    expect(h.forwarded).toEqual(["inspect a1", "start b2"]);
    expect(h.hold.holds(A)).toBe(true);
    expect(h.hold.oldestTimeNano()).toBe("1");
    await h.inspected(A);
    expect(h.forwarded).toEqual(["inspect a1", "start b2", "unhealthy a1 (inspected)", "die a1"]);
    expect(h.hold.holds(A)).toBe(false);
    expect(h.hold.oldestTimeNano()).toBeUndefined();
  });

  it("names the oldest event held across containers", () => {
    const h = setup();
    h.hold.push(event(B, "healthy", "20000000000000000000"));
    h.hold.push(event(A, "unhealthy", "9000000000000000000"));
    expect(h.hold.oldestTimeNano()).toBe("9000000000000000000");
  });

  it("does not wait longer than waitMs for an inspect", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const h = setup(500);
    h.hold.push(event(A, "unhealthy", "1"));
    await vi.advanceTimersByTimeAsync(499);
    expect(h.forwarded).toEqual(["inspect a1"]);
    await vi.advanceTimersByTimeAsync(1);
    await h.hold.idle();
    expect(h.forwarded).toEqual(["inspect a1", "unhealthy a1"]);
  });
});
