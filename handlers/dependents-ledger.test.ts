import { describe, expect, it } from "vitest";
import { containerKey, type LedgerEntry } from "../contracts/index.js";
import { ledgerEntry } from "../test/support/fixtures.js";
import type { Versioned } from "./decisions.js";
import { LEDGER_READS_AT_ONCE, readLedgers } from "./dependents-ledger.js";

describe("readLedgers", () => {
  it("reads every dependent's entry, at most LEDGER_READS_AT_ONCE at a time", async () => {
    const ids = Array.from({ length: 2 * LEDGER_READS_AT_ONCE + 22 }, (_, i) =>
      i.toString(16).padStart(64, "0"),
    );
    let inFlight = 0;
    let most = 0;
    const read = async (key: string): Promise<Versioned<LedgerEntry> | undefined> => {
      inFlight += 1;
      most = Math.max(most, inFlight);
      // Answered on a later turn, as a KV request is, so that reads sent together overlap.
      await new Promise((resolve) => setImmediate(resolve));
      inFlight -= 1;
      expect(key).toBe(containerKey("h", key.slice(-64)));
      const id = key.slice(-64);
      const n = Number.parseInt(id, 16);
      return n % 3 === 0
        ? { value: ledgerEntry({ host: "h", containerId: id }), revision: n + 1 }
        : undefined;
    };
    const ledgers = await readLedgers(read, "h", ids);
    expect(most).toBe(LEDGER_READS_AT_ONCE);
    expect([...ledgers.keys()]).toEqual(ids);
    for (const [id, entry] of ledgers) {
      const n = Number.parseInt(id, 16);
      expect(entry?.revision).toBe(n % 3 === 0 ? n + 1 : undefined);
    }
  });
});
