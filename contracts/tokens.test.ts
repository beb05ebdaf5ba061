import { describe, expect, it } from "vitest";
import { ContainerId, HostId, isToken, MAX_TOKEN_LENGTH, Token, toToken } from "./tokens.js";

const FULL_ID = "4f1c2b3a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a";

describe("Token and HostId", () => {
  it.each([
    ["a"],
    ["host-1"],
    ["host_1"],
    ["HOST-A_b-9"],
    ["0"],
    ["-leading-dash"],
    ["x".repeat(MAX_TOKEN_LENGTH)],
  ])("accepts %j", (value) => {
    expect(Token.safeParse(value).success).toBe(true);
    expect(HostId.safeParse(value).success).toBe(true);
    expect(isToken(value)).toBe(true);
  });

  it.each([
    ["", "empty"],
    ["a.b", "dot"],
    ["web.example.com", "hostname with dots"],
    ["*", "single-token wildcard"],
    [">", "full wildcard"],
    ["a*", "embedded wildcard"],
    ["a>", "embedded full wildcard"],
    ["a b", "space"],
    [" a", "leading space"],
    ["a\t", "tab"],
    ["a\nb", "newline"],
    ["hôst", "unicode letter"],
    ["主机", "CJK"],
    ["host😀", "emoji"],
    ["a/b", "slash"],
    ["a:b", "colon"],
    ["x".repeat(MAX_TOKEN_LENGTH + 1), "too long"],
  ])("rejects %j (%s)", (value) => {
    expect(Token.safeParse(value).success).toBe(false);
    expect(HostId.safeParse(value).success).toBe(false);
    expect(isToken(value)).toBe(false);
  });

  it("explains why a token is rejected", () => {
    const empty = Token.safeParse("");
    expect(empty.error?.issues.map((i) => i.message)).toContain("must not be empty");
    const long = Token.safeParse("x".repeat(129));
    expect(long.error?.issues.map((i) => i.message)).toContain("must be at most 128 characters");
    const dotted = Token.safeParse("a.b");
    expect(dotted.error?.issues.map((i) => i.message)).toEqual([
      "may contain only letters, digits, '_' and '-'",
    ]);
  });

  it("MAX_TOKEN_LENGTH is 128", () => {
    expect(MAX_TOKEN_LENGTH).toBe(128);
  });
});

describe("ContainerId", () => {
  it.each([
    [FULL_ID, "full 64-char id"],
    [FULL_ID.slice(0, 12), "12-char short id"],
    [FULL_ID.slice(0, 20), "20-char prefix"],
  ])("accepts %j (%s)", (value) => {
    expect(ContainerId.safeParse(value).success).toBe(true);
  });

  it.each([
    ["", "empty"],
    [FULL_ID.slice(0, 11), "11 chars"],
    [`${FULL_ID}a`, "65 chars"],
    [FULL_ID.toUpperCase(), "uppercase hex"],
    ["4f1c2b3a9d8g", "non-hex letter g"],
    ["my-container", "a name"],
    ["4f1c2b3a9d8e.", "trailing dot"],
    ["4f1c2b3a9d8e*", "wildcard"],
    [" 4f1c2b3a9d8e", "leading space"],
  ])("rejects %j (%s)", (value) => {
    expect(ContainerId.safeParse(value).success).toBe(false);
  });
});

describe("toToken", () => {
  it.each([
    ["web-01", "web-01"],
    ["web01.example.com", "web01-example-com"],
    ["my host", "my-host"],
    ["a..b", "a-b"],
    ["..leading.and.trailing..", "leading-and-trailing"],
    ["hôst", "h-st"],
    ["*", "host"],
    ["", "host"],
    ["...", "host"],
    ["a>b*c", "a-b-c"],
  ])("%j -> %j", (input, expected) => {
    expect(toToken(input)).toBe(expected);
    expect(isToken(toToken(input))).toBe(true);
  });

  it("truncates to MAX_TOKEN_LENGTH", () => {
    const result = toToken("h".repeat(300));
    expect(result).toBe("h".repeat(128));
  });
});
