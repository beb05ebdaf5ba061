import type { ContainerCommandDraft } from "../common/agent-commands.js";
import type {
  CommandReply,
  ImageFailures,
  LedgerEntry,
  MonitoredContainer,
  RemediationRecord,
} from "../contracts/index.js";
import type { NotifySend } from "./notify/notifier.js";

/*
 * The decisions a handler returns, and what the runtime does with each: the one vocabulary
 * between handlers (heal.ts, dependents.ts, auto-monitor.ts, notify/) and the DecisionRunner
 * (runtime/decision-runner.ts) that applies them.
 *
 * A handler's `handle` reads what it needs through its HandlerContext and returns a list of
 * decisions; it writes nothing itself. The runner applies the list in order, one decision after
 * the other, and JetStream's message is acknowledged only once all of them are applied and every
 * publish and notification they started is stored or sent. Three things end a list early:
 *
 * - `retry` ends the whole message, whichever list it is in: nothing after it is applied, and
 *   the message comes back after `delayMs` (on its last delivery it goes to the dead-letter
 *   stream instead).
 * - A `claim` that loses its compare-and-set ends the attempt: what is left is dropped, and the
 *   runner calls `handle` again with a fresh context (up to 5 times; then it fails like an error).
 *   What was applied before the claim stays applied, so it must be safe to apply again.
 * - A `lease` that is denied applies its `onDenied` list, then skips the rest of the list it is
 *   in; if that list is an update's `onStored`, the rest of the list holding the update is skipped
 *   too. A denial does not reach past a command's `onReply` or a lease's `alongside`.
 *
 * Any failure (a store, a publish, a notification, an invalid value) fails the delivery, and
 * JetStream redelivers it with backoff (1 s doubling to 60 s).
 *
 * Continuations are functions that return more decisions; the runner applies their list where
 * the decision stands, before the rest of the list that holds it:
 * - `lease.alongside`: at once, while the slots are being taken, whatever the answer;
 * - `lease.onDenied`: when a cap is full, in place of the rest;
 * - `update.onStored`: once the update is stored, with the value this update wrote;
 * - `command.onReply`: once the agent answered, or did not in time.
 */

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
 * `bad-reply`: the answer is not a command reply, or the agent reported an error.
 */
export type CommandResult =
  | { ok: true; reply: CommandReply }
  | {
      ok: false;
      code: "no-responders" | "timeout" | "bad-reply" | "command-refused" | "error";
      message: string;
    };

/**
 * Compare-and-set: write `value` only if the key is still at `expectedRevision` (0: absent). If
 * another replica got there first, the runner drops the rest of the decisions and calls `handle`
 * again with fresh state. This is how a decision is taken exactly once.
 */
export interface ClaimDecision {
  kind: "claim";
  store: StoreName;
  key: string;
  expectedRevision: number;
  value: Stores[StoreName];
}

/**
 * Read-modify-write, retried on conflict: unlike a claim, a conflict repeats only this write,
 * not the decision. `update` must be pure, as it may run more than once, on whatever another
 * replica wrote meanwhile. Updates of one key by this replica's messages are written together.
 */
export interface UpdateDecision {
  kind: "update";
  store: StoreName;
  key: string;
  update: (current: Stores[StoreName] | undefined) => Stores[StoreName];
  /**
   * What the handler read of the key, if it did: the first write starts from it (`null`: read,
   * and absent). Left out, the key is read first. A key this message wrote before starts from
   * what it wrote.
   */
  read?: Versioned<Stores[StoreName]> | null | undefined;
  /**
   * Decisions that follow from what this update stored: the value `update` returned on the write
   * that succeeded. Applied right after the write, before the rest of the list. For a decision
   * that depends on a shared count (the image breaker) without re-deciding everything when
   * another message counted first.
   */
  onStored?: (stored: Stores[StoreName]) => Decision[];
}

/**
 * Publish a remediation record on its `act` subject. It is not waited for before the next
 * decision (records and the restart after them leave together); the message is acknowledged
 * only once it is stored. Its id is its JetStream message id, so a redelivery's copy is dropped.
 */
export interface RemediationDecision {
  kind: "remediation";
  record: RemediationRecord;
}

/**
 * Send a command that changes a container (restart, stop or recreate) to the container's agent
 * and wait for the answer (or for the timeout). It counts against the storm guard's rate caps
 * from the moment it is sent.
 */
export interface CommandDecision {
  kind: "command";
  /** Stamped with its lifetime and signed by the runtime when it is sent. */
  command: ContainerCommandDraft;
  /**
   * The agent may take this long (Docker's stop timeout is inside it); the runtime waits at
   * least this, and at least its configured command timeout.
   */
  minTimeoutMs?: number;
  /**
   * For a heal of an unhealthy container: when Docker reported it unhealthy (the event's time,
   * or the transition's that a resync re-asserts). The replica's heal latency is measured from
   * it to the start the agent reports in its answer.
   */
  unhealthyAt?: Date;
  /**
   * Decisions that follow from the agent's answer, applied as soon as it comes. The slots this
   * restart holds under the concurrency caps are given back meanwhile, unless it timed out: the
   * agent may still be at it, so they are left to expire.
   */
  onReply: (result: CommandResult) => Decision[];
}

/**
 * Fail this delivery on purpose, so that JetStream redelivers it after `delayMs` (a deferral:
 * backoff, a held-back restart, an unreachable agent). Nothing after it is applied. On the
 * message's last delivery it goes to the dead-letter stream with `reason`.
 */
export interface RetryDecision {
  kind: "retry";
  reason: string;
  delayMs: number;
}

/**
 * Send one notification to one webhook (handlers/notify) through the runtime's Notifier, which
 * retries quickly and skips keys it already delivered; if every try fails, the delivery fails
 * and JetStream redelivers it. Not waited for before the next decision, only before the ack.
 */
export type NotifyDecision = { kind: "notify" } & NotifySend;

/**
 * Take a slot under every cap (the storm guard) before going on; the caps are tried at once. If
 * a cap is full, the slots taken are given back, `onDenied` is applied, and the rest is skipped
 * (see the top of this file). In-progress slots are held until the restart they are for is
 * answered, or until the message's decisions are done; rate slots are kept, unless the message
 * fails before the restart is sent.
 */
export interface LeaseDecision {
  kind: "lease";
  leases: LeaseRequest[];
  /** The restart the slots are for: its command id. */
  holder: string;
  /**
   * Applied while the slots are being taken, and kept whether or not they are granted: for
   * writes that do not depend on them, so that they cost no extra round trip.
   */
  alongside?: Decision[];
  onDenied: (denial: LeaseDenial) => Decision[];
}

/** A request for one of `cap` slots under a key prefix, in a lease bucket. */
export interface LeaseRequest {
  bucket: "inflight" | "rate";
  /** Slot keys are `<prefix>.<n>`, n < cap. Tokens only: `host.<host>` or `fleet`. */
  prefix: string;
  cap: number;
  /** Shown in errors and logs: which cap this is. */
  label: string;
}

/** Why a set of leases was not granted. */
export interface LeaseDenial {
  /** The label of a cap that is full. */
  cap: string;
  /**
   * When the first of its slots frees, if that is known: a rate slot lives exactly as long as
   * its bucket's TTL, so a full rate cap cannot take anyone before its oldest slot expires.
   */
  freeInMs?: number;
}

/** Write a line to the handler's log, with the message's subject and sequence. */
export interface LogDecision {
  kind: "log";
  level: "debug" | "info" | "warn" | "error";
  msg: string;
  fields?: object;
}

/**
 * What a handler wants done; see the top of this file for the order they are applied in and
 * what ends a list early.
 */
export type Decision =
  | ClaimDecision
  | UpdateDecision
  | RemediationDecision
  | CommandDecision
  | RetryDecision
  | NotifyDecision
  | LeaseDecision
  | LogDecision;
