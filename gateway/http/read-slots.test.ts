import { describe, expect, it } from "vitest";
import { ApiError } from "./api-errors.js";
import { ReadSlots } from "./read-slots.js";

describe("ReadSlots", () => {
  it("runs up to its number at once, refuses the next with a 503, and frees slots on failure", async () => {
    const slots = new ReadSlots(2);
    const releases: (() => void)[] = [];
    const held = () =>
      slots.run(() => new Promise<string>((resolve) => releases.push(() => resolve("done"))));
    const first = held();
    const second = held();
    expect(slots.inUse).toBe(2);
    const refused = await slots.run(async () => "never").catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ApiError);
    expect((refused as ApiError).code).toBe("FLEETHEAL_ERR_UNAVAILABLE");
    expect((refused as ApiError).status).toBe(503);
    for (const release of releases) release();
    expect(await Promise.all([first, second])).toEqual(["done", "done"]);
    await expect(slots.run(async () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    expect(slots.inUse).toBe(0);
    expect(await slots.run(async () => "again")).toBe("again");
  });
});
