import { DEFAULT_HEAL_POLICY, decode, HealPolicy } from "../contracts/index.js";

/**
 * Where the policy in force comes from: a stored revision, the defaults (no policy is stored),
 * or a pause, because the stored policy was invalid when this process started and it has never
 * seen a valid one.
 */
export type PolicyOrigin = "stored" | "defaults" | "paused";

/** A stored revision of the policy key that did not validate, and why. */
export interface InvalidPolicy {
  readonly revision: number;
  readonly error: string;
}

/**
 * What one process holds of the fleet policy. Immutable: every change is a new object, so a
 * reader can tell a change by identity alone (the gateway's /health cache does).
 */
export interface PolicyState {
  /** The policy in force. */
  readonly policy: HealPolicy;
  readonly origin: PolicyOrigin;
  /** The revision in force; 0 unless `origin` is `stored`. */
  readonly revision: number;
  /** Set while the latest stored revision is invalid; cleared by a valid one or a delete. */
  readonly invalid?: InvalidPolicy;
  /** The newest revision looked at; a watch replaying it (or older) changes nothing. */
  readonly seen: number;
}

/** One entry of the policy key, as KV get and watch deliver it. */
export interface PolicyEntry {
  readonly operation: "PUT" | "DEL" | "PURGE";
  readonly revision: number;
  readonly value: Uint8Array | string;
}

/** A line for the log that a transition asks for; the caller writes it. */
export interface PolicyLog {
  readonly level: "info" | "error";
  readonly msg: string;
  readonly fields: Record<string, unknown>;
}

export interface PolicyTransition {
  readonly state: PolicyState;
  /** Absent when the entry changed nothing (a replay). */
  readonly log?: PolicyLog;
}

/**
 * The longest error kept and reported (in /health, on every request). The message quotes the
 * stored document's unknown keys, which whoever wrote it chose, at any length.
 */
export const MAX_POLICY_ERROR = 1_024;

/** Healing paused, everything else at its default: what a process holds with no good policy. */
export const PAUSED_FALLBACK_POLICY: HealPolicy = Object.freeze({
  ...DEFAULT_HEAL_POLICY,
  paused: true,
});

/** Before anything is read: nothing stored means the defaults (a fresh fleet). */
export const INITIAL_POLICY_STATE: PolicyState = Object.freeze({
  policy: DEFAULT_HEAL_POLICY,
  origin: "defaults",
  revision: 0,
  seen: 0,
});

/**
 * The state after the key's current entry has been read at start, `undefined` when the key was
 * never written. Unlike {@link nextPolicyState}, an invalid entry here pauses healing: with no
 * valid policy known, the defaults could undo a pause, a maintenance window or a dry-run that
 * the broken write replaced.
 */
export function initialPolicyState(entry: PolicyEntry | undefined): PolicyTransition {
  if (entry === undefined) return { state: INITIAL_POLICY_STATE };
  return apply(INITIAL_POLICY_STATE, entry, true);
}

/**
 * The state after a later entry of the key. A valid policy is put in force; an invalid one is
 * recorded and the policy in force stays (the last valid one, the defaults, or the pause); a
 * delete or purge brings back the defaults. An entry at or below the revision already seen is a
 * replay and changes nothing, so each bad revision is logged once.
 */
export function nextPolicyState(state: PolicyState, entry: PolicyEntry): PolicyTransition {
  if (entry.revision <= state.seen) return { state };
  return apply(state, entry, false);
}

function apply(state: PolicyState, entry: PolicyEntry, atStart: boolean): PolicyTransition {
  const { revision } = entry;
  if (entry.operation !== "PUT") {
    return {
      state: { policy: DEFAULT_HEAL_POLICY, origin: "defaults", revision: 0, seen: revision },
      log: {
        level: "info",
        msg: "fleet policy removed; using the defaults",
        fields: { revision },
      },
    };
  }
  const decoded = decode(HealPolicy, entry.value);
  if (decoded.ok) {
    return {
      state: { policy: decoded.value, origin: "stored", revision, seen: revision },
      log: {
        level: "info",
        msg: "fleet policy loaded",
        fields: state.invalid
          ? { revision, replacesInvalid: state.invalid.revision }
          : { revision },
      },
    };
  }
  const invalid = { revision, error: bounded(decoded.error.message) };
  if (atStart || state.origin === "paused") {
    return {
      state: {
        policy: PAUSED_FALLBACK_POLICY,
        origin: "paused",
        revision: 0,
        invalid,
        seen: revision,
      },
      log: {
        level: "error",
        msg: "stored fleet policy is invalid and no valid one is known; healing is PAUSED until a valid policy is stored",
        fields: { revision, err: invalid.error },
      },
    };
  }
  return {
    state: { ...state, invalid, seen: revision },
    log: {
      level: "error",
      msg: "stored fleet policy is invalid; keeping the previous one",
      fields: {
        revision,
        err: invalid.error,
        inForce: state.origin,
        inForceRevision: state.revision,
      },
    },
  };
}

function bounded(message: string): string {
  return message.length <= MAX_POLICY_ERROR
    ? message
    : `${message.slice(0, MAX_POLICY_ERROR - 1)}…`;
}
