import { z } from "zod";

/*
 * Container labels that fleetheal reads, and the size limits of the labels that leave a host.
 * Their values are free text written by whoever runs the container (or builds its image), so
 * every reader validates them and ignores (and reports) a bad value.
 */

/*
 * Size limits of the labels an event or a container snapshot carries. Agents cut what is over
 * them (agent/labels.ts) and say so in `labelsCut`; the contract schemas refuse a message whose
 * labels are still over them, so a host whose agent was replaced cannot push more through. A
 * length is counted as JavaScript counts it (UTF-16 code units), which is what the schemas check.
 * Together they keep one container's labels far below NATS's 1 MB message limit.
 */

/** Longest label key that leaves a host; a label with a longer key is dropped whole. */
export const MAX_LABEL_KEY = 256;
/**
 * Longest label value that leaves a host; a longer one is cut and ends with
 * {@link LABEL_TRUNCATION_MARKER}. As long as the longest probe label the agent accepts, so a
 * valid probe label is never cut.
 */
export const MAX_LABEL_VALUE = 4096;
/** Most labels one container publishes. */
export const MAX_LABELS = 64;
/** Most characters (keys plus values) of one container's published labels. */
export const MAX_LABELS_TOTAL = 16_384;
/** The end of a label value that was cut to {@link MAX_LABEL_VALUE}. */
export const LABEL_TRUNCATION_MARKER = "…[truncated]";

const Count = z.number().int().nonnegative();

/**
 * What the agent cut from a container's labels to keep them within the limits: values cut
 * (each ends with {@link LABEL_TRUNCATION_MARKER}) and labels left out (a key over
 * {@link MAX_LABEL_KEY}, or past {@link MAX_LABELS} or {@link MAX_LABELS_TOTAL}). Absent when
 * nothing was cut, and from older agents.
 */
export const LabelsCut = z.object({ truncated: Count, dropped: Count });
export type LabelsCut = z.infer<typeof LabelsCut>;

/**
 * A container's labels as an agent publishes them. Values are free text and must be validated
 * before use. Bounded: keys of at most `MAX_LABEL_KEY` characters, values
 * of at most `MAX_LABEL_VALUE`, at most `MAX_LABELS` labels and `MAX_LABELS_TOTAL` characters in
 * all. A message over them is refused as a whole: agents cut labels before they publish.
 */
export const Labels = z
  .record(z.string().max(MAX_LABEL_KEY), z.string().max(MAX_LABEL_VALUE))
  .refine((labels) => Object.keys(labels).length <= MAX_LABELS, {
    message: `more than ${MAX_LABELS} labels`,
  })
  .refine((labels) => labelsSize(labels) <= MAX_LABELS_TOTAL, {
    message: `labels longer than ${MAX_LABELS_TOTAL} characters in all`,
  });
export type Labels = z.infer<typeof Labels>;

/** The characters of a set of labels, keys and values, as `MAX_LABELS_TOTAL` counts them. */
export function labelsSize(labels: Readonly<Record<string, string>>): number {
  let size = 0;
  for (const [key, value] of Object.entries(labels)) size += key.length + value.length;
  return size;
}

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
