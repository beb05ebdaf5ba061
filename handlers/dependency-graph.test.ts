import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { ContainerSnapshot } from "../contracts/index.js";
import { containerSnapshot } from "../test/support/fixtures.js";
import {
  buildDependencyGraph,
  ContainerRefs,
  type DependencyGraph,
  dependentsDisabled,
  MAX_EDGES_PER_CONTAINER,
  MAX_EDGES_PER_HOST,
  parseComposeDependsOn,
} from "./dependency-graph.js";
import { MAX_WARNINGS, planDependents } from "./dependency-plan.js";

const idOf = (name: string) => createHash("sha256").update(name).digest("hex");

interface Spec {
  labels?: Record<string, string>;
  optedIn?: boolean;
  state?: ContainerSnapshot["state"];
  networkMode?: string;
  /** `project/service`: sets the compose labels and field. */
  compose?: string;
  dependsOn?: string;
}

function c(name: string, spec: Spec = {}): ContainerSnapshot {
  const [project, service] = spec.compose?.split("/") ?? [];
  const labels: Record<string, string> = {
    autoheal: "true",
    ...(project && service
      ? { "com.docker.compose.project": project, "com.docker.compose.service": service }
      : {}),
    ...(spec.dependsOn !== undefined ? { "com.docker.compose.depends_on": spec.dependsOn } : {}),
    ...spec.labels,
  };
  return containerSnapshot({
    id: idOf(name),
    name,
    state: spec.state ?? "running",
    optedIn: spec.optedIn ?? true,
    labels,
    startedAt: "2026-11-27T19:41:29.98123456Z",
    networkMode: spec.networkMode ?? "none",
    ...(project && service ? { compose: { project, service } } : {}),
  });
}

const onNet = (parent: string, spec: Spec = {}): Spec => ({
  networkMode: `container:${idOf(parent)}`,
  ...spec,
});

function plan(containers: ContainerSnapshot[], root: string) {
  return planDependents(buildDependencyGraph(containers), idOf(root));
}

const names = (p: ReturnType<typeof plan>) => p.order.map((n) => n.container.name);

describe("parseComposeDependsOn", () => {
  it("reads compose v2's svc:condition:restart entries", () => {
    expect(parseComposeDependsOn("db:service_started:false,redis:service_healthy:true")).toEqual([
      { service: "db", condition: "service_started", restart: false },
      { service: "redis", condition: "service_healthy", restart: true },
    ]);
  });

  it("reads bare service names, as older compose v2 releases wrote", () => {
    expect(parseComposeDependsOn("db, cache")).toEqual([{ service: "db" }, { service: "cache" }]);
  });

  it("returns nothing for an absent or empty label and skips empty entries", () => {
    expect(parseComposeDependsOn(undefined)).toEqual([]);
    expect(parseComposeDependsOn("")).toEqual([]);
    expect(parseComposeDependsOn(",db:service_started:maybe,,:x")).toEqual([
      { service: "db", condition: "service_started" },
    ]);
  });
});

describe("dependentsDisabled", () => {
  it("is true only for autoheal.dependents=false", () => {
    expect(dependentsDisabled({ "autoheal.dependents": "false" })).toBe(true);
    expect(dependentsDisabled({ "autoheal.dependents": " FALSE " })).toBe(true);
    expect(dependentsDisabled({ "autoheal.dependents": "true" })).toBe(false);
    expect(dependentsDisabled({ "autoheal.dependents": "no" })).toBe(false);
    expect(dependentsDisabled({})).toBe(false);
  });
});

describe("ContainerRefs", () => {
  const web = c("web");
  const db = c("db");
  const all = [web, db];

  it("finds a container by full id, by name with or without '/', and by unique id prefix", () => {
    expect(new ContainerRefs(all).resolve(web.id)).toBe(web);
    expect(new ContainerRefs(all).resolve("db")).toBe(db);
    expect(new ContainerRefs(all).resolve("/db")).toBe(db);
    expect(new ContainerRefs(all).resolve(web.id.slice(0, 12))).toBe(web);
  });

  it("finds nothing for an unknown name, an ambiguous prefix or an empty reference", () => {
    expect(new ContainerRefs(all).resolve("nope")).toBeUndefined();
    expect(new ContainerRefs(all).resolve("")).toBeUndefined();
    const twins = [
      { ...web, id: `abc${"0".repeat(61)}` },
      { ...db, id: `abc${"1".repeat(61)}` },
    ];
    expect(new ContainerRefs(twins).resolve("abc")).toBeUndefined();
  });

  it("resolves every container of a large host by its short id, and the first of equal names", () => {
    const many = Array.from({ length: 1_000 }, (_, i) => c(`c${i}`));
    const refs = new ContainerRefs([...many, { ...c("other"), name: "c7" }]);
    for (const one of many) expect(refs.resolve(one.id.slice(0, 12))).toBe(one);
    expect(refs.resolve("c7")).toBe(many[7]);
    // Below and above every id, and between two of them.
    expect(refs.resolve("0000000000000")).toBeUndefined();
    expect(refs.resolve("fffffffffffff")).toBeUndefined();
    expect(refs.resolve(`${many[0]?.id.slice(0, 12)}x`)).toBeUndefined();
  });

  it("prefers a name over an id prefix, as Docker does", () => {
    const named = { ...c("x"), name: web.id.slice(0, 6) };
    expect(new ContainerRefs([web, named]).resolve(web.id.slice(0, 6))).toBe(named);
  });
});

describe("buildDependencyGraph", () => {
  it("links network_mode container:<id> and container:<name> children to their parent", () => {
    const graph = buildDependencyGraph([
      c("vpn"),
      c("app", onNet("vpn")),
      c("sidecar", { networkMode: "container:vpn" }),
    ]);
    expect(graph.dependents.get(idOf("vpn"))).toEqual([
      {
        parent: idOf("vpn"),
        child: idOf("app"),
        kind: "network",
        detail: "network_mode container:vpn",
      },
      {
        parent: idOf("vpn"),
        child: idOf("sidecar"),
        kind: "network",
        detail: "network_mode container:vpn",
      },
    ]);
  });

  it("links compose depends_on only within the same project, to every replica", () => {
    const graph = buildDependencyGraph([
      c("shop-db-1", { compose: "shop/db" }),
      c("shop-db-2", { compose: "shop/db" }),
      c("blog-db-1", { compose: "blog/db" }),
      c("shop-web-1", { compose: "shop/web", dependsOn: "db:service_healthy:false" }),
    ]);
    const parentsOfWeb = [...graph.dependents.entries()]
      .filter(([, edges]) => edges.some((e) => e.child === idOf("shop-web-1")))
      .map(([parent]) => parent)
      .sort();
    expect(parentsOfWeb).toEqual([idOf("shop-db-1"), idOf("shop-db-2")].sort());
    expect(graph.dependents.get(idOf("blog-db-1"))).toBeUndefined();
    expect(graph.dependents.get(idOf("shop-db-1"))?.[0]?.detail).toBe(
      "depends_on db (service_healthy)",
    );
  });

  it("follows an unresolved network_mode service:<svc> within the project", () => {
    const graph = buildDependencyGraph([
      c("p-vpn-1", { compose: "p/vpn" }),
      c("p-app-1", { compose: "p/app", networkMode: "service:vpn" }),
    ]);
    expect(graph.dependents.get(idOf("p-vpn-1"))?.map((e) => e.child)).toEqual([idOf("p-app-1")]);
  });

  it("ignores one-off containers, self references and references to unknown containers", () => {
    const graph = buildDependencyGraph([
      c("p-db-1", { compose: "p/db" }),
      c("p-web-run-1", {
        compose: "p/web",
        dependsOn: "db:service_started:false",
        labels: { "com.docker.compose.oneoff": "True" },
      }),
      c("loop", { networkMode: "container:loop" }),
      c("orphan", { networkMode: `container:${"f".repeat(64)}` }),
    ]);
    expect([...graph.dependents.keys()]).toEqual([]);
  });

  it("links a child of a replaced container to its successor, to be re-attached", () => {
    const old = idOf("vpn-old");
    const child = c("app", { networkMode: `container:${old}` });
    const orphaned = buildDependencyGraph([c("vpn"), child]);
    expect(orphaned.dependents.size).toBe(0);
    const replaced = new Map([[old, idOf("vpn")]]);
    const edge = {
      parent: idOf("vpn"),
      child: idOf("app"),
      kind: "network",
      detail: "network_mode container:vpn, which was recreated",
      reattach: true,
    };
    expect(buildDependencyGraph([c("vpn"), child], replaced).dependents.get(idOf("vpn"))).toEqual([
      edge,
    ]);
    // The old container may still be listed, stopped under another name: the successor wins.
    const parked = { ...c("vpn-parked"), id: old, state: "exited" as const };
    const graph = buildDependencyGraph([c("vpn"), parked, child], replaced);
    expect(graph.dependents.get(idOf("vpn"))).toEqual([edge]);
    expect(graph.dependents.get(old)).toBeUndefined();
  });

  it("keeps both edges when a child shares the network and depends_on the same parent", () => {
    const graph = buildDependencyGraph([
      c("p-vpn-1", { compose: "p/vpn" }),
      c("p-app-1", onNet("p-vpn-1", { compose: "p/app", dependsOn: "vpn:service_started:true" })),
    ]);
    expect(graph.dependents.get(idOf("p-vpn-1"))?.map((e) => e.kind)).toEqual([
      "network",
      "depends_on",
    ]);
  });
});

describe("buildDependencyGraph caps", () => {
  const edgeCount = (graph: DependencyGraph) =>
    [...graph.dependents.values()].reduce((sum, edges) => sum + edges.length, 0);
  /** `count` replicas of service `service` in project p, named `<service>-<i>`. */
  const replicas = (service: string, count: number) =>
    Array.from({ length: count }, (_, i) => c(`${service}-${i}`, { compose: `p/${service}` }));

  it("takes at most MAX_EDGES_PER_CONTAINER edges to one container, its network edge first", () => {
    const dbs = replicas("db", MAX_EDGES_PER_CONTAINER + 8);
    const web = c("web", onNet("vpn", { compose: "p/web", dependsOn: "db:service_started:false" }));
    const graph = buildDependencyGraph([...dbs, web, c("vpn")]);
    expect(edgeCount(graph)).toBe(MAX_EDGES_PER_CONTAINER);
    expect(graph.dependents.get(idOf("vpn"))?.map((e) => e.kind)).toEqual(["network"]);
    // The first replicas in snapshot order are kept; the 9 beyond the cap are counted.
    expect(graph.dependents.has(idOf("db-0"))).toBe(true);
    expect(graph.dependents.has(idOf(`db-${MAX_EDGES_PER_CONTAINER + 7}`))).toBe(false);
    expect(graph.overflow).toEqual({ edges: 9, containers: 1 });
  });

  it("counts nothing for a graph within the caps, nor for an edge named twice", () => {
    const graph = buildDependencyGraph([
      c("db-1", { compose: "p/db" }),
      c("web-1", { compose: "p/web", dependsOn: "db,db:service_healthy:false" }),
    ]);
    expect(edgeCount(graph)).toBe(1);
    expect(graph.overflow).toEqual({ edges: 0, containers: 0 });
  });

  it("takes at most MAX_EDGES_PER_HOST edges from one snapshot, network edges first", () => {
    // 400 containers each naming a service of 100 replicas: 40,000 edges asked for, 32 a child.
    const hubs = replicas("hub", 100);
    const spokes = Array.from({ length: 400 }, (_, i) =>
      c(`spoke-${i}`, { compose: `p/spoke-${i}`, dependsOn: "hub" }),
    );
    // Last in the snapshot, yet its network edge is taken before every depends_on edge.
    const late = c("late", onNet("hub-0"));
    const graph = buildDependencyGraph([...hubs, ...spokes, late]);
    expect(edgeCount(graph)).toBe(MAX_EDGES_PER_HOST);
    expect(graph.dependents.get(idOf("hub-0"))?.some((e) => e.child === idOf("late"))).toBe(true);
    expect(graph.overflow).toEqual({ edges: 400 * 100 + 1 - MAX_EDGES_PER_HOST, containers: 400 });
    // The first spokes got their 32 edges each; the host cap cut spoke 312 and every one after.
    const parentsOf = (child: string) =>
      [...graph.dependents.values()].flat().filter((e) => e.child === idOf(child)).length;
    expect(parentsOf("spoke-0")).toBe(MAX_EDGES_PER_CONTAINER);
    expect(parentsOf("spoke-311")).toBe(MAX_EDGES_PER_CONTAINER);
    expect(parentsOf("spoke-312")).toBe(MAX_EDGES_PER_HOST - 1 - 312 * MAX_EDGES_PER_CONTAINER);
    expect(parentsOf("spoke-399")).toBe(0);
  });
});

describe("planDependents at scale", () => {
  it("orders a chain of 2,000 containers, each after the one it shares the network of", () => {
    const chain = Array.from({ length: 2_000 }, (_, i) => `n${String(i).padStart(4, "0")}`);
    const containers = chain.map((n, i) => (i === 0 ? c(n) : c(n, onNet(chain[i - 1] as string))));
    const p = plan(containers.reverse(), "n0000");
    expect(names(p)).toEqual(chain.slice(1));
    expect(p.order.every((o, i) => o.parents[0] === idOf(chain[i] as string))).toBe(true);
  });

  it("orders a fan of 2,000 dependents of one container by name", () => {
    const leaves = Array.from({ length: 2_000 }, (_, i) => `leaf-${String(1999 - i)}`);
    const p = plan([c("hub"), ...leaves.map((n) => c(n, onNet("hub")))], "hub");
    expect(names(p)).toEqual([...leaves].sort());
    expect(p.order.every((o) => o.parents.length === 1 && o.parents[0] === idOf("hub"))).toBe(true);
  });

  it("bounds the work on cycles crafted behind a long chain, each container still once", () => {
    // a000 ← a001 ← … ← a199 (each depends on the next), a199 on 31 hubs, each hub in a
    // two-cycle with its own g: every cycle is found only by walking the whole chain again.
    const svc = (name: string, deps: string[]) =>
      c(name, { compose: `p/${name}`, dependsOn: ["root", ...deps].join(",") });
    const chain = Array.from({ length: 200 }, (_, i) => `a${String(i).padStart(3, "0")}`);
    const hubs = Array.from({ length: 31 }, (_, i) => String(i).padStart(2, "0"));
    const containers = [
      c("root", { compose: "p/root" }),
      ...chain.map((n, i) => svc(n, i < 199 ? [chain[i + 1] as string] : hubs.map((h) => `h${h}`))),
      ...hubs.flatMap((h) => [svc(`h${h}`, [`g${h}`]), svc(`g${h}`, [`h${h}`])]),
    ];
    const p = plan(containers, "root");
    expect(p.order).toHaveLength(200 + 62);
    expect(new Set(names(p)).size).toBe(p.order.length);
    // Every container comes after each parent the plan kept.
    const position = new Map(p.order.map((o, i) => [o.container.id, i]));
    for (const [i, o] of p.order.entries()) {
      for (const parent of o.parents) expect(position.get(parent) ?? -1).toBeLessThan(i);
    }
    // The first cycles are traced, until the walks' budget is spent; the warnings are capped.
    expect(p.warnings[0]).toMatch(
      /^dependency cycle g(\d\d) → h\1 → g\1: restarting g\1 first, before h\1$/,
    );
    expect(p.warnings.some((w) => w.startsWith("dependency cycles too many to trace"))).toBe(true);
    expect(p.warnings).toHaveLength(MAX_WARNINGS + 1);
    expect(p.warnings.at(-1)).toMatch(/^and \d+ more dependency cycle warnings/);
  });
});

describe("planDependents", () => {
  it("is empty for a container without dependents or an unknown root", () => {
    expect(plan([c("a"), c("b")], "a")).toEqual({ order: [], ineligible: [], warnings: [] });
    expect(plan([c("a")], "zzz")).toEqual({ order: [], ineligible: [], warnings: [] });
  });

  it("orders dependents of dependents after their parents, each once", () => {
    // a ← b ← d, a ← c ← d (a diamond), d ← e; and a ← e directly.
    const p = plan(
      [
        c("e", onNet("d", { compose: "x/e", dependsOn: "a:service_started:false" })),
        c("d", onNet("b", { compose: "x/d", dependsOn: "c:service_started:false" })),
        c("c", onNet("a", { compose: "x/c" })),
        c("b", onNet("a", { compose: "x/b" })),
        c("a", { compose: "x/a" }),
      ],
      "a",
    );
    expect(names(p)).toEqual(["b", "c", "d", "e"]);
    const d = p.order[2];
    expect(d?.parents.sort()).toEqual([idOf("b"), idOf("c")].sort());
    expect(d?.reasons).toEqual(["network_mode container:b", "depends_on c (service_started)"]);
    expect(p.order[3]?.parents.sort()).toEqual([idOf("a"), idOf("d")].sort());
    expect(p.warnings).toEqual([]);
  });

  it("puts a deep chain in order whatever the snapshot's order", () => {
    const chain = ["n0", "n1", "n2", "n3", "n4", "n5"];
    const containers = chain.map((n, i) => (i === 0 ? c(n) : c(n, onNet(chain[i - 1] as string))));
    expect(names(plan(containers.reverse(), "n0"))).toEqual(chain.slice(1));
    expect(names(plan(containers, "n3"))).toEqual(["n4", "n5"]);
  });

  it("orders independent dependents by name", () => {
    const p = plan(
      [c("db"), c("zeta", onNet("db")), c("alpha", onNet("db")), c("mid", onNet("db"))],
      "db",
    );
    expect(names(p)).toEqual(["alpha", "mid", "zeta"]);
  });

  it("reports dependents that did not opt in or opted out, and does not follow them", () => {
    const p = plan(
      [
        c("db"),
        c("shy", onNet("db", { optedIn: false })),
        c("behind-shy", onNet("shy")),
        c("off", onNet("db", { labels: { "autoheal.dependents": "false" } })),
        c("behind-off", onNet("off")),
        c("stopped", onNet("db", { state: "exited" })),
        c("ok", onNet("db")),
        c("behind-ok", onNet("ok")),
      ],
      "db",
    );
    expect(names(p)).toEqual(["ok", "behind-ok"]);
    expect(p.ineligible.map((i) => [i.container.name, i.code, i.parent])).toEqual([
      ["off", "dependents-disabled", idOf("db")],
      ["shy", "not-opted-in", idOf("db")],
      ["stopped", "not-running", idOf("db")],
    ]);
  });

  it("reports an ineligible dependent once, however many parents reach it", () => {
    const p = plan(
      [
        c("db", { compose: "p/db" }),
        c("a", onNet("db", { compose: "p/a" })),
        c(
          "off",
          onNet("db", {
            compose: "p/off",
            dependsOn: "a",
            labels: { "autoheal.dependents": "false" },
          }),
        ),
      ],
      "db",
    );
    expect(names(p)).toEqual(["a"]);
    expect(p.ineligible.map((i) => i.container.name)).toEqual(["off"]);
  });

  it("ignores an edge back to the root, with a warning", () => {
    const p = plan(
      [
        c("p-a-1", { compose: "p/a", dependsOn: "b:service_started:false" }),
        c("p-b-1", { compose: "p/b", dependsOn: "a:service_started:false" }),
      ],
      "p-a-1",
    );
    expect(names(p)).toEqual(["p-b-1"]);
    expect(p.warnings).toHaveLength(1);
    expect(p.warnings[0]).toMatch(/cycle: p-a-1 depends on its own dependent p-b-1/);
  });

  it("breaks a cycle among dependents at its first name, with a warning, each container once", () => {
    // x depends on root and z, y on x, z on y (a cycle x → y → z → x), w on z.
    const p = plan(
      [
        c("root", { compose: "p/root" }),
        c("x", { compose: "p/x", dependsOn: "root,z" }),
        c("y", { compose: "p/y", dependsOn: "x" }),
        c("z", { compose: "p/z", dependsOn: "y" }),
        c("w", { compose: "p/w", dependsOn: "z" }),
      ],
      "root",
    );
    expect(names(p)).toEqual(["x", "y", "z", "w"]);
    expect(p.warnings).toHaveLength(1);
    expect(p.warnings).toEqual(["dependency cycle x → y → z → x: restarting x first, before z"]);
    // x's edge from z was dropped; it follows the root only.
    expect(p.order[0]?.parents).toEqual([idOf("root")]);
    expect(new Set(names(p)).size).toBe(p.order.length);
  });

  it("terminates on a cycle that does not contain the root and is entered from two sides", () => {
    const p = plan(
      [
        c("root", { compose: "p/root" }),
        c("m", { compose: "p/m", dependsOn: "root,n" }),
        c("n", { compose: "p/n", dependsOn: "root,m" }),
      ],
      "root",
    );
    expect(names(p)).toEqual(["m", "n"]);
    expect(p.warnings).toEqual([expect.stringContaining("restarting m first, before n")]);
  });

  it("never lists the root among the dependents", () => {
    const p = plan([c("a", onNet("b")), c("b", onNet("a"))], "a");
    expect(names(p)).toEqual(["b"]);
  });
});
