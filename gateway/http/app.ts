import cors from "@fastify/cors";
import rateLimit from "@fastify/rate-limit";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from "fastify";
import {
  jsonSchemaTransform,
  jsonSchemaTransformObject,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from "fastify-type-provider-zod";
import type { Logger } from "../../common/logger.js";
import { VERSION } from "../../common/version.js";
import type { PolicyState } from "../../policy/policy-state.js";
import type { EventLog, FleetControl, FleetHostsAdmin, LiveFeed } from "../nats/ports.js";
import type { FleetView } from "../view/fleet-view.js";
import { HealthCache } from "../view/health-cache.js";
import type { StalenessPolicy } from "../view/health-report.js";
import { ApiError } from "./api-errors.js";
import { type Access, TokenCheck, type Tokens } from "./auth.js";
import { replyWithError, toApiError } from "./error-handler.js";
import { GatewayMetrics } from "./metrics.js";
import { actionRoutes } from "./routes/action-routes.js";
import { dashboardRoutes } from "./routes/dashboard-routes.js";
import { eventRoutes } from "./routes/event-routes.js";
import { fleetRoutes } from "./routes/fleet-routes.js";
import { healthRoutes } from "./routes/health-routes.js";
import { hostsAdminRoutes } from "./routes/hosts-admin-routes.js";

declare module "fastify" {
  interface FastifyContextConfig {
    /** Who may call the route (see auth.ts); routes without it are `read`. */
    access?: Access;
  }
  interface FastifyRequest {
    principal: import("./auth.js").Principal;
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

/** The Fastify instance with the zod type provider, as every route module receives it. */
export type GatewayApp = FastifyInstance<
  import("node:http").Server,
  import("node:http").IncomingMessage,
  import("node:http").ServerResponse,
  FastifyBaseLogger,
  ZodTypeProvider
>;

/** Everything a route module needs. */
export interface RouteContext extends Required<Pick<GatewayDeps, "now">> {
  deps: GatewayDeps;
  health: HealthCache;
  metrics: GatewayMetrics;
  auth: TokenCheck;
  startedAt: number;
}

/** Builds the gateway's Fastify app without listening, so tests can use `inject()`. */
export async function buildApp(deps: GatewayDeps): Promise<FastifyInstance> {
  const now = deps.now ?? Date.now;
  const health = deps.health ?? new HealthCache(deps.view, deps.staleness, deps.policy);
  const ctx: RouteContext = {
    deps,
    now,
    health,
    metrics: deps.metrics ?? new GatewayMetrics(health, now),
    auth: new TokenCheck(deps.tokens ?? {}),
    startedAt: now(),
  };
  const app = Fastify({
    loggerInstance: (deps.logger || undefined) as FastifyBaseLogger | undefined,
    // /health is polled by monitoring; a log line per request would drown everything else.
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy: deps.trustProxy ?? false,
    bodyLimit: 256 * 1024,
    routerOptions: { maxParamLength: 256 },
    // Errors the router raises before any route runs (a malformed URL, an over-long parameter)
    // get the same error model as the rest.
    frameworkErrors: (error, _request, reply) => replyWithError(reply, toApiError(error)),
  }).withTypeProvider<ZodTypeProvider>();
  // The API speaks JSON only; any other body is a 415, not a string the schema then rejects.
  app.removeContentTypeParser("text/plain");
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.setErrorHandler((error, request, reply) => {
    const apiError = toApiError(error);
    if (apiError.status >= 500) request.log.error({ err: error }, "request failed");
    return replyWithError(reply, apiError);
  });
  app.setNotFoundHandler((request, reply) =>
    replyWithError(
      reply,
      new ApiError(
        "FLEETHEAL_ERR_NOT_FOUND",
        `no route ${request.method} ${request.url.split("?")[0]}`,
      ),
    ),
  );
  app.decorateRequest("principal", "anonymous");
  app.addHook("onRequest", async (request, reply) => {
    request.principal = ctx.auth.authorize(accessOf(request), request.headers.authorization);
    reply.header("x-content-type-options", "nosniff");
  });

  await app.register(cors, { origin: deps.corsOrigins?.length ? [...deps.corsOrigins] : false });
  await app.register(rateLimit, {
    global: false,
    errorResponseBuilder: (_request, context) =>
      new ApiError(
        "FLEETHEAL_ERR_RATE_LIMITED",
        `too many actions: at most ${context.max} per ${context.after} from one client; retry later`,
      ),
  });
  await app.register(swagger, {
    openapi: {
      info: {
        title: "fleetheal gateway",
        version: VERSION,
        description:
          "Fleet-wide container health, healing history and manual actions. Errors are `{ error: { code, message, details } }`.",
      },
      components: {
        securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
      },
    },
    transform: jsonSchemaTransform,
    transformObject: jsonSchemaTransformObject,
  });
  await app.register(swaggerUi, { routePrefix: "/docs", uiConfig: { deepLinking: false } });
  app.get("/openapi.json", { schema: { hide: true }, config: { access: "public" } }, () =>
    app.swagger(),
  );

  await app.register(healthRoutes(ctx));
  await app.register(fleetRoutes(ctx));
  await app.register(eventRoutes(ctx));
  await app.register(actionRoutes(ctx));
  if (deps.hosts) await app.register(hostsAdminRoutes(ctx, deps.hosts));
  await app.register(dashboardRoutes(ctx));
  return app;
}

/** Routes declare their access; the API docs (a static page and the OpenAPI document) are public. */
function accessOf(request: import("fastify").FastifyRequest): Access {
  const declared = request.routeOptions.config.access;
  if (declared) return declared;
  return request.routeOptions.url?.startsWith("/docs") ? "public" : "read";
}
