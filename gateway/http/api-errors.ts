import { FleethealError } from "../../common/errors.js";

/** The API's stable error codes, each with the one HTTP status it maps to. */
export const API_ERROR_STATUS = {
  FLEETHEAL_ERR_BAD_REQUEST: 400,
  FLEETHEAL_ERR_UNAUTHORIZED: 401,
  FLEETHEAL_ERR_FORBIDDEN: 403,
  FLEETHEAL_ERR_NOT_FOUND: 404,
  FLEETHEAL_ERR_METHOD_NOT_ALLOWED: 405,
  FLEETHEAL_ERR_CONFLICT: 409,
  FLEETHEAL_ERR_PRECONDITION_FAILED: 412,
  FLEETHEAL_ERR_PAYLOAD_TOO_LARGE: 413,
  FLEETHEAL_ERR_UNSUPPORTED_MEDIA_TYPE: 415,
  FLEETHEAL_ERR_RATE_LIMITED: 429,
  FLEETHEAL_ERR_INTERNAL: 500,
  FLEETHEAL_ERR_DOCKER: 502,
  /** The agent refused the gateway's command unexecuted: its signing key or clock is wrong. */
  FLEETHEAL_ERR_COMMAND_REFUSED: 502,
  FLEETHEAL_ERR_UNAVAILABLE: 503,
  FLEETHEAL_ERR_AGENT_TIMEOUT: 504,
} as const;
export type ApiErrorCode = keyof typeof API_ERROR_STATUS;

/** An error meant for the client: its code picks the status, its message is safe to show. */
export class ApiError extends FleethealError {
  override readonly name = "ApiError";
  constructor(
    override readonly code: ApiErrorCode,
    message: string,
    readonly details?: unknown,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }

  get status(): number {
    return API_ERROR_STATUS[this.code];
  }
}
