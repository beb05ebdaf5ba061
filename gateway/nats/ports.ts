import type { ContainerSnapshot, HealPolicy } from "../../contracts/index.js";
import type {
  EventsPage,
  EventsQuery,
  HealingSwitchResult,
  HistoryCounts,
  HistoryCountsQuery,
  PolicyDocument,
  RestartResult,
  StreamRecord,
} from "../http/api-schemas.js";

/*
 * The gateway's ports to NATS. Routes talk to these interfaces; `nats-fleet-control.ts` and
 * `nats-event-log.ts` (over the files it composes) implement them on a real connection, so all
 * NATS wiring stays in this folder.
 * Failures are thrown as `ApiError`s (see ../http/api-errors.ts) so that each maps to one status code.
 */

/** Who asked for an action, as recorded in remediation records and agent logs. */
export interface Actor {
  /** `gateway:<token name>`, e.g. `gateway:admin`. */
  name: string;
  /** The client address, for the audit trail. */
  address: string;
}

export interface ManualRestart {
  host: string;
  container: ContainerSnapshot;
  reason: string;
  stopTimeoutSeconds?: number;
  actor: Actor;
  /**
   * The client's `Idempotency-Key`: the same key gives the same command id, and the agent runs a
   * command id at most once, so a retried request cannot restart twice.
   */
  idempotencyKey?: string;
}

/**
 * Where the restarts the gateway sends are counted (its /metrics). Each gateway counts only its
 * own, so the fleet's total is a sum over gateways (docs/METRICS.md).
 */
export interface RestartCounts {
  /** A restart sent by hand that the agent carried out. */
  restarted(): void;
  /** A restart sent by hand that failed, with the code of its `failed` record. */
  restartFailed(code: string): void;
}

export interface ManualRelease {
  host: string;
  container: ContainerSnapshot;
  reason?: string;
  actor: Actor;
}

/** Healing switched off or on for one container name on a host. */
export interface ManualHealingSwitch {
  host: string;
  /** The container name the switch is kept under. */
  name: string;
  /**
   * The container that has the name now, when one does: its id names the audit record's
   * subject. Only switching back on may go without one.
   */
  container?: ContainerSnapshot;
  enabled: boolean;
  reason?: string;
  actor: Actor;
}

/**
 * The hosts of a fleet whose NATS server `fleetheal up` runs (cli/fleet-hosts.ts): present only
 * when the gateway runs inside `up`.
 */
export interface FleetHostsAdmin {
  /** Issues the host's credential (another host's keys are kept) and returns its join token. */
  add(host: string): Promise<{ host: string; token: string; created: boolean }>;
  /** Deletes the host's snapshot and revokes its credential. */
  remove(host: string): Promise<{ host: string; snapshotDeleted: boolean }>;
  /** Every host with a credential, and whether one of its connections is up. */
  credentials(): Promise<{ host: string; state: "issued" | "connected" }[]>;
}

/** Actions on the fleet: everything a mutating endpoint does. */
export interface FleetControl {
  /**
   * Restarts one container through its host's agent and audits it as remediation records
   * (`restarting`, then `restarted` or `failed`, code `by-hand`). Resolves with the agent's
   * answer, including a refusal; rejects only when the agent cannot be reached.
   */
  restart(request: ManualRestart): Promise<RestartResult>;
  /** Releases a quarantined container (ledger CAS plus a `released` record). */
  release(request: ManualRelease): Promise<{ releasedAt: string }>;
  getPolicy(): Promise<PolicyDocument>;
  /**
   * Stores a new fleet policy. With `expectedRevision` it is a compare-and-set (0 = create);
   * a lost race rejects with a conflict.
   */
  putPolicy(policy: HealPolicy, expectedRevision?: number): Promise<PolicyDocument>;
  /** Sets `paused` in the stored policy, retrying on concurrent edits. */
  setPaused(paused: boolean): Promise<PolicyDocument>;
  /**
   * Switches healing off or on for one container name (the policy's `disabled` list), retrying
   * on concurrent edits, and records the change (`disabled` or `enabled`). A request that
   * changes nothing writes and records nothing. Switching on a name that is not switched off
   * and that no container has is a 404.
   */
  setHealing(request: ManualHealingSwitch): Promise<HealingSwitchResult>;
}

/** Reads history from the events stream. */
export interface EventLog {
  read(query: EventsQuery, now: number): Promise<EventsPage>;
}

/**
 * Counts restarts, failed attempts and unhealthy transitions of the stored history in a window's
 * fixed buckets (history-buckets.ts), with bounded work: the answer says when it is incomplete.
 */
export interface HistoryCounter {
  count(query: HistoryCountsQuery, now: number): Promise<HistoryCounts>;
}

/** Which live records a subscriber wants. */
export type StreamFilter = Pick<EventsQuery, "host" | "container" | "kind">;

/** The live feed of the events stream, fanned out to SSE clients and metrics. */
export interface LiveFeed {
  /** Calls `listener` for every new record that passes `filter`; returns an unsubscribe. */
  subscribe(filter: StreamFilter, listener: (record: StreamRecord) => void): () => void;
}
