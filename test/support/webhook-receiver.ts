// A webhook receiver on loopback standing in for Slack, Discord or any JSON endpoint: the witness
// of what the notify handler sent, how often, and with which payload.

import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** One request the receiver got, and the status it answered. */
export interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  status: number;
}

/** A running receiver; `close` stops it. */
export interface WebhookReceiver {
  /** `http://127.0.0.1:<port>`. */
  url: string;
  /** Every request so far, in arrival order. */
  received: Received[];
  close(): Promise<void>;
}

/**
 * Starts a receiver on 127.0.0.1. `answer` decides the status of each request from what it has
 * seen so far (default: 200 to everything).
 */
export async function startReceiver(
  answer: (req: Received, seen: Received[]) => number = () => 200,
): Promise<WebhookReceiver> {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => {
      body += chunk;
    });
    req.on("end", () => {
      const entry: Received = { path: req.url ?? "", headers: req.headers, body, status: 0 };
      entry.status = answer(entry, received);
      received.push(entry);
      res.writeHead(entry.status, { "Content-Type": "text/plain" }).end("ok");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
