import { describe, expect, it } from "vitest";
import { isLoopback } from "./hosts-admin-routes.js";

describe("isLoopback", () => {
  it("knows loopback in every form a socket reports it, and nothing else", () => {
    for (const a of ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"]) {
      expect(isLoopback(a), a).toBe(true);
    }
    for (const a of [
      undefined,
      "10.0.0.1",
      "::ffff:10.0.0.1",
      "fe80::1",
      "0.0.0.0",
      "1127.0.0.1",
    ]) {
      expect(isLoopback(a), String(a)).toBe(false);
    }
  });
});
