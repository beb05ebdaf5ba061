import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { VERSION } from "../../../common/version.js";
import { HealthReport } from "../../view/health-report.js";
import { ApiErrorBody, HealthQuery, ReadyBody } from "../api-schemas.js";
import type { RouteContext } from "../route-context.js";

/** `/health` for monitoring, `/livez` and `/readyz` for orchestrators, `/metrics` for Prometheus. */
export const healthRoutes: FastifyPluginAsyncZod<RouteContext> = async (app, ctx) => {
  app.get(
    "/health",
    {
      schema: {
        summary: "Fleet health",
        description:
          "The whole fleet's health, precomputed whenever a host reports or the stored policy changes. Hosts are `stale` after missed heartbeats and `down` later; a down host's containers are not counted. `policy` says whether the stored heal policy is valid and what is in force; an invalid one makes the fleet `degraded`. With `strict=1` the status is 503 unless the fleet is healthy, for load balancers and uptime checks.",
        tags: ["health"],
        querystring: HealthQuery,
        response: { 200: HealthReport, 401: ApiErrorBody, 503: HealthReport },
      },
    },
    (request, reply) => {
      const { status, body } = ctx.health.get(ctx.now());
      const code = request.query.strict && status !== "healthy" ? 503 : 200;
      // The body is serialised once per change and sent as bytes: the schema documents it,
      // and a Buffer skips Fastify's serialisation and encoding.
      reply
        .code(code)
        .type("application/json; charset=utf-8")
        .send(body as unknown as HealthReport);
    },
  );

  app.get(
    "/livez",
    {
      config: { access: "public" },
      schema: {
        summary: "Liveness",
        description: "200 while the process serves HTTP, with its version and NATS state.",
        tags: ["health"],
        response: {
          200: z.object({
            status: z.literal("ok"),
            version: z.string(),
            uptimeSeconds: z.number().int(),
            nats: z.enum(["connected", "disconnected"]),
            viewLoaded: z.boolean(),
          }),
        },
      },
    },
    () => ({
      status: "ok" as const,
      version: VERSION,
      uptimeSeconds: Math.round((ctx.now() - ctx.startedAt) / 1000),
      nats: ctx.deps.natsConnected() ? ("connected" as const) : ("disconnected" as const),
      viewLoaded: ctx.deps.view.loaded,
    }),
  );

  app.get(
    "/readyz",
    {
      config: { access: "public" },
      schema: {
        summary: "Readiness",
        description:
          "200 once NATS is connected and the fleet view has loaded every stored host snapshot; 503 before, so that a restarted gateway does not answer /health from an empty view.",
        tags: ["health"],
        response: { 200: ReadyBody, 503: ReadyBody },
      },
    },
    (_request, reply) => {
      const nats = ctx.deps.natsConnected();
      const viewLoaded = ctx.deps.view.loaded;
      const ready = nats && viewLoaded;
      reply.code(ready ? 200 : 503).send({
        ready,
        nats: nats ? ("connected" as const) : ("disconnected" as const),
        viewLoaded,
      });
    },
  );

  app.get(
    "/metrics",
    {
      schema: {
        summary: "Prometheus metrics",
        description:
          "The fleet as /health sees it (hosts by status, containers by health, quarantined and not-healing containers, the fleet's status, the policy), one series per host from its snapshot (up, last seen, Docker, the agent's outbox, version and counters), the restarts this gateway sent by outcome and failure code, event lag, and process metrics (docs/METRICS.md).",
        tags: ["health"],
        produces: ["text/plain"],
      },
    },
    async (_request, reply) => {
      const body = await ctx.metrics.render();
      return reply.type(ctx.metrics.contentType).send(body);
    },
  );
};
