import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import { RequestError, TimeoutError } from "@nats-io/nats-core";
import { describeError } from "./errors.js";

/*
 * What a NATS failure means, for the callers that act on it. nats.js raises typed errors, but
 * some arrive wrapped or re-created, so each check falls back to the message.
 */

/** True for a KV compare-and-set that lost: the key's revision is not the expected one. */
export function isWrongRevision(error: unknown): boolean {
  if (error instanceof JetStreamApiError) {
    return (
      error.code === JetStreamApiCodes.StreamWrongLastSequence ||
      error.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown
    );
  }
  return /wrong last sequence/i.test(describeError(error));
}

/** True when a request found nobody subscribed: the agent of that host is not connected. */
export function isNoResponders(error: unknown): boolean {
  if (error instanceof RequestError && error.isNoResponders()) return true;
  return /no responders/i.test(describeError(error));
}

/** True when a request got no answer in time. */
export function isTimeout(error: unknown): boolean {
  return error instanceof TimeoutError || /timeout/i.test(describeError(error));
}
