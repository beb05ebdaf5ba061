import { describe, expect, it } from "vitest";
import { createSseParser, type SseMessage } from "./sse-parser.js";

/** Feeds `pieces` to one parser, ends the stream, and returns what it parsed. */
function parse(pieces: string[]) {
  const messages: SseMessage[] = [];
  const retries: number[] = [];
  const parser = createSseParser({
    onMessage: (m) => messages.push(m),
    onRetry: (ms) => retries.push(ms),
  });
  for (const piece of pieces) parser.feed(piece);
  parser.end();
  return { messages, retries };
}

describe("createSseParser", () => {
  it("gives a message the id, event and data fields of its own block only", () => {
    const { messages } = parse(["id: 1\nevent: record\ndata: a\n\ndata: b\n\n"]);
    expect(messages).toStrictEqual([
      { event: "record", data: "a", id: "1" },
      { event: "message", data: "b" },
    ]);
  });

  it("keeps a value's spaces but the one after the colon, and reads a field without a colon", () => {
    const { messages } = parse(["data:  two\ndata\ndata:x\n\n"]);
    expect(messages).toStrictEqual([{ event: "message", data: " two\n\nx" }]);
  });

  it("ignores comments, unknown fields, ids with NUL and retry values that are not a number", () => {
    const { messages, retries } = parse([
      ": comment\nfoo: bar\nid: a\0b\nretry: 10s\nretry: 1500\ndata: x\n\n",
    ]);
    expect(messages).toStrictEqual([{ event: "message", data: "x" }]);
    expect(retries).toEqual([1500]);
  });

  it("sends nothing for a block without data", () => {
    expect(parse(["event: health\nid: 3\n\n"]).messages).toEqual([]);
  });

  it("takes a CR at the end of a piece as a line end only once the next piece or the end says so", () => {
    const messages: SseMessage[] = [];
    const parser = createSseParser({ onMessage: (m) => messages.push(m) });
    parser.feed("data: a\r");
    parser.feed("\n\r");
    expect(messages).toEqual([]);
    parser.end();
    expect(messages).toStrictEqual([{ event: "message", data: "a" }]);
  });
});
