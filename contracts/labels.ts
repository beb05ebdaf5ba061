import { z } from "zod";
import type { Labels } from "./container-event.js";

/*
 * Container labels that fleetheal reads. Their values are free text written by whoever runs the
 * container, so every reader validates them and ignores (and reports) a bad value.
 */

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
