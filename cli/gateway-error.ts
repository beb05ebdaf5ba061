import { FleethealError } from "../common/errors.js";
import { EXIT, type ExitCode } from "./exit-codes.js";

/**
 * Codes of failures that happen before the gateway can answer with its own error body. The
 * gateway's codes (`FLEETHEAL_ERR_NOT_FOUND`…, docs/API.md) are passed through unchanged.
 */
export type ClientErrorCode =
  /** Connection refused, DNS failure, TLS failure, connection reset before an answer. */
  | "FLEETHEAL_ERR_UNREACHABLE"
  /** No complete answer within the request's deadline. */
  | "FLEETHEAL_ERR_TIMEOUT"
  /** An HTTP error whose body is not the API's error shape (a reverse proxy's page). */
  | "FLEETHEAL_ERR_HTTP"
  /** A 2xx answer that is not JSON or does not match the API's schema. */
  | "FLEETHEAL_ERR_BAD_RESPONSE";

/** A request to the gateway failed; `code` is stable, `message` is safe to print. */
export class GatewayError extends FleethealError {
  override readonly name = "GatewayError";
  constructor(
    code: ClientErrorCode | (string & {}),
    message: string,
    /** The HTTP status, when the gateway (or something in front of it) answered. */
    readonly status?: number,
    /** The API error's `details` (for a refused restart: the agent's answer). */
    readonly details?: unknown,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }

  /** The exit code for this failure when the command has no more specific one. */
  get exitCode(): ExitCode {
    return this.status === 401 || this.status === 403 ? EXIT.AUTH : EXIT.GATEWAY;
  }
}
