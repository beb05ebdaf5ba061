import type { ContainerCommandDraft } from "../../common/agent-commands.js";
import type { RemediationRecord } from "../../contracts/index.js";
import type { CommandResult, StoreName } from "../decisions.js";
import type { ListHostKeys } from "./fleet-hosts.js";

/** A stored value, with the revision that a compare-and-set names. */
export interface StoredValue {
  value: Uint8Array;
  revision: number;
}

/**
 * One KV bucket as the runtime uses it: bytes under keys, each write a compare-and-set on the
 * key's revision. Losing the race is an answer (undefined or false), not an error; only a
 * failure of the store itself rejects.
 */
export interface RevisionedBucket {
  /** The key's value and revision, or undefined when it is absent or deleted. */
  get(key: string): Promise<StoredValue | undefined>;
  /**
   * Writes `value` if the key is still at `revision` (0: absent or deleted). Resolves with the
   * new revision, or undefined when someone else wrote the key first.
   */
  write(key: string, value: Uint8Array, revision: number): Promise<number | undefined>;
  /** Deletes the key if it is still at `revision`; false when it has moved on. */
  delete(key: string, revision: number): Promise<boolean>;
}

/** A change to one key of a bucket, as a watch reports it. */
export interface SlotChange {
  key: string;
  operation: "PUT" | "DEL" | "PURGE";
  revision: number;
  /** When the change was stored: the bucket forgets it one TTL later. */
  created: Date;
}

/** A watch on a bucket: every key's latest change, then each new one, until stopped. */
export interface SlotWatch extends AsyncIterable<SlotChange> {
  stop(): void;
}

/** A storm-guard bucket: its slots expire with the bucket's TTL, and it can be watched. */
export interface SlotBucket extends RevisionedBucket {
  /** How long the bucket keeps a write; Infinity when it keeps them for good. */
  readonly ttlMs: number;
  watch(): Promise<SlotWatch>;
}

/** The storm guard's two buckets: restarts in progress, and restarts in the last minute. */
export interface LeaseBuckets {
  inflight: SlotBucket;
  rate: SlotBucket;
}

/** How a record's publish ended: `duplicate` when JetStream already had it (a redelivery's copy). */
export interface RecordStored {
  duplicate: boolean;
}

/** A message a handler gives up on, with why. */
export interface DeadLetter {
  handler: string;
  /** The subject it came on. */
  subject: string;
  data: Uint8Array;
  reason: string;
  deliveries: number;
  /** Its sequence in the events stream: with the handler, it names the dead letter. */
  streamSeq: number;
}

/**
 * Everything the handler runtime needs from the outside world, so that the DecisionRunner and
 * the message handling are the same code in production and in tests. The NATS implementation is
 * nats-handler-io.ts; test/support/in-memory-handler-io.ts keeps everything in memory.
 */
export interface HandlerIo {
  /** The stores handlers read and write (decisions.ts `Stores`), as encoded values. */
  store(name: StoreName): RevisionedBucket;
  /** The host's latest snapshot as the agent stored it (KV `fleetheal_hosts`), undecoded. */
  hostSnapshot(host: string): Promise<StoredValue | undefined>;
  /** Lists the hosts bucket's keys, to count the fleet's hosts. */
  listHostKeys: ListHostKeys;
  /** The storm guard's buckets, opened on the first call. */
  leaseBuckets(): Promise<LeaseBuckets>;
  /**
   * Publishes a remediation record and resolves once it is stored. The publish leaves during the
   * call, so records published one after another leave in that order, and with the request
   * that follows them.
   */
  publishRecord(record: RemediationRecord): Promise<RecordStored>;
  /** Signs `command` now and sends it to its host's agent; never rejects. */
  sendCommand(command: ContainerCommandDraft, timeoutMs: number): Promise<CommandResult>;
  /** Stores a message in the dead-letter stream; rejects when it could not be stored. */
  deadLetter(letter: DeadLetter): Promise<void>;
}
