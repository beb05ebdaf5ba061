import type { z } from "zod";

/** Raised (or returned) when a message does not match its contract. */
export class ContractViolationError extends Error {
  override readonly name = "ContractViolationError";
  readonly code: "FLEETHEAL_ERR_BAD_JSON" | "FLEETHEAL_ERR_SCHEMA";
  constructor(
    code: ContractViolationError["code"],
    message: string,
    readonly issues: readonly { path: string; message: string }[] = [],
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.code = code;
  }
}

/** Result of {@link decode}. */
export type Decoded<T> = { ok: true; value: T } | { ok: false; error: ContractViolationError };

const textDecoder = new TextDecoder();
const textEncoder = new TextEncoder();

/** Serialises a contract value for the wire. */
export function encode(value: unknown): Uint8Array {
  return textEncoder.encode(JSON.stringify(value));
}

/**
 * Parses and validates one message. Never throws: a malformed message is a value that the caller
 * logs, counts and rejects.
 */
export function decode<S extends z.ZodType>(
  schema: S,
  data: Uint8Array | string,
): Decoded<z.infer<S>> {
  let raw: unknown;
  try {
    raw = JSON.parse(typeof data === "string" ? data : textDecoder.decode(data));
  } catch (cause) {
    return {
      ok: false,
      error: new ContractViolationError("FLEETHEAL_ERR_BAD_JSON", "message is not valid JSON", [], {
        cause,
      }),
    };
  }
  const parsed = schema.safeParse(raw);
  if (parsed.success) return { ok: true, value: parsed.data };
  const issues = parsed.error.issues.map((issue) => ({
    path: issue.path.map(String).join(".") || "(root)",
    message: issue.message,
  }));
  const summary = issues
    .slice(0, 5)
    .map((i) => `${i.path}: ${i.message}`)
    .join("; ");
  return {
    ok: false,
    error: new ContractViolationError(
      "FLEETHEAL_ERR_SCHEMA",
      `message does not match its schema: ${summary}`,
      issues,
      { cause: parsed.error },
    ),
  };
}
