// The dependents' work for one `restarted` record, as each build of fleetheal does it, loaded
// from that build's dist/: this checkout's, and the baseline's (FLEETHEAL_BENCH_BASELINE).

import { existsSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { pino } from "pino";
import type { ContainerSnapshot, HostSnapshot, RemediationRecord } from "../../contracts/index.js";
import type { Decision } from "../../handlers/decisions.js";
import type { HandlerContext } from "../../handlers/handler.js";
import type { Build } from "../runner/builds.js";
import type { BenchHost } from "./hosts.js";

/** What the benchmark calls in a build; the names and shapes every build since 0.2.0 has. */
interface GraphModules {
  buildDependencyGraph(containers: readonly ContainerSnapshot[]): unknown;
  planDependents(graph: unknown, rootId: string): { order: unknown[] };
  danglingNetworkRefs(containers: readonly ContainerSnapshot[]): unknown;
  decideDependents(
    record: RemediationRecord,
    ctx: HandlerContext,
    options: { retryDelayMs: number },
  ): Promise<Decision[]>;
  decodeSnapshot(bytes: Uint8Array): HostSnapshot | undefined;
}

/** One build's two measured steps for one record of `host`. */
export interface LoadedBuild {
  build: Build;
  /**
   * The graph work of the dependents handlers for the record, on the decoded snapshot: the
   * references to gone containers, the graph, the plan. Returns how many dependents it planned.
   */
  graphAndPlan(host: BenchHost): number;
  /**
   * The handler's whole decision for the record, without NATS: the snapshot decoded from its
   * bytes (as the runtime decodes a KV entry), the graph, the plan, the dependents' ledgers read
   * (none stored) and the round's first decisions. Returns the decisions.
   */
  decide(host: BenchHost): Promise<Decision[]>;
  /** The snapshot decoded and validated from its bytes, as the handlers' runtime does it. */
  decode(host: BenchHost): HostSnapshot | undefined;
}

async function importFrom(build: Build, file: string): Promise<Record<string, unknown>> {
  const url = pathToFileURL(path.join(build.checkout, "dist", file)).href;
  return (await import(url)) as Record<string, unknown>;
}

/** Loads a build's modules; the plan moved to its own module, so either place is looked in. */
export async function loadBuild(build: Build): Promise<LoadedBuild> {
  const graph = await importFrom(build, "handlers/dependency-graph.js");
  const planFile = path.join(build.checkout, "dist", "handlers", "dependency-plan.js");
  const plan = existsSync(planFile)
    ? await importFrom(build, "handlers/dependency-plan.js")
    : graph;
  const orphans = await importFrom(build, "handlers/dependency-orphans.js");
  const dependents = await importFrom(build, "handlers/dependents.js");
  const contracts = await importFrom(build, "contracts/index.js");
  const decode = contracts.decode as (
    schema: unknown,
    bytes: Uint8Array,
  ) => { ok: boolean; value?: HostSnapshot };
  const m: GraphModules = {
    buildDependencyGraph: graph.buildDependencyGraph as GraphModules["buildDependencyGraph"],
    planDependents: plan.planDependents as GraphModules["planDependents"],
    danglingNetworkRefs: orphans.danglingNetworkRefs as GraphModules["danglingNetworkRefs"],
    decideDependents: dependents.decideDependents as GraphModules["decideDependents"],
    decodeSnapshot: (bytes) => decode(contracts.HostSnapshot, bytes).value,
  };
  for (const [name, fn] of Object.entries(m)) {
    if (typeof fn !== "function") throw new Error(`${build.checkout}: no ${name} in its dist/`);
  }
  const policy = contracts.DEFAULT_HEAL_POLICY as HandlerContext["policy"];
  const log = pino({ level: "silent" });
  return {
    build,
    graphAndPlan(host) {
      const containers = host.snapshot.containers;
      m.danglingNetworkRefs(containers);
      return m.planDependents(m.buildDependencyGraph(containers), host.rootId).order.length;
    },
    decode: (host) => m.decodeSnapshot(host.bytes),
    decide(host) {
      const ctx: HandlerContext = {
        now: new Date("2026-12-07T11:00:02.000Z"),
        log,
        deliveryCount: 1,
        lastDelivery: false,
        policy,
        read: async () => undefined,
        hostSnapshot: async () => m.decodeSnapshot(host.bytes),
        hostSnapshotEntry: async () => ({
          revision: 1,
          snapshot: () => m.decodeSnapshot(host.bytes),
        }),
        severalHosts: async () => false,
      };
      return m.decideDependents(host.record, ctx, { retryDelayMs: 2_000 });
    },
  };
}
