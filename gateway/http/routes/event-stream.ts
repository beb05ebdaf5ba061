import type { FastifyReply, FastifyRequest } from "fastify";
import type { z } from "zod";
import { describeError } from "../../../common/errors.js";
import type { EventStreamQuery, StreamRecord } from "../api-schemas.js";
import type { RouteContext } from "../route-context.js";
import { DEFAULT_SSE_LIMITS, SseWriter } from "../sse-writer.js";

/** How often an idle stream sends a comment, so proxies and clients see it is alive. */
const PING_MS = 15_000;
/** At most this many fleet health pushes per second per client. */
const HEALTH_PUSH_MS = 250;
/** How many records one connection catches up from history; the client then resumes again. */
export const RESUME_LIMIT = 1_000;
/** History reads per connection's catch-up, so that reads that make no progress still end. */
const CATCH_UP_READS = 12;
/** How long a stream being closed at shutdown may take to send what it has queued. */
const SHUTDOWN_GRACE_MS = 1_000;

/** The last comments of a stream that ends before its client is caught up. */
const MORE_TO_CATCH_UP = ": closing: more to catch up, resume with Last-Event-ID\n\n";
const HISTORY_UNAVAILABLE = ": closing: history unavailable, resume with Last-Event-ID\n\n";
/** The last comment of every stream when the gateway stops. */
export const SHUTTING_DOWN = ": closing: gateway shutting down\n\n";

/** A stream being served, as the routes see it: for shutdown and the pending-bytes gauge. */
export interface OpenStream {
  readonly pendingBytes: number;
  close(comment: string, graceMs?: number): void;
}

/** What one `/events/stream` request asked for. */
export interface StreamRequest {
  filter: z.infer<typeof EventStreamQuery>;
  /** The client's `Last-Event-ID`: where to resume from history. */
  lastEventId: number | undefined;
}

/**
 * Live records waiting while a resuming client is caught up from history, bounded in bytes. Past
 * the bound they are dropped and the catch-up reads them from history instead, as every record
 * is stored before it is delivered live.
 */
class Backlog {
  private messages: { seq: number; message: string }[] = [];
  private bytes = 0;
  overflowed = false;

  constructor(private readonly maxBytes: number) {}

  push(seq: number, message: string): void {
    if (this.overflowed) return;
    this.bytes += message.length;
    if (this.bytes > this.maxBytes) {
      this.reset();
      this.overflowed = true;
      return;
    }
    this.messages.push({ seq, message });
  }

  take(): { seq: number; message: string }[] {
    const messages = this.messages;
    this.reset();
    return messages;
  }

  reset(): void {
    this.messages = [];
    this.bytes = 0;
    this.overflowed = false;
  }
}

/**
 * Serves one live stream until it ends: health, then (for a resuming client) what it missed,
 * then live records and health changes. Writes go through {@link SseWriter}, which closes the
 * stream when its client does not keep up; ids only ever advance over records written whole, so
 * the client resumes exactly after the last one it received.
 */
export async function serveStream(
  ctx: RouteContext,
  request: FastifyRequest,
  reply: FastifyReply,
  open: Set<OpenStream>,
  { filter, lastEventId }: StreamRequest,
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
  const limits = ctx.deps.streamBuffer ?? DEFAULT_SSE_LIMITS;
  let lastSent = lastEventId ?? 0;
  const writer = new SseWriter(res, limits, (reason, pendingBytes) => {
    ctx.metrics.streamShed(reason);
    request.log.warn(
      { client: request.ip, reason, pendingBytes, lastEventId: lastSent },
      "closed a live event stream whose client does not keep up",
    );
  });
  const recordMessage = (record: StreamRecord) =>
    `id: ${record.seq}\nevent: record\ndata: ${JSON.stringify(record)}\n\n`;
  const sendMessage = (seq: number, message: string) => {
    if (seq > lastSent && writer.send(message)) lastSent = seq;
  };
  const sendHealth = () => {
    writer.send(`event: health\ndata: ${ctx.health.get(ctx.now()).json}\n\n`);
  };

  // Live records that arrive while a resuming client is caught up wait here, so none is lost or
  // sent twice between the history and the feed.
  let backlog: Backlog | undefined =
    lastEventId === undefined ? undefined : new Backlog(limits.maxPendingBytes);
  const unsubscribe = ctx.deps.feed.subscribe(filter, (record) => {
    if (!writer.open || record.seq <= lastSent) return;
    if (backlog) backlog.push(record.seq, recordMessage(record));
    else sendMessage(record.seq, recordMessage(record));
  });
  let healthTimer: NodeJS.Timeout | undefined;
  const unwatch = ctx.deps.view.onChange(() => {
    healthTimer ??= setTimeout(() => {
      healthTimer = undefined;
      sendHealth();
    }, HEALTH_PUSH_MS);
  });
  const ping = setInterval(() => writer.send(": ping\n\n"), PING_MS);
  const stream: OpenStream = {
    get pendingBytes() {
      return writer.pendingBytes;
    },
    close: (comment, graceMs = SHUTDOWN_GRACE_MS) => writer.close(comment, graceMs),
  };
  open.add(stream);
  try {
    writer.send("retry: 2000\n\n");
    sendHealth();
    if (backlog) {
      const caughtUp = await catchUp(ctx, request, writer, backlog, {
        filter,
        after: lastSent,
        send: (record) => sendMessage(record.seq, recordMessage(record)),
      });
      if (caughtUp === "live") {
        for (const { seq, message } of backlog.take()) sendMessage(seq, message);
        backlog = undefined;
      } else if (caughtUp === "more") {
        writer.close(MORE_TO_CATCH_UP);
      } else if (caughtUp === "unavailable") {
        writer.close(HISTORY_UNAVAILABLE);
      }
    }
    await writer.ended;
  } finally {
    open.delete(stream);
    unsubscribe();
    unwatch();
    clearInterval(ping);
    if (healthTimer) clearTimeout(healthTimer);
    writer.close("");
  }
}

/**
 * Sends the stored records after `after`, at the pace the client takes them, until the history
 * is exhausted with the backlog intact (`live`), or {@link RESUME_LIMIT} records or
 * {@link CATCH_UP_READS} reads were not enough (`more`), or the history cannot be read
 * (`unavailable`), or the stream closed meanwhile (`closed`). After `more` and `unavailable` the
 * client resumes again from the last record it received.
 */
async function catchUp(
  ctx: RouteContext,
  request: FastifyRequest,
  writer: SseWriter,
  backlog: Backlog,
  options: {
    filter: z.infer<typeof EventStreamQuery>;
    after: number;
    send: (record: StreamRecord) => void;
  },
): Promise<"live" | "more" | "unavailable" | "closed"> {
  let after = options.after;
  let sent = 0;
  for (let reads = 0; reads < CATCH_UP_READS && sent < RESUME_LIMIT; reads++) {
    let page: Awaited<ReturnType<typeof ctx.deps.events.read>>;
    try {
      page = await ctx.deps.events.read(
        { ...options.filter, after, limit: RESUME_LIMIT - sent },
        ctx.now(),
      );
    } catch (error) {
      request.log.warn(
        { err: describeError(error) },
        "could not catch up a reconnecting event stream",
      );
      return "unavailable";
    }
    for (const record of page.records) {
      await writer.room();
      if (!writer.open) return "closed";
      options.send(record);
      after = record.seq;
    }
    sent += page.records.length;
    if (page.next !== undefined) {
      after = Math.max(after, page.next);
      continue;
    }
    if (!backlog.overflowed) return "live";
    // Live records were dropped while this page was read: they are stored, so read on.
    backlog.reset();
  }
  return "more";
}
