import type { ContainerCommandDraft } from "../common/agent-commands.js";
import {
  type ContainerSnapshot,
  containerKey,
  type HealPolicy,
  type LedgerEntry,
  type LedgerRestart,
  RECREATE_COMMAND_TYPE,
} from "../contracts/index.js";
import { backoffUntil, restartsWithin } from "../policy/heal-policy.js";
import type { Decision, Versioned } from "./decisions.js";

/*
 * A dependent's restart (or re-attaching recreate) in the dependent's own ledger entry, as heal
 * keeps its restarts there: claimed by compare-and-set before the command is sent, so that one
 * run of a dependent is acted on once however many rounds reach it (a `start` event and a
 * `restarted` record of the same parent run, replicas, redeliveries); and bounded by the backoff
 * and budget that heal applies, so that a parent in a crash loop does not restart its children
 * without end. Only `restarts`, `lastRestartAt` and `consecutiveRestarts` are written: the rest
 * of the entry is heal's.
 */

/** What the ledger already says about acting on a dependent's current run. */
export type DependentClaim =
  /** Nobody has: this round may claim it. */
  | { kind: "free" }
  /** This round's own command (an earlier delivery, or a round of the same parent run). */
  | { kind: "ours"; restart: LedgerRestart }
  /** Another command is acting on this run (heal, or a round of another parent). */
  | { kind: "taken"; commandId: string };

const MAX_HISTORY = 50;
/** Outcomes of a command that acted (or may still act) on the run it names. */
const ACTING = new Set<LedgerRestart["outcome"]>(["pending", "restarted", "recreated", "stopped"]);

/**
 * Ledger reads a round has in flight at once: a round can have thousands of dependents (as many
 * as its host's graph has edges), and each read is a KV request.
 */
export const LEDGER_READS_AT_ONCE = 64;

/** Reads the ledger entry of every dependent, by id, {@link LEDGER_READS_AT_ONCE} at a time. */
export async function readLedgers(
  read: (key: string) => Promise<Versioned<LedgerEntry> | undefined>,
  host: string,
  ids: readonly string[],
): Promise<Map<string, Versioned<LedgerEntry> | undefined>> {
  const ledgers = new Map<string, Versioned<LedgerEntry> | undefined>();
  for (let i = 0; i < ids.length; i += LEDGER_READS_AT_ONCE) {
    const batch = ids.slice(i, i + LEDGER_READS_AT_ONCE);
    const entries = await Promise.all(batch.map((id) => read(containerKey(host, id))));
    batch.forEach((id, j) => {
      ledgers.set(id, entries[j]);
    });
  }
  return ledgers;
}

/** Whether `commandId` or another command already acts on `dep`'s run. */
export function claimOf(
  entry: LedgerEntry | undefined,
  dep: ContainerSnapshot,
  commandId: string,
): DependentClaim {
  const ours = entry?.restarts.find((r) => r.commandId === commandId);
  if (ours) return { kind: "ours", restart: ours };
  // Another command for this very run, pending or done: its own round (or heal) follows up on
  // it, and the run it acted on is over.
  const other = entry?.restarts.find(
    (r) => ACTING.has(r.outcome) && dep.startedAt !== undefined && r.incident === dep.startedAt,
  );
  return other ? { kind: "taken", commandId: other.commandId } : { kind: "free" };
}

/**
 * Why the policy keeps a dependent from being restarted now, if it does: its restart budget is
 * spent, or its backoff has not run out. Heal's own functions on the dependent's entry. A
 * dependent that has run `resetAfterSeconds` since its last restart starts its backoff over, as
 * heal's does (heal also resets on a healthy stretch, which it records).
 */
export function dependentBound(
  entry: LedgerEntry | undefined,
  policy: HealPolicy,
  now: number,
): { code: "budget-spent" | "backoff"; message: string; until?: Date } | undefined {
  if (!entry) return undefined;
  const { restarts, windowSeconds } = policy.budget;
  const recent = restartsWithin(entry, now - windowSeconds * 1000);
  if (recent >= restarts) {
    return {
      code: "budget-spent",
      message: `${recent} restarts in ${windowSeconds}s spend its budget of ${restarts}`,
    };
  }
  const next = backoffUntil(withReset(entry, policy, now), policy);
  if (next !== undefined && now < next) {
    return {
      code: "backoff",
      message: `restarted ${entry.consecutiveRestarts} times in a row; backoff until ${new Date(next).toISOString()}`,
      until: new Date(next),
    };
  }
  return undefined;
}

function withReset(entry: LedgerEntry, policy: HealPolicy, now: number): LedgerEntry {
  const last = entry.lastRestartAt ? Date.parse(entry.lastRestartAt) : undefined;
  const quiet = last !== undefined && now - last >= policy.backoff.resetAfterSeconds * 1000;
  return quiet ? { ...entry, consecutiveRestarts: 0 } : entry;
}

/**
 * The claim of `dep`'s current run for `command`, against the entry as read (a conflict makes
 * the runner decide the message again, with fresh entries).
 */
export function claimDependent(
  read: Versioned<LedgerEntry> | undefined,
  dep: ContainerSnapshot,
  command: ContainerCommandDraft,
  policy: HealPolicy,
  now: Date,
): Decision {
  const entry: LedgerEntry = read?.value ?? {
    v: 1,
    host: command.host,
    containerId: dep.id,
    restarts: [],
    consecutiveRestarts: 0,
  };
  const restart: LedgerRestart = {
    at: now.toISOString(),
    incident: dep.startedAt ?? command.commandId,
    commandId: command.commandId,
    outcome: "pending",
    ...(command.type === RECREATE_COMMAND_TYPE ? { action: "recreate" as const } : {}),
  };
  const value: LedgerEntry = {
    ...entry,
    lastRestartAt: restart.at,
    consecutiveRestarts: withReset(entry, policy, now.getTime()).consecutiveRestarts + 1,
    restarts: [restart, ...entry.restarts].slice(0, MAX_HISTORY),
  };
  return {
    kind: "claim",
    store: "ledger",
    key: containerKey(command.host, dep.id),
    expectedRevision: read?.revision ?? 0,
    value,
  };
}

/** Writes the agent's answer (or `failed`) into the dependent's ledger entry. */
export function settleDependent(
  command: ContainerCommandDraft,
  outcome: LedgerRestart["outcome"],
): Decision {
  return {
    kind: "update",
    store: "ledger",
    key: containerKey(command.host, command.containerId),
    update: (current) => {
      const entry = current as LedgerEntry | undefined;
      // Deleted by an operator meanwhile: there is nothing to settle.
      if (!entry) {
        return {
          v: 1,
          host: command.host,
          containerId: command.containerId,
          restarts: [],
          consecutiveRestarts: 0,
        };
      }
      return {
        ...entry,
        restarts: entry.restarts.map((r) =>
          r.commandId === command.commandId ? { ...r, outcome } : r,
        ),
      };
    },
  };
}
