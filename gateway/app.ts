import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from "fastify";
import type { Logger } from "../common/logger.js";
import { VERSION } from "../common/version.js";
import type { FleetView } from "./fleet-view.js";
import { buildHealthReport, type StalenessPolicy } from "./health-report.js";

/** What the HTTP layer needs; everything else is wired in main.ts. */
export interface GatewayDeps {
  view: FleetView;
  staleness: StalenessPolicy;
  /** Whether the gateway's NATS connection is up. */
  natsConnected: () => boolean;
  now?: () => number;
  logger?: Logger | false;
}

/** Builds the gateway's Fastify app without listening, so tests can use `inject()`. */
export function buildApp(deps: GatewayDeps): FastifyInstance {
  const now = deps.now ?? Date.now;
  const startedAt = now();
  const app = Fastify({
    loggerInstance: (deps.logger || undefined) as FastifyBaseLogger | undefined,
    // /health is polled by monitoring; a log line per request would drown everything else.
    logController: new LogController({ disableRequestLogging: true }),
  });

  app.get("/health", async () => buildHealthReport(deps.view.list(), now(), deps.staleness));

  app.get("/livez", async () => ({
    status: "ok",
    version: VERSION,
    uptimeSeconds: Math.round((now() - startedAt) / 1000),
    nats: deps.natsConnected() ? "connected" : "disconnected",
    viewLoaded: deps.view.loaded,
  }));

  return app;
}
