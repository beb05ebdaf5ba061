// What the gateway benchmark's load generator and its server children tell each other.

/** Per-call durations of a function timed in-process. */
export interface Timing {
  calls: number;
  meanUs: number;
  p50Us: number;
  p99Us: number;
}

export interface GatewayInfo {
  fleet: {
    hosts: number;
    containers: number;
    unhealthy: number;
    starting: number;
    staleHosts: number;
    ledgerEntries: number;
  };
  setupMs: {
    decode1000: number;
    apply1000: number;
    firstHealthBuild: number;
    firstContainersQuery: number;
  };
  refreshPerSecond: number;
  /** The app built and ready with an empty view, after a full GC. */
  memoryEmpty: NodeJS.MemoryUsage;
  /** The same with the fleet loaded, after a full GC, before any request. */
  memoryLoaded: NodeJS.MemoryUsage;
}

export interface ReferenceInfo {
  /** The plain Fastify process ready, after a full GC, before any request. */
  memoryLoaded: NodeJS.MemoryUsage;
}

/** In-process timings, taken after the load runs (so that their garbage is not in the RSS). */
export interface Measured {
  inject: { health: Timing; containers: Timing };
  /** Snapshots re-applied by the refresh loop until the timings started, and their rate. */
  refreshed?: { snapshots: number; perSecond: number };
  handler?: {
    healthCached: Timing;
    containersQueryCached: Timing;
    afterOneHostReports: Record<
      "healthRebuild" | "containersQuery",
      { p50Ms: number; maxMs: number }
    >;
  };
}

export type ToParent =
  | { type: "hello" }
  | { type: "ready"; port: number; info: GatewayInfo | ReferenceInfo }
  | { type: "stats"; before: NodeJS.MemoryUsage; memory: NodeJS.MemoryUsage }
  | { type: "measured"; measured: Measured };
export type ToChild =
  | { type: "bodies"; routes: { path: string; body: string }[] }
  | { type: "stats" }
  | { type: "measure" }
  | { type: "exit" };
