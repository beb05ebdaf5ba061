// An SSE client on a bare TCP socket (node:net), for tests of clients that stop reading: fetch
// reads ahead into its own buffers, a paused socket does not, so the server's writes back up
// into its socket as they would for a stalled browser or a stuck proxy.

import { connect, type Socket } from "node:net";
import { waitFor } from "./wait.js";

export interface RawSse extends AsyncDisposable {
  /** The response's status code. */
  readonly status: number;
  /** The response body received so far, with the chunked encoding taken off. */
  body(): string;
  /** Every `id:` received so far, in order. */
  ids(): number[];
  /** True once the server sent the body's last chunk. */
  readonly ended: boolean;
  /** True once the connection is gone (closed or reset by the server). */
  readonly closed: boolean;
  /** Stops reading from the socket: what the server sends waits in the kernel, then the server. */
  pause(): void;
  resume(): void;
  /** Waits until `match(body)` holds; fails with `what` after `timeoutMs`. */
  waitForBody(match: (body: string) => boolean, timeoutMs: number, what: string): Promise<string>;
  close(): void;
}

/** Opens `GET path` on `url`'s host and port over a bare socket and reads the response head. */
export async function openRawSse(
  url: string,
  headers: Record<string, string> = {},
): Promise<RawSse> {
  const target = new URL(url);
  const socket: Socket = connect({ host: target.hostname, port: Number(target.port) });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  socket.on("error", () => {});
  const lines = Object.entries({ host: target.host, accept: "text/event-stream", ...headers }).map(
    ([name, value]) => `${name}: ${value}\r\n`,
  );
  socket.write(`GET ${target.pathname}${target.search} HTTP/1.1\r\n${lines.join("")}\r\n`);

  let raw = Buffer.alloc(0);
  let head: string | undefined;
  const chunks: Buffer[] = [];
  let ended = false;
  let closed = false;
  let text = "";
  socket.on("data", (data: Buffer) => {
    raw = Buffer.concat([raw, data]);
    if (head === undefined) {
      const end = raw.indexOf("\r\n\r\n");
      if (end === -1) return;
      head = raw.subarray(0, end).toString("latin1");
      raw = raw.subarray(end + 4);
    }
    // Chunked transfer encoding: `<hex size>\r\n<data>\r\n`, ended by a chunk of size 0.
    for (;;) {
      const lineEnd = raw.indexOf("\r\n");
      if (lineEnd === -1) break;
      const size = Number.parseInt(raw.subarray(0, lineEnd).toString("latin1"), 16);
      if (raw.length < lineEnd + 2 + size + 2) break;
      if (size === 0) ended = true;
      else chunks.push(raw.subarray(lineEnd + 2, lineEnd + 2 + size));
      raw = raw.subarray(lineEnd + 2 + size + 2);
    }
  });
  socket.on("close", () => {
    closed = true;
  });
  const body = () => {
    // The bodies here are ASCII, so a chunk boundary never splits a character.
    if (chunks.length > 0) text += Buffer.concat(chunks.splice(0)).toString("utf8");
    return text;
  };
  await waitFor(() => head !== undefined || closed, {
    timeoutMs: 5_000,
    message: `no response head from ${url}`,
  });
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head ?? "")?.[1] ?? 0);
  return {
    status,
    body,
    ids: () => [...body().matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1])),
    get ended() {
      return ended;
    },
    get closed() {
      return closed;
    },
    pause: () => socket.pause(),
    resume: () => socket.resume(),
    waitForBody: (match, timeoutMs, what) =>
      waitFor(
        () => {
          const b = body();
          return match(b) ? b : undefined;
        },
        { timeoutMs, message: () => `${what}; received ${body().length} characters` },
      ),
    close: () => socket.destroy(),
    async [Symbol.asyncDispose]() {
      socket.destroy();
    },
  };
}
