import { setTimeout as sleep } from "node:timers/promises";
import { describeError } from "../common/errors.js";
import { type EventsQuery, StreamRecord } from "../gateway/http/api-schemas.js";
import {
  type EventStream,
  type GatewayClient,
  GatewayError,
  type StreamFilter,
} from "./gateway-client.js";
import { readSse, SseIdleError } from "./sse.js";

/** A record from the feed, and its JSON as the gateway sent it (for `--json`). */
export interface FeedItem {
  record: StreamRecord;
  json: unknown;
}

export interface FollowOptions {
  filter: StreamFilter;
  /** Print history from this far back (a duration or an ISO time) before the live records. */
  since?: string;
  /** Records per history page. */
  pageSize?: number;
  signal: AbortSignal;
  now: () => number;
  /** Human notes for stderr: connected, connection lost, resumed. */
  notice: (text: string) => void;
  /** Delay before reconnecting; the gateway's `retry:` (2 s) otherwise. */
  reconnectDelayMs?: number;
  /** A silent stream is taken for dead after this long; the gateway pings every 15 s. */
  idleTimeoutMs?: number;
}

const DEFAULT_RETRY_MS = 2_000;
const DEFAULT_IDLE_MS = 45_000;
/**
 * A catch-up without a record to resume after asks for the records since the first connection,
 * plus this margin for the time the request took: a record or two from just before following
 * started may show up, none in between is lost.
 */
const CATCH_UP_MARGIN_S = 5;

/**
 * The events of `/events/stream`, in stream order, without gaps or repeats across reconnects.
 *
 * - With `since`, history from `/events` comes first. The stream is opened before the history is
 *   read and its records are only read after it, so whatever is stored in between arrives live;
 *   records are deduplicated by stream sequence.
 * - When the connection drops (the gateway restarts, a proxy cuts it, or it goes silent), it
 *   reconnects with `Last-Event-ID` set to the last record's sequence, and the gateway replays
 *   what was missed (up to 1,000 records) before the live feed. Before any record has been
 *   seen there is no id to resume after, so the history since the first connection is read
 *   instead; a `since` history cut short by a drop goes on after its last record.
 * - The first connection failing is an error (exit 3 or 4); later failures are retried until
 *   `signal` aborts, except answers that retrying cannot change (a 4xx other than 429).
 */
export async function* followEvents(
  client: GatewayClient,
  options: FollowOptions,
): AsyncGenerator<FeedItem> {
  const { signal, notice } = options;
  let lastSeq: number | undefined;
  let firstConnectedAt: number | undefined;
  let retryMs = options.reconnectDelayMs ?? DEFAULT_RETRY_MS;
  let outage: string | undefined;
  // History not yet printed: the --since history until it has been read to its end, or the
  // records missed while disconnected when no record id was known to resume after.
  let owed: Partial<EventsQuery> | undefined =
    options.since === undefined ? undefined : { since: options.since };

  while (!signal.aborted) {
    let connection: EventStream;
    try {
      connection = await client.openEventStream(options.filter, lastSeq, signal);
    } catch (error) {
      if (signal.aborted) return;
      if (firstConnectedAt === undefined || !retryable(error)) throw error;
      const reason = error instanceof Error ? error.message : String(error);
      if (outage !== reason) notice(`cannot reconnect (${reason}); retrying every ${retryMs} ms`);
      outage = reason;
      await pause(retryMs, signal);
      continue;
    }

    if (firstConnectedAt === undefined) {
      firstConnectedAt = options.now();
      notice(`following ${client.url}/events/stream (Ctrl-C to stop)`);
    } else {
      notice(
        lastSeq === undefined
          ? "reconnected; catching up since following started"
          : `reconnected; resuming after record ${lastSeq}`,
      );
      if (owed === undefined && lastSeq === undefined) {
        const back = Math.ceil((options.now() - firstConnectedAt) / 1000) + CATCH_UP_MARGIN_S;
        // A duration is measured by the gateway's clock, so this client's clock does not matter.
        owed = { since: `${back}s` };
      }
    }
    outage = undefined;

    const stream = readSse(connection.body, {
      idleTimeoutMs: options.idleTimeoutMs ?? DEFAULT_IDLE_MS,
      onRetry: (ms) => {
        if (options.reconnectDelayMs === undefined) retryMs = ms;
      },
    });
    try {
      if (owed) {
        for await (const item of history(client, { ...options.filter, ...owed }, options)) {
          if (lastSeq !== undefined && item.record.seq <= lastSeq) continue;
          lastSeq = item.record.seq;
          yield item;
        }
        owed = undefined;
      }
      for await (const message of stream) {
        if (message.event !== "record") continue;
        const item = parseRecord(message.data);
        if (lastSeq !== undefined && item.record.seq <= lastSeq) continue;
        lastSeq = item.record.seq;
        yield item;
      }
      if (signal.aborted) return;
      notice(`the gateway closed the stream; reconnecting in ${retryMs} ms`);
    } catch (error) {
      if (signal.aborted) return;
      if (error instanceof GatewayError && !retryable(error)) throw error;
      // History cut short goes on where it stopped, not just as far as Last-Event-ID reaches.
      if (owed !== undefined && lastSeq !== undefined) owed = { after: lastSeq };
      const reason = error instanceof SseIdleError ? error.message : describeError(error);
      notice(`connection lost (${reason}); reconnecting in ${retryMs} ms`);
    } finally {
      await stream.return(undefined);
      await connection.close();
    }
    await pause(retryMs, signal);
  }
}

/** Every page of `/events` for `query`, oldest first. */
export async function* history(
  client: GatewayClient,
  query: Partial<EventsQuery>,
  options: { pageSize?: number },
): AsyncGenerator<FeedItem> {
  let q: Partial<EventsQuery> = { ...query, limit: options.pageSize ?? 1000 };
  for (;;) {
    const page = await client.events(q);
    const raw = (page.json as { records: unknown[] }).records;
    for (const [i, record] of page.value.records.entries()) yield { record, json: raw[i] };
    if (page.value.next === undefined || page.value.records.length === 0) return;
    q = { ...query, limit: q.limit, after: page.value.next };
  }
}

function parseRecord(data: string): FeedItem {
  let json: unknown;
  try {
    json = JSON.parse(data);
  } catch {
    throw new GatewayError("FLEETHEAL_ERR_BAD_RESPONSE", "an event stream record is not JSON");
  }
  const parsed = StreamRecord.safeParse(json);
  if (!parsed.success) {
    throw new GatewayError(
      "FLEETHEAL_ERR_BAD_RESPONSE",
      `an event stream record is not the API's: ${parsed.error.issues[0]?.message ?? "invalid"}`,
    );
  }
  return { record: parsed.data, json };
}

/** Worth another try: no answer at all, a 5xx or a 429; a 4xx will only be refused again. */
function retryable(error: unknown): boolean {
  if (!(error instanceof GatewayError)) return true;
  if (error.code === "FLEETHEAL_ERR_BAD_RESPONSE") return false;
  return error.status === undefined || error.status >= 500 || error.status === 429;
}

async function pause(ms: number, signal: AbortSignal): Promise<void> {
  await sleep(ms, undefined, { signal }).catch(() => {});
}
