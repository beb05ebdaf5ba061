import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { ApiError } from "../api-errors.js";
import { ApiErrorBody, EventStreamQuery, EventsPage, EventsQuery } from "../api-schemas.js";
import { ReadSlots } from "../read-slots.js";
import type { RouteContext } from "../route-context.js";
import { StreamSlots } from "../stream-slots.js";
import { type OpenStream, SHUTTING_DOWN, serveStream } from "./event-stream.js";

/** Event history from JetStream and the live feed as Server-Sent Events. */
export const eventRoutes: FastifyPluginAsyncZod<RouteContext> = async (app, ctx) => {
  // Each history read opens a JetStream consumer: only so many at once. A resuming event stream
  // catches up outside these slots; the streams themselves are bounded by their own slots.
  const historyReads = new ReadSlots(ctx.deps.concurrentHistoryReads);
  const slots = new StreamSlots(ctx.deps.maxStreams, ctx.deps.maxStreamsPerClient);
  const open = new Set<OpenStream>();
  ctx.metrics.watchStreamPending(() => {
    let bytes = 0;
    for (const stream of open) bytes += stream.pendingBytes;
    return bytes;
  });
  // Live streams never go idle, so closing the server would otherwise wait for every client.
  app.addHook("preClose", async () => {
    for (const stream of open) stream.close(SHUTTING_DOWN);
  });
  app.get(
    "/events",
    {
      schema: {
        summary: "Event history",
        description:
          "Docker transitions and remediation records from the events stream, oldest first. `since` is an ISO time or a duration back from now (`30s`, `15m`, `2h`; default `1h`); `after` continues from a previous page's `next`.",
        tags: ["events"],
        querystring: EventsQuery,
        response: { 200: EventsPage, 400: ApiErrorBody, 401: ApiErrorBody, 503: ApiErrorBody },
      },
    },
    (request) => historyReads.run(() => ctx.deps.events.read(request.query, ctx.now())),
  );

  app.get(
    "/events/stream",
    {
      schema: {
        summary: "Live events (Server-Sent Events)",
        description:
          "`event: record` messages carry a StreamRecord, with the stream sequence as `id`; send `Last-Event-ID` on reconnect to catch up on what was missed. `event: health` messages carry the /health body whenever the fleet view changes. A stream whose client does not keep up is closed with a last comment, to be resumed with `Last-Event-ID`. Streams are limited in all (503) and per client address (429).",
        tags: ["events"],
        querystring: EventStreamQuery,
        headers: z.object({
          "last-event-id": z.coerce.number().int().min(0).optional(),
        }),
        produces: ["text/event-stream"],
        response: { 400: ApiErrorBody, 401: ApiErrorBody, 429: ApiErrorBody, 503: ApiErrorBody },
      },
    },
    async (request, reply) => {
      // request.ip follows the trust-proxy setting, as the other per-client limits do.
      const slot = slots.take(request.ip);
      if (typeof slot !== "function") {
        ctx.metrics.streamShed(slot.reason);
        if (slot.first) {
          request.log.warn(
            { client: request.ip, reason: slot.reason },
            "refused a live event stream over its limit",
          );
        }
        throw slot.reason === "client-limit"
          ? new ApiError(
              "FLEETHEAL_ERR_RATE_LIMITED",
              `too many live streams from this client (at most ${slots.maxPerClient}); close one or raise FLEETHEAL_GATEWAY_STREAMS_PER_CLIENT`,
            )
          : new ApiError(
              "FLEETHEAL_ERR_UNAVAILABLE",
              `too many live streams open (${slots.max}); close one or raise FLEETHEAL_GATEWAY_MAX_STREAMS`,
            );
      }
      try {
        await serveStream(ctx, request, reply, open, {
          filter: request.query,
          lastEventId: request.headers["last-event-id"],
        });
      } finally {
        slot();
      }
    },
  );
};
