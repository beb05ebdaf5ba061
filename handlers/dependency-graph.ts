import type { ContainerSnapshot, Labels } from "../contracts/index.js";

/*
 * Which containers on one host depend on which, from what the host snapshot says about them
 * (dependency-plan.ts orders the dependents of a restarted container from it). Pure functions:
 * the `dependents` handlers feed them a snapshot, and docs/DEPENDENTS.md describes the rules.
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
  /** What the snapshot named beyond the caps on edges, left out. */
  readonly overflow: GraphOverflow;
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

/** Containers by name, then id: the order of everything the plan lists. */
export function byName(a: ContainerSnapshot, b: ContainerSnapshot): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/**
 * Finds the containers that `container:<ref>` network modes name, the way Docker looks them up:
 * the full id, then the name (with or without its leading `/`), then a unique id prefix. Built
 * once per snapshot, so that each lookup costs a map read or a binary search, not a scan of the
 * host's containers.
 */
export class ContainerRefs {
  private readonly byId = new Map<string, ContainerSnapshot>();
  private readonly byName = new Map<string, ContainerSnapshot>();
  /**
   * Every id, duplicates kept (a prefix of a duplicated id is ambiguous), sorted; made on the
   * first lookup by prefix, as Docker stores full ids and a prefix is rare.
   */
  private ids: string[] | undefined;

  constructor(private readonly containers: readonly ContainerSnapshot[]) {
    // The first of equal ids or names wins, as a scan in snapshot order would find it.
    for (const c of containers) {
      if (!this.byId.has(c.id)) this.byId.set(c.id, c);
      if (!this.byName.has(c.name)) this.byName.set(c.name, c);
    }
  }

  resolve(ref: string): ContainerSnapshot | undefined {
    if (ref === "") return undefined;
    const byId = this.byId.get(ref);
    if (byId) return byId;
    const named = this.byName.get(ref.replace(/^\//, ""));
    if (named) return named;
    if (!/^[0-9a-f]+$/.test(ref)) return undefined;
    this.ids ??= this.containers.map((c) => c.id).sort();
    const ids = this.ids;
    // The first id not below the prefix; the prefix is unique when the next id lacks it.
    let [lo, hi] = [0, ids.length];
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((ids[mid] as string) < ref) lo = mid + 1;
      else hi = mid;
    }
    const [first, second] = [ids[lo], ids[lo + 1]];
    if (first === undefined || !first.startsWith(ref) || second?.startsWith(ref)) return undefined;
    return this.byId.get(first);
  }
}

/** The compose project and service of a container, from the snapshot or its labels. */
export function composeOf(c: ContainerSnapshot): { project: string; service: string } | undefined {
  if (c.compose) return c.compose;
  const project = c.labels[COMPOSE_PROJECT_LABEL];
  const service = c.labels[COMPOSE_SERVICE_LABEL];
  return project && service ? { project, service } : undefined;
}

/**
 * At most this many edges lead to one container (from its own network mode and `depends_on`
 * label): labels are hostile, and one container naming a service of a thousand replicas must
 * not take the host's whole allowance.
 */
export const MAX_EDGES_PER_CONTAINER = 32;
/** At most this many edges per host snapshot, so that building and walking the graph is bounded. */
export const MAX_EDGES_PER_HOST = 10_000;

/** The edges a snapshot named beyond the caps: left out of the graph, counted here. */
export interface GraphOverflow {
  /** Edges left out (an edge named twice beyond a cap is counted twice). */
  edges: number;
  /** Containers that lost at least one of their edges. */
  containers: number;
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
 * ignored; cycles are kept here and broken by `planDependents` (dependency-plan.ts).
 *
 * `replaced` maps the id of a container that was recreated (and is gone) to its successor's: a
 * `container:<old id>` child then depends on the successor, with an edge marked `reattach`.
 *
 * Edges beyond {@link MAX_EDGES_PER_CONTAINER} for a child or {@link MAX_EDGES_PER_HOST} in all
 * are left out and counted in `overflow`. Network edges are taken first, for every container,
 * because a broken network namespace is what a restart repairs; then `depends_on`, in snapshot
 * and label order. The work is linear in the containers, the label sizes and the edges kept.
 */
export function buildDependencyGraph(
  containers: readonly ContainerSnapshot[],
  replaced: ReadonlyMap<string, string> = new Map(),
): DependencyGraph {
  const byId = new Map(containers.map((c) => [c.id, c]));
  const refs = new ContainerRefs(containers);
  const services = new Map<string, ContainerSnapshot[]>();
  for (const c of containers) {
    const compose = composeOf(c);
    if (!compose) continue;
    const key = `${compose.project}\u0000${compose.service}`;
    const members = services.get(key);
    if (members) members.push(c);
    else services.set(key, [c]);
  }
  const serviceMembers = (project: string, service: string): readonly ContainerSnapshot[] =>
    services.get(`${project}\u0000${service}`) ?? [];

  const edges = new EdgeCollector();
  const children = containers.filter((c) => !isOneOff(c));
  for (const child of children) {
    const mode = child.networkMode ?? "";
    if (mode.startsWith("container:")) {
      const ref = mode.slice("container:".length);
      const named = refs.resolve(ref);
      // A replaced container may still be listed (parked under another name, not yet removed):
      // its successor is the parent all the same.
      const successor = byId.get(replaced.get(named?.id ?? ref) ?? "");
      if (successor) {
        const detail = `network_mode container:${successor.name}, which was recreated`;
        edges.add(successor, child, "network", detail, true);
      } else if (named) edges.add(named, child, "network", `network_mode container:${named.name}`);
    } else if (mode.startsWith("service:")) {
      const compose = composeOf(child);
      const service = mode.slice("service:".length);
      if (compose) {
        const detail = `network_mode service:${service}`;
        edges.addAll(serviceMembers(compose.project, service), child, "network", detail);
      }
    }
  }
  for (const child of children) {
    const compose = composeOf(child);
    if (!compose) continue;
    for (const dep of parseComposeDependsOn(child.labels[COMPOSE_DEPENDS_ON_LABEL])) {
      const detail = `depends_on ${dep.service}${dep.condition ? ` (${dep.condition})` : ""}`;
      edges.addAll(serviceMembers(compose.project, dep.service), child, "depends_on", detail);
    }
  }
  const dependents = new Map<string, DependencyEdge[]>();
  for (const [parent, list] of edges.byParent) {
    dependents.set(
      parent,
      list.sort((a, b) =>
        byName(byId.get(a.child) as ContainerSnapshot, byId.get(b.child) as ContainerSnapshot),
      ),
    );
  }
  return { containers: byId, dependents, overflow: edges.overflow() };
}

/** The graph's edges as they are found, each once, within the caps. */
class EdgeCollector {
  readonly byParent = new Map<string, DependencyEdge[]>();
  /** Each child's edges: at most {@link MAX_EDGES_PER_CONTAINER}, so a scan finds a repeat. */
  private readonly byChild = new Map<string, DependencyEdge[]>();
  private total = 0;
  private dropped = 0;
  private readonly capped = new Set<string>();

  add(
    parent: ContainerSnapshot,
    child: ContainerSnapshot,
    kind: EdgeKind,
    detail: string,
    reattach = false,
  ): void {
    if (parent.id === child.id) return;
    const mine = this.byChild.get(child.id) ?? [];
    if (mine.some((e) => e.parent === parent.id && e.kind === kind)) return;
    if (this.full(child)) {
      this.drop(child, 1);
      return;
    }
    const edge = {
      parent: parent.id,
      child: child.id,
      kind,
      detail,
      ...(reattach ? { reattach } : {}),
    };
    if (mine.length === 0) this.byChild.set(child.id, mine);
    mine.push(edge);
    this.total += 1;
    const list = this.byParent.get(parent.id);
    if (list) list.push(edge);
    else this.byParent.set(parent.id, [edge]);
  }

  /** An edge from each of `parents`; once the caps are reached, the rest are only counted. */
  addAll(
    parents: readonly ContainerSnapshot[],
    child: ContainerSnapshot,
    kind: EdgeKind,
    detail: string,
  ): void {
    for (const [i, parent] of parents.entries()) {
      if (this.full(child)) {
        // Counted without a look at each, or a service of many replicas named by many
        // containers would cost their product.
        this.drop(child, parents.length - i);
        return;
      }
      this.add(parent, child, kind, detail);
    }
  }

  overflow(): GraphOverflow {
    return { edges: this.dropped, containers: this.capped.size };
  }

  private full(child: ContainerSnapshot): boolean {
    const count = this.byChild.get(child.id)?.length ?? 0;
    return count >= MAX_EDGES_PER_CONTAINER || this.total >= MAX_EDGES_PER_HOST;
  }

  private drop(child: ContainerSnapshot, edges: number): void {
    this.dropped += edges;
    this.capped.add(child.id);
  }
}
