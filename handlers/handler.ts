import type { z } from "zod";
import type { Logger } from "../common/logger.js";
import type { HealPolicy, HostSnapshot } from "../contracts/index.js";
import type { Decision, StoreName, Stores, Versioned } from "./decisions.js";

/** What a handler can see while deciding. */
export interface HandlerContext {
  now: Date;
  log: Logger;
  /** How many times this message has been delivered (1 the first time). */
  deliveryCount: number;
  /** True when this is the last delivery JetStream will make. */
  lastDelivery: boolean;
  /** The fleet's heal policy in force (KV `fleetheal_config`, watched live). */
  policy: HealPolicy;
  read<S extends StoreName>(store: S, key: string): Promise<Versioned<Stores[S]> | undefined>;
  /** The host's latest snapshot (KV `fleetheal_hosts`), read only. */
  hostSnapshot(host: string): Promise<HostSnapshot | undefined>;
  /**
   * The same, with its KV revision, decoded only when asked: a host's snapshot describes every
   * container on the host, and a handler that has judged this revision before need not decode
   * it again.
   */
  hostSnapshotEntry(host: string): Promise<HostSnapshotEntry | undefined>;
  /**
   * Whether the fleet has more than one host: more than one key in KV `fleetheal_hosts`, as the
   * runtime last counted them (see runtime/fleet-hosts.ts); true when it cannot tell.
   */
  severalHosts(): Promise<boolean>;
}

/** One revision of a host's snapshot in KV. */
export interface HostSnapshotEntry {
  revision: number;
  /** The decoded snapshot (read only); undefined when it does not parse. Decoded once. */
  snapshot(): HostSnapshot | undefined;
}

/**
 * A declarative, stateless handler. The runtime binds it to a durable JetStream consumer that
 * all replicas share, so any replica may receive any message.
 */
export interface HandlerDefinition<E> {
  /** Also names the durable consumer, `fleetheal-<name>`. */
  name: string;
  /** The stream subject filter. */
  subject: string;
  /** Validates every message before `handle` sees it. */
  schema: z.ZodType<E>;
  /**
   * Why a valid message may not be on the subject it came on (see contracts/subject-match.ts);
   * such a message is rejected like a malformed one.
   */
  subjectMismatch?(subject: string, message: E): string | undefined;
  /** Messages processed at once by one replica. */
  concurrency: number;
  /** Deliveries before JetStream gives up on a message. */
  maxDeliver: number;
  /** What to do about one message (decisions.ts); it may be called again after a lost claim. */
  handle(event: E, ctx: HandlerContext): Promise<Decision[]> | Decision[];
}
