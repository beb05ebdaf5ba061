import {
  LABEL_TRUNCATION_MARKER,
  type Labels,
  type LabelsCut,
  MAX_LABEL_KEY,
  MAX_LABEL_VALUE,
  MAX_LABELS,
  MAX_LABELS_TOTAL,
} from "../contracts/index.js";
import { AUTOHEAL_LABEL, WATCH_ALL } from "./opt-in.js";

/** Label prefixes that fleetheal reads or that describe a container's place in a compose app. */
const RELEVANT_PREFIXES = ["autoheal.", "fleetheal.", "com.docker.compose."];

/** The labels a container publishes, and what was cut from them (absent when nothing was). */
export interface PublishedLabels {
  labels: Labels;
  cut?: LabelsCut;
}

/**
 * The labels worth publishing, within the contract's size limits. Everything an agent publishes
 * goes to every subscriber, and labels often carry credentials or internal URLs, so only the
 * opt-in label and the prefixes fleetheal uses leave the host; when the agent watches all,
 * autoheal's own key too, since it opts a container out then. Those are then bounded by
 * {@link capLabels}.
 */
export function relevantLabels(labels: Labels, optInLabel: string): PublishedLabels {
  const kept: Labels = {};
  for (const [key, value] of Object.entries(labels)) {
    if (
      key === optInLabel ||
      (key === AUTOHEAL_LABEL && optInLabel === WATCH_ALL) ||
      key.startsWith(`${optInLabel}.`) ||
      RELEVANT_PREFIXES.some((p) => key.startsWith(p))
    ) {
      kept[key] = value;
    }
  }
  return capLabels(kept);
}

/**
 * Bounds a container's labels to the contract's limits (contracts/labels.ts), marking what it
 * cuts. Labels are hostile input: whoever starts a container or builds its image writes them, and
 * one message over NATS's size limit used to hold up every event of its host.
 *
 * A key over the limit drops its label (a cut key would be another label). A value over the
 * limit is cut and ends with the marker. Then labels are kept shortest key first (ties by key),
 * so the short, well-known keys fleetheal reads are kept before long made-up ones, while the
 * count and the total allow; a label that does not fit is dropped and the next still tried.
 * Deterministic: the same labels are always cut the same way.
 */
export function capLabels(labels: Labels): PublishedLabels {
  let truncated = 0;
  let dropped = 0;
  const candidates: [string, string][] = [];
  for (const [key, value] of Object.entries(labels)) {
    if (key.length > MAX_LABEL_KEY) {
      dropped++;
      continue;
    }
    if (value.length > MAX_LABEL_VALUE) {
      truncated++;
      candidates.push([key, truncateValue(value)]);
    } else {
      candidates.push([key, value]);
    }
  }
  candidates.sort(([a], [b]) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0));
  const kept: Labels = {};
  let count = 0;
  let size = 0;
  for (const [key, value] of candidates) {
    const length = key.length + value.length;
    if (count >= MAX_LABELS || size + length > MAX_LABELS_TOTAL) {
      dropped++;
      continue;
    }
    kept[key] = value;
    count++;
    size += length;
  }
  return truncated + dropped > 0 ? { labels: kept, cut: { truncated, dropped } } : { labels: kept };
}

/** `value` cut to MAX_LABEL_VALUE with the marker at its end, never inside a surrogate pair. */
function truncateValue(value: string): string {
  let end = MAX_LABEL_VALUE - LABEL_TRUNCATION_MARKER.length;
  const last = value.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return value.slice(0, end) + LABEL_TRUNCATION_MARKER;
}
