import { describe, expect, it } from "vitest";
import type { Versioned } from "../decisions.js";
import { KeyedUpdates, UpdateConflictError, type UpdateTarget } from "./keyed-updates.js";

/** One key with compare-and-set, counting the round trips made to it. */
class Cell implements UpdateTarget<number[]> {
  entry: Versioned<number[]> | undefined;
  reads = 0;
  writes = 0;
  conflicts = 0;
  /** Called before each write lands: another replica's chance to get in first. */
  beforeWrite: () => void = () => {};

  async read() {
    this.reads++;
    await Promise.resolve();
    return this.entry;
  }

  async write(value: number[], revision: number) {
    this.writes++;
    await Promise.resolve();
    this.beforeWrite();
    if ((this.entry?.revision ?? 0) !== revision) {
      this.conflicts++;
      return undefined;
    }
    this.entry = { value, revision: revision + 1 };
    return revision + 1;
  }

  /** Another replica's write. */
  writeElsewhere(value: number[]) {
    this.entry = { value, revision: (this.entry?.revision ?? 0) + 1 };
  }
}

const push = (n: number) => (current: number[] | undefined) => [...(current ?? []), n];

describe("KeyedUpdates", () => {
  it("coalesces concurrent updates of a key: every one is kept, in order, without conflicts", async () => {
    const cell = new Cell();
    const updates = new KeyedUpdates<number[]>(5);
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => updates.apply("k", cell, push(i))),
    );
    expect(cell.entry?.value).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(cell.conflicts).toBe(0);
    // The first write alone, then everything that queued up behind it in one more.
    expect(cell.writes).toBe(2);
    expect(cell.reads).toBe(1);
    // Each caller learns what was stored, and the value right after its own update: what it
    // would have stored had the updates been written one by one, in order.
    for (const [i, r] of results.entries()) {
      expect(r.own).toEqual(Array.from({ length: i + 1 }, (_, j) => j));
      expect(r.written.value).toEqual(expect.arrayContaining(r.own));
    }
    expect(results.at(-1)?.written).toEqual(cell.entry);
  });

  it("a key known to be absent is created without reading it first", async () => {
    const cell = new Cell();
    const updates = new KeyedUpdates<number[]>(5);
    await updates.apply("k", cell, push(1), null);
    expect(cell.entry).toEqual({ value: [1], revision: 1 });
    expect(cell.reads).toBe(0);
  });

  it("keys do not wait for each other", async () => {
    const a = new Cell();
    const b = new Cell();
    const updates = new KeyedUpdates<number[]>(5);
    await Promise.all([updates.apply("a", a, push(1)), updates.apply("b", b, push(2))]);
    expect(a.entry?.value).toEqual([1]);
    expect(b.entry?.value).toEqual([2]);
  });

  it("a write another replica got in first is read again and every update re-applied", async () => {
    const cell = new Cell();
    cell.writeElsewhere([100]);
    const updates = new KeyedUpdates<number[]>(5);
    let interfere = true;
    cell.beforeWrite = () => {
      if (interfere) cell.writeElsewhere([...(cell.entry?.value ?? []), 200]);
      interfere = false;
    };
    const known = { value: [100], revision: 1 };
    await Promise.all([
      updates.apply("k", cell, push(1), known),
      updates.apply("k", cell, push(2), known),
    ]);
    expect(cell.entry?.value).toEqual([100, 200, 1, 2]);
    expect(cell.conflicts).toBe(1);
  });

  it("gives up after its attempts when the key keeps moving, and the next update starts afresh", async () => {
    const cell = new Cell();
    const updates = new KeyedUpdates<number[]>(3);
    cell.beforeWrite = () => cell.writeElsewhere([9]);
    await expect(updates.apply("k", cell, push(1))).rejects.toBeInstanceOf(UpdateConflictError);
    expect(cell.writes).toBe(3);
    cell.beforeWrite = () => {};
    await expect(updates.apply("k", cell, push(2))).resolves.toMatchObject({
      written: { value: [9, 2] },
    });
  });

  it("an update that throws fails its own caller only", async () => {
    const cell = new Cell();
    const updates = new KeyedUpdates<number[]>(5);
    const bad = () => {
      throw new Error("invalid value");
    };
    const first = updates.apply("k", cell, push(1));
    const results = await Promise.allSettled([
      updates.apply("k", cell, bad),
      updates.apply("k", cell, push(2)),
    ]);
    await first;
    expect(results[0]).toMatchObject({ status: "rejected", reason: { message: "invalid value" } });
    expect(results[1]).toMatchObject({ status: "fulfilled" });
    expect(cell.entry?.value).toEqual([1, 2]);
  });

  it("a failed write fails its batch, and the key's queue is left clean", async () => {
    const cell = new Cell();
    const updates = new KeyedUpdates<number[]>(5);
    const write = cell.write.bind(cell);
    cell.write = async () => {
      throw new Error("timeout");
    };
    await expect(updates.apply("k", cell, push(1))).rejects.toThrow("timeout");
    cell.write = write;
    await expect(updates.apply("k", cell, push(2))).resolves.toMatchObject({ own: [2] });
  });
});
