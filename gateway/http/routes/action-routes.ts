import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { type ContainerSnapshot, HealPolicy } from "../../../contracts/index.js";
import type { Actor } from "../../nats/ports.js";
import { findContainer, findHost } from "../../view/container-query.js";
import type { FleetView } from "../../view/fleet-view.js";
import { ApiError } from "../api-errors.js";
import {
  ApiErrorBody,
  ContainerParams,
  HealingSwitchRequest,
  HealingSwitchResult,
  PauseRequest,
  PauseResult,
  PolicyDocument,
  ReleaseRequest,
  ReleaseResult,
  RestartRequest,
  RestartResult,
} from "../api-schemas.js";
import type { RouteContext } from "../route-context.js";

const errors = {
  400: ApiErrorBody,
  401: ApiErrorBody,
  403: ApiErrorBody,
  404: ApiErrorBody,
  409: ApiErrorBody,
  412: ApiErrorBody,
  429: ApiErrorBody,
  502: ApiErrorBody,
  503: ApiErrorBody,
  504: ApiErrorBody,
};

const IdempotencyHeaders = z.object({
  "idempotency-key": z
    .string()
    .min(1)
    .max(256)
    .regex(/^[\x21-\x7e]+$/, { message: "printable ASCII without spaces" })
    .optional(),
});

const IfMatchHeaders = z.object({
  "if-match": z
    .string()
    .regex(/^(W\/)?"\d{1,15}"$/, { message: 'the ETag of GET /policy, e.g. "7"' })
    .optional(),
});

/** Mutating routes: each needs the admin token and is rate limited per client. */
export const actionRoutes: FastifyPluginAsyncZod<RouteContext> = async (app, ctx) => {
  const admin = {
    access: "admin" as const,
    rateLimit: { max: ctx.deps.actionsPerMinute ?? 30, timeWindow: 60_000 },
  };
  const security = [{ bearer: [] }];
  const actor = (request: { principal: string; ip: string }): Actor => ({
    name: `gateway:${request.principal}`,
    address: request.ip,
  });

  app.post(
    "/containers/:host/:id/restart",
    {
      config: admin,
      schema: {
        summary: "Restart a container by hand",
        description:
          "Sent to the host's agent, which restarts only opted-in containers. Audited as remediation records (`restarting`, then `restarted` or `failed`, code `by-hand`). Send an `Idempotency-Key` to make retries safe: the same key never restarts twice. 409 when the agent refuses (not opted in), 502 when Docker fails, 503/504 when the agent cannot be reached.",
        tags: ["actions"],
        security,
        params: ContainerParams,
        headers: IdempotencyHeaders,
        body: RestartRequest.nullish(),
        response: { 200: RestartResult, ...errors },
      },
    },
    async (request) => {
      const record = findHost(ctx.deps.view, request.params.host);
      const container = findContainer(record, request.params.id);
      const who = actor(request);
      const result = await ctx.deps.control.restart({
        host: record.snapshot.host,
        container,
        reason: request.body?.reason ?? `restarted by hand from ${who.address}`,
        ...(request.body?.stopTimeoutSeconds === undefined
          ? {}
          : { stopTimeoutSeconds: request.body.stopTimeoutSeconds }),
        actor: who,
        ...(request.headers["idempotency-key"]
          ? { idempotencyKey: request.headers["idempotency-key"] }
          : {}),
      });
      if (result.outcome === "refused") {
        throw new ApiError("FLEETHEAL_ERR_CONFLICT", result.message, result);
      }
      if (result.outcome === "failed") {
        throw new ApiError("FLEETHEAL_ERR_DOCKER", result.message, result);
      }
      return result;
    },
  );

  app.post(
    "/containers/:host/:id/release",
    {
      config: admin,
      schema: {
        summary: "Release a container from quarantine",
        description:
          "Lets fleetheal restart the container again and starts its restart budget over. 409 when it is not quarantined.",
        tags: ["actions"],
        security,
        params: ContainerParams,
        body: ReleaseRequest.nullish(),
        response: { 200: ReleaseResult, ...errors },
      },
    },
    async (request) => {
      const record = findHost(ctx.deps.view, request.params.host);
      const container = findContainer(record, request.params.id);
      const { releasedAt } = await ctx.deps.control.release({
        host: record.snapshot.host,
        container,
        ...(request.body?.reason ? { reason: request.body.reason } : {}),
        actor: actor(request),
      });
      return {
        host: record.snapshot.host,
        containerId: container.id,
        name: container.name,
        releasedAt,
      };
    },
  );

  app.put(
    "/containers/:host/:id/healing",
    {
      config: admin,
      schema: {
        summary: "Switch healing off or on for one container",
        description:
          "Kept in the fleet policy's `disabled` list by host and container NAME, so it outlives the container (a recreate under the same name stays switched off) and every role's restart. Handlers apply it within a moment: an unhealthy container that is switched off is held (`disabled`), not healed. Each change is audited as a remediation record (`disabled` or `enabled`, code `by-hand`) on the container's `act` subject. Idempotent: a request that changes nothing writes and records nothing (`changed: false`). `:id` is a full id, a unique id prefix or the name; to switch back on a name that no container has any more, give the name (404 unless it is switched off).",
        tags: ["actions"],
        security,
        params: ContainerParams,
        body: HealingSwitchRequest,
        response: { 200: HealingSwitchResult, ...errors },
      },
    },
    async (request) => {
      const { enabled, reason } = request.body;
      const container = switchTarget(ctx.deps.view, request.params, enabled);
      return ctx.deps.control.setHealing({
        host: request.params.host,
        name: container?.name ?? request.params.id,
        ...(container ? { container } : {}),
        enabled,
        ...(reason ? { reason } : {}),
        actor: actor(request),
      });
    },
  );

  for (const [url, paused] of [
    ["/pause", true],
    ["/resume", false],
  ] as const) {
    app.post(
      url,
      {
        config: admin,
        schema: {
          summary: paused ? "Pause healing fleet-wide" : "Resume healing",
          description: paused
            ? "Sets `paused` in the fleet policy: handlers stop restarting (triggers are deferred, not lost) until /resume."
            : "Clears `paused` in the fleet policy; deferred triggers are acted on.",
          tags: ["actions"],
          security,
          body: PauseRequest.nullish(),
          response: { 200: PauseResult, ...errors },
        },
      },
      async (request) => {
        const doc = await ctx.deps.control.setPaused(paused);
        request.log.info(
          { paused, by: actor(request), reason: request.body?.reason },
          paused ? "healing paused" : "healing resumed",
        );
        return { paused: doc.policy.paused, revision: doc.revision };
      },
    );
  }

  app.get(
    "/policy",
    {
      schema: {
        summary: "The fleet's heal policy",
        description:
          "The stored policy with every default filled in (revision 0: nothing stored, the defaults apply). The `ETag` is the revision, for `If-Match` on PUT.",
        tags: ["policy"],
        response: { 200: PolicyDocument, 401: ApiErrorBody, 409: ApiErrorBody },
      },
    },
    async (_request, reply) => {
      const doc = await ctx.deps.control.getPolicy();
      reply.header("etag", `"${doc.revision}"`);
      return doc;
    },
  );

  app.put(
    "/policy",
    {
      config: admin,
      schema: {
        summary: "Replace the fleet's heal policy",
        description:
          'Validated in full; fields left out take their defaults and unknown fields are rejected by name, at any depth. Send `If-Match: "<revision>"` (from GET) to fail with 412 instead of overwriting a concurrent edit. Handlers apply it within a moment.',
        tags: ["policy"],
        security,
        headers: IfMatchHeaders,
        body: HealPolicy,
        response: { 200: PolicyDocument, ...errors },
      },
    },
    async (request, reply) => {
      const ifMatch = request.headers["if-match"];
      const expected = ifMatch === undefined ? undefined : Number(/\d+/.exec(ifMatch)?.[0]);
      const doc = await ctx.deps.control.putPolicy(request.body, expected);
      request.log.info({ revision: doc.revision, by: actor(request) }, "fleet policy replaced");
      reply.header("etag", `"${doc.revision}"`);
      return doc;
    },
  );
};

/**
 * The container a healing switch names. Switching off needs a current container (to audit
 * against its id); switching back on may name one that no longer exists (recreated elsewhere,
 * removed), by its name, and then gets undefined here.
 */
function switchTarget(
  view: FleetView,
  params: { host: string; id: string },
  enabled: boolean,
): ContainerSnapshot | undefined {
  try {
    return findContainer(findHost(view, params.host), params.id);
  } catch (error) {
    if (enabled && error instanceof ApiError && error.code === "FLEETHEAL_ERR_NOT_FOUND") {
      return undefined;
    }
    throw error;
  }
}
