import { describe, expect, it } from "vitest";
import { bearerCheck } from "./bearer-token.js";

const TOKEN = "a-metrics-token-of-32-characters";

describe("bearerCheck", () => {
  it("accepts the token only, in the Bearer scheme", () => {
    const check = bearerCheck(TOKEN);
    expect(check(`Bearer ${TOKEN}`)).toBe(true);
    expect(check(`bearer  ${TOKEN} `)).toBe(true);
    expect(check(undefined)).toBe(false);
    expect(check("Bearer")).toBe(false);
    expect(check(`Bearer ${TOKEN.slice(1)}`)).toBe(false);
    expect(check(`Bearer ${TOKEN} extra`)).toBe(false);
    expect(check(`Bearer ${"x".repeat(100_000)}`)).toBe(false);
  });
});
