// History per host. One host must not be able to push the other hosts' history out of
// FLEETHEAL_EVENTS, and nats-server 2.9 has no limit per subject prefix (a per-subject limit does
// not bound a host: its subjects carry container ids). So each host publishes into a stream of its
// own, `FLEETHEAL_EVENTS_HOST_<host>`, which refuses new messages past the host's share
// (discard new) and keeps them as long as the fleet's stream does; FLEETHEAL_EVENTS sources every
// one of them and keeps capturing the remediation records itself. A host can put at most its
// share into its stream per age window, so at most that much of it flows into the fleet's stream.

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
/** Default share of one host (FLEETHEAL_EVENTS_HOST_MAX_BYTES): 64 MiB. */
export const DEFAULT_HOST_EVENTS_MAX_BYTES = 64 * MiB;
/** Smallest share: room for a burst of events, however large (a message may take 1 MiB). */
export const MIN_HOST_EVENTS_MAX_BYTES = MiB;
/** Largest share: 1 TiB, beyond any disk a fleet's NATS has. */
export const MAX_HOST_EVENTS_MAX_BYTES = 1024 * 1024 * MiB;

const isAnchor = (s: { name: string; external?: { api?: string } }) =>
  s.name === FILTER_ANCHOR_SOURCE.name && s.external?.api === FILTER_ANCHOR_SOURCE.external.api;

/** What the ingest streams are created with. */
export interface HostStreamSettings {
  /** One host's share, in bytes (FLEETHEAL_EVENTS_HOST_MAX_BYTES). */
  hostMaxBytes: number;
}

/** What an ingest stream takes over from FLEETHEAL_EVENTS as it is (an operator may tune it). */
export type FleetStreamLimits = Pick<StreamConfig, "max_age" | "duplicate_window" | "num_replicas">;

/**
 * The ingest stream of one host. Discard new: past its share, the host's own publishes are
 * refused ("maximum bytes exceeded"), and nothing already stored is pushed out. The same age as
 * the fleet's stream, so that a share spent comes back only as fast as the fleet forgets it; the
 * same replicas; the same duplicate window, as an agent's `Nats-Msg-Id` is deduplicated here now
 * (the copy sourced into the fleet's stream keeps its headers).
 */
export function hostEventsStreamConfig(
  host: string,
  settings: HostStreamSettings,
  fleet: FleetStreamLimits,
): StreamSettings {
  return {
    name: hostEventsStream(host),
    description: `fleetheal events of host ${host}, sourced into ${EVENTS_STREAM}`,
    subjects: [SUBJECTS.hostEvents(host)],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    num_replicas: fleet.num_replicas,
    discard: DiscardPolicy.New,
    max_age: fleet.max_age,
    max_bytes: settings.hostMaxBytes,
    duplicate_window: fleet.duplicate_window,
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
