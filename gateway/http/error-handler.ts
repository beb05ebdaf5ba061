import type { FastifyReply } from "fastify";
import { hasZodFastifySchemaValidationErrors } from "fastify-type-provider-zod";
import { API_ERROR_STATUS, ApiError, type ApiErrorCode } from "./api-errors.js";

/** Client errors Fastify raises itself, by HTTP status. */
const STATUS_CODES: Record<number, ApiErrorCode> = {
  400: "FLEETHEAL_ERR_BAD_REQUEST",
  401: "FLEETHEAL_ERR_UNAUTHORIZED",
  403: "FLEETHEAL_ERR_FORBIDDEN",
  404: "FLEETHEAL_ERR_NOT_FOUND",
  405: "FLEETHEAL_ERR_METHOD_NOT_ALLOWED",
  409: "FLEETHEAL_ERR_CONFLICT",
  412: "FLEETHEAL_ERR_PRECONDITION_FAILED",
  413: "FLEETHEAL_ERR_PAYLOAD_TOO_LARGE",
  415: "FLEETHEAL_ERR_UNSUPPORTED_MEDIA_TYPE",
  429: "FLEETHEAL_ERR_RATE_LIMITED",
};

/**
 * Turns anything a route threw into the API's error model. Validation failures name each bad
 * field; Fastify's own client errors keep their message; anything else is an internal error
 * whose details stay in the log, never in the response.
 */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (hasZodFastifySchemaValidationErrors(error)) {
    const where = (error as { validationContext?: string }).validationContext ?? "request";
    const issues = error.validation.flatMap((v) => {
      const at = [where, ...pathOf(v.instancePath)];
      // A strict schema names the unknown fields in one issue on their parent; each is a field
      // of its own to the client, so that a typo is reported by the name it was sent under.
      const keys = v.keyword === "unrecognized_keys" ? (v.params as { keys?: unknown }).keys : [];
      if (Array.isArray(keys) && keys.length > 0) {
        return keys.map((key) => ({
          field: [...at, String(key)].join("."),
          message: "unknown field",
        }));
      }
      return [{ field: at.join("."), message: v.message ?? "invalid" }];
    });
    return new ApiError(
      "FLEETHEAL_ERR_BAD_REQUEST",
      issues.map((i) => `${i.field}: ${i.message}`).join("; "),
      { issues },
      { cause: error },
    );
  }
  const status = (error as { statusCode?: unknown }).statusCode;
  if (typeof status === "number" && status >= 400 && status < 500) {
    const code = STATUS_CODES[status] ?? "FLEETHEAL_ERR_BAD_REQUEST";
    return new ApiError(code, (error as Error).message, undefined, { cause: error });
  }
  return new ApiError(
    "FLEETHEAL_ERR_INTERNAL",
    "internal error; see the gateway's log",
    undefined,
    {
      cause: error,
    },
  );
}

function pathOf(instancePath: string): string[] {
  return instancePath.split("/").filter((p) => p !== "");
}

export function replyWithError(reply: FastifyReply, error: ApiError): FastifyReply {
  if (error.code === "FLEETHEAL_ERR_UNAUTHORIZED") {
    reply.header("www-authenticate", 'Bearer realm="fleetheal"');
  }
  return reply
    .code(API_ERROR_STATUS[error.code])
    .type("application/json; charset=utf-8")
    .serializer(JSON.stringify)
    .send({
      error: {
        code: error.code,
        message: error.message,
        ...(error.details === undefined ? {} : { details: error.details }),
      },
    });
}
