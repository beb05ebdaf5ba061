import cors from "@fastify/cors";
import rateLimit from "@fastify/rate-limit";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyRequest,
  LogController,
} from "fastify";
import {
  jsonSchemaTransform,
  jsonSchemaTransformObject,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from "fastify-type-provider-zod";
import { VERSION } from "../../common/version.js";
import { HealthCache } from "../view/health-cache.js";
import { ApiError } from "./api-errors.js";
import { type Access, TokenCheck } from "./auth.js";
import { AuthFailures } from "./auth-failures.js";
import { replyWithError, toApiError } from "./error-handler.js";
import { GatewayMetrics } from "./metrics.js";
import type { GatewayDeps, RouteContext } from "./route-context.js";
import { actionRoutes } from "./routes/action-routes.js";
import { dashboardRoutes } from "./routes/dashboard-routes.js";
import { eventRoutes } from "./routes/event-routes.js";
import { fleetRoutes } from "./routes/fleet-routes.js";
import { healthRoutes } from "./routes/health-routes.js";
import { historyRoutes } from "./routes/history-routes.js";
import { hostsAdminRoutes } from "./routes/hosts-admin-routes.js";

/** How long a client may take to send a request, headers and body. */
export const REQUEST_TIMEOUT_MS = 30_000;
/** How long an idle keep-alive connection is kept. */
export const KEEP_ALIVE_TIMEOUT_MS = 72_000;

/** Builds the gateway's Fastify app without listening, so tests can use `inject()`. */
export async function buildApp(deps: GatewayDeps): Promise<FastifyInstance> {
  const now = deps.now ?? Date.now;
  const health = deps.health ?? new HealthCache(deps.view, deps.staleness, deps.policy);
  const ctx: RouteContext = {
    deps,
    now,
    health,
    metrics: deps.metrics ?? new GatewayMetrics(health, now, deps.view),
    auth: new TokenCheck(deps.tokens ?? {}),
    startedAt: now(),
  };
  const app = Fastify({
    loggerInstance: (deps.logger || undefined) as FastifyBaseLogger | undefined,
    // /health is polled by monitoring; a log line per request would drown everything else.
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy: deps.trustProxy ?? false,
    bodyLimit: 256 * 1024,
    // A client gets this long to send a whole request (headers and body); one that trickles
    // bytes to hold a socket is cut off. Responses are not bound by it: SSE streams stay open.
    requestTimeout: REQUEST_TIMEOUT_MS,
    // An idle keep-alive connection is closed after this; set here rather than left to Node.
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
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
  const authFailures = new AuthFailures(deps.authFailuresPerMinute, now);
  app.addHook("onRequest", async (request, reply) => {
    reply.header("x-content-type-options", "nosniff");
    const access = accessOf(request);
    if (access === "public") return;
    // Before the token is checked: a client that keeps guessing learns nothing more.
    const waitSeconds = authFailures.blockedFor(request.ip);
    if (waitSeconds !== undefined) {
      reply.header("retry-after", String(waitSeconds));
      throw new ApiError(
        "FLEETHEAL_ERR_RATE_LIMITED",
        `too many failed authentications from this client; retry in ${waitSeconds}s`,
      );
    }
    try {
      request.principal = ctx.auth.authorize(access, request.headers.authorization);
    } catch (error) {
      if (error instanceof ApiError && error.code === "FLEETHEAL_ERR_UNAUTHORIZED") {
        authFailures.failed(request.ip);
      }
      throw error;
    }
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

  await app.register(healthRoutes, ctx);
  await app.register(fleetRoutes, ctx);
  await app.register(eventRoutes, ctx);
  if (deps.history) await app.register(historyRoutes, { ...ctx, history: deps.history });
  await app.register(actionRoutes, ctx);
  if (deps.hosts) await app.register(hostsAdminRoutes, { ...ctx, hosts: deps.hosts });
  await app.register(dashboardRoutes, ctx);
  return app;
}

/** Routes declare their access; the API docs (a static page and the OpenAPI document) are public. */
function accessOf(request: FastifyRequest): Access {
  const declared = request.routeOptions.config.access;
  if (declared) return declared;
  return request.routeOptions.url?.startsWith("/docs") ? "public" : "read";
}
