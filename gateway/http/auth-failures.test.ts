import { describe, expect, it } from "vitest";
import { AuthFailures } from "./auth-failures.js";

describe("AuthFailures", () => {
  it("blocks an address past its failures for the rest of the minute, and no other", () => {
    let now = 1_000_000;
    const failures = new AuthFailures(3, () => now);
    for (let i = 0; i < 3; i++) {
      expect(failures.blockedFor("10.0.0.1")).toBeUndefined();
      failures.failed("10.0.0.1");
    }
    expect(failures.blockedFor("10.0.0.1")).toBe(60);
    expect(failures.blockedFor("10.0.0.2")).toBeUndefined();
    now += 45_500;
    expect(failures.blockedFor("10.0.0.1")).toBe(15);
    now += 14_500;
    expect(failures.blockedFor("10.0.0.1")).toBeUndefined();
  });

  it("keeps a bounded number of addresses, forgetting the oldest", () => {
    const failures = new AuthFailures(1, () => 0);
    for (let i = 0; i < 10_001; i++) failures.failed(`a${i}`);
    expect(failures.blockedFor("a0")).toBeUndefined();
    expect(failures.blockedFor("a1")).toBe(60);
    expect(failures.blockedFor("a10000")).toBe(60);
  });
});
