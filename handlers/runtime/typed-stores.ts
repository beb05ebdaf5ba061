import type { z } from "zod";
import type { Logger } from "../../common/logger.js";
import {
  decode,
  encode,
  HostSnapshot,
  ImageFailures,
  LedgerEntry,
  MonitoredContainer,
} from "../../contracts/index.js";
import type { StoreName, Stores, Versioned } from "../decisions.js";
import type { HostSnapshotEntry } from "../handler.js";
import type { HandlerIo } from "./handler-io.js";

/** The schema of each store, for validating what is read and written. */
export const STORE_SCHEMAS: { [S in StoreName]: z.ZodType<Stores[S]> } = {
  ledger: LedgerEntry,
  monitored: MonitoredContainer,
  breakers: ImageFailures,
};

/**
 * The handlers' stores and the host snapshots as contract values rather than bytes: what is
 * read is decoded and validated, what is written encoded.
 */
export class TypedStores {
  constructor(
    private readonly io: HandlerIo,
    private readonly log: Logger,
  ) {}

  async read<S extends StoreName>(
    store: S,
    key: string,
  ): Promise<Versioned<Stores[S]> | undefined> {
    const entry = await this.io.store(store).get(key);
    if (!entry) return undefined;
    const decoded = decode(STORE_SCHEMAS[store], entry.value);
    if (!decoded.ok) {
      // A corrupt entry must not wedge the container forever: it is logged and removed, and the
      // handler decides as if the container had no history.
      this.log.error({ store, key, err: decoded.error.message }, "corrupt store entry removed");
      if (!(await this.io.store(store).delete(key, entry.revision))) {
        throw new Error(`${store} entry ${key} changed while its corrupt value was removed`);
      }
      return undefined;
    }
    return { value: decoded.value as Stores[S], revision: entry.revision };
  }

  /**
   * Writes `value`, validated already with its STORE_SCHEMAS schema, if the key is still at
   * `revision` (0: absent). The new revision, or undefined when someone else wrote it first.
   */
  write<S extends StoreName>(
    store: S,
    key: string,
    value: Stores[S],
    revision: number,
  ): Promise<number | undefined> {
    return this.io.store(store).write(key, encode(value), revision);
  }

  /** The host's latest snapshot, decoded on demand; undefined when there is none. */
  async hostSnapshotEntry(host: string): Promise<HostSnapshotEntry | undefined> {
    const entry = await this.io.hostSnapshot(host);
    if (!entry) return undefined;
    let decoded: HostSnapshot | undefined | null = null;
    return {
      revision: entry.revision,
      snapshot: () => {
        if (decoded !== null) return decoded;
        const result = decode(HostSnapshot, entry.value);
        if (!result.ok) {
          this.log.warn({ host, err: result.error.message }, "unreadable host snapshot ignored");
        }
        decoded = result.ok ? result.value : undefined;
        return decoded;
      },
    };
  }
}
