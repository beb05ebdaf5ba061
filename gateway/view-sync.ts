import type { KV } from "@nats-io/kv";
import type { Logger } from "../common/logger.js";
import { decode, HostSnapshot } from "../contracts/index.js";
import type { FleetView } from "./fleet-view.js";

/**
 * Keeps the view in step with the host snapshots in KV. The watch replays every stored
 * snapshot first, then follows updates, so a restarted gateway rebuilds its view from KV alone.
 * Returns a function that stops the watch.
 */
export async function syncViewFromKv(
  hosts: KV,
  view: FleetView,
  log: Logger,
  onRejected: () => void = () => {},
): Promise<() => Promise<void>> {
  const status = await hosts.status();
  const watch = await hosts.watch();
  if (status.values === 0) view.markLoaded();
  const loop = (async () => {
    for await (const entry of watch) {
      if (entry.operation !== "PUT") {
        view.remove(entry.key);
      } else {
        const snapshot = decode(HostSnapshot, entry.value);
        if (snapshot.ok) {
          // Live updates are timed by our clock; replayed ones by when the server stored them.
          view.apply(snapshot.value, entry.isUpdate ? Date.now() : entry.created.getTime());
        } else {
          onRejected();
          log.warn({ key: entry.key, err: snapshot.error.message }, "rejected host snapshot");
        }
      }
      if (entry.delta === 0 && !view.loaded) {
        view.markLoaded();
        log.info({ hosts: view.list().length }, "fleet view loaded");
      }
    }
  })();
  return async () => {
    watch.stop();
    await loop;
  };
}
