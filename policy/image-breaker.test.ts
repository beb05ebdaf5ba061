import { describe, expect, it } from "vitest";
import { HealPolicy, ImageFailures } from "../contracts/index.js";
import {
  type BreakerState,
  hostShare,
  type ImageFailure,
  type ImageRef,
  imageKey,
  recordImageFailure,
  storedBreakerVerdict,
} from "./image-breaker.js";

const T0 = Date.parse("2026-11-27T20:00:00.000Z");
const WEB: ImageRef = { id: `sha256:${"ab".repeat(32)}`, name: "web:1" };
const ONE_HOST = { severalHosts: false };
const SEVERAL_HOSTS = { severalHosts: true };
const policy = (failures: number, windowSeconds = 60) =>
  HealPolicy.parse({ storm: { imageBreaker: { failures, windowSeconds } } });
const failure = (n: number, atSeconds: number, incident = "run-1") => ({
  at: T0 + atSeconds * 1000,
  host: `h${n % 2}`,
  containerId: `${n}`.padStart(12, "0"),
  incident,
});
/** Container `n` of `host` fails at `atSeconds`. */
const on = (host: string, n: number, atSeconds = 0): ImageFailure => ({
  at: T0 + atSeconds * 1000,
  host,
  containerId: `${n}`.padStart(12, "0"),
  incident: "run-1",
});

/** Counts the failures in order, as one entry; returns the state after each. */
function countAll(
  failures: ImageFailure[],
  threshold: number,
  fleet = ONE_HOST,
  image = WEB,
): BreakerState[] {
  let entry: ImageFailures | undefined;
  return failures.map((f) => {
    const state = recordImageFailure(entry, image, f, policy(threshold), fleet);
    expect(ImageFailures.parse(state.entry)).toEqual(state.entry);
    entry = state.entry;
    return state;
  });
}

describe("recordImageFailure", () => {
  it("opens when the threshold of distinct failing containers is reached in the window", () => {
    const states = countAll(
      [0, 1, 2].map((n) => failure(n, n)),
      3,
    );
    expect(states.map((s) => [s.count, s.open])).toEqual([
      [1, false],
      [2, false],
      [3, true],
    ]);
  });

  it("counts an incident once, however often it is seen (redeliveries)", () => {
    const first = recordImageFailure(undefined, WEB, failure(1, 0), policy(2), ONE_HOST);
    const again = recordImageFailure(first.entry, WEB, failure(1, 5), policy(2), ONE_HOST);
    expect(again.entry).toEqual(first.entry);
    expect(again.open).toBe(false);
  });

  it("keeps a container once, with its latest incident; an older run's copy changes nothing", () => {
    const first = recordImageFailure(undefined, WEB, failure(1, 0, "run-1"), policy(2), ONE_HOST);
    const second = recordImageFailure(
      first.entry,
      WEB,
      failure(1, 5, "run-2"),
      policy(2),
      ONE_HOST,
    );
    expect(second.entry.failures.map((f) => f.incident)).toEqual(["run-2"]);
    expect([second.count, second.open]).toEqual([1, false]);
    const late = recordImageFailure(second.entry, WEB, failure(1, 1, "run-1"), policy(2), ONE_HOST);
    expect(late.entry).toEqual(second.entry);
  });

  it("forgets failures older than the window, so the breaker closes again", () => {
    const first = recordImageFailure(undefined, WEB, failure(1, 0), policy(2, 60), ONE_HOST);
    const later = recordImageFailure(first.entry, WEB, failure(2, 61), policy(2, 60), ONE_HOST);
    expect(later.entry.failures.map((f) => f.containerId)).toEqual(["000000000002"]);
    expect(later.open).toBe(false);
  });

  it("never opens with a threshold of 0", () => {
    const states = countAll(
      Array.from({ length: 50 }, (_, n) => failure(n, 0)),
      0,
    );
    expect(states.some((s) => s.open)).toBe(false);
  });

  it("keeps the image's id and name in the entry; a name alone when the event has no id", () => {
    const byId = recordImageFailure(undefined, WEB, failure(1, 0), policy(2), ONE_HOST);
    expect(byId.entry).toMatchObject({ image: "web:1", imageId: WEB.id });
    const byName = recordImageFailure(undefined, { name: "web:1" }, failure(1, 0), policy(2), {
      severalHosts: false,
    });
    expect(byName.entry.image).toBe("web:1");
    expect(byName.entry).not.toHaveProperty("imageId");
  });
});

describe("recordImageFailure: one host's share", () => {
  it("is half the threshold, rounded up", () => {
    expect([1, 2, 3, 4, 5, 20].map(hostShare)).toEqual([1, 1, 2, 2, 3, 10]);
  });

  it("in a fleet of several hosts, one host cannot open the breaker, however many fail", () => {
    const states = countAll(
      Array.from({ length: 30 }, (_, n) => on("attacker", n)),
      4,
      SEVERAL_HOSTS,
    );
    expect(states.some((s) => s.open)).toBe(false);
    const last = states.at(-1);
    // Counted for its share only; kept up to the threshold, so that it cannot fill the entry.
    expect(last).toMatchObject({ count: 2, containers: 4, hosts: 1 });
    expect(last?.entry.failures).toHaveLength(4);
    // Newest first: the containers kept are the latest to fail.
    expect(last?.entry.failures[0]?.containerId).toBe("000000000029");
  });

  it("failures on two hosts open it", () => {
    const states = countAll(
      [on("a", 1), on("a", 2), on("a", 3), on("b", 4), on("b", 5)],
      4,
      SEVERAL_HOSTS,
    );
    expect(states.map((s) => [s.count, s.open])).toEqual([
      [1, false],
      [2, false],
      // Host a's third container counts no more.
      [2, false],
      [3, false],
      [4, true],
    ]);
    expect(states.at(-1)).toMatchObject({ containers: 5, hosts: 2 });
  });

  it("with a threshold of 1, two hosts must fail too", () => {
    const states = countAll([on("a", 1), on("a", 2), on("b", 3)], 1, SEVERAL_HOSTS);
    expect(states.map((s) => s.open)).toEqual([false, false, true]);
  });

  it("on a one-host fleet that host counts in full, as before", () => {
    const states = countAll(
      [1, 2, 3, 4].map((n) => on("only", n)),
      4,
      ONE_HOST,
    );
    expect(states.map((s) => [s.count, s.open])).toEqual([
      [1, false],
      [2, false],
      [3, false],
      [4, true],
    ]);
  });

  it("a host beyond the threshold pushes out only its own oldest containers", () => {
    const states = countAll(
      [on("b", 100), ...Array.from({ length: 10 }, (_, n) => on("a", n))],
      3,
      SEVERAL_HOSTS,
    );
    const kept = states.at(-1)?.entry.failures.map((f) => `${f.host}/${Number(f.containerId)}`);
    expect(kept).toEqual(["a/9", "a/8", "a/7", "b/100"]);
    expect(states.at(-1)).toMatchObject({ count: 3, open: true });
  });
});

describe("storedBreakerVerdict", () => {
  it("gives the verdict of the last count while its failures are in the window", () => {
    const states = countAll([on("a", 1), on("a", 2), on("b", 3), on("b", 4)], 4, SEVERAL_HOSTS);
    const last = states.at(-1);
    expect(last?.open).toBe(true);
    const { entry: _entry, ...expected } = last as BreakerState;
    expect(
      storedBreakerVerdict(last?.entry as ImageFailures, T0, policy(4), SEVERAL_HOSTS),
    ).toEqual(expected);
  });

  it("closes as time passes the window, with no new failure", () => {
    const { entry } = countAll([on("a", 1, 0), on("b", 2, 30)], 2, SEVERAL_HOSTS).at(
      -1,
    ) as BreakerState;
    const at = (seconds: number) =>
      storedBreakerVerdict(entry, T0 + seconds * 1000, policy(2, 60), SEVERAL_HOSTS);
    expect(at(60)).toMatchObject({ open: true, count: 2, hosts: 2 });
    // Host a's failure left the window: one host alone cannot hold the breaker open.
    expect(at(61)).toMatchObject({ open: false, count: 1, hosts: 1 });
    expect(at(91)).toMatchObject({ open: false, count: 0, hosts: 0 });
  });

  it("follows the policy in force: a threshold of 0 is never open", () => {
    const { entry } = countAll([on("a", 1), on("b", 2)], 2, SEVERAL_HOSTS).at(-1) as BreakerState;
    expect(storedBreakerVerdict(entry, T0, policy(2), SEVERAL_HOSTS).open).toBe(true);
    expect(storedBreakerVerdict(entry, T0, policy(0), SEVERAL_HOSTS).open).toBe(false);
    expect(storedBreakerVerdict(entry, T0, policy(3), SEVERAL_HOSTS).open).toBe(false);
  });
});

describe("imageKey", () => {
  it("is a valid KV key, stable and distinct", () => {
    expect(imageKey({ name: "registry.example:5000/team/web@sha256:abc" })).toMatch(
      /^img-[0-9a-f]{32}$/,
    );
    expect(imageKey(WEB)).toMatch(/^imgid-[0-9a-f]{32}$/);
    expect(imageKey({ name: "web:1" })).toBe(imageKey({ name: "web:1" }));
    expect(imageKey({ name: "web:1" })).not.toBe(imageKey({ name: "web:2" }));
  });

  it("is the image's id when there is one: one id under two names is one image", () => {
    expect(imageKey({ id: WEB.id, name: "web:1" })).toBe(imageKey({ id: WEB.id, name: "web:2" }));
    expect(imageKey({ id: `sha256:${"cd".repeat(32)}`, name: "web:1" })).not.toBe(imageKey(WEB));
  });

  it("falls back to the name without an id; a name never stands for an id", () => {
    expect(imageKey({ name: "web:1" })).not.toBe(imageKey(WEB));
    expect(imageKey({ name: WEB.id as string })).not.toBe(imageKey(WEB));
  });
});
