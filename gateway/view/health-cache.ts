import { INITIAL_POLICY_STATE, type PolicyState } from "../../policy/policy-state.js";
import type { FleetView, HostRecord } from "./fleet-view.js";
import {
  type HealthReport,
  type HostHealth,
  type HostStatus,
  hostHealth,
  hostStatus,
  nextStatusChange,
  notHealingReport,
  type PolicyHealth,
  policyHealth,
  type StalenessPolicy,
  summarize,
} from "./health-report.js";
import { type JsonPart, jsonArrayBody } from "./json-body.js";

/** The /health answer, built once and served until something changes. */
export interface CachedHealth
  extends Pick<HealthReport, "status" | "totals" | "notHealing" | "policy"> {
  /** The report as JSON text (for SSE). */
  readonly json: string;
  /** The same bytes, ready to send: no per-request serialisation or encoding. */
  readonly body: Buffer;
}

interface Fragment extends JsonPart {
  status: HostHealth["status"];
  quarantined: number;
  entry: HostHealth;
}

/**
 * One build of the report. The body is the only copy kept: the text for SSE is decoded from it
 * when first asked for, so that a rebuild under heartbeat churn (one per snapshot) leaves one
 * body's worth of garbage, not a buffer and a string (docs/benchmarks/PERFORMANCE.md, "Gateway").
 */
class BuiltHealth implements CachedHealth {
  private text: string | undefined;

  constructor(
    readonly status: HealthReport["status"],
    readonly totals: HealthReport["totals"],
    readonly notHealing: HealthReport["notHealing"],
    readonly policy: PolicyHealth,
    readonly body: Buffer,
    readonly version: number,
    readonly policyState: PolicyState,
    readonly from: number,
    readonly until: number,
  ) {}

  get json(): string {
    this.text ??= this.body.toString("utf8");
    return this.text;
  }
}

/**
 * Precomputes `GET /health`. The report depends only on the view, the policy state and time
 * (hosts turn stale and down as their heartbeats are missed), so it is rebuilt when the view or
 * the policy state changes (both checked by identity or version) or when the earliest host
 * status change comes due, and is otherwise a constant: O(1) per request.
 *
 * A rebuild re-serialises only the hosts whose line changed (a new snapshot, status or
 * quarantine count) and writes the others' cached lines straight into the body, so a heartbeat
 * from one host among a thousand does not cost a thousand hosts' worth of JSON, nor a joined
 * copy of the whole text.
 */
export class HealthCache {
  private cached: BuiltHealth | undefined;
  private readonly fragments = new WeakMap<HostRecord, Fragment>();

  /**
   * `policy` returns the policy state in force, a new object only when it changes (see
   * PolicySource.state); without it, nothing is stored and the defaults apply.
   */
  constructor(
    private readonly view: FleetView,
    private readonly staleness: StalenessPolicy,
    private readonly policy: () => PolicyState = () => INITIAL_POLICY_STATE,
  ) {}

  /** One host's status now, as the report gives it. */
  statusOf(record: HostRecord, now: number): HostStatus {
    return hostStatus(record, now, this.staleness);
  }

  get(now: number): CachedHealth {
    const c = this.cached;
    const policyState = this.policy();
    if (
      c &&
      c.version === this.view.version &&
      c.policyState === policyState &&
      now >= c.from &&
      now < c.until
    ) {
      return c;
    }
    const records = this.view.list();
    const fragments: Fragment[] = new Array(records.length);
    const entries: HostHealth[] = new Array(records.length);
    let until = Number.POSITIVE_INFINITY;
    records.forEach((record, i) => {
      const fragment = this.fragment(record, now);
      fragments[i] = fragment;
      entries[i] = fragment.entry;
      until = Math.min(until, nextStatusChange(record, now, this.staleness));
    });
    const policy = c?.policyState === policyState ? c.policy : policyHealth(policyState);
    const { status, totals } = summarize(entries, policy);
    // The ledger entries it reads bump the view's version, so it is as fresh as the rest.
    const notHealing = notHealingReport(records, entries, (r) => this.view.notHealingOn(r));
    // Key order as in HealthReport, so the text equals JSON.stringify of the report.
    const head = `{"status":${JSON.stringify(status)},"hosts":[`;
    const tail = `],"totals":${JSON.stringify(totals)},"notHealing":${JSON.stringify(
      notHealing,
    )},"policy":${JSON.stringify(policy)}}`;
    const body = jsonArrayBody(head, fragments, tail);
    this.cached = new BuiltHealth(
      status,
      totals,
      notHealing,
      policy,
      body,
      this.view.version,
      policyState,
      now,
      until,
    );
    return this.cached;
  }

  private fragment(record: HostRecord, now: number): Fragment {
    const status = hostStatus(record, now, this.staleness);
    const quarantined = this.view.quarantinedOn(record);
    const known = this.fragments.get(record);
    if (known && known.status === status && known.quarantined === quarantined) return known;
    const entry = hostHealth(record, status, quarantined);
    const json = JSON.stringify(entry);
    const fragment = { status, quarantined, entry, json, bytes: Buffer.byteLength(json) };
    this.fragments.set(record, fragment);
    return fragment;
  }
}
