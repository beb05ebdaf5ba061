// A minimal Server-Sent Events reader for tests: connects with fetch and queues the messages that
// common/sse-parser.js parses.

import { createSseParser, type SseMessage } from "../../common/sse-parser.js";

export type { SseMessage };

export interface SseConnection extends AsyncDisposable {
  status: number;
  headers: Headers;
  /** The next message, or an error when none arrives in time. */
  next(timeoutMs?: number, what?: string): Promise<SseMessage>;
  /** Skips messages until one matches. */
  nextMatching(
    match: (m: SseMessage) => boolean,
    timeoutMs?: number,
    what?: string,
  ): Promise<SseMessage>;
  close(): void;
}

export async function openSse(
  url: string,
  headers: Record<string, string> = {},
): Promise<SseConnection> {
  const abort = new AbortController();
  const res = await fetch(url, { headers, signal: abort.signal });
  const reader = res.body?.getReader();
  const decoder = new TextDecoder();
  const queue: SseMessage[] = [];
  const parser = createSseParser({ onMessage: (message) => queue.push(message) });
  let ended = false;

  const pump = async (): Promise<void> => {
    if (!reader) throw new Error("response has no body");
    const { value, done } = await reader.read();
    if (done) {
      parser.end();
      ended = true;
      return;
    }
    parser.feed(decoder.decode(value, { stream: true }));
  };

  const next = async (timeoutMs = 5_000, what = "an SSE message"): Promise<SseMessage> => {
    const deadline = Date.now() + timeoutMs;
    while (queue.length === 0) {
      if (ended) throw new Error(`stream ended while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${what} within ${timeoutMs} ms`);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        pump(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no ${what} within ${timeoutMs} ms`)), left);
        }),
      ]).finally(() => clearTimeout(timer));
    }
    return queue.shift() as SseMessage;
  };

  const close = () => abort.abort();
  return {
    status: res.status,
    headers: res.headers,
    next,
    async nextMatching(match, timeoutMs = 5_000, what = "a matching SSE message") {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const m = await next(Math.max(1, deadline - Date.now()), what);
        if (match(m)) return m;
      }
    },
    close,
    async [Symbol.asyncDispose]() {
      close();
    },
  };
}
