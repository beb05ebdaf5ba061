import type { Labels } from "../contracts/index.js";
import { AUTOHEAL_LABEL, WATCH_ALL } from "./opt-in.js";

/** Label prefixes that fleetheal reads or that describe a container's place in a compose app. */
const RELEVANT_PREFIXES = ["autoheal.", "fleetheal.", "com.docker.compose."];

/**
 * The labels worth publishing. Everything an agent publishes goes to every subscriber, and labels
 * often carry credentials or internal URLs, so only the opt-in label and the prefixes fleetheal
 * uses leave the host; when the agent watches all, autoheal's own key too, since it opts a
 * container out then.
 */
export function relevantLabels(labels: Labels, optInLabel: string): Labels {
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
  return kept;
}
