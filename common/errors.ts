/** Base of every error fleetheal raises on purpose: a stable `code`, a `name` and a `cause`. */
export class FleethealError extends Error {
  override readonly name: string = "FleethealError";
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Configuration from the environment is invalid; the message lists every problem. */
export class ConfigError extends FleethealError {
  override readonly name = "ConfigError";
  constructor(message: string, options?: { cause?: unknown }) {
    super("FLEETHEAL_ERR_CONFIG", message, options);
  }
}

/** Short description of any thrown value, for logs and replies. */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === "string" && !error.message.includes(code)
      ? `${error.message} (${code})`
      : error.message;
  }
  return String(error);
}
