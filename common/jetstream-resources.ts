import {
  DiscardPolicy,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
} from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import {
  BREAKERS_BUCKET,
  CONFIG_BUCKET,
  DLQ_STREAM,
  EVENTS_STREAM,
  HOSTS_BUCKET,
  INFLIGHT_BUCKET,
  LEDGER_BUCKET,
  MONITORED_BUCKET,
  RATE_BUCKET,
  SUBJECTS,
} from "../contracts/index.js";
import { ConfigError, describeError } from "./errors.js";

const DAY_MS = 24 * 60 * 60 * 1000;
const nanos = (ms: number) => ms * 1_000_000;

/** Retention of the events stream. */
export interface StreamLimits {
  maxAgeMs: number;
  maxBytes: number;
  /** Window in which a repeated `Nats-Msg-Id` is dropped as a duplicate. */
  duplicateWindowMs: number;
}

export const DEFAULT_STREAM_LIMITS: StreamLimits = {
  maxAgeMs: 7 * DAY_MS,
  maxBytes: 1024 * 1024 * 1024,
  duplicateWindowMs: 10 * 60 * 1000,
};

/** The JetStream handles every fleetheal process works with. */
export interface FleetJetStream {
  js: JetStreamClient;
  jsm: JetStreamManager;
  hosts: KV;
  ledger: KV;
  monitored: KV;
  /** Fleet configuration: the heal policy. */
  config: KV;
  /** Storm guard slots: restarts in progress, and restarts in the last minute. */
  inflight: KV;
  rate: KV;
  /** Recent failures per image, for the image breaker. */
  breakers: KV;
}

/**
 * Creates the stream and buckets if they are missing and opens them. Any process may start first,
 * so every process calls this; creation is idempotent and never changes an existing resource
 * (an operator may have tuned it, or it was created with other replicas).
 *
 * `replicas` (FLEETHEAL_JS_REPLICAS) is the number of copies of every stream and bucket created
 * here: 3 on a 3-node cluster keeps healing while one node is down. It must not exceed the
 * number of JetStream servers, and a server that is not clustered accepts only 1.
 */
export async function openFleetJetStream(
  nc: NatsConnection,
  limits: StreamLimits = DEFAULT_STREAM_LIMITS,
  replicas = 1,
): Promise<FleetJetStream> {
  try {
    return await openResources(nc, limits, replicas);
  } catch (error) {
    const message = describeError(error);
    if (replicas > 1 && /replica|cluster|insufficient resources|no suitable peers/i.test(message)) {
      throw new ConfigError(
        `invalid configuration:\n  FLEETHEAL_JS_REPLICAS=${JSON.stringify(String(replicas))}: JetStream cannot keep ${replicas} copies (${message}); it must not exceed the number of JetStream servers in the cluster, and a server that is not clustered keeps only 1`,
        { cause: error },
      );
    }
    throw error;
  }
}

async function openResources(
  nc: NatsConnection,
  limits: StreamLimits,
  replicas: number,
): Promise<FleetJetStream> {
  const jsm = await jetstreamManager(nc);
  await ensureEventsStream(jsm, limits, replicas);
  const js = jetstream(nc);
  const kvm = new Kvm(js);
  const [hosts, ledger, monitored, config, inflight, rate, breakers] = await Promise.all([
    kvm.create(HOSTS_BUCKET, { replicas, history: 1, description: "fleetheal host snapshots" }),
    kvm.create(LEDGER_BUCKET, {
      replicas,
      history: 5,
      description: "fleetheal per-container ledger",
    }),
    kvm.create(MONITORED_BUCKET, {
      replicas,
      history: 1,
      description: "fleetheal auto-monitored containers",
    }),
    kvm.create(CONFIG_BUCKET, {
      replicas,
      history: 10,
      description: "fleetheal fleet configuration",
    }),
    kvm.create(INFLIGHT_BUCKET, {
      replicas,
      history: 1,
      // Renewed every 20 s by a live holder; a dead holder's slot is gone within a minute.
      ttl: 60_000,
      description: "restarts in progress",
    }),
    kvm.create(RATE_BUCKET, {
      replicas,
      history: 1,
      ttl: 60_000,
      description: "restarts in the last minute",
    }),
    kvm.create(BREAKERS_BUCKET, {
      replicas,
      history: 1,
      ttl: DAY_MS,
      description: "failures per image",
    }),
  ]);
  return { js, jsm, hosts, ledger, monitored, config, inflight, rate, breakers };
}

async function ensureEventsStream(
  jsm: JetStreamManager,
  limits: StreamLimits,
  replicas: number,
): Promise<void> {
  await ensureStream(jsm, {
    name: EVENTS_STREAM,
    subjects: [SUBJECTS.events, SUBJECTS.remediations],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    num_replicas: replicas,
    discard: DiscardPolicy.Old,
    max_age: nanos(limits.maxAgeMs),
    max_bytes: limits.maxBytes,
    duplicate_window: nanos(limits.duplicateWindowMs),
  });
  await ensureStream(jsm, {
    name: DLQ_STREAM,
    subjects: [SUBJECTS.deadLetters],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    num_replicas: replicas,
    discard: DiscardPolicy.Old,
    max_age: nanos(30 * DAY_MS),
    max_bytes: 256 * 1024 * 1024,
    duplicate_window: nanos(limits.duplicateWindowMs),
  });
}

async function ensureStream(
  jsm: JetStreamManager,
  config: Parameters<JetStreamManager["streams"]["add"]>[0] & { name: string },
): Promise<void> {
  try {
    await jsm.streams.info(config.name);
    return;
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
  try {
    await jsm.streams.add(config);
  } catch (error) {
    // Another process created it between our lookup and our add.
    if (!/already in use/i.test(String((error as Error).message))) throw error;
  }
}

function isNotFound(error: unknown): boolean {
  return error instanceof Error && /not found/i.test(error.message);
}
