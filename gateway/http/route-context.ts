import type { Logger } from "../../common/logger.js";
import type { PolicyState } from "../../policy/policy-state.js";
import type {
  EventLog,
  FleetControl,
  FleetHostsAdmin,
  HistoryCounter,
  LiveFeed,
} from "../nats/ports.js";
import type { FleetView } from "../view/fleet-view.js";
import type { HealthCache } from "../view/health-cache.js";
import type { StalenessPolicy } from "../view/health-report.js";
import type { Access, Principal, TokenCheck, Tokens } from "./auth.js";
import type { GatewayMetrics } from "./metrics.js";
import type { SseBufferLimits } from "./sse-writer.js";

/*
 * What the HTTP layer is given, and what each route plugin receives as its options. Route
 * plugins depend on this file, never on the app that registers them (as fastify's plugins take
 * their options), so the app and its routes import each other in one direction only.
 */

declare module "fastify" {
  interface FastifyContextConfig {
    /** Who may call the route (see auth.ts); routes without it are `read`. */
    access?: Access;
  }
  interface FastifyRequest {
    principal: Principal;
  }
}

/** Fastify's `trustProxy`, as the gateway's configuration gives it. */
export type TrustProxy = boolean | string[];

/** What the HTTP layer needs; everything else is wired in main.ts. */
export interface GatewayDeps {
  /** The fleet as the gateway holds it in memory; every read is served from it. */
  view: FleetView;
  /** When a host that stops reporting turns stale, then down. */
  staleness: StalenessPolicy;
  /** Whether the gateway's NATS connection is up. */
  natsConnected: () => boolean;
  /** What the mutating routes do: restarts, releases, the stored policy. */
  control: FleetControl;
  /** Adding and removing hosts: only when the gateway runs inside `fleetheal up`. */
  hosts?: FleetHostsAdmin;
  /**
   * The fleet policy in force and whether the stored one is valid, by the handlers' rules; a
   * new object only when it changes. Nothing stored (the defaults) when absent.
   */
  policy?: () => PolicyState;
  /** The history of the events stream, for `/events`. */
  events: EventLog;
  /** Counts over the events stream, for `/history/counts`; the route is absent without it. */
  history?: HistoryCounter;
  /** New records of the events stream, for the SSE routes. */
  feed: LiveFeed;
  /** Shared with the metrics fed by the live feed; made here when absent. */
  health?: HealthCache;
  /** Shared with the event feed that counts live records; made here when absent. */
  metrics?: GatewayMetrics;
  /** The admin and read tokens; without an admin token the mutating routes are disabled. */
  tokens?: Tokens;
  /** Origins allowed to call the API from a browser; none (CORS closed) by default. */
  corsOrigins?: readonly string[];
  /** Mutating requests per minute per client address. */
  actionsPerMinute?: number;
  /** Failed authentications per client address and minute before 429s; default 20. */
  authFailuresPerMinute?: number;
  /** `GET /events` history reads at once (each opens a JetStream consumer); default 8. */
  concurrentHistoryReads?: number;
  /** Concurrent `/events/stream` clients; default 100. */
  maxStreams?: number;
  /** Concurrent `/events/stream` clients from one client address; default 10. */
  maxStreamsPerClient?: number;
  /** What a live stream may hold back for a slow client; sse-writer.ts's defaults when absent. */
  streamBuffer?: SseBufferLimits;
  /**
   * Which peers' `X-Forwarded-For` to believe for the client address (rate limits, failed
   * authentications, stream limits, the audit trail): none (false, the default), every peer
   * (true), or only peers at these addresses and CIDRs. Fastify's `trustProxy`.
   */
  trustProxy?: TrustProxy;
  /** The gateway's clock (host staleness, uptime); the system's by default. */
  now?: () => number;
  /** The app's logger (Fastify's); no logging when absent or false. */
  logger?: Logger | false;
}

/** The options of every route plugin: the deps, and what the app builds from them once. */
export interface RouteContext extends Required<Pick<GatewayDeps, "now">> {
  deps: GatewayDeps;
  /** The precomputed `/health` report, shared by every route that shows fleet health. */
  health: HealthCache;
  metrics: GatewayMetrics;
  /** Checks a request's bearer token against the route's access. */
  auth: TokenCheck;
  /** When the app was built (epoch ms), for the uptime `/health` reports. */
  startedAt: number;
}
