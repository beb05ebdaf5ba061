import type { JsMsg } from "@nats-io/jetstream";
import type { Logger } from "../../common/logger.js";
import {
  ContainerEvent,
  decode,
  eventSubjectMismatch,
  parseEventSubject,
  parseRemediationSubject,
  RemediationRecord,
  remediationSubjectMismatch,
} from "../../contracts/index.js";
import type { StreamRecord } from "../http/api-schemas.js";

/**
 * Turns stored messages of the events stream into the API's records, skipping (and reporting)
 * any whose payload does not match its contract or its subject, whether read as history or
 * live.
 */
export class StreamRecordDecoder {
  private loggedRejection = false;

  constructor(
    private readonly log: Logger,
    /** Called for every stored message that is skipped, with why. */
    private readonly onRejected: (reason: string) => void,
  ) {}

  /** The record stored in `m`, or undefined when it is skipped. */
  decode(m: JsMsg): StreamRecord | undefined {
    const base = { seq: m.seq, subject: m.subject, storedAt: m.time.toISOString() };
    if (parseEventSubject(m.subject)) {
      const decoded = decode(ContainerEvent, m.data);
      const mismatch = decoded.ok ? eventSubjectMismatch(m.subject, decoded.value) : undefined;
      if (decoded.ok && !mismatch) return { kind: "event", ...base, event: decoded.value };
      this.reject(m, mismatch ?? (decoded.ok ? "" : decoded.error.message));
    } else if (parseRemediationSubject(m.subject)) {
      const decoded = decode(RemediationRecord, m.data);
      const mismatch = decoded.ok
        ? remediationSubjectMismatch(m.subject, decoded.value)
        : undefined;
      if (decoded.ok && !mismatch) {
        return { kind: "remediation", ...base, remediation: decoded.value };
      }
      this.reject(m, mismatch ?? (decoded.ok ? "" : decoded.error.message));
    } else {
      this.reject(m, "not an event or remediation subject");
    }
    return undefined;
  }

  // Counted every time, logged in full once: one bad publisher would otherwise flood the log
  // on every page and every live message.
  private reject(m: JsMsg, reason: string): void {
    this.onRejected(reason);
    const fields = { subject: m.subject, seq: m.seq, err: reason };
    if (this.loggedRejection) {
      this.log.debug(fields, "skipped a stored record that does not match its contract");
    } else {
      this.loggedRejection = true;
      this.log.warn(fields, "skipped a stored record that does not match its contract");
    }
  }
}
