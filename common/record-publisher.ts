import { createHmac, randomBytes } from "node:crypto";
import type { JetStreamClient, PubAck } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { encode, type RemediationRecord, remediationSubject } from "../contracts/index.js";
import { isWrongRevision } from "./nats-errors.js";

/** Key of the control plane's record-id secret in the fleet configuration bucket. */
export const RECORD_ID_KEY = "record-id-key";

/** Publishes remediation records: the one way every role of the control plane does it. */
export interface RecordPublisher {
  publish(record: RemediationRecord): Promise<PubAck>;
  /** The `Nats-Msg-Id` a record is published with. */
  msgId(record: RemediationRecord): string;
}

/**
 * A record's id is deterministic, so that a retried publish is dropped as a duplicate. Hosts share
 * the events stream's duplicate window, and a host may set any `Nats-Msg-Id` on its own events:
 * with the plain id as the message id, a host could publish another host's next record id first
 * and have the real record dropped. Under an HMAC with a secret only the control plane can read,
 * the message id is still deterministic, but nobody else can compute it.
 */
export function recordPublisher(js: JetStreamClient, secret: Uint8Array): RecordPublisher {
  const msgId = (record: RemediationRecord) =>
    createHmac("sha256", secret).update(record.id).digest("base64url");
  return {
    msgId,
    publish: (record) =>
      js.publish(
        remediationSubject(record.host, record.containerId, record.phase),
        encode(record),
        {
          msgID: msgId(record),
        },
      ),
  };
}

/**
 * The control plane's record-id secret, created by whichever role comes first (a compare-and-set
 * create, so replicas that start together agree on one) and read by the others. It lives in the
 * fleet configuration bucket, which only the control plane's accounts can read.
 */
export async function recordIdSecret(config: KV): Promise<Uint8Array> {
  for (;;) {
    const stored = await config.get(RECORD_ID_KEY);
    if (stored?.operation === "PUT" && stored.value.length >= 32) return stored.value;
    const secret = randomBytes(32);
    try {
      // A deleted key, or a value too short to be one of ours, is replaced.
      if (stored) await config.update(RECORD_ID_KEY, secret, stored.revision);
      else await config.create(RECORD_ID_KEY, secret);
      return secret;
    } catch (error) {
      // Another role wrote it first: read what it wrote.
      if (!isWrongRevision(error)) throw error;
    }
  }
}
