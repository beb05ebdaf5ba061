import { open } from "node:fs/promises";
import { ConfigError, describeError } from "../common/errors.js";
import { UsageError } from "./args.js";
import type { GatewayError } from "./gateway-error.js";
import { printable } from "./table.js";

// The policy as `fleetheal policy set` and `edit` read it, and the gateway's refusals of it in
// words: what an operator typed is checked where they can fix it.

/** The gateway takes request bodies up to this size (gateway/http/app.ts's bodyLimit). */
export const MAX_POLICY_BYTES = 256 * 1024;

/** A policy to send, and the revision it was read at when the file says so. */
export interface PolicyInput {
  policy: unknown;
  /** From a `{ "policy", "revision" }` document, as `policy get --json` prints it. */
  revision?: number;
}

/**
 * The text of `file`, or of stdin for `-`, refused beyond what the gateway takes rather than
 * read whole: a wrong file (a log, a disk image) must not fill the memory.
 */
export async function readPolicyText(
  file: string,
  stdin: AsyncIterable<Uint8Array | string>,
): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  const take = (chunk: Uint8Array | string) => {
    const bytes = typeof chunk === "string" ? Buffer.from(chunk) : Buffer.from(chunk);
    size += bytes.length;
    if (size > MAX_POLICY_BYTES) {
      throw new UsageError(
        `${file === "-" ? "stdin" : file}: more than ${MAX_POLICY_BYTES / 1024} KiB, the most the gateway takes: is it the policy?`,
      );
    }
    chunks.push(bytes);
  };
  if (file === "-") {
    for await (const chunk of stdin) take(chunk);
    return Buffer.concat(chunks).toString("utf8");
  }
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(file, "r");
  } catch (error) {
    throw new ConfigError(`cannot read ${file}: ${describeError(error)}`);
  }
  try {
    for await (const chunk of handle.createReadStream({ highWaterMark: 64 * 1024 })) {
      take(chunk as Buffer);
    }
  } finally {
    await handle.close();
  }
  return Buffer.concat(chunks).toString("utf8");
}

/**
 * The policy in `text` (named `where` in messages): a policy object, or the document that
 * `policy get --json` prints, whose revision then goes along as `If-Match`.
 */
export function parsePolicy(text: string, where: string): PolicyInput {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${where} is not JSON: ${(error as Error).message}`);
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new UsageError(`${where}: the policy is a JSON object ({} for every default)`);
  }
  // A policy has no `policy` field, so an object with one is the API's document.
  const doc = json as { policy?: unknown; revision?: unknown };
  if ("policy" in doc) {
    const extra = Object.keys(doc).filter((k) => k !== "policy" && k !== "revision");
    if (extra.length > 0 || !Number.isSafeInteger(doc.revision) || (doc.revision as number) < 0) {
      throw new UsageError(
        `${where}: a document of policy get --json holds "policy" and a whole "revision" only`,
      );
    }
    return { policy: doc.policy, revision: doc.revision as number };
  }
  return { policy: json };
}

/**
 * The gateway's refusal of a policy (400), one line per field: `backoff.initialSeconds: Too
 * small: expected number to be >=0`. The gateway names fields from the request's root (`body.`).
 */
export function policyRefusal(error: GatewayError): string[] {
  const issues = (error.details as { issues?: unknown } | undefined)?.issues;
  const lines = Array.isArray(issues)
    ? issues.flatMap((i: { field?: unknown; message?: unknown }) =>
        typeof i?.field === "string" && typeof i.message === "string"
          ? [
              `  ${printable(i.field.replace(/^body\.?/, "") || "(the policy)")}: ${printable(i.message)}`,
            ]
          : [],
      )
    : [];
  return [
    "the gateway refused the policy:",
    ...(lines.length > 0 ? lines.slice(0, 20) : [`  ${printable(error.message)}`]),
    ...(lines.length > 20 ? [`  … and ${lines.length - 20} more`] : []),
  ];
}

/** The revision the gateway says the policy is at now, from a 412 or a 409's details. */
export function currentRevision(error: GatewayError): number | undefined {
  const revision = (error.details as { currentRevision?: unknown } | undefined)?.currentRevision;
  return Number.isSafeInteger(revision) ? (revision as number) : undefined;
}
