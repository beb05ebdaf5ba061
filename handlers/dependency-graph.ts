import type { ContainerSnapshot, Labels } from "../contracts/index.js";

/*
 * Which containers on one host depend on which, from what the host snapshot says about them, and
 * in what order to restart the dependents of a restarted container. Pure functions: the
 * `dependents` handler feeds them a snapshot, and docs/DEPENDENTS.md describes the rules.
 */

/**
 * `false` leaves a container out of dependent restarts: it is not restarted after its parents,
 * and, on a restarted container, its dependents are not restarted either. A key of the heal
 * policy labels (see policy/policy-labels.ts).
 */
export const DEPENDENTS_LABEL = "autoheal.dependents";
export const COMPOSE_PROJECT_LABEL = "com.docker.compose.project";
export const COMPOSE_SERVICE_LABEL = "com.docker.compose.service";
/** Written by compose v2: `svc:condition:restart,…`, e.g. `db:service_started:false`. */
export const COMPOSE_DEPENDS_ON_LABEL = "com.docker.compose.depends_on";
/** `True` on containers made by `docker compose run`. */
export const COMPOSE_ONEOFF_LABEL = "com.docker.compose.oneoff";

/** Why a child depends on a parent. */
export type EdgeKind = "network" | "depends_on";

export interface DependencyEdge {
  parent: string;
  child: string;
  kind: EdgeKind;
  /** For people: `network_mode container:web` or `depends_on db (service_started)`. */
  detail: string;
  /**
   * The child names a container that was recreated: it is in the old container's network
   * namespace, which no restart can leave, so it must be recreated onto `parent` itself.
   */
  reattach?: true;
}

export interface DependencyGraph {
  readonly containers: ReadonlyMap<string, ContainerSnapshot>;
  /** Parent id → the edges to the containers that depend on it, sorted by child name. */
  readonly dependents: ReadonlyMap<string, readonly DependencyEdge[]>;
}

/** One entry of the compose `depends_on` label. */
export interface ComposeDependency {
  service: string;
  /** `service_started`, `service_healthy`, `service_completed_successfully`; absent in old labels. */
  condition?: string;
  /** compose's `depends_on.<svc>.restart`; absent in old labels. */
  restart?: boolean;
}

/**
 * Parses `com.docker.compose.depends_on`. compose v2 writes `svc:condition:restart` entries
 * joined by commas; older v2 releases wrote bare service names. Empty entries are ignored.
 */
export function parseComposeDependsOn(value: string | undefined): ComposeDependency[] {
  if (!value) return [];
  const out: ComposeDependency[] = [];
  for (const raw of value.split(",")) {
    const entry = raw.trim();
    if (entry === "") continue;
    const [service = "", condition, restart] = entry.split(":");
    if (service === "") continue;
    out.push({
      service,
      ...(condition ? { condition } : {}),
      ...(restart === "true" || restart === "false" ? { restart: restart === "true" } : {}),
    });
  }
  return out;
}

/** True when the container's labels say `autoheal.dependents=false` (any case, blanks trimmed). */
export function dependentsDisabled(labels: Labels): boolean {
  return labels[DEPENDENTS_LABEL]?.trim().toLowerCase() === "false";
}

function isOneOff(c: ContainerSnapshot): boolean {
  return c.labels[COMPOSE_ONEOFF_LABEL]?.toLowerCase() === "true";
}

function byName(a: ContainerSnapshot, b: ContainerSnapshot): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/**
 * Finds the container a `container:<ref>` network mode names, the way Docker looks it up: the
 * full id, then the name (with or without its leading `/`), then a unique id prefix.
 */
export function resolveContainerRef(
  ref: string,
  containers: readonly ContainerSnapshot[],
): ContainerSnapshot | undefined {
  if (ref === "") return undefined;
  const byId = containers.find((c) => c.id === ref);
  if (byId) return byId;
  const name = ref.replace(/^\//, "");
  const named = containers.find((c) => c.name === name);
  if (named) return named;
  if (!/^[0-9a-f]+$/.test(ref)) return undefined;
  const prefixed = containers.filter((c) => c.id.startsWith(ref));
  return prefixed.length === 1 ? prefixed[0] : undefined;
}

/** The compose project and service of a container, from the snapshot or its labels. */
export function composeOf(c: ContainerSnapshot): { project: string; service: string } | undefined {
  if (c.compose) return c.compose;
  const project = c.labels[COMPOSE_PROJECT_LABEL];
  const service = c.labels[COMPOSE_SERVICE_LABEL];
  return project && service ? { project, service } : undefined;
}

/**
 * Builds the dependency graph of one host's containers:
 *
 * - `network_mode: container:<id or name>` (Docker's HostConfig.NetworkMode; compose resolves
 *   `service:<svc>` to `container:<id>` itself): the child shares the parent's network namespace,
 *   which a restart of the parent replaces.
 * - `network_mode: service:<svc>`, should a snapshot ever carry it unresolved: every container of
 *   that service in the child's compose project.
 * - compose `depends_on` (the `com.docker.compose.depends_on` label of compose v2): every
 *   container of the named service in the child's compose project.
 *
 * Containers made by `docker compose run` (one-off) are never dependents. Self-references are
 * ignored; cycles are kept here and broken by {@link planDependents}.
 *
 * `replaced` maps the id of a container that was recreated (and is gone) to its successor's: a
 * `container:<old id>` child then depends on the successor, with an edge marked `reattach`.
 */
export function buildDependencyGraph(
  containers: readonly ContainerSnapshot[],
  replaced: ReadonlyMap<string, string> = new Map(),
): DependencyGraph {
  const byId = new Map(containers.map((c) => [c.id, c]));
  const services = new Map<string, ContainerSnapshot[]>();
  for (const c of containers) {
    const compose = composeOf(c);
    if (!compose) continue;
    const key = `${compose.project}\u0000${compose.service}`;
    services.set(key, [...(services.get(key) ?? []), c]);
  }
  const serviceMembers = (project: string, service: string) =>
    services.get(`${project}\u0000${service}`) ?? [];

  const edges = new Map<string, DependencyEdge[]>();
  const seen = new Set<string>();
  const add = (
    parent: ContainerSnapshot,
    child: ContainerSnapshot,
    kind: EdgeKind,
    detail: string,
    reattach = false,
  ) => {
    if (parent.id === child.id) return;
    const key = `${parent.id}>${child.id}>${kind}`;
    if (seen.has(key)) return;
    seen.add(key);
    edges.set(parent.id, [
      ...(edges.get(parent.id) ?? []),
      { parent: parent.id, child: child.id, kind, detail, ...(reattach ? { reattach } : {}) },
    ]);
  };

  for (const child of containers) {
    if (isOneOff(child)) continue;
    const compose = composeOf(child);
    const mode = child.networkMode ?? "";
    if (mode.startsWith("container:")) {
      const ref = mode.slice("container:".length);
      const named = resolveContainerRef(ref, containers);
      // A replaced container may still be listed (parked under another name, not yet removed):
      // its successor is the parent all the same.
      const successor = byId.get(replaced.get(named?.id ?? ref) ?? "");
      if (successor) {
        const detail = `network_mode container:${successor.name}, which was recreated`;
        add(successor, child, "network", detail, true);
      } else if (named) add(named, child, "network", `network_mode container:${named.name}`);
    } else if (mode.startsWith("service:") && compose) {
      const service = mode.slice("service:".length);
      for (const parent of serviceMembers(compose.project, service)) {
        add(parent, child, "network", `network_mode service:${service}`);
      }
    }
    if (compose) {
      for (const dep of parseComposeDependsOn(child.labels[COMPOSE_DEPENDS_ON_LABEL])) {
        const detail = `depends_on ${dep.service}${dep.condition ? ` (${dep.condition})` : ""}`;
        for (const parent of serviceMembers(compose.project, dep.service)) {
          add(parent, child, "depends_on", detail);
        }
      }
    }
  }
  const dependents = new Map<string, DependencyEdge[]>();
  for (const [parent, list] of edges) {
    dependents.set(
      parent,
      [...list].sort((a, b) =>
        byName(byId.get(a.child) as ContainerSnapshot, byId.get(b.child) as ContainerSnapshot),
      ),
    );
  }
  return { containers: byId, dependents };
}

/** Why a reached dependent is left alone. */
export type IneligibleCode = "not-opted-in" | "dependents-disabled" | "not-running";

export interface PlannedDependent {
  container: ContainerSnapshot;
  /**
   * What it is restarted after: the root and dependents earlier in the order that it depends on.
   * Edges broken to resolve a cycle are not listed.
   */
  parents: string[];
  /** Why it depends on them, for people. */
  reasons: string[];
  /** Edges from its parents, one per parent and kind. */
  edges: DependencyEdge[];
}

export interface IneligibleDependent {
  container: ContainerSnapshot;
  code: IneligibleCode;
  message: string;
  /** The container it was reached from. */
  parent: string;
}

export interface DependentsPlan {
  /** Restart order: every container after all of its (non-cycle) parents, each once. */
  order: PlannedDependent[];
  /** Dependents reached but not to be restarted; their own dependents are not followed. */
  ineligible: IneligibleDependent[];
  /** Cycles found and how they were broken, for the log. */
  warnings: string[];
}

/** Why a dependent should not be restarted, or undefined when it may be. */
export function ineligibility(
  c: ContainerSnapshot,
): { code: IneligibleCode; message: string } | undefined {
  if (!c.optedIn) return { code: "not-opted-in", message: "it has not opted in to healing" };
  if (dependentsDisabled(c.labels)) {
    return { code: "dependents-disabled", message: `it is labelled ${DEPENDENTS_LABEL}=false` };
  }
  if (c.state !== "running") {
    return {
      code: "not-running",
      message: `it is ${c.state}; only running dependents are restarted`,
    };
  }
  return undefined;
}

/**
 * The dependents of `rootId`, transitively, in restart order.
 *
 * The walk follows edges from the root and from every dependent that will be restarted. A
 * dependent that is not eligible ({@link ineligibility}) is reported and not followed: a
 * container that keeps running undisturbed does not disturb its own dependents. The order is
 * topological (parents first); among containers that are ready at the same time, by name then
 * id, so the same snapshot always gives the same plan. An edge back to the root is ignored; a
 * cycle among dependents is broken at its member with the smallest name (its edges from the rest
 * of the cycle are dropped) and reported in `warnings`.
 */
export function planDependents(graph: DependencyGraph, rootId: string): DependentsPlan {
  const root = graph.containers.get(rootId);
  const warnings: string[] = [];
  const ineligible: IneligibleDependent[] = [];
  if (!root) return { order: [], ineligible, warnings };
  const nameOf = (id: string) => graph.containers.get(id)?.name ?? id;

  // Reach: breadth-first from the root through eligible dependents.
  const planned = new Map<string, { container: ContainerSnapshot; edges: DependencyEdge[] }>();
  const reached = new Set<string>([rootId]);
  const queue: string[] = [rootId];
  while (queue.length > 0) {
    const parent = queue.shift() as string;
    for (const edge of graph.dependents.get(parent) ?? []) {
      if (edge.child === rootId) {
        warnings.push(
          `dependency cycle: ${root.name} depends on its own dependent ${nameOf(parent)} (${edge.detail}); that edge is ignored`,
        );
        continue;
      }
      const node = planned.get(edge.child);
      if (node) {
        node.edges.push(edge);
        continue;
      }
      if (reached.has(edge.child)) continue; // ineligible, already reported
      reached.add(edge.child);
      const child = graph.containers.get(edge.child) as ContainerSnapshot;
      const why = ineligibility(child);
      if (why) {
        ineligible.push({ container: child, ...why, parent });
        continue;
      }
      planned.set(edge.child, { container: child, edges: [edge] });
      queue.push(edge.child);
    }
  }

  // Order: Kahn's algorithm over the planned containers; the root is done already.
  const pendingParents = new Map<string, Set<string>>();
  for (const [id, node] of planned) {
    pendingParents.set(id, new Set(node.edges.map((e) => e.parent).filter((p) => p !== rootId)));
  }
  const done = new Set<string>([rootId]);
  const order: PlannedDependent[] = [];
  const sorted = [...planned.values()].map((n) => n.container).sort(byName);
  while (order.length < planned.size) {
    const remaining = sorted.filter((c) => !done.has(c.id));
    let next = remaining.find((c) => (pendingParents.get(c.id) as Set<string>).size === 0);
    if (!next) {
      const cycle = findCycle((remaining[0] as ContainerSnapshot).id, pendingParents).map(
        (id) => graph.containers.get(id) as ContainerSnapshot,
      );
      next = [...cycle].sort(byName)[0] as ContainerSnapshot;
      const dropped = [...(pendingParents.get(next.id) as Set<string>)].map(nameOf);
      warnings.push(
        `dependency cycle ${[...cycle, cycle[0] as ContainerSnapshot].map((c) => c.name).join(" → ")}: restarting ${next.name} first, before ${dropped.join(", ")}`,
      );
      (pendingParents.get(next.id) as Set<string>).clear();
    }
    done.add(next.id);
    for (const pending of pendingParents.values()) pending.delete(next.id);
    const node = planned.get(next.id) as { container: ContainerSnapshot; edges: DependencyEdge[] };
    // Only parents already in the order (or the root) count; a dropped cycle edge does not.
    const edges = node.edges.filter(
      (e) => e.parent === rootId || order.some((o) => o.container.id === e.parent),
    );
    order.push({
      container: next,
      parents: [...new Set(edges.map((e) => e.parent))],
      reasons: [...new Set(edges.map((e) => e.detail))],
      edges,
    });
  }
  return { order, ineligible, warnings };
}

/**
 * Follows pending parents from `start` until a container repeats, and returns the ids of that
 * cycle in dependency order (parent before child). Called only when no remaining container is
 * free of pending parents, so a cycle always exists.
 */
function findCycle(
  start: string,
  pendingParents: ReadonlyMap<string, ReadonlySet<string>>,
): string[] {
  const path: string[] = [];
  const index = new Map<string, number>();
  let current = start;
  while (!index.has(current)) {
    index.set(current, path.length);
    path.push(current);
    current = [...(pendingParents.get(current) ?? [])].sort()[0] as string;
  }
  // path holds child → parent steps; the cycle is its tail from the repeated container.
  return path.slice(index.get(current)).reverse();
}
