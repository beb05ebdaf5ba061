import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import type { FleetHostsAdmin } from "../../nats/ports.js";
import { ApiError } from "../api-errors.js";
import { AddedHost, AddHostBody, ApiErrorBody, HostParams, RemovedHost } from "../api-schemas.js";
import type { RouteContext } from "../route-context.js";

const errors = {
  400: ApiErrorBody,
  401: ApiErrorBody,
  403: ApiErrorBody,
  404: ApiErrorBody,
  429: ApiErrorBody,
  503: ApiErrorBody,
};

/** The options of the hosts routes: the route context and the fleet's hosts. */
export interface HostsAdminOptions extends RouteContext {
  hosts: FleetHostsAdmin;
}

/** Loopback, in any of the forms a socket reports it. */
export function isLoopback(address: string | undefined): boolean {
  return (
    address !== undefined &&
    (/^127\./.test(address) || address === "::1" || /^::ffff:127\./.test(address))
  );
}

/**
 * Adding and removing hosts, when the gateway runs inside `fleetheal up` (`hosts` is given).
 * Adding answers a join token, which holds the new host's credential, so the routes answer only
 * over loopback or TLS: never over plain HTTP from another machine, whatever proxy is in front.
 */
export const hostsAdminRoutes: FastifyPluginAsyncZod<HostsAdminOptions> = async (app, ctx) => {
  const { hosts } = ctx;
  const admin = {
    access: "admin" as const,
    rateLimit: { max: ctx.deps.actionsPerMinute ?? 30, timeWindow: 60_000 },
  };
  const security = [{ bearer: [] }];
  const privateChannel = (request: {
    raw: { socket: { remoteAddress?: string; encrypted?: boolean } };
  }) => {
    const socket = request.raw.socket;
    if (!socket.encrypted && !isLoopback(socket.remoteAddress)) {
      throw new ApiError(
        "FLEETHEAL_ERR_FORBIDDEN",
        "hosts are added and removed over loopback (or TLS) only: run `fleetheal hosts add` on the host that runs fleetheal up",
      );
    }
  };
  app.post(
    "/hosts",
    {
      config: admin,
      schema: {
        summary: "Add a host: issue its credential and return its join token",
        description:
          "Only when the gateway runs inside `fleetheal up`, and only over loopback or TLS. The token holds the host's credential: give it only to that host (`FLEETHEAL_JOIN_TOKEN`). A host that has a credential already gets the same token again (`created: false`).",
        tags: ["hosts"],
        security,
        body: AddHostBody,
        response: { 201: AddedHost, 200: AddedHost, ...errors },
      },
    },
    async (request, reply) => {
      privateChannel(request);
      const added = await hosts.add(request.body.host);
      return reply.code(added.created ? 201 : 200).send(added);
    },
  );
  app.delete(
    "/hosts/:host",
    {
      config: admin,
      schema: {
        summary: "Remove a host: delete its snapshot and revoke its credential",
        description:
          "Only when the gateway runs inside `fleetheal up`, and only over loopback or TLS. The host's agent is disconnected and its token no longer connects.",
        tags: ["hosts"],
        security,
        params: HostParams,
        response: { 200: RemovedHost, ...errors },
      },
    },
    async (request) => {
      privateChannel(request);
      return hosts.remove(request.params.host);
    },
  );
};
