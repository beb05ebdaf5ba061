import { JetStreamApiError, JetStreamError } from "@nats-io/jetstream";
import {
  ClosedConnectionError,
  ConnectionError,
  DrainingConnectionError,
  NoRespondersError,
  RequestError,
  TimeoutError,
} from "@nats-io/nats-core";
import { describeError } from "../../common/errors.js";
import type { Logger } from "../../common/logger.js";
import { ApiError } from "../http/api-errors.js";

/**
 * Runs `action`, turning a NATS failure that the client can only wait out (no connection, a
 * timeout, JetStream not answering) into a 503 rather than a 500, which is for bugs.
 */
export async function unavailableOnNatsError<T>(
  log: Logger,
  what: string,
  action: () => Promise<T>,
): Promise<T> {
  try {
    return await action();
  } catch (error) {
    if (error instanceof ApiError || !isNatsFailure(error)) throw error;
    log.warn({ err: describeError(error) }, `could not ${what}`);
    throw new ApiError(
      "FLEETHEAL_ERR_UNAVAILABLE",
      `could not ${what}: NATS is not available`,
      undefined,
      {
        cause: error,
      },
    );
  }
}

function isNatsFailure(error: unknown): boolean {
  return [
    RequestError,
    TimeoutError,
    NoRespondersError,
    ConnectionError,
    ClosedConnectionError,
    DrainingConnectionError,
    JetStreamError,
    JetStreamApiError,
  ].some((type) => error instanceof type);
}
