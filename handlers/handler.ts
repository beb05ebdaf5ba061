import type { z } from "zod";
import type { RestartDraft } from "../common/agent-commands.js";
import type { Logger } from "../common/logger.js";
import type {
  CommandReply,
  HealPolicy,
  HostSnapshot,
  ImageFailures,
  LedgerEntry,
  MonitoredContainer,
  RemediationRecord,
} from "../contracts/index.js";
import type { LeaseDenial, LeaseRequest } from "./leases.js";
import type { NotifySend } from "./notify/notifier.js";

/** The KV stores handlers may read and write, and what each holds. */
export interface Stores {
  ledger: LedgerEntry;
  monitored: MonitoredContainer;
  breakers: ImageFailures;
}
export type StoreName = keyof Stores;

/** A value with the KV revision it was read at (the token for a compare-and-set). */
export interface Versioned<T> {
  value: T;
  revision: number;
}

/**
 * The agent's answer to a command, or why there was none. `command-refused`: the agent refused
 * it unexecuted (not signed by a key it trusts, or not current); `message` says why.
 */
export type CommandResult =
  | { ok: true; reply: CommandReply }
  | {
      ok: false;
      code: "no-responders" | "timeout" | "bad-reply" | "command-refused" | "error";
      message: string;
    };

/**
 * What a handler wants done. Handlers only return decisions; the runtime performs them in order,
 * and acknowledges the message only when all of them are done.
 */
export type Decision =
  | {
      /**
       * Compare-and-set: write `value` only if the key is still at `expectedRevision` (0: absent).
       * If another replica got there first, the runtime discards the remaining decisions and
       * calls `handle` again with fresh state. This is how a decision is taken exactly once.
       */
      kind: "claim";
      store: StoreName;
      key: string;
      expectedRevision: number;
      value: Stores[StoreName];
    }
  | {
      /**
       * Read-modify-write, retried on conflict: unlike a claim, a conflict only repeats this
       * write, not the decision.
       */
      kind: "update";
      store: StoreName;
      key: string;
      update: (current: Stores[StoreName] | undefined) => Stores[StoreName];
      /**
       * What the handler read of the key, if it did: the first write starts from it (`null`:
       * read, and absent). Left out, the key is read first.
       */
      read?: Versioned<Stores[StoreName]> | null | undefined;
      /**
       * Decisions that follow from what this update stored: the value `update` returned on the
       * write that succeeded. For a decision that depends on a shared count (the image breaker)
       * without re-deciding everything when another message counted first.
       */
      onStored?: (stored: Stores[StoreName]) => Decision[];
    }
  | { kind: "remediation"; record: RemediationRecord }
  | {
      kind: "restart";
      /** Stamped with its lifetime and signed by the runtime when it is sent. */
      command: RestartDraft;
      /**
       * The agent may take this long (Docker's stop timeout is inside it); the runtime waits at
       * least this, and at least its configured command timeout.
       */
      minTimeoutMs?: number;
      /** Decisions that follow from the agent's answer. */
      onReply: (result: CommandResult) => Decision[];
    }
  | {
      /** Fail this delivery so JetStream redelivers it after `delayMs`. */
      kind: "retry";
      reason: string;
      delayMs: number;
    }
  | ({
      /**
       * Send one notification to one webhook (handlers/notify) through the runtime's Notifier,
       * which retries quickly and skips keys it already delivered; if every try fails, the
       * delivery fails and JetStream redelivers it.
       */
      kind: "notify";
    } & NotifySend)
  | {
      /**
       * Take a slot under every cap (the storm guard) before going on; the caps are tried at
       * once. If a cap is full, the slots taken are given back and `onDenied` is applied
       * instead of the rest. In-progress slots are held until all of this message's decisions
       * are done; rate slots are kept once a restart has been sent.
       */
      kind: "lease";
      leases: LeaseRequest[];
      holder: string;
      /**
       * Applied while the slots are being taken, and kept whether or not they are granted:
       * for writes that do not depend on them, so that they cost no extra round trip.
       */
      alongside?: Decision[];
      onDenied: (denial: LeaseDenial) => Decision[];
    }
  | { kind: "log"; level: "debug" | "info" | "warn" | "error"; msg: string; fields?: object };

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
  /** The host's latest snapshot (KV `fleetheal_hosts`), read only. The runtime always provides
   * it; it is optional only so that test contexts need not. */
  hostSnapshot?(host: string): Promise<HostSnapshot | undefined>;
  /**
   * The same, with its KV revision, decoded only when asked: a host's snapshot is some 50 KB of
   * JSON for 50 containers, and a handler that has judged this revision before need not decode
   * it again. Provided by the runtime like {@link hostSnapshot}.
   */
  hostSnapshotEntry?(host: string): Promise<HostSnapshotEntry | undefined>;
  /**
   * Whether the fleet has more than one host: more than one key in KV `fleetheal_hosts`, as the
   * runtime last counted them (see handlers/fleet-hosts.ts); true when it cannot tell. Provided
   * by the runtime like {@link hostSnapshot}.
   */
  severalHosts?(): Promise<boolean>;
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
  handle(event: E, ctx: HandlerContext): Promise<Decision[]> | Decision[];
}
