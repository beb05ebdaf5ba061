import type { ContainerSnapshot } from "../contracts/index.js";
import {
  byName,
  DEPENDENTS_LABEL,
  type DependencyEdge,
  type DependencyGraph,
  dependentsDisabled,
} from "./dependency-graph.js";

/*
 * In what order to restart the dependents of a restarted container, from the graph of its host
 * (dependency-graph.ts). Pure functions; docs/DEPENDENTS.md describes the rules. The graph comes
 * from hostile labels, so every step is linear in the containers and edges reached (up to a
 * heap's logarithm), iterative, and bounded by the graph's caps on edges.
 */

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
  /** Cycles found and how they were broken, for the log; at most {@link MAX_WARNINGS} lines. */
  warnings: string[];
}

/** Warnings listed one by one; the rest are counted in one more line. Labels can make many. */
export const MAX_WARNINGS = 8;

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

/** A reached dependent that will be restarted, with the edges that reached it. */
interface Reached {
  container: ContainerSnapshot;
  edges: DependencyEdge[];
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
  const warnings = new Warnings();
  const ineligible: IneligibleDependent[] = [];
  if (!root) return { order: [], ineligible, warnings: [] };
  const nameOf = (id: string) => graph.containers.get(id)?.name ?? id;

  // Reach: breadth-first from the root through eligible dependents, each container once.
  const planned = new Map<string, Reached>();
  const reached = new Set<string>([rootId]);
  const queue: string[] = [rootId];
  for (let head = 0; head < queue.length; head++) {
    const parent = queue[head] as string;
    for (const edge of graph.dependents.get(parent) ?? []) {
      if (edge.child === rootId) {
        warnings.add(
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
  const order = orderOf([...planned.values()], rootId, nameOf, warnings);
  return { order, ineligible, warnings: warnings.list() };
}

/**
 * Kahn's algorithm over the planned containers (the root is done already), the ready ones taken
 * by name from a heap; when none is ready, a cycle is broken.
 */
function orderOf(
  reached: Reached[],
  rootId: string,
  nameOf: (id: string) => string,
  warnings: Warnings,
): PlannedDependent[] {
  // Containers are numbered by name, so that the smallest number is the first name.
  const nodes = reached.sort((a, b) => byName(a.container, b.container));
  const rank = new Map(nodes.map((n, i) => [n.container.id, i]));
  const rankOf = (id: string) => rank.get(id) as number;
  // Each container's parents not yet in the order (the root is), and each one's children.
  const pending = nodes.map(
    (n) => new Set(n.edges.map((e) => e.parent).filter((p) => p !== rootId)),
  );
  const children: number[][] = nodes.map(() => []);
  pending.forEach((parents, child) => {
    for (const parent of parents) children[rankOf(parent)]?.push(child);
  });
  const edgeCount = nodes.reduce((sum, n) => sum + n.edges.length, 0);
  const cycles = new CycleBreaker(nodes, pending, rankOf, nameOf, warnings, edgeCount);

  const ready = new MinHeap();
  pending.forEach((parents, i) => {
    if (parents.size === 0) ready.push(i);
  });
  const done = new Uint8Array(nodes.length);
  let lowest = 0;
  const order: PlannedDependent[] = [];
  while (order.length < nodes.length) {
    let next = ready.pop();
    if (next === undefined) {
      while (done[lowest]) lowest += 1;
      next = cycles.breakFrom(lowest);
    }
    done[next] = 1;
    const node = nodes[next] as Reached;
    for (const child of children[next] ?? []) {
      const parents = pending[child] as Set<string>;
      // A container whose cycle was broken has no pending parents left, and is not queued again.
      if (parents.delete(node.container.id) && parents.size === 0 && !done[child]) {
        ready.push(child);
      }
    }
    // Only parents already in the order (or the root) count; a dropped cycle edge does not.
    const edges = node.edges.filter((e) => e.parent === rootId || done[rankOf(e.parent)] === 1);
    order.push({
      container: node.container,
      parents: [...new Set(edges.map((e) => e.parent))],
      reasons: [...new Set(edges.map((e) => e.detail))],
      edges,
    });
  }
  return order;
}

/**
 * Breaks the cycles that stop the order. From the first remaining name, it follows pending
 * parents (the smallest id first) until a container repeats: that is a cycle, broken at its
 * member with the smallest name. Each walk can be as long as the containers left, so the walks
 * of one plan share a budget proportional to the graph; past it (only labels crafted to make
 * many cycles behind a long chain get there), the first remaining name is taken as it is.
 */
class CycleBreaker {
  private budget: number;

  constructor(
    private readonly nodes: readonly Reached[],
    private readonly pending: readonly Set<string>[],
    private readonly rankOf: (id: string) => number,
    private readonly nameOf: (id: string) => string,
    private readonly warnings: Warnings,
    edgeCount: number,
  ) {
    this.budget = 4 * (nodes.length + edgeCount) + 64;
  }

  /**
   * The container to take next, its pending parents dropped. Called only when no remaining
   * container is free of pending parents, so following them always finds a cycle.
   */
  breakFrom(start: number): number {
    const cycle = this.findCycle(start);
    const next = cycle ? cycle.reduce((a, b) => Math.min(a, b)) : start;
    const parents = this.pending[next] as Set<string>;
    const dropped = [...parents].map(this.nameOf).join(", ");
    const name = this.nodes[next]?.container.name;
    if (cycle) {
      const names = [...cycle, cycle[0] as number].map((i) => this.nodes[i]?.container.name);
      this.warnings.add(
        `dependency cycle ${names.join(" → ")}: restarting ${name} first, before ${dropped}`,
      );
    } else {
      this.warnings.add(
        `dependency cycles too many to trace: restarting ${name} first, before ${dropped}`,
      );
    }
    parents.clear();
    return next;
  }

  /** The cycle reached from `start`, parent before child; undefined once the budget is spent. */
  private findCycle(start: number): number[] | undefined {
    const path: number[] = [];
    const index = new Map<number, number>();
    let current = start;
    while (!index.has(current)) {
      const parents = this.pending[current] as Set<string>;
      this.budget -= parents.size + 1;
      if (this.budget < 0) return undefined;
      index.set(current, path.length);
      path.push(current);
      let first: string | undefined;
      for (const p of parents) if (first === undefined || p < first) first = p;
      current = this.rankOf(first as string);
    }
    // path holds child → parent steps; the cycle is its tail from the repeated container.
    return path.slice(index.get(current)).reverse();
  }
}

/** The plan's warnings, the first {@link MAX_WARNINGS} as they are and the rest counted. */
class Warnings {
  private readonly lines: string[] = [];
  private more = 0;

  add(line: string): void {
    if (this.lines.length < MAX_WARNINGS) this.lines.push(line);
    else this.more += 1;
  }

  list(): string[] {
    if (this.more === 0) return [...this.lines];
    return [...this.lines, `and ${this.more} more dependency cycle warnings, not listed`];
  }
}

/** A binary min-heap of numbers: the ready containers, by rank. */
class MinHeap {
  private readonly items: number[] = [];

  push(value: number): void {
    const items = this.items;
    let i = items.push(value) - 1;
    while (i > 0) {
      const up = (i - 1) >> 1;
      if ((items[up] as number) <= value) break;
      items[i] = items[up] as number;
      i = up;
    }
    items[i] = value;
  }

  pop(): number | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (top === undefined || last === undefined || items.length === 0) return top;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= items.length) break;
      const right = left + 1;
      const child =
        right < items.length && (items[right] as number) < (items[left] as number) ? right : left;
      if ((items[child] as number) >= last) break;
      items[i] = items[child] as number;
      i = child;
    }
    items[i] = last;
    return top;
  }
}
