import type { Labels } from "../contracts/index.js";

/** Which containers an agent acts for. */
export interface OptInPolicy {
  label: string;
  watchAll: boolean;
}

/** The opt-in label value that makes the agent watch every container, as autoheal's `all`. */
export const WATCH_ALL = "all";

/**
 * autoheal's label key. When the agent watches all containers (`FLEETHEAL_LABEL=all`), a
 * container labelled `autoheal=false` is left alone, as autoheal itself does.
 */
export const AUTOHEAL_LABEL = "autoheal";

/** Longest label value read as `true` or `false`; anything longer is neither. */
const MAX_VERDICT_LENGTH = 16;

/**
 * Whether the agent acts for a container: with a label key, `<label>=true`; when it watches all,
 * every container but one labelled `autoheal=false` (or `<label>=false`). Label values are read
 * trimmed and in any case (autoheal's users write `False`); any other value is neither. This is
 * the one judgement the host state, the events and the command executor share.
 */
export function isOptedIn(policy: OptInPolicy, labels: Labels): boolean {
  if (policy.watchAll) {
    return verdict(labels[AUTOHEAL_LABEL]) !== false && verdict(labels[policy.label]) !== false;
  }
  return verdict(labels[policy.label]) === true;
}

/** `true` or `false` as a label says it, or undefined for any other value (or none). */
function verdict(value: string | undefined): boolean | undefined {
  // A label value is the container owner's to choose; a huge one is not worth trimming.
  if (value === undefined || value.length > MAX_VERDICT_LENGTH) return undefined;
  const word = value.trim().toLowerCase();
  return word === "true" ? true : word === "false" ? false : undefined;
}
