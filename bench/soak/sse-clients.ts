// The soak's live-stream clients on GET /events/stream: some read everything, as the dashboard
// does; some never read a byte after the response headers, as a client that hung would. A hung
// client is dropped after a while and another one hangs in its place, so that the gateway meets
// new stalled streams all through the run, not only in its first minute.
//
// Each client connects from its own loopback address (127.0.1.<n>), so that a limit of streams
// per client address counts them as the different clients they stand for.

import { type ClientRequest, type IncomingMessage, request } from "node:http";

/** What the clients saw, for the report. */
export interface SseCounts {
  /** Bytes the reading clients received. */
  bytesRead: number;
  /** `event: record` messages the reading clients received. */
  records: number;
  /** Streams the gateway ended or reset (readers and stalled ones), each reopened. */
  closedByGateway: number;
  /** Opens the gateway refused (a status other than 200), each retried. */
  refused: number;
  /** Stalled streams dropped by their client at the end of their life, and replaced. */
  stalledReplaced: number;
}

interface Client {
  req?: ClientRequest;
  res?: IncomingMessage;
  /** The last `id:` a reader saw, sent back as Last-Event-ID when it reconnects. */
  lastId?: string;
}

/** How long a client waits before it reopens a stream the gateway closed or refused. */
const REOPEN_MS = 1_000;

export interface SseClientSettings {
  readers: number;
  stalled: number;
  /** How long a stalled client hangs before it is dropped and another one hangs instead. */
  stalledLifeMs: number;
}

/**
 * Opens reading and non-reading streams on the gateway at `baseUrl`, and keeps them open: a
 * stream the gateway ends is reopened after a second (a reader resumes from its Last-Event-ID).
 * The stalled ones are replaced in turn, staggered over their life. stop() closes them all.
 */
export function startSseClients(baseUrl: string, settings: SseClientSettings) {
  const { readers, stalled, stalledLifeMs } = settings;
  const counts: SseCounts = {
    bytesRead: 0,
    records: 0,
    closedByGateway: 0,
    refused: 0,
    stalledReplaced: 0,
  };
  const url = new URL("/events/stream", baseUrl);
  const clients: Client[] = [];
  let stopped = false;
  const timers = new Set<NodeJS.Timeout>();

  const later = (ms: number, fn: () => void) => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timers.add(timer);
  };

  const open = (client: Client, index: number, reads: boolean, lifeMs: number) => {
    if (stopped) return;
    let closed = false;
    const reopen = (why: "closed" | "refused" | "replaced") => {
      if (closed) return;
      closed = true;
      if (stopped) return;
      if (why === "closed") counts.closedByGateway++;
      else if (why === "refused") counts.refused++;
      else counts.stalledReplaced++;
      if (why === "replaced") open(client, index, reads, stalledLifeMs);
      else later(REOPEN_MS, () => open(client, index, reads, stalledLifeMs));
    };
    const req = request(url, {
      localAddress: `127.0.1.${index + 1}`,
      headers: {
        accept: "text/event-stream",
        ...(client.lastId === undefined ? {} : { "last-event-id": client.lastId }),
      },
      agent: false,
    });
    client.req = req;
    req.on("error", () => reopen("closed"));
    req.on("response", (res) => {
      client.res = res;
      if (res.statusCode !== 200) {
        res.resume();
        reopen("refused");
        return;
      }
      res.on("error", () => reopen("closed"));
      res.socket.on("close", () => reopen("closed"));
      if (!reads) {
        // Never read: the body stays in the kernel's buffers, then in the gateway's.
        res.pause();
        later(lifeMs, () => {
          if (closed) return;
          req.destroy();
          reopen("replaced");
        });
        return;
      }
      let tail = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        counts.bytesRead += Buffer.byteLength(chunk);
        // Only the ids and the count of records are kept; the rest is dropped as it is read.
        const text = tail + chunk;
        const cut = text.lastIndexOf("\n\n");
        const whole = cut === -1 ? "" : text.slice(0, cut);
        tail = cut === -1 ? text : text.slice(cut + 2);
        if (tail.length > 1_000_000) tail = "";
        for (const message of whole.split("\n\n")) {
          const id = /^id: (\d+)$/m.exec(message)?.[1];
          if (id !== undefined) client.lastId = id;
          if (/^event: record$/m.test(message)) counts.records++;
        }
      });
      res.on("end", () => reopen("closed"));
    });
    req.end();
  };

  for (let i = 0; i < readers + stalled; i++) {
    const client: Client = {};
    clients.push(client);
    // The first lives are staggered, so that one stalled client is replaced at a time.
    const first = i < readers ? 0 : Math.round((stalledLifeMs * (i - readers + 1)) / stalled);
    open(client, i, i < readers, first);
  }

  return {
    counts,
    /** Streams open now (a response of 200 whose socket is not closed). */
    openStreams(): number {
      return clients.filter((c) => c.res?.statusCode === 200 && !c.res.socket?.destroyed).length;
    },
    stop(): void {
      stopped = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      for (const c of clients) c.req?.destroy();
    },
  };
}
