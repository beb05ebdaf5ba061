/** One Server-Sent Events message (https://html.spec.whatwg.org/multipage/server-sent-events.html). */
export interface SseMessage {
  event: string;
  data: string;
  /** The `id` field of this message, when it had one. */
  id?: string;
}

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
 * Parses an event stream body into messages. Lines may end in LF, CRLF or CR, and may be split
 * across chunks anywhere, including inside a multi-byte character. Ends when the body ends;
 * throws SseIdleError when it stays silent for `idleTimeoutMs`.
 */
export async function* readSse(
  body: ReadableStream<Uint8Array>,
  options: SseReadOptions,
): AsyncGenerator<SseMessage> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let event = "";
  let id: string | undefined;
  let data: string[] = [];
  try {
    for (;;) {
      const chunk = await readWithin(reader, options.idleTimeoutMs);
      if (chunk === undefined) {
        // A CR held back as a possible half of CRLF was a line end after all.
        if (!buffer.endsWith("\r")) return;
        buffer += "\n";
      } else {
        buffer += decoder.decode(chunk, { stream: true });
      }
      for (;;) {
        const end = /\r\n|\n|\r/.exec(buffer);
        // A lone CR at the end of the buffer may be the first half of CRLF: wait for more.
        if (!end || (end[0] === "\r" && end.index === buffer.length - 1)) break;
        const line = buffer.slice(0, end.index);
        buffer = buffer.slice(end.index + end[0].length);
        if (line === "") {
          if (data.length > 0) {
            yield { event: event || "message", data: data.join("\n"), ...(id ? { id } : {}) };
          }
          event = "";
          id = undefined;
          data = [];
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "data") data.push(value);
        else if (field === "event") event = value;
        else if (field === "id" && !value.includes("\0")) id = value;
        else if (field === "retry" && /^\d+$/.test(value)) options.onRetry?.(Number(value));
      }
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
