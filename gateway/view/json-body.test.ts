import { describe, expect, it } from "vitest";
import { jsonArrayBody } from "./json-body.js";

const part = (value: unknown) => {
  const json = JSON.stringify(value);
  return { json, bytes: Buffer.byteLength(json) };
};

describe("jsonArrayBody", () => {
  it("writes exactly the JSON of the whole document, multi-byte text included", () => {
    const items = [{ name: "web" }, { name: "café ☕" }, { name: "𝄞" }];
    const body = jsonArrayBody('{"items":[', items.map(part), '],"total":3}');
    expect(body.toString("utf8")).toBe(JSON.stringify({ items, total: 3 }));
    expect(body.length).toBe(Buffer.byteLength(JSON.stringify({ items, total: 3 })));
  });

  it("writes an empty array without a stray comma", () => {
    expect(jsonArrayBody('{"items":[', [], "]}").toString()).toBe('{"items":[]}');
  });
});
