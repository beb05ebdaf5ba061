import type { KV, KvWatchEntry } from "@nats-io/kv";
import type { Logger } from "../../common/logger.js";
import { decode, HostSnapshot, LedgerEntry, parseContainerKey } from "../../contracts/index.js";
import type { FleetView } from "../view/fleet-view.js";

/** Called for every stored value that does not match its contract. */
export type OnRejected = (source: "snapshot" | "ledger") => void;

/**
 * Keeps the view in step with the host snapshots and the ledger in KV. Each watch replays every
 * stored value first, then follows updates, so a restarted gateway rebuilds its view from KV
 * alone; the view counts as loaded once both replays are done. Returns a function that stops
 * the watches.
 */
export async function syncViewFromKv(
  buckets: { hosts: KV; ledger: KV },
  view: FleetView,
  log: Logger,
  onRejected: OnRejected = () => {},
): Promise<() => Promise<void>> {
  let pending = 2;
  const loaded = () => {
    if (--pending === 0) {
      view.markLoaded();
      log.info({ hosts: view.list().length }, "fleet view loaded");
    }
  };
  const hosts = await follow(buckets.hosts, loaded, (entry) => {
    if (entry.operation !== "PUT") return view.remove(entry.key);
    const snapshot = decode(HostSnapshot, entry.value);
    // A host may write only its own key (per-host NATS permissions): a snapshot under another
    // host's key must not speak for that host.
    const problem = !snapshot.ok
      ? snapshot.error.message
      : snapshot.value.host !== entry.key
        ? `the snapshot of host ${snapshot.value.host} is stored under the key ${entry.key}`
        : undefined;
    if (problem !== undefined || !snapshot.ok) {
      onRejected("snapshot");
      log.warn({ key: entry.key, err: problem }, "rejected host snapshot");
      return;
    }
    // Live updates are timed by our clock; replayed ones by when the server stored them.
    view.apply(snapshot.value, entry.isUpdate ? Date.now() : entry.created.getTime());
  });
  const ledger = await follow(buckets.ledger, loaded, (entry) => {
    const key = parseContainerKey(entry.key);
    if (!key) return;
    const { host, containerId } = key;
    if (entry.operation !== "PUT") return view.applyLedger(host, containerId, undefined);
    const decoded = decode(LedgerEntry, entry.value);
    if (!decoded.ok) {
      onRejected("ledger");
      log.warn({ key: entry.key, err: decoded.error.message }, "rejected ledger entry");
      return;
    }
    view.applyLedger(host, containerId, decoded.value);
  });
  return async () => {
    await Promise.all([hosts(), ledger()]);
  };
}

/** Watches a bucket, calling `loaded` once the stored values have been replayed. */
export async function follow(
  kv: KV,
  loaded: () => void,
  apply: (entry: KvWatchEntry) => void,
): Promise<() => Promise<void>> {
  const status = await kv.status();
  const watch = await kv.watch();
  let replayed = false;
  const done = () => {
    if (!replayed) {
      replayed = true;
      loaded();
    }
  };
  if (status.values === 0) done();
  const loop = (async () => {
    for await (const entry of watch) {
      apply(entry);
      if (entry.delta === 0) done();
    }
  })();
  return async () => {
    watch.stop();
    await loop;
  };
}
