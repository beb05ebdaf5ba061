/** A JSON text serialised once and kept, with its length in UTF-8. */
export interface JsonPart {
  json: string;
  /** `json`'s length in UTF-8. */
  bytes: number;
}

/**
 * `head`, the parts joined by commas, then `tail`, written into one buffer of the exact size: the
 * parts are kept serialised between requests, so a response copies them instead of building one
 * large string and encoding it again.
 */
export function jsonArrayBody(head: string, parts: readonly JsonPart[], tail: string): Buffer {
  let size = Buffer.byteLength(head) + Math.max(0, parts.length - 1) + Buffer.byteLength(tail);
  for (const part of parts) size += part.bytes;
  const body = Buffer.allocUnsafe(size);
  let at = body.write(head, 0, "utf8");
  parts.forEach((part, i) => {
    if (i > 0) at += body.write(",", at, "latin1");
    at += body.write(part.json, at, "utf8");
  });
  body.write(tail, at, "utf8");
  return body;
}
