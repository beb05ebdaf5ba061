import type { KV } from "@nats-io/kv";
import {
  containerKey,
  decode,
  encode,
  LedgerEntry,
  type RemediationRecord,
} from "../contracts/index.js";
import { describeError, FleethealError } from "./errors.js";
import { isWrongRevision } from "./nats-errors.js";
import type { RecordPublisher } from "./record-publisher.js";
import { remediationRecord } from "./remediation-record.js";

/** What to release, and what the `released` record says about who did it. */
export interface QuarantineRelease {
  /** The `fleetheal_ledger` bucket. */
  ledger: KV;
  records: RecordPublisher;
  host: string;
  container: { id: string; name: string };
  /** The record's `actor`: `cli`, `gateway:<token name>`, … */
  actor: string;
  /** The record's `code`, e.g. `by-hand`. */
  code: string;
  /** The record's message, one sentence for people. */
  message: string;
  now: Date;
}

export type QuarantineReleaseResult =
  | { released: true; releasedAt: string; record: RemediationRecord }
  | { released: false; reason: "not-quarantined" };

/** Lost compare-and-set races tolerated before giving up; each one means someone else wrote. */
const MAX_ATTEMPTS = 5;
const PUBLISH_ATTEMPTS = 3;

/**
 * The ledger entry of a container released from quarantine at `now`, by hand or after a healthy
 * stretch alike: no quarantine, no consecutive restarts, and `releasedAt`, before which restarts
 * no longer count against the budget.
 */
export function releasedEntry(entry: LedgerEntry, now: Date): LedgerEntry {
  const { quarantine: _released, ...rest } = entry;
  return { ...rest, consecutiveRestarts: 0, releasedAt: now.toISOString() };
}

/**
 * Lets a quarantined container be healed again: writes its {@link releasedEntry}, then publishes
 * a `released` record.
 *
 * The ledger is changed with compare-and-set. A handler may be writing the same entry (it records
 * every trouble event), so a lost race re-reads the entry, checks that it is still quarantined,
 * and tries again. The record's id names the revision that was released, so publishing it again
 * is deduplicated by JetStream.
 */
export async function releaseFromQuarantine(
  request: QuarantineRelease,
): Promise<QuarantineReleaseResult> {
  const { ledger, host, container, now } = request;
  const key = containerKey(host, container.id);
  for (let attempt = 1; ; attempt++) {
    const current = await ledger.get(key);
    const entry = current?.operation === "PUT" ? decode(LedgerEntry, current.value) : undefined;
    if (!current || !entry?.ok || !entry.value.quarantine) {
      return { released: false, reason: "not-quarantined" };
    }
    const released = releasedEntry(entry.value, now);
    try {
      await ledger.update(key, encode(released), current.revision);
    } catch (error) {
      if (isWrongRevision(error) && attempt < MAX_ATTEMPTS) continue;
      throw error;
    }
    const releaseId = `release:${key}:${current.revision}`;
    const record = remediationRecord({
      id: releaseId,
      remediationId: releaseId,
      host,
      containerId: container.id,
      containerName: container.name,
      phase: "released",
      code: request.code,
      message: request.message,
      actor: request.actor,
      at: now,
    });
    await publishRecord(request.records, record);
    return { released: true, releasedAt: record.at, record };
  }
}

// The ledger already says "released"; a release retried by its caller would find the container
// not quarantined and never publish, so the record gets a few tries of its own here.
async function publishRecord(records: RecordPublisher, record: RemediationRecord): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await records.publish(record);
      return;
    } catch (error) {
      if (attempt >= PUBLISH_ATTEMPTS) throw new ReleaseNotRecordedError(error);
    }
  }
}

/** The ledger says released, but the `released` record could not be published. */
export class ReleaseNotRecordedError extends FleethealError {
  override readonly name = "ReleaseNotRecordedError";
  constructor(cause: unknown) {
    super(
      "FLEETHEAL_ERR_RELEASE_NOT_RECORDED",
      `released in the ledger, but the released record was not stored: ${describeError(cause)}`,
      { cause },
    );
  }
}
