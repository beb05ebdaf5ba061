import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { DEFAULT_HEAL_POLICY } from "../../../contracts/index.js";
import { findContainer, findHost } from "../../view/container-query.js";
import { hostStatus } from "../../view/health-report.js";
import { ContainerPageCache } from "../../view/page-cache.js";
import { healingOf, summarizeHost } from "../../view/summaries.js";
import {
  ApiErrorBody,
  ContainerDetail,
  ContainerPage,
  ContainerParams,
  ContainersQuery,
  HostList,
  HostParams,
  HostSummary,
} from "../api-schemas.js";
import type { RouteContext } from "../route-context.js";

const errors = { 400: ApiErrorBody, 401: ApiErrorBody, 404: ApiErrorBody, 409: ApiErrorBody };

/** Read-only views of hosts and containers, served from the materialised view. */
export const fleetRoutes: FastifyPluginAsyncZod<RouteContext> = async (app, ctx) => {
  const policy = ctx.deps.staleness;
  const pages = new ContainerPageCache(ctx.deps.view, policy);
  app.get(
    "/hosts",
    {
      schema: {
        summary: "List hosts",
        tags: ["fleet"],
        response: { 200: HostList, 401: ApiErrorBody },
      },
    },
    async () => {
      const now = ctx.now();
      return {
        hosts: ctx.deps.view.list().map((r) => summarizeHost(ctx.deps.view, r, now, policy)),
        ...(ctx.deps.hosts ? { credentials: await ctx.deps.hosts.credentials() } : {}),
      };
    },
  );

  app.get(
    "/hosts/:host",
    {
      schema: {
        summary: "One host",
        tags: ["fleet"],
        params: HostParams,
        response: { 200: HostSummary, ...errors },
      },
    },
    (request) =>
      summarizeHost(ctx.deps.view, findHost(ctx.deps.view, request.params.host), ctx.now(), policy),
  );

  app.get(
    "/containers",
    {
      schema: {
        summary: "List containers",
        description:
          "Every container on every host, ordered by host, name and id, filtered and paged. `next` is an opaque cursor for the following page.",
        tags: ["fleet"],
        querystring: ContainersQuery,
        response: { 200: ContainerPage, ...errors },
      },
    },
    (request, reply) => {
      // Answers are rendered once per change (see ContainerPageCache) and sent as bytes;
      // the schema documents them.
      reply
        .type("application/json; charset=utf-8")
        .send(pages.get(request.query, ctx.now()) as unknown as ContainerPage);
    },
  );

  app.get(
    "/containers/:host/:id",
    {
      schema: {
        summary: "One container, with its healing history",
        description:
          "The container as its agent last reported it (including the last health check output) and its ledger: restarts, backoff state and quarantine. `:id` is a full id, a unique id prefix of 4+ characters, or the name.",
        tags: ["fleet"],
        params: ContainerParams,
        response: { 200: ContainerDetail, ...errors },
      },
    },
    (request) => {
      const record = findHost(ctx.deps.view, request.params.host);
      const container = findContainer(record, request.params.id);
      return {
        host: record.snapshot.host,
        hostStatus: hostStatus(record, ctx.now(), policy),
        container,
        healing: healingOf(
          ctx.deps.view,
          record.snapshot.host,
          container,
          ctx.deps.policy?.().policy ?? DEFAULT_HEAL_POLICY,
          ctx.now(),
        ),
      };
    },
  );
};
