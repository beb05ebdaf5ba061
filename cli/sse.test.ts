import { describe, expect, it } from "vitest";
import { readSse, SseIdleError, type SseMessage } from "./sse.js";

/** A body that delivers `chunks` as separate reads, then ends (or stays open). */
function body(chunks: (string | Uint8Array)[], end = true): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const c of chunks) controller.enqueue(typeof c === "string" ? encoder.encode(c) : c);
      if (end) controller.close();
    },
  });
}

async function all(stream: ReadableStream<Uint8Array>, onRetry?: (ms: number) => void) {
  const messages: SseMessage[] = [];
  for await (const m of readSse(stream, {
    idleTimeoutMs: 1_000,
    ...(onRetry ? { onRetry } : {}),
  })) {
    messages.push(m);
  }
  return messages;
}

describe("readSse", () => {
  it("parses the gateway's messages split anywhere, with any line ending", async () => {
    const text =
      'retry: 2000\n\nevent: health\ndata: {"status":"healthy"}\n\n: ping\n\nid: 7\r\nevent: record\r\ndata: {"seq":7}\r\n\r\ndata: a\rdata: b\r\r';
    const retries: number[] = [];
    const expected = [
      { event: "health", data: '{"status":"healthy"}' },
      { event: "record", data: '{"seq":7}', id: "7" },
      { event: "message", data: "a\nb" },
    ];
    expect(await all(body([text]), (ms) => retries.push(ms))).toEqual(expected);
    expect(retries).toEqual([2000]);
    // One byte per read: every split point, including between CR and LF.
    expect(await all(body([...text].map((c) => c)))).toEqual(expected);
  });

  it("decodes a multi-byte character split across reads", async () => {
    const bytes = new TextEncoder().encode("data: café ☕\n\n");
    const chunks = [...bytes].map((b) => new Uint8Array([b]));
    expect(await all(body(chunks))).toEqual([{ event: "message", data: "café ☕" }]);
  });

  it("drops a message cut off by the end of the stream", async () => {
    expect(await all(body(["data: complete\n\ndata: cut off"]))).toEqual([
      { event: "message", data: "complete" },
    ]);
  });

  it("gives up on a stream that stays silent", async () => {
    const silent = readSse(body([], false), { idleTimeoutMs: 50 });
    await expect(silent.next()).rejects.toBeInstanceOf(SseIdleError);
  });
});
