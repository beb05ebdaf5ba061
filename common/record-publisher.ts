import type { JetStreamClient, PubAck } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { encode, type RemediationRecord, remediationSubject } from "../contracts/index.js";
import { keyedMessageId, newSecret } from "./message-ids.js";
import { isWrongRevision } from "./nats-errors.js";

/** Key of the control plane's record-id secret in the fleet configuration bucket. */
export const RECORD_ID_KEY = "record-id-key";

/** Publishes remediation records: the one way every role of the control plane does it. */
export interface RecordPublisher {
  publish(record: RemediationRecord): Promise<PubAck>;
  /** The `Nats-Msg-Id` a record is published with. */
  msgId(record: RemediationRecord): Promise<string>;
  /**
   * Fetches (or creates) the secret now, so that publishes leave in the order they are made from
   * the first one on. Roles that publish records call it as they start.
   */
  ready(): Promise<void>;
}

/**
 * Records are published under {@link keyedMessageId}s with a secret only the control plane can
 * read: a record's id is deterministic and easy to guess (a release record's is the ledger key and
 * revision), and hosts share the events stream's duplicate window. The secret is fetched once,
 * on the first publish, so that opening the fleet's resources writes nothing.
 */
export function recordPublisher(
  js: JetStreamClient,
  secret: Uint8Array | (() => Promise<Uint8Array>),
): RecordPublisher {
  let key = secret instanceof Uint8Array ? secret : undefined;
  let fetching: Promise<Uint8Array> | undefined;
  const keyOf = (): Promise<Uint8Array> => {
    if (key) return Promise.resolve(key);
    if (secret instanceof Uint8Array) return Promise.resolve(secret);
    fetching ??= secret().then(
      (k) => (key = k),
      (error: unknown) => {
        // Not kept: the next publish asks again.
        fetching = undefined;
        throw error;
      },
    );
    return fetching;
  };
  const send = (record: RemediationRecord, k: Uint8Array) =>
    js.publish(remediationSubject(record.host, record.containerId, record.phase), encode(record), {
      msgID: keyedMessageId(k, record.id),
    });
  return {
    msgId: async (record) => keyedMessageId(key ?? (await keyOf()), record.id),
    ready: async () => void (await keyOf()),
    // Once the key is known, a publish leaves at once, in the order of the calls.
    publish: (record) => (key ? send(record, key) : keyOf().then((k) => send(record, k))),
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
    const secret = newSecret();
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
