/**
 * Splits a byte stream of newline-delimited JSON into lines. Docker writes its event stream this
 * way, and a single read may hold several events or half of one, so bytes are buffered until a
 * newline arrives. Multi-byte characters split across chunks are decoded correctly.
 */
export class NdjsonSplitter {
  private readonly decoder = new TextDecoder();
  private pending = "";

  /** Feeds one chunk; returns the complete, non-blank lines it finished. */
  push(chunk: Uint8Array | string): string[] {
    this.pending +=
      typeof chunk === "string" ? chunk : this.decoder.decode(chunk, { stream: true });
    const lines = this.pending.split("\n");
    this.pending = lines.pop() ?? "";
    return lines.map((l) => l.trim()).filter((l) => l.length > 0);
  }

  /** Bytes received after the last newline: an event cut off when the stream ended. */
  get remainder(): string {
    return this.pending;
  }

  reset(): void {
    this.pending = "";
    this.decoder.decode();
  }
}
