// The label values of restart metrics, shared by every role that counts restarts: a label's
// values must come from a fixed set, whoever wrote the record.

/**
 * The failure codes fleetheal writes on a `failed` record: the agent's (`docker-error`,
 * `pull-failed`) and the sender's (no answer, a refused signature, a bad reply). A record's code
 * is whatever its writer put there, and a host's agent writes part of it, so any other code is
 * counted as `other`: a label's values must come from a fixed set, or one host could create
 * series without end.
 */
export const FAILURE_OUTCOMES: ReadonlySet<string> = new Set([
  "docker-error",
  "pull-failed",
  "timeout",
  "no-responders",
  "command-refused",
  "bad-reply",
  "error",
]);

/** A failed record's code as the `outcome` label: one of {@link FAILURE_OUTCOMES}, or `other`. */
export function failureOutcome(code: string): string {
  return FAILURE_OUTCOMES.has(code) ? code : "other";
}
