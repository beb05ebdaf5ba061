import type { FastifyReply, FastifyRequest } from "fastify";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { ApiError } from "../api-errors.js";
import {
  ApiErrorBody,
  EventStreamQuery,
  EventsPage,
  EventsQuery,
  type StreamRecord,
} from "../api-schemas.js";
import { ReadSlots } from "../read-slots.js";
import type { RouteContext } from "../route-context.js";

/** How often an idle stream sends a comment, so proxies and clients see it is alive. */
const PING_MS = 15_000;
/** At most this many fleet health pushes per second per client. */
const HEALTH_PUSH_MS = 250;
/** How far back a reconnecting client is caught up from its `Last-Event-ID`. */
const RESUME_LIMIT = 1_000;

/** Event history from JetStream and the live feed as Server-Sent Events. */
export const eventRoutes: FastifyPluginAsyncZod<RouteContext> = async (app, ctx) => {
  // Each history read opens a JetStream consumer: only so many at once. A resuming event stream
  // catches up outside these slots; the streams themselves are bounded by maxStreams.
  const historyReads = new ReadSlots(ctx.deps.concurrentHistoryReads);
  let streams = 0;
  const open = new Set<() => void>();
  // Live streams never go idle, so closing the server would otherwise wait for every client.
  app.addHook("preClose", async () => {
    for (const end of open) end();
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
          "`event: record` messages carry a StreamRecord, with the stream sequence as `id`; send `Last-Event-ID` on reconnect to catch up on what was missed. `event: health` messages carry the /health body whenever the fleet view changes.",
        tags: ["events"],
        querystring: EventStreamQuery,
        headers: z.object({
          "last-event-id": z.coerce.number().int().min(0).optional(),
        }),
        produces: ["text/event-stream"],
        response: { 400: ApiErrorBody, 401: ApiErrorBody, 503: ApiErrorBody },
      },
    },
    async (request, reply) => {
      const max = ctx.deps.maxStreams ?? 100;
      if (streams >= max) {
        throw new ApiError(
          "FLEETHEAL_ERR_UNAVAILABLE",
          `too many live streams open (${max}); close one or raise FLEETHEAL_GATEWAY_MAX_STREAMS`,
        );
      }
      streams++;
      try {
        await serveStream(
          ctx,
          request,
          reply,
          open,
          request.query,
          request.headers["last-event-id"],
        );
      } finally {
        streams--;
      }
    },
  );
};

async function serveStream(
  ctx: RouteContext,
  request: FastifyRequest,
  reply: FastifyReply,
  open: Set<() => void>,
  filter: z.infer<typeof EventStreamQuery>,
  lastEventId: number | undefined,
): Promise<void> {
  const res = reply.raw;
  reply.hijack();
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache, no-transform",
    connection: "keep-alive",
    "x-accel-buffering": "no",
    "x-content-type-options": "nosniff",
  });
  let closed = false;
  const write = (chunk: string) => {
    if (!closed) res.write(chunk);
  };
  let lastSent = lastEventId ?? 0;
  const sendRecord = (record: StreamRecord) => {
    if (record.seq <= lastSent) return;
    lastSent = record.seq;
    write(`id: ${record.seq}\nevent: record\ndata: ${JSON.stringify(record)}\n\n`);
  };
  const sendHealth = () => {
    write(`event: health\ndata: ${ctx.health.get(ctx.now()).json}\n\n`);
  };

  // Live records that arrive while a reconnecting client is caught up wait here, so none is
  // lost or sent twice between the history and the feed.
  let backlog: StreamRecord[] | undefined = lastEventId === undefined ? undefined : [];
  const unsubscribe = ctx.deps.feed.subscribe(filter, (record) => {
    if (backlog) backlog.push(record);
    else sendRecord(record);
  });
  let healthTimer: NodeJS.Timeout | undefined;
  const unwatch = ctx.deps.view.onChange(() => {
    healthTimer ??= setTimeout(() => {
      healthTimer = undefined;
      sendHealth();
    }, HEALTH_PUSH_MS);
  });
  const ping = setInterval(() => write(": ping\n\n"), PING_MS);
  const end = () => res.end();
  open.add(end);
  const done = new Promise<void>((resolve) => {
    const finish = () => {
      closed = true;
      resolve();
    };
    res.once("close", finish);
    res.once("error", finish);
  });
  try {
    write("retry: 2000\n\n");
    sendHealth();
    if (lastEventId !== undefined) {
      try {
        const page = await ctx.deps.events.read(
          { ...filter, after: lastEventId, limit: RESUME_LIMIT },
          ctx.now(),
        );
        for (const record of page.records) sendRecord(record);
      } catch (error) {
        request.log.warn({ err: error }, "could not catch up a reconnecting event stream");
      }
      const waiting = backlog ?? [];
      backlog = undefined;
      for (const record of waiting) sendRecord(record);
    }
    await done;
  } finally {
    open.delete(end);
    unsubscribe();
    unwatch();
    clearInterval(ping);
    if (healthTimer) clearTimeout(healthTimer);
    if (!res.writableEnded) res.end();
  }
}
