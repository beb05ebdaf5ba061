// History per host. One host must not be able to push the other hosts' history out of
// FLEETHEAL_EVENTS, and nats-server 2.9 has no limit per subject prefix (a per-subject limit does
// not bound a host: its subjects carry container ids). So each host publishes into a stream of its
// own, `FLEETHEAL_EVENTS_HOST_<host>`, which keeps its messages for one window (a day by default)
// and refuses new ones past the host's share of that window (discard new); FLEETHEAL_EVENTS
// sources every one of them and keeps capturing the remediation records itself. A host can add at
// most its share per window, so at most that much per window flows into the fleet's stream: a
// sliding-window rate limit, whose room comes back as the host's own messages of a window ago
// expire. The window is shorter than the fleet's history so that a host over its share waits
// hours, not days, and so that JetStream, which reserves each stream's `max_bytes` up front,
// reserves a day's share per host instead of a week's.

import {
  DiscardPolicy,
  type JetStreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from "@nats-io/jetstream";
import { EVENTS_STREAM, SUBJECT_ROOT, SUBJECTS } from "../contracts/index.js";
import { describeError } from "./errors.js";
import { FILTER_ANCHOR_SOURCE, type StreamSettings } from "./jetstream-resources.js";

/** Names of the per-host ingest streams start with this. */
export const HOST_EVENTS_STREAM_PREFIX = `${EVENTS_STREAM}_HOST_`;

/** The ingest stream of `host` (a validated host id: a subject token). */
export const hostEventsStream = (host: string) => `${HOST_EVENTS_STREAM_PREFIX}${host}`;

const MiB = 1024 * 1024;
/** Default share of one host per window (FLEETHEAL_EVENTS_HOST_MAX_BYTES): 8 MiB. */
export const DEFAULT_HOST_EVENTS_MAX_BYTES = 8 * MiB;
/** Smallest share: room for a burst of events, however large (a message may take 1 MiB). */
export const MIN_HOST_EVENTS_MAX_BYTES = MiB;
/** Largest share: 1 TiB, beyond any disk a fleet's NATS has. */
export const MAX_HOST_EVENTS_MAX_BYTES = 1024 * 1024 * MiB;

const MINUTE_MS = 60_000;
/** Default window of a host's share (FLEETHEAL_EVENTS_HOST_WINDOW_MS): one day. */
export const DEFAULT_HOST_EVENTS_WINDOW_MS = 24 * 60 * MINUTE_MS;
/** Shortest window: a minute. */
export const MIN_HOST_EVENTS_WINDOW_MS = MINUTE_MS;
/** Longest window: 7 days, the fleet's history by default. */
export const MAX_HOST_EVENTS_WINDOW_MS = 7 * 24 * 60 * MINUTE_MS;

const isAnchor = (s: { name: string; external?: { api?: string } }) =>
  s.name === FILTER_ANCHOR_SOURCE.name && s.external?.api === FILTER_ANCHOR_SOURCE.external.api;

/** What the ingest streams are created with. */
export interface HostStreamSettings {
  /** One host's share per window, in bytes (FLEETHEAL_EVENTS_HOST_MAX_BYTES). */
  hostMaxBytes: number;
  /** The window, in milliseconds (FLEETHEAL_EVENTS_HOST_WINDOW_MS). */
  hostWindowMs: number;
}

/** The defaults of {@link HostStreamSettings}. */
export const DEFAULT_HOST_STREAM_SETTINGS: HostStreamSettings = {
  hostMaxBytes: DEFAULT_HOST_EVENTS_MAX_BYTES,
  hostWindowMs: DEFAULT_HOST_EVENTS_WINDOW_MS,
};

/** What an ingest stream takes over from FLEETHEAL_EVENTS as it is (an operator may tune it). */
export type FleetStreamLimits = Pick<StreamConfig, "max_age" | "duplicate_window" | "num_replicas">;

const NS_PER_MS = 1_000_000;

/**
 * The ingest stream of one host. Discard new: past its share of the window, the host's own
 * publishes are refused ("maximum bytes exceeded") and nothing already stored is pushed out; its
 * agent's outbox holds them and retries as room comes back. Messages live one window, never
 * longer than the fleet's stream keeps them. The same replicas; the fleet's duplicate window
 * (within the window), as an agent's `Nats-Msg-Id` is deduplicated here now (the copy sourced
 * into the fleet's stream keeps its headers).
 */
export function hostEventsStreamConfig(
  host: string,
  settings: HostStreamSettings,
  fleet: FleetStreamLimits,
): StreamSettings {
  const window = settings.hostWindowMs * NS_PER_MS;
  const maxAge = fleet.max_age > 0 ? Math.min(window, fleet.max_age) : window;
  // 0 is the server's default (2 minutes), which fits any window.
  const duplicates = fleet.duplicate_window ?? 0;
  return {
    name: hostEventsStream(host),
    description: `fleetheal events of host ${host}, sourced into ${EVENTS_STREAM}`,
    subjects: [SUBJECTS.hostEvents(host)],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    num_replicas: fleet.num_replicas,
    discard: DiscardPolicy.New,
    max_age: maxAge,
    max_bytes: settings.hostMaxBytes,
    duplicate_window: Math.min(duplicates, maxAge),
  };
}

/** Whether a subject of the fleet's stream would also capture host events (the old layout). */
const capturesHostEvents = (subject: string) =>
  subject === SUBJECTS.all ||
  subject === SUBJECTS.events ||
  subject.startsWith(`${SUBJECT_ROOT}.evt.`);

/** What {@link fleetStreamChange} would change in FLEETHEAL_EVENTS. */
export interface FleetStreamChange {
  /** The subjects without those that capture host events; present only when some do. */
  subjects?: string[];
  /**
   * Every source, the missing ingest streams (and {@link FILTER_ANCHOR_SOURCE}) added; present
   * only when one is missing.
   */
  sources?: NonNullable<StreamConfig["sources"]>;
  /** The ingest streams added to the sources. */
  added: string[];
}

/**
 * The update FLEETHEAL_EVENTS needs, or undefined when it has none: drop a subject that still
 * captures host events (an ingest stream cannot be created while one does: their subjects would
 * overlap), and source every ingest stream in `hostStreams` it does not source yet. Sources an
 * operator added are kept.
 */
export function fleetStreamChange(
  current: Pick<StreamConfig, "subjects" | "sources">,
  hostStreams: readonly string[],
): FleetStreamChange | undefined {
  const subjects = current.subjects ?? [];
  const kept = subjects.filter((s) => !capturesHostEvents(s));
  const sources = current.sources ?? [];
  const sourced = new Set(sources.filter((s) => s.external === undefined).map((s) => s.name));
  const added = [...new Set(hostStreams)].filter((name) => !sourced.has(name));
  const anchor = sources.some(isAnchor) ? [] : [FILTER_ANCHOR_SOURCE];
  if (kept.length === subjects.length && added.length === 0 && anchor.length === 0) {
    return undefined;
  }
  const missing = [...anchor, ...added.map((name) => ({ name }))];
  return {
    ...(kept.length === subjects.length ? {} : { subjects: kept }),
    ...(missing.length === 0 ? {} : { sources: [...sources, ...missing] }),
    added,
  };
}

/** The stream operations the keeper needs, in FLEET's JetStream. */
export interface HostStreamsApi {
  /** A stream's configuration, or undefined when it does not exist. */
  config(name: string): Promise<StreamConfig | undefined>;
  /** Creates a stream; one that exists by now (another replica) is not an error. */
  create(config: StreamSettings): Promise<void>;
  /** Changes part of a stream's configuration (the rest is read again and kept). */
  update(name: string, change: Partial<StreamConfig>): Promise<void>;
}

/** {@link HostStreamsApi} on a JetStream manager. */
export function jetStreamHostStreams(jsm: JetStreamManager): HostStreamsApi {
  return {
    async config(name) {
      try {
        return (await jsm.streams.info(name)).config;
      } catch (error) {
        if (/not found/i.test(describeError(error))) return undefined;
        throw error;
      }
    },
    async create(config) {
      try {
        await jsm.streams.add(config);
      } catch (error) {
        if (!/already in use/i.test(describeError(error))) throw error;
      }
    },
    async update(name, change) {
      await jsm.streams.update(name, change);
    },
  };
}

/** What one pass of {@link ensureHostEventStreams} did. */
export interface HostStreamsPass {
  /** FLEETHEAL_EVENTS does not exist (yet): nothing was done. */
  noFleetStream: boolean;
  /** FLEETHEAL_EVENTS captured host events itself, and no longer does. */
  migrated: boolean;
  /** Hosts whose ingest stream was created by this pass. */
  created: string[];
  /** Ingest streams FLEETHEAL_EVENTS sources since this pass. */
  sourced: string[];
  /** Hosts whose ingest stream could not be created, with why. */
  failed: { host: string; error: string }[];
}

/**
 * One level-triggered pass: FLEETHEAL_EVENTS no longer captures host events, every host in
 * `hosts` has its ingest stream, and FLEETHEAL_EVENTS sources each. Every step looks before it
 * acts, so that replicas doing it at once, or a pass that stopped half-way, end in the same
 * state; a source lost to two replicas' concurrent updates is added by the next pass. `hosts`
 * must be validated host ids, bounded by the caller.
 */
export async function ensureHostEventStreams(
  api: HostStreamsApi,
  hosts: readonly string[],
  settings: HostStreamSettings,
): Promise<HostStreamsPass> {
  const pass: HostStreamsPass = {
    noFleetStream: false,
    migrated: false,
    created: [],
    sourced: [],
    failed: [],
  };
  const fleet = await api.config(EVENTS_STREAM);
  if (!fleet) return { ...pass, noFleetStream: true };
  // The old layout first: while FLEETHEAL_EVENTS captures the host events, no ingest stream can
  // be created. Until they are, the agents' publishes get no answer and their outboxes retry.
  // The anchor comes with it, so that the handlers' consumers stay valid.
  const migration = fleetStreamChange(fleet, []);
  if (migration?.subjects) {
    await api.update(EVENTS_STREAM, {
      subjects: migration.subjects,
      ...(migration.sources && { sources: migration.sources }),
    });
    pass.migrated = true;
  }
  const present: string[] = [];
  for (const host of hosts) {
    const name = hostEventsStream(host);
    try {
      if (!(await api.config(name))) {
        await api.create(hostEventsStreamConfig(host, settings, fleet));
        pass.created.push(host);
      }
      present.push(name);
    } catch (error) {
      pass.failed.push({ host, error: describeError(error) });
    }
  }
  // Read again right before the update: another replica may have added sources meanwhile.
  const latest = await api.config(EVENTS_STREAM);
  const change = latest && fleetStreamChange(latest, present);
  // Sources only: a subject change is the migration's, above.
  if (change?.sources) {
    await api.update(EVENTS_STREAM, { sources: change.sources });
    pass.sourced = change.added;
  }
  return pass;
}
