/** Most bytes read from one exec's output: past it the exec is left, and counts as failed. */
export const MAX_EXEC_BYTES = 1024 * 1024;

/** What an exec printed, as far as it was read. */
export interface ExecOutput {
  /** The last `maxChars` characters of stdout and stderr, trimmed. */
  text: string;
  /** The exec did not end within the time it was given. */
  timedOut: boolean;
  /** It printed more than {@link MAX_EXEC_BYTES}: reading stopped there. */
  cut: boolean;
}

/**
 * Reads an exec's multiplexed stdout/stderr stream (8-byte frame headers) into text, keeping the
 * last `maxChars` characters, for at most `timeoutMs` and at most `maxBytes`. A container's
 * command writes this stream, so neither its length nor its frames may make the agent hold
 * more than that: a frame is never kept whole beyond the byte limit either.
 */
export function readExecOutput(
  stream: NodeJS.ReadableStream & { destroy?: () => void },
  timeoutMs: number,
  maxChars: number,
  maxBytes = MAX_EXEC_BYTES,
): Promise<ExecOutput> {
  return new Promise((resolve) => {
    let buffer = Buffer.alloc(0);
    let text = "";
    let received = 0;
    let done = false;
    const finish = (timedOut: boolean, cut: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      stream.removeAllListeners("data");
      if (timedOut || cut) stream.destroy?.();
      resolve({ text: text.trim().slice(-maxChars), timedOut, cut });
    };
    const timer = setTimeout(() => finish(true, false), timeoutMs);
    stream.on("data", (chunk: Buffer) => {
      received += chunk.length;
      buffer = Buffer.concat([buffer, chunk]);
      while (buffer.length >= 8) {
        const size = buffer.readUInt32BE(4);
        if (buffer.length < 8 + size) break;
        text += buffer.subarray(8, 8 + size).toString("utf8");
        if (text.length > 4 * maxChars) text = text.slice(-maxChars);
        buffer = buffer.subarray(8 + size);
      }
      if (received > maxBytes) finish(false, true);
    });
    stream.on("end", () => finish(false, false));
    stream.on("close", () => finish(false, false));
    stream.on("error", () => finish(false, false));
  });
}
