import type { z } from "zod";
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

  /**
   * The exit code for this failure when the command has no more specific one. "No such host or
   * container" is an answer, 1, as docker's "No such container"; a 404 for a route the gateway
   * does not have is not (a gateway older than the CLI), nor one that is not the API's error.
   */
  get exitCode(): ExitCode {
    if (this.status === 401 || this.status === 403) return EXIT.AUTH;
    if (isNoSuchObject(this)) return EXIT.NEGATIVE;
    return EXIT.GATEWAY;
  }
}

/** The gateway's 404 for a host or container it does not know (gateway/view/container-query.ts). */
export function isNoSuchObject(error: GatewayError): boolean {
  return (
    error.status === 404 &&
    error.code === "FLEETHEAL_ERR_NOT_FOUND" &&
    // The gateway's answer for an unknown route (gateway/http/app.ts) is the only other 404.
    !error.message.startsWith("no route ")
  );
}

/**
 * A request that got no complete answer: the deadline, the caller's own abort (returned as it
 * is: Ctrl-C is not a gateway failure), or the gateway unreachable, with the reason fetch hides.
 */
export function transportError(
  what: string,
  url: string,
  error: unknown,
  signal: AbortSignal | undefined,
): Error {
  const reason = signal?.reason as { name?: string } | undefined;
  if (signal?.aborted && reason?.name === "TimeoutError") {
    return new GatewayError(
      "FLEETHEAL_ERR_TIMEOUT",
      `${what}: no answer from the gateway at ${url} in time`,
      undefined,
      undefined,
      { cause: error },
    );
  }
  // The caller's own abort (Ctrl-C while following) is not a gateway failure.
  if (signal?.aborted) return error instanceof Error ? error : new Error(String(error));
  return new GatewayError(
    "FLEETHEAL_ERR_UNREACHABLE",
    `cannot reach the gateway at ${url}: ${causeOf(error)}`,
    undefined,
    undefined,
    { cause: error },
  );
}

/** fetch() says only "fetch failed"; the reason (ECONNREFUSED…) is in its cause. */
export function causeOf(error: unknown): string {
  let e: unknown = error;
  let last = error instanceof Error ? error.message : String(error);
  for (let depth = 0; e instanceof Error && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    last =
      typeof code === "string" && !e.message.includes(code) ? `${e.message} (${code})` : e.message;
    if (!(e.cause instanceof Error)) break;
    e = e.cause;
  }
  return last;
}

/** A 401 without a token usually means the operator forgot it: say how to give one. */
export function hint(code: string, message: string, token: string | undefined): string {
  if (code === "FLEETHEAL_ERR_UNAUTHORIZED" && token === undefined) {
    return `${message} (pass --token-file <file>, or set FLEETHEAL_GATEWAY_TOKEN or FLEETHEAL_GATEWAY_TOKEN_FILE)`;
  }
  return message;
}

/** The first issues of an answer that is not the API's. */
export function issues(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((i) => `${i.path.length > 0 ? i.path.join(".") : "(body)"}: ${i.message}`)
    .join("; ");
}

/** The start of a body, on one line, for a message. */
export function snippet(text: string): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > 200 ? `${flat.slice(0, 200)}…` : flat;
}
