import type { ContainerEvent, HealPolicy, LedgerEntry } from "../contracts/index.js";
import type { Trigger } from "../policy/heal-policy.js";
import type { Decision } from "./decisions.js";
import type { RecordExtras, RecordFn } from "./heal-command.js";

/*
 * What the heal handler remembers about a container it is not healing right now, and the alert
 * when that lasts. Healing is level-triggered: the agent re-asserts an unhealthy container at
 * every resync, and each re-assertion is decided again; the ledger's `notHealing` is what keeps
 * an unchanged decision from writing again, so a held container does not flood the history.
 */

/** LedgerEntry.notHealing. */
export type NotHealing = NonNullable<LedgerEntry["notHealing"]>;

/** Why a container is not being healed now: a policy hold, or stuck after a failed attempt. */
export interface Hold {
  reason: NotHealing["reason"];
  code: string;
  message: string;
  /** When the hold is due to end, if it has an end (ms since the epoch). */
  untilMs?: number | undefined;
}

/** What a hold is decided from. */
export interface HoldInput {
  event: ContainerEvent;
  trigger: Trigger;
  policy: HealPolicy;
  incident: string;
  now: Date;
  /** When the container's trouble began, as far as is known (ms since the epoch). */
  troubleSince: number;
  /** The ledger entry with what this event taught (observeTrouble). */
  observed: LedgerEntry;
  /** The entry as read: what is stored now. */
  stored: LedgerEntry;
  record: RecordFn;
  claim: (value: LedgerEntry) => Decision;
  /** The claim of `observed` when this event changed the entry; written whatever else is. */
  keepObserved: Decision[];
}

/** Whether two holds are the same decision: a repeat writes nothing. */
export function sameHold(
  stored: NotHealing | undefined,
  hold: Hold,
  incident: string,
): stored is NotHealing {
  return (
    stored !== undefined &&
    stored.reason === hold.reason &&
    stored.code === hold.code &&
    stored.incident === incident
  );
}

/** How a new hold is written, besides the ledger's `notHealing` and one record. */
export interface HoldOptions {
  /** More facts for the record. */
  extras?: RecordExtras;
  /** The record's code, when it is not the hold's (a quarantine says why: `budget-spent`). */
  recordCode?: string;
  /** More ledger fields to write with a new hold: a quarantine, the incident a dry-run took. */
  write?: Partial<LedgerEntry>;
}

/**
 * Records a hold: when it is new (another reason, another code, another incident), the ledger
 * remembers it and one record says so (`phase`, usually `skipped`); when it is what the ledger
 * already says, nothing is written. Either way the `unhealed` alert goes out once per incident
 * when the container has been unhealthy too long.
 */
export function holdDecisions(
  input: HoldInput,
  hold: Hold,
  phase: "skipped" | "quarantined" | "decided" | "alerted",
  options: HoldOptions = {},
): Decision[] {
  const { stored, observed, incident, now } = input;
  const until = hold.untilMs !== undefined ? new Date(hold.untilMs) : undefined;
  const repeat = sameHold(stored.notHealing, hold, incident);
  const alert = unhealedAlert(input, hold);
  if (repeat && !alert) return input.keepObserved;
  const notHealing: NotHealing = repeat
    ? (stored.notHealing as NotHealing)
    : {
        reason: hold.reason,
        code: hold.code.slice(0, 64),
        message: hold.message.slice(0, 2048),
        since: now.toISOString(),
        ...(until ? { until: until.toISOString() } : {}),
        incident,
      };
  const decisions: Decision[] = [
    input.claim({
      ...observed,
      ...(repeat ? {} : options.write),
      notHealing,
      ...(alert ? { unhealedNotified: incident } : {}),
    }),
  ];
  if (!repeat) {
    const code = options.recordCode ?? hold.code;
    decisions.push(input.record(phase, code, hold.message, { ...options.extras, until }));
  }
  if (alert) decisions.push(alert);
  return decisions;
}

/**
 * The `unhealed` record, when it is due: an unhealthy container (not a crashed one) that has
 * been unhealthy at least the policy's `notifyUnhealedAfterSeconds` and is not being healed,
 * once per incident.
 */
function unhealedAlert(input: HoldInput, hold: Hold): Decision | undefined {
  const { policy, stored, incident, now, trigger } = input;
  const afterMs = policy.notifyUnhealedAfterSeconds * 1000;
  if (trigger !== "unhealthy" || afterMs === 0 || stored.unhealedNotified === incident) {
    return undefined;
  }
  const heldSince =
    stored.notHealing?.incident === incident ? Date.parse(stored.notHealing.since) : Infinity;
  const since = Math.min(input.troubleSince, heldSince);
  const forMs = now.getTime() - since;
  if (forMs < afterMs) return undefined;
  const minutes = Math.floor(forMs / 60_000);
  const lasted = minutes >= 1 ? `${minutes} min` : `${Math.round(forMs / 1000)}s`;
  return input.record(
    "unhealed",
    "unhealthy-too-long",
    `unhealthy for ${lasted} and not being healed (${hold.reason}: ${hold.code}): ${hold.message}`,
  );
}
