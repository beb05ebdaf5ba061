import { z } from "zod";
import type { Labels } from "../contracts/index.js";

/**
 * The label that sets how long Docker waits between SIGTERM and SIGKILL on a restart. The name is
 * the popular autoheal tool's, so containers labelled for it keep their behaviour.
 */
export const STOP_TIMEOUT_LABEL = "autoheal.stop.timeout";

// Digits only: Number("") and Number(" ") are 0, which would turn a blank label into SIGKILL.
const StopTimeoutLabel = z
  .string()
  .regex(/^\d{1,4}$/)
  .transform(Number)
  .pipe(z.number().int().min(0).max(3_600));

/** Which containers an agent acts for. */
export interface OptInPolicy {
  label: string;
  watchAll: boolean;
}

/** A container opts in with `<label>=true`, or every container does when the agent watches all. */
export function isOptedIn(policy: OptInPolicy, labels: Labels): boolean {
  return policy.watchAll || labels[policy.label] === "true";
}

/**
 * The stop timeout a container asks for by label, or undefined when it has none or the value is
 * not a whole number of seconds between 0 and 3600 (a bad label must not break the restart).
 */
export function stopTimeoutFromLabels(labels: Labels): number | undefined {
  const raw = labels[STOP_TIMEOUT_LABEL];
  if (raw === undefined) return undefined;
  const parsed = StopTimeoutLabel.safeParse(raw.trim());
  return parsed.success ? parsed.data : undefined;
}
