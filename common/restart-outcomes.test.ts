import { describe, expect, it } from "vitest";
import { FAILURE_OUTCOMES, failureOutcome } from "./restart-outcomes.js";

describe("failureOutcome", () => {
  it("keeps the codes fleetheal writes and maps any other to other", () => {
    for (const code of FAILURE_OUTCOMES) expect(failureOutcome(code)).toBe(code);
    expect(failureOutcome("x".repeat(64))).toBe("other");
    expect(failureOutcome("")).toBe("other");
  });
});
