import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { HostSnapshot } from "../../contracts/index.js";
import { hostSnapshot } from "../../test/support/gateway-fakes.js";
import { FleetView, toHostRecord } from "./fleet-view.js";
import { StringPool } from "./snapshot-sharing.js";

const T0 = Date.parse("2026-11-27T20:00:00.000Z");
const HEALTH = ["healthy", "unhealthy", "starting", "none"] as const;

/** A container as the tests describe it; `slot` picks its id. */
interface Spec {
  slot: number;
  health: (typeof HEALTH)[number];
  failingStreak: number;
  labels: [string, string][];
  compose?: string;
}

/** What can happen to a host between two of its snapshots; most heartbeats change nothing. */
const edit = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ kind: "none" as const }) },
  fc.record({
    kind: fc.constant("health" as const),
    at: fc.nat(),
    health: fc.constantFrom(...HEALTH),
  }),
  fc.record({ kind: fc.constant("streak" as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant("label" as const),
    at: fc.nat(),
    key: fc.constantFrom("autoheal", "tier", "__proto__", "com.docker.compose.project"),
    value: fc.constantFrom("true", "web", "db"),
  }),
  fc.record({ kind: fc.constant("reorderLabels" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("compose" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("add" as const), slot: fc.nat(7) }),
  fc.record({ kind: fc.constant("remove" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("reorder" as const) }),
  fc.record({ kind: fc.constant("docker" as const) }),
);

const step = fc.record({ host: fc.constantFrom("a", "b"), edit });

type Edit = typeof edit extends fc.Arbitrary<infer T> ? T : never;

interface HostSpec {
  containers: Spec[];
  dockerDown: boolean;
  seq: number;
}

function applyEdit(spec: HostSpec, e: Edit): void {
  spec.seq++;
  const at = "at" in e && spec.containers.length ? e.at % spec.containers.length : -1;
  const c = spec.containers[at];
  if (e.kind === "health" && c) c.health = e.health;
  else if (e.kind === "streak" && c) c.failingStreak++;
  else if (e.kind === "label" && c) {
    const i = c.labels.findIndex(([k]) => k === e.key);
    if (i >= 0) c.labels.splice(i, 1, [e.key, e.value]);
    else c.labels.push([e.key, e.value]);
  } else if (e.kind === "reorderLabels" && c) c.labels.reverse();
  else if (e.kind === "compose" && c) c.compose = c.compose ? undefined : "shop";
  else if (e.kind === "remove" && c) spec.containers.splice(at, 1);
  else if (e.kind === "add" && !spec.containers.some((x) => x.slot === e.slot)) {
    spec.containers.push({ slot: e.slot, health: "healthy", failingStreak: 0, labels: [] });
  } else if (e.kind === "reorder") spec.containers.reverse();
  else if (e.kind === "docker") spec.dockerDown = !spec.dockerDown;
}

/** A freshly built snapshot, as decoding the agent's JSON would give. */
function snapshotOf(host: string, spec: HostSpec): HostSnapshot {
  const base = hostSnapshot(
    host,
    spec.containers.map((c) => c.health),
    {
      seq: spec.seq,
      docker: spec.dockerDown ? { status: "down", error: "gone" } : { status: "up" },
    },
  );
  base.containers = base.containers.map((c, i) => {
    const s = spec.containers[i] as Spec;
    const labels: Record<string, string> = {};
    // Own "__proto__" keys, as JSON.parse makes them from an agent's labels.
    for (const [k, v] of s.labels)
      Object.defineProperty(labels, k, { value: v, enumerable: true, writable: true });
    return {
      ...c,
      id: `${host.charCodeAt(0).toString(16)}${s.slot}`.padEnd(64, "0"),
      name: `c-${s.slot}`,
      failingStreak: s.failingStreak,
      labels,
      ...(s.compose ? { compose: { project: s.compose, service: `c-${s.slot}` } } : {}),
    };
  });
  return base;
}

function newSpec(slot: number): Spec {
  return {
    slot,
    health: "healthy",
    failingStreak: 0,
    labels: [
      ["autoheal", "true"],
      ["tier", "web"],
    ],
    compose: "shop",
  };
}

describe("FleetView", () => {
  it("keeps every snapshot exactly as applied while sharing what did not change", () => {
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 30 }), (steps) => {
        const view = new FleetView();
        const specs = new Map<string, HostSpec>();
        for (const [i, s] of steps.entries()) {
          let spec = specs.get(s.host);
          if (spec) applyEdit(spec, s.edit);
          else {
            spec = { containers: [0, 1, 2].map(newSpec), dockerDown: false, seq: 1 };
            specs.set(s.host, spec);
          }
          const snapshot = snapshotOf(s.host, spec);
          const copy = structuredClone(snapshot);
          const previous = view.get(s.host);
          view.apply(snapshot, T0 + i);
          const record = view.get(s.host);
          // Same values, same key order, same prototype-free labels.
          expect(JSON.stringify(record?.snapshot)).toBe(JSON.stringify(copy));
          expect(record?.snapshot).toStrictEqual(copy);
          const fresh = toHostRecord(copy, T0 + i);
          expect(record?.counts).toEqual(fresh.counts);
          expect(record?.sorted).toStrictEqual(fresh.sorted);
          expect(record?.byHealth).toStrictEqual(fresh.byHealth);
          // A container that did not change is the previous snapshot's object.
          for (const c of record?.snapshot.containers ?? []) {
            const before = previous?.snapshot.containers.find((p) => p.id === c.id);
            if (before && JSON.stringify(before) === JSON.stringify(c)) expect(c).toBe(before);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it("keeps the previous containers and lists through a heartbeat that changes none", () => {
    const view = new FleetView();
    view.apply(hostSnapshot("h", ["healthy", "unhealthy"]), T0);
    const first = view.get("h");
    view.apply(hostSnapshot("h", ["healthy", "unhealthy"], { seq: 4 }), T0 + 1_000);
    const second = view.get("h");
    expect(second?.snapshot.seq).toBe(4);
    expect(second?.receivedAt).toBe(T0 + 1_000);
    expect(second?.snapshot.containers).toBe(first?.snapshot.containers);
    expect(second?.sorted).toBe(first?.sorted);
    expect(second?.byHealth).toBe(first?.byHealth);
    expect(second?.snapshot.agent).toBe(first?.snapshot.agent);
  });

  it("gives a changed container a new object that shares its unchanged parts", () => {
    const view = new FleetView();
    view.apply(hostSnapshot("h", ["healthy", "healthy"]), T0);
    const [a, b] = view.get("h")?.snapshot.containers ?? [];
    view.apply(hostSnapshot("h", ["healthy", "unhealthy"]), T0 + 1_000);
    const [a2, b2] = view.get("h")?.snapshot.containers ?? [];
    expect(a2).toBe(a);
    expect(b2).not.toBe(b);
    expect(b2?.health).toBe("unhealthy");
    expect(b2?.labels).toBe(b?.labels);
    expect(view.get("h")?.counts).toMatchObject({ healthy: 1, unhealthy: 1 });
  });

  it("matches containers by id when the agent lists them in another order", () => {
    const view = new FleetView();
    view.apply(hostSnapshot("h", ["healthy", "unhealthy", "none"]), T0);
    const before = view.get("h")?.snapshot.containers ?? [];
    const reordered = hostSnapshot("h", ["healthy", "unhealthy", "none"]);
    reordered.containers.reverse();
    view.apply(reordered, T0 + 1_000);
    const after = view.get("h")?.snapshot.containers ?? [];
    expect(after.map((c) => c.id)).toEqual([...before].reverse().map((c) => c.id));
    for (const [i, c] of after.entries()) expect(c).toBe(before[before.length - 1 - i]);
    expect(view.get("h")?.sorted).toEqual(toHostRecord(structuredClone(reordered), T0).sorted);
  });

  it("takes the same snapshot object applied again as it is", () => {
    const view = new FleetView();
    const snapshot = hostSnapshot("h", ["healthy"]);
    view.apply(snapshot, T0);
    const version = view.version;
    view.apply(snapshot, T0 + 1);
    expect(view.get("h")?.snapshot).toBe(snapshot);
    expect(view.get("h")?.receivedAt).toBe(T0 + 1);
    expect(view.version).toBeGreaterThan(version);
  });
});

describe("StringPool", () => {
  it("gives back equal strings and holds at most two generations", () => {
    const pool = new StringPool(8);
    for (let i = 0; i < 100; i++) expect(pool.intern(`s${i}`)).toBe(`s${i}`);
    expect(pool.size).toBeLessThanOrEqual(16);
    // A string met in every generation stays.
    for (let i = 0; i < 100; i++) {
      pool.intern("kept");
      pool.intern(`t${i}`);
    }
    expect(pool.has("kept")).toBe(true);
    expect(pool.has("t0")).toBe(false);
  });

  it("interns string values in place and leaves everything else alone", () => {
    const pool = new StringPool();
    const value = { a: "x", b: [1, "y", { c: "z" }], d: true, e: null };
    pool.internAll(value);
    expect(value).toEqual({ a: "x", b: [1, "y", { c: "z" }], d: true, e: null });
    expect(pool.has("x") && pool.has("y") && pool.has("z")).toBe(true);
  });
});
