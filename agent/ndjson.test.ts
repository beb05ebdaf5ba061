import { describe, expect, it } from "vitest";
import { NdjsonSplitter } from "./ndjson.js";

const bytes = (s: string) => new TextEncoder().encode(s);

describe("NdjsonSplitter", () => {
  it("returns several events from one chunk", () => {
    const s = new NdjsonSplitter();
    expect(s.push('{"a":1}\n{"b":2}\n{"c":3}\n')).toEqual(['{"a":1}', '{"b":2}', '{"c":3}']);
    expect(s.remainder).toBe("");
  });

  it("joins one event split across three chunks", () => {
    const s = new NdjsonSplitter();
    expect(s.push(bytes('{"Type":"cont'))).toEqual([]);
    expect(s.remainder).toBe('{"Type":"cont');
    expect(s.push(bytes('ainer","Action":'))).toEqual([]);
    expect(s.push(bytes('"start"}\n'))).toEqual(['{"Type":"container","Action":"start"}']);
    expect(s.remainder).toBe("");
  });

  it("decodes a multi-byte UTF-8 character split across chunks", () => {
    const s = new NdjsonSplitter();
    // "é" is 0xC3 0xA9, "😀" is 4 bytes; split inside both.
    const line = bytes('{"name":"café 😀"}\n');
    const e = line.indexOf(0xc3);
    const emoji = line.indexOf(0xf0);
    const parts = [line.slice(0, e + 1), line.slice(e + 1, emoji + 2), line.slice(emoji + 2)];
    expect(parts.map((p) => p.length).every((n) => n > 0)).toBe(true);
    expect(s.push(parts[0] as Uint8Array)).toEqual([]);
    expect(s.push(parts[1] as Uint8Array)).toEqual([]);
    expect(s.push(parts[2] as Uint8Array)).toEqual(['{"name":"café 😀"}']);
    expect(s.remainder).toBe("");
  });

  it("skips blank and whitespace-only lines and trims CRLF", () => {
    const s = new NdjsonSplitter();
    expect(s.push('\n\n{"a":1}\r\n   \n\t\n{"b":2}\n\n')).toEqual(['{"a":1}', '{"b":2}']);
  });

  it("keeps a trailing partial line in remainder", () => {
    const s = new NdjsonSplitter();
    expect(s.push('{"a":1}\n{"b":')).toEqual(['{"a":1}']);
    expect(s.remainder).toBe('{"b":');
    expect(s.push("2}")).toEqual([]);
    expect(s.remainder).toBe('{"b":2}');
  });

  it("reset() discards the partial line", () => {
    const s = new NdjsonSplitter();
    s.push('{"a":');
    s.reset();
    expect(s.remainder).toBe("");
    expect(s.push('{"b":2}\n')).toEqual(['{"b":2}']);
  });
});
