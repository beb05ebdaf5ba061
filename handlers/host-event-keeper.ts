import type { KV } from "@nats-io/kv";
import { describeError } from "../common/errors.js";
import {
  ensureHostEventStreams,
  type HostStreamSettings,
  type HostStreamsApi,
  type HostStreamsPass,
  hostEventsStream,
} from "../common/host-event-streams.js";
import type { Logger } from "../common/logger.js";
import { EVENTS_STREAM, isToken } from "../contracts/index.js";

/** Most hosts that get an ingest stream; a key beyond is refused (each stream costs the server). */
export const MAX_EVENT_HOSTS = 1_000;

/** How often every host's ingest stream and source is checked again. */
const PASS_EVERY_MS = 60_000;

/** Where the keeper learns the fleet's hosts: the keys of KV `fleetheal_hosts`. */
export interface HostKeys {
  /** Every key, now. */
  list(): Promise<string[]>;
  /** Calls `onKey` for every key written from now on (and the present ones); `stop` ends it. */
  watch(onKey: (key: string) => void): Promise<{ stop(): Promise<void> }>;
}

/** {@link HostKeys} on the hosts bucket: key listings, and a watch of headers only. */
export function kvHostKeys(hosts: KV): HostKeys {
  return {
    async list() {
      const keys: string[] = [];
      for await (const key of await hosts.keys()) keys.push(key);
      return keys;
    },
    async watch(onKey) {
      // Headers only: every agent writes its snapshot at each heartbeat, and the keeper needs
      // only the key.
      const watch = await hosts.watch({ headers_only: true, ignoreDeletes: true });
      const loop = (async () => {
        for await (const entry of watch) onKey(entry.key);
      })();
      return {
        async stop() {
          watch.stop();
          await loop;
        },
      };
    },
  };
}

/** Which keys become hosts with an ingest stream: valid host ids, at most `max` of them. */
export function acceptedHosts(
  keys: Iterable<string>,
  max = MAX_EVENT_HOSTS,
): { hosts: string[]; refused: { key: string; reason: string }[] } {
  const hosts: string[] = [];
  const refused: { key: string; reason: string }[] = [];
  // Sorted, so that every replica keeps the same hosts when there are too many.
  for (const key of [...new Set(keys)].sort()) {
    if (!isToken(key)) refused.push({ key, reason: "not a valid host id" });
    else if (hosts.length >= max) refused.push({ key, reason: `more than ${max} hosts` });
    else hosts.push(key);
  }
  return { hosts, refused };
}

/** A running keeper. */
export interface HostEventKeeper {
  /** Resolves after the pass under way, or the next one, has finished (tests, shutdown). */
  settled(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Keeps one ingest stream per host, sourced into FLEETHEAL_EVENTS (common/host-event-streams.ts),
 * from the hosts bucket: every agent writes its own key there. Level-triggered: a pass on start,
 * on every key not seen yet, and every minute over every key, so that a stream or source lost
 * (deleted by hand, or dropped by two replicas updating FLEETHEAL_EVENTS at once) comes back.
 * Every handler replica runs one; the passes are idempotent. A failed pass is logged and the
 * next one tries again; healing never waits for it.
 */
export async function startHostEventKeeper(options: {
  keys: HostKeys;
  api: HostStreamsApi;
  settings: HostStreamSettings;
  log: Logger;
  everyMs?: number;
  maxHosts?: number;
}): Promise<HostEventKeeper> {
  const { keys, api, settings, log } = options;
  const known = new Set<string>();
  const ensured = new Set<string>();
  const reported = new Set<string>();
  let running: Promise<void> | undefined;
  let again: "new" | "full" | undefined;
  let stopped = false;

  const pass = async (full: boolean): Promise<void> => {
    if (full) for (const key of await keys.list()) known.add(key);
    const { hosts, refused } = acceptedHosts(known, options.maxHosts);
    for (const { key, reason } of refused) {
      if (reported.has(key)) continue;
      reported.add(key);
      log.error({ key, reason }, "host key refused: no events stream for it");
    }
    const todo = full ? hosts : hosts.filter((h) => !ensured.has(h));
    if (todo.length === 0) return;
    report(log, await ensureHostEventStreams(api, todo, settings));
    for (const host of todo) ensured.add(host);
  };

  const run = (full: boolean): Promise<void> => {
    if (running) {
      again = full || again === "full" ? "full" : "new";
      return running;
    }
    running = (async () => {
      let next: boolean | undefined = full;
      while (next !== undefined && !stopped) {
        again = undefined;
        try {
          await pass(next);
        } catch (error) {
          // The next pass retries what this one could not do.
          if (next) ensured.clear();
          log.warn({ err: describeError(error) }, "could not keep the hosts' events streams");
        }
        next = again === undefined ? undefined : again === "full";
      }
      running = undefined;
    })();
    return running;
  };

  const watch = await keys.watch((key) => {
    if (known.has(key)) return;
    known.add(key);
    void run(false);
  });
  const timer = setInterval(() => void run(true), options.everyMs ?? PASS_EVERY_MS);
  timer.unref();
  void run(true);
  return {
    settled: async () => {
      await running;
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      await watch.stop();
      await running;
    },
  };
}

function report(log: Logger, pass: HostStreamsPass): void {
  if (pass.noFleetStream) {
    log.warn(`stream ${EVENTS_STREAM} does not exist; the hosts' events streams wait for it`);
  }
  if (pass.migrated) {
    log.info(
      `stream ${EVENTS_STREAM} no longer captures host events itself: each host now publishes into a stream of its own, sourced into it (docs/MIGRATING.md)`,
    );
  }
  for (const host of pass.created) {
    log.info({ host, stream: hostEventsStream(host) }, "created the host's events stream");
  }
  if (pass.sourced.length > 0) {
    log.info({ streams: pass.sourced }, `${EVENTS_STREAM} now sources these hosts' events`);
  }
  for (const { host, error } of pass.failed) {
    log.error({ host, err: error }, "could not create the host's events stream");
  }
}
