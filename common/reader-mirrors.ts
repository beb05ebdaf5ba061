import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { EVENTS_STREAM } from "../contracts/index.js";
import { describeError } from "./errors.js";
import {
  DEFAULT_STREAM_LIMITS,
  hostsBucketConfig,
  isPermissionViolation,
  type StreamLimits,
  type StreamSettings,
} from "./jetstream-resources.js";
import type { Logger } from "./logger.js";
import { mirrorSource } from "./nats-accounts.js";
import { isNoResponders } from "./nats-errors.js";
import { READER_API_PREFIX } from "./nats-permissions.js";

const nanos = (ms: number) => ms * 1_000_000;

/**
 * The READER account's mirrors, under the names of what they mirror, so that a reader uses the
 * same stream and bucket names as the fleet. The server keeps them up to date; readers never
 * touch FLEET.
 */
export function readerMirrorConfigs(limits: StreamLimits, replicas: number): StreamSettings[] {
  const hosts = hostsBucketConfig(replicas);
  const { subjects: _subjects, ...hostsMirror } = hosts;
  return [
    {
      name: EVENTS_STREAM,
      description: "fleetheal events and remediations, mirrored for readers",
      num_replicas: replicas,
      max_age: nanos(limits.maxAgeMs),
      max_bytes: limits.maxBytes,
      mirror: { name: EVENTS_STREAM, external: mirrorSource(EVENTS_STREAM) },
    },
    {
      ...hostsMirror,
      description: "fleetheal host snapshots, mirrored for readers",
      mirror: { name: hosts.name, external: mirrorSource(hosts.name) },
      mirror_direct: true,
    },
  ];
}

/** What {@link ensureReaderMirrors} found. */
export type MirrorsOutcome = "created" | "present" | "no-reader-account" | "not-allowed";

/**
 * Creates READER's mirrors when the server has a READER account whose API this connection
 * reaches (`fleetheal nats-auth` and `fleetheal up` set that up for the handler). Without one
 * (plain NATS, every role in one account) there is nothing to do. Existing mirrors are kept.
 */
export async function ensureReaderMirrors(
  nc: NatsConnection,
  log: Logger,
  replicas = 1,
  limits: StreamLimits = DEFAULT_STREAM_LIMITS,
): Promise<MirrorsOutcome> {
  try {
    await nc.request(`${READER_API_PREFIX}.INFO`, undefined, { timeout: 5_000 });
  } catch (error) {
    if (isNoResponders(error)) return "no-reader-account";
    if (isPermissionViolation(error)) return "not-allowed";
    throw error;
  }
  const jsm = await jetstreamManager(nc, { apiPrefix: READER_API_PREFIX, checkAPI: false });
  let created = false;
  for (const config of readerMirrorConfigs(limits, replicas)) {
    try {
      await jsm.streams.info(config.name);
      continue;
    } catch (error) {
      if (!/not found/i.test(describeError(error))) throw error;
    }
    try {
      await jsm.streams.add(config);
      created = true;
      log.info({ stream: config.name }, "created the readers' mirror");
    } catch (error) {
      // Another replica created it between the look-up and the add.
      if (!/already in use/i.test(describeError(error))) throw error;
    }
  }
  return created ? "created" : "present";
}
