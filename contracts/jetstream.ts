/**
 * Names of the JetStream resources fleetheal creates. External tools may read them (replay the
 * event stream, watch host snapshots) but should not write to them.
 */

/** Stream holding every container event and remediation record. */
export const EVENTS_STREAM = "FLEETHEAL_EVENTS";

/**
 * Stream of dead letters: messages a handler rejected as malformed or gave up on after its last
 * delivery, kept for inspection and replay (subject `fleetheal.v1.dlq.<handler>`).
 */
export const DLQ_STREAM = "FLEETHEAL_DLQ";

/** KV bucket: host id -> latest {@link HostSnapshot}. */
export const HOSTS_BUCKET = "fleetheal_hosts";

/** KV bucket: `<host>.<container id>` -> {@link LedgerEntry}; the heal handlers' shared memory. */
export const LEDGER_BUCKET = "fleetheal_ledger";

/** KV bucket: `<host>.<container id>` -> {@link MonitoredContainer}, written by auto-monitor. */
export const MONITORED_BUCKET = "fleetheal_monitored";

/** The KV key of a container in the per-container buckets. */
export function containerKey(host: string, containerId: string): string {
  return `${host}.${containerId}`;
}

/**
 * The host and container of a per-container bucket's key (see {@link containerKey}), or
 * undefined for a key that is not one. Host ids never contain a dot, so the first one splits.
 */
export function parseContainerKey(key: string): { host: string; containerId: string } | undefined {
  const dot = key.indexOf(".");
  if (dot <= 0 || dot === key.length - 1) return undefined;
  return { host: key.slice(0, dot), containerId: key.slice(dot + 1) };
}

/**
 * KV buckets of the storm guard: one key per restart in progress (renewed by its holder, gone a
 * minute after a holder dies) and one per restart started in the last minute.
 */
export const INFLIGHT_BUCKET = "fleetheal_inflight";
export const RATE_BUCKET = "fleetheal_rate";

/** KV bucket: image hash -> recent failures of that image (the image breaker's memory). */
export const BREAKERS_BUCKET = "fleetheal_breakers";
