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

  it("joins multi-line data with LF, whatever each line ended in", () => {
    const { messages } = parse(["data: one\r\ndata: two\rdata: three\n\r\n"]);
    expect(messages).toStrictEqual([{ event: "message", data: "one\ntwo\nthree" }]);
  });

  it("parses the same messages however the stream is split into pieces", () => {
    const stream =
      ': keep-alive\r\nid: 7\r\nevent: record\r\ndata: {"a":\r\ndata: 1}\r\n\r\n' +
      "retry: 250\rdata: é€𝄞\r\rid: 8\nevent: health\ndata: ok\n\n";
    const whole = parse([stream]);
    expect(whole.messages).toStrictEqual([
      { event: "record", data: '{"a":\n1}', id: "7" },
      { event: "message", data: "é€𝄞" },
      { event: "health", data: "ok", id: "8" },
    ]);
    expect(whole.retries).toEqual([250]);
    for (let cut = 0; cut <= stream.length; cut++) {
      expect(parse([stream.slice(0, cut), stream.slice(cut)]), `cut at ${cut}`).toStrictEqual(
        whole,
      );
    }
    expect(parse([...stream]), "one character a piece").toStrictEqual(whole);
  });

  it("ignores one byte order mark at the start of the stream only", () => {
    expect(parse(["\uFEFFdata: a\n\n"]).messages).toStrictEqual([{ event: "message", data: "a" }]);
    expect(parse(["", "\uFEFF", "data: a\n\n"]).messages).toStrictEqual([
      { event: "message", data: "a" },
    ]);
    // A second one is part of the field name, so the line is an unknown field.
    expect(parse(["\uFEFF\uFEFFdata: a\n\n"]).messages).toEqual([]);
    expect(parse(["data: a\n\n\uFEFFdata: b\n\n"]).messages).toStrictEqual([
      { event: "message", data: "a" },
    ]);
  });

  it("drops a message that the end of the stream cuts short", () => {
    expect(parse(["data: a\n\ndata: b\n"]).messages).toStrictEqual([
      { event: "message", data: "a" },
    ]);
    expect(parse(["data: a\ndata: b"]).messages).toEqual([]);
  });

  it("gives an id only to the message whose block had one, and no empty id", () => {
    const { messages } = parse(["id: 1\ndata: a\n\ndata: b\n\nid:\ndata: c\n\n"]);
    expect(messages).toStrictEqual([
      { event: "message", data: "a", id: "1" },
      { event: "message", data: "b" },
      { event: "message", data: "c" },
    ]);
  });
});
