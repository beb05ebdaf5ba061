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
import { type NatsConnection, PermissionViolationError } from "@nats-io/nats-core";
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
import type { Logger } from "./logger.js";
import { isNoResponders, isTimeout } from "./nats-errors.js";
import { type RecordPublisher, recordIdSecret, recordPublisher } from "./record-publisher.js";

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
  /** Remediation records, published under the control plane's message ids. */
  records: RecordPublisher;
}

/** How {@link openFleetJetStream} waits for resources it may not create. */
export interface OpenFleetOptions {
  /** Where "waiting for the resource" is said; silent when absent. */
  log?: Logger;
  /** Pause between two looks for a resource this user may not create. Default 1 s. */
  retryMs?: number;
  /**
   * How long a failure that can clear up by itself (a JetStream API timeout while a new cluster
   * elects its leaders, no JetStream responders yet) is retried before it counts. Default 60 s.
   */
  transientForMs?: number;
  /**
   * Create FLEETHEAL_EVENTS capturing the hosts' events itself, as before the hosts' own streams
   * (common/host-event-streams.ts): for `fleetheal nats-migrate import`, which stores the old
   * deployment's events and records in their order. The handlers' keeper moves it to the hosts'
   * streams when they start. An existing stream is left as it is either way.
   */
  captureHostEvents?: boolean;
}

/**
 * Creates the stream and buckets if they are missing and opens them. Any process may start first,
 * so every process calls this; creation is idempotent and never changes an existing resource
 * (an operator may have tuned it, or it was created with other replicas).
 *
 * A user that NATS does not allow to create streams (the per-host agents, the gateway and readers
 * of `fleetheal nats-auth`) opens the resources that exist; one that is missing is waited for,
 * with a log line saying so, until a role that may create it (the handler) has done it.
 *
 * `replicas` (FLEETHEAL_JS_REPLICAS) is the number of copies of every stream and bucket created
 * here: 3 on a 3-node cluster keeps healing while one node is down. It must not exceed the
 * number of JetStream servers, and a server that is not clustered accepts only 1.
 */
export async function openFleetJetStream(
  nc: NatsConnection,
  limits: StreamLimits = DEFAULT_STREAM_LIMITS,
  replicas = 1,
  options: OpenFleetOptions = {},
): Promise<FleetJetStream> {
  try {
    return await retryTransient(
      () => openResources(nc, limits, replicas, options),
      options.transientForMs ?? TRANSIENT_FOR_MS,
      options.log,
    );
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

const TRANSIENT_FOR_MS = 60_000;
const TRANSIENT_RETRY_MS = { initial: 250, max: 5_000 };

/**
 * Whether a failure to open the resources may clear up by itself. A fresh cluster answers no
 * JetStream API request until it has a meta leader, and a stream's creation times out while its
 * peers are still being placed. A role started together with a new cluster must wait that out
 * rather than exit with "timeout" and count on its service manager to start it again.
 */
export function isTransientJetStreamFailure(error: unknown): boolean {
  // "jetstream is not enabled" is also what a clustered server answers while it elects leaders
  // (docs/benchmarks/RELIABILITY.md); a server really run without JetStream fails after the retries, with
  // the same message in every warning.
  if (isTimeout(error) || isNoResponders(error)) return true;
  // "JetStream system temporarily unavailable" (10008) while the meta leader is elected.
  return /temporarily unavailable|jetstream is not enabled|no (meta )?leader|leader(ship)? (election|change)/i.test(
    describeError(error),
  );
}

/** `open`, retried with backoff while it fails transiently, for at most `forMs`. */
export async function retryTransient<T>(
  open: () => Promise<T>,
  forMs: number,
  log: Logger | undefined,
): Promise<T> {
  const deadline = Date.now() + forMs;
  let waitMs = TRANSIENT_RETRY_MS.initial;
  for (let attempt = 1; ; attempt++) {
    try {
      return await open();
    } catch (error) {
      if (!isTransientJetStreamFailure(error) || Date.now() + waitMs > deadline) throw error;
      log?.warn(
        { attempt, retryInMs: waitMs, err: describeError(error) },
        "JetStream is not ready to open the fleet's streams and buckets; retrying",
      );
      await new Promise((resolve) => setTimeout(resolve, waitMs));
      waitMs = Math.min(waitMs * 2, TRANSIENT_RETRY_MS.max);
    }
  }
}

async function openResources(
  nc: NatsConnection,
  limits: StreamLimits,
  replicas: number,
  options: OpenFleetOptions,
): Promise<FleetJetStream> {
  const jsm = await jetstreamManager(nc);
  await ensureEventsStream(jsm, limits, replicas, options);
  const js = jetstream(nc);
  const kvm = new Kvm(js);
  const create: Kvm["create"] = (name, opts) =>
    createOrWait(jsm, `KV_${name}`, `bucket ${name}`, () => kvm.create(name, opts), options);
  const [hosts, ledger, monitored, config, inflight, rate, breakers] = await Promise.all([
    ensureStream(jsm, options, hostsBucketConfig(replicas)).then(() => kvm.open(HOSTS_BUCKET)),
    create(LEDGER_BUCKET, {
      replicas,
      history: 5,
      description: "fleetheal per-container ledger",
    }),
    create(MONITORED_BUCKET, {
      replicas,
      history: 1,
      description: "fleetheal auto-monitored containers",
    }),
    create(CONFIG_BUCKET, {
      replicas,
      history: 10,
      description: "fleetheal fleet configuration",
    }),
    create(INFLIGHT_BUCKET, {
      replicas,
      history: 1,
      // Renewed every 20 s by a live holder; a dead holder's slot is gone within a minute.
      ttl: 60_000,
      description: "restarts in progress",
    }),
    create(RATE_BUCKET, {
      replicas,
      history: 1,
      ttl: 60_000,
      description: "restarts in the last minute",
    }),
    create(BREAKERS_BUCKET, {
      replicas,
      history: 1,
      ttl: DAY_MS,
      description: "failures per image",
    }),
  ]);
  const records = recordPublisher(js, () => recordIdSecret(config));
  return { js, jsm, hosts, ledger, monitored, config, inflight, rate, breakers, records };
}

const HOSTS_STREAM = `KV_${HOSTS_BUCKET}`;

/**
 * The hosts bucket as nats.js's KV would create it, but refusing rollups: each host writes its
 * own key, and a write with `Nats-Rollup: all` would delete every other host's snapshot. Nothing
 * of fleetheal purges a key of this bucket (a host leaves with a delete marker).
 */
export function hostsBucketConfig(replicas: number) {
  return {
    name: HOSTS_STREAM,
    description: "fleetheal host snapshots",
    subjects: [`$KV.${HOSTS_BUCKET}.>`],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    num_replicas: replicas,
    max_msgs_per_subject: 1,
    discard: DiscardPolicy.New,
    allow_direct: true,
    deny_delete: true,
    allow_rollup_hdrs: false,
  };
}

/**
 * A source of FLEETHEAL_EVENTS that copies nothing and is there for nats-server's sake. Since
 * FLEETHEAL_EVENTS no longer captures `fleetheal.v1.evt.>`, nats-server 2.9 refuses a consumer
 * whose filter is not a subset of the stream's own subjects or of its local sources' (a
 * handler's `fleetheal.v1.evt.*.*.start`, the gateway's `fleetheal.v1.evt.*.<container>.*`,
 * and `fleetheal.v1.evt.>` while no host has a stream), unless one source is external: then
 * it cannot know the subjects, and accepts the filter. So FLEETHEAL_EVENTS keeps one external
 * source whose API prefix nothing serves: the server asks for its consumer now and then, gets
 * no answer, and stores nothing from it. In the accounts layout no user may subscribe to that
 * prefix, so nobody can answer in its place.
 */
export const FILTER_ANCHOR_SOURCE = {
  name: `${EVENTS_STREAM}_FILTER_ANCHOR`,
  external: { api: "$JS.fleetheal-filter-anchor.API" },
} as const;

async function ensureEventsStream(
  jsm: JetStreamManager,
  limits: StreamLimits,
  replicas: number,
  options: OpenFleetOptions,
): Promise<void> {
  // Host events reach it through a stream per host that it sources (common/host-event-streams.ts,
  // kept by the handlers), so that one host cannot push the others' history out.
  await ensureStream(jsm, options, {
    name: EVENTS_STREAM,
    subjects: options.captureHostEvents
      ? [SUBJECTS.events, SUBJECTS.remediations]
      : [SUBJECTS.remediations],
    sources: [FILTER_ANCHOR_SOURCE],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    num_replicas: replicas,
    discard: DiscardPolicy.Old,
    max_age: nanos(limits.maxAgeMs),
    max_bytes: limits.maxBytes,
    duplicate_window: nanos(limits.duplicateWindowMs),
  });
  await ensureStream(jsm, options, {
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

/** A stream's configuration, as `streams.add` takes it. */
export type StreamSettings = Parameters<JetStreamManager["streams"]["add"]>[0] & { name: string };

async function ensureStream(
  jsm: JetStreamManager,
  options: OpenFleetOptions,
  config: StreamSettings,
): Promise<void> {
  await createOrWait(
    jsm,
    config.name,
    `stream ${config.name}`,
    async () => {
      try {
        const { config: existing } = await jsm.streams.info(config.name);
        if (existing.allow_rollup_hdrs && config.allow_rollup_hdrs === false) {
          options.log?.error(
            { stream: config.name },
            `stream ${config.name} accepts rollups, which let one host delete the others' snapshots; turn them off (nats stream edit ${config.name} --no-allow-rollup) or follow the upgrade in docs/SECURITY.md`,
          );
        }
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
    },
    options,
  );
}

/**
 * Runs `open` (look up, create when missing). When NATS refuses the creation to this user, waits
 * until the stream exists, looking it up every `retryMs` (a look-up is allowed where a creation is
 * not, and does not fill the server's log with permission violations), and then opens it.
 */
async function createOrWait<T>(
  jsm: JetStreamManager,
  stream: string,
  what: string,
  open: () => Promise<T>,
  options: OpenFleetOptions,
): Promise<T> {
  try {
    return await open();
  } catch (error) {
    if (!isPermissionViolation(error)) throw error;
    options.log?.warn(
      { stream, err: describeError(error) },
      `${what} does not exist and this NATS user may not create it; waiting for a role that may (the handler) to create it`,
    );
  }
  const retryMs = options.retryMs ?? 1_000;
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, retryMs));
    try {
      await jsm.streams.info(stream);
      break;
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }
  options.log?.info({ stream }, `${what} exists now; opening it`);
  return open();
}

/** NATS refused a subject to this user (`Permissions Violation for Publish to ...`). */
export function isPermissionViolation(error: unknown): boolean {
  return (
    error instanceof PermissionViolationError ||
    /permissions violation/i.test(describeError(error)) ||
    (error instanceof Error && error.cause !== undefined && isPermissionViolation(error.cause))
  );
}

function isNotFound(error: unknown): boolean {
  return error instanceof Error && /not found/i.test(error.message);
}
