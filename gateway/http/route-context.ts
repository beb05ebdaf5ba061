import type { Logger } from "../../common/logger.js";
import type { PolicyState } from "../../policy/policy-state.js";
import type { EventLog, FleetControl, FleetHostsAdmin, LiveFeed } from "../nats/ports.js";
import type { FleetView } from "../view/fleet-view.js";
import type { HealthCache } from "../view/health-cache.js";
import type { StalenessPolicy } from "../view/health-report.js";
import type { Access, Principal, TokenCheck, Tokens } from "./auth.js";
import type { GatewayMetrics } from "./metrics.js";

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

/** What the HTTP layer needs; everything else is wired in main.ts. */
export interface GatewayDeps {
  view: FleetView;
  staleness: StalenessPolicy;
  /** Whether the gateway's NATS connection is up. */
  natsConnected: () => boolean;
  control: FleetControl;
  /** Adding and removing hosts: only when the gateway runs inside `fleetheal up`. */
  hosts?: FleetHostsAdmin;
  /**
   * The fleet policy in force and whether the stored one is valid, by the handlers' rules; a
   * new object only when it changes. Nothing stored (the defaults) when absent.
   */
  policy?: () => PolicyState;
  events: EventLog;
  feed: LiveFeed;
  /** Shared with the metrics fed by the live feed; made here when absent. */
  health?: HealthCache;
  metrics?: GatewayMetrics;
  tokens?: Tokens;
  /** Origins allowed to call the API from a browser; none (CORS closed) by default. */
  corsOrigins?: readonly string[];
  /** Mutating requests per minute per client address. */
  actionsPerMinute?: number;
  /** Concurrent `/events/stream` clients. */
  maxStreams?: number;
  /** Trust `X-Forwarded-For` from a reverse proxy (for rate limits and audit addresses). */
  trustProxy?: boolean;
  now?: () => number;
  logger?: Logger | false;
}

/** The options of every route plugin: the deps, and what the app builds from them once. */
export interface RouteContext extends Required<Pick<GatewayDeps, "now">> {
  deps: GatewayDeps;
  health: HealthCache;
  metrics: GatewayMetrics;
  auth: TokenCheck;
  startedAt: number;
}
