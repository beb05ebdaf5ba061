import { createSseParser, type SseMessage } from "../common/sse-parser.js";

export type { SseMessage };

/** The stream said nothing, not even a keep-alive comment, for longer than allowed. */
export class SseIdleError extends Error {
  override readonly name = "SseIdleError";
}

export interface SseReadOptions {
  /**
   * The gateway sends a comment every 15 s; silence well beyond that means the connection died
   * without a reset (a NAT table dropped it, a cable was pulled), which TCP alone would not
   * notice for many minutes.
   */
  idleTimeoutMs: number;
  /** Called with the server's `retry:` value, the reconnection delay it asks for. */
  onRetry?: (ms: number) => void;
}

/**
 * Reads an event stream body as messages (common/sse-parser.js parses it). Ends when the body
 * ends; throws SseIdleError when it stays silent for `idleTimeoutMs`.
 */
export async function* readSse(
  body: ReadableStream<Uint8Array>,
  options: SseReadOptions,
): AsyncGenerator<SseMessage> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const parsed: SseMessage[] = [];
  const parser = createSseParser({
    onMessage: (message) => parsed.push(message),
    onRetry: options.onRetry,
  });
  try {
    for (;;) {
      const chunk = await readWithin(reader, options.idleTimeoutMs);
      if (chunk === undefined) parser.end();
      // `stream: true` keeps a multi-byte character split across reads for the next one.
      else parser.feed(decoder.decode(chunk, { stream: true }));
      yield* parsed.splice(0);
      if (chunk === undefined) return;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}

async function readWithin(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  ms: number,
): Promise<Uint8Array | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const result = await Promise.race([
      reader.read(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new SseIdleError(`nothing received for ${Math.round(ms / 1000)} s`)),
          ms,
        );
      }),
    ]);
    return result.done ? undefined : result.value;
  } finally {
    clearTimeout(timer);
  }
}
