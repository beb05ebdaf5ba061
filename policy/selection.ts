import type { ContainerSelector, DisabledContainer, HealPolicy } from "../contracts/index.js";

/** The container as selection sees it: where it runs, its name and its image reference. */
export interface SelectionSubject {
  host: string;
  name: string;
  image: string;
}

/** Why the fleet policy leaves an opted-in container alone, if it does. */
export type SelectionHold =
  | { code: "disabled"; message: string; entry: DisabledContainer }
  | { code: "excluded"; message: string }
  | { code: "not-included"; message: string };

/**
 * Whether the fleet policy heals this container: not while its healing is switched off (the
 * run-time switch, by host and name), nor when `exclude` matches it, nor when `include` lists
 * patterns and none matches it. Undefined when it is selected.
 */
export function selectionHold(
  policy: Pick<HealPolicy, "disabled" | "include" | "exclude">,
  subject: SelectionSubject,
): SelectionHold | undefined {
  const entry = policy.disabled.find((d) => d.host === subject.host && d.name === subject.name);
  if (entry) {
    return {
      code: "disabled",
      message: `healing is switched off for ${subject.name} on ${subject.host} (by ${entry.by} since ${entry.since}${entry.reason ? `: ${entry.reason}` : ""})`,
      entry,
    };
  }
  const excludedBy = matchingPattern(policy.exclude, subject);
  if (excludedBy) {
    return { code: "excluded", message: `excluded by the fleet policy (${excludedBy})` };
  }
  const { names, images } = policy.include;
  if ((names.length > 0 || images.length > 0) && !matchingPattern(policy.include, subject)) {
    return {
      code: "not-included",
      message: "the fleet policy's include patterns select other containers",
    };
  }
  return undefined;
}

/** The first pattern of `selector` that matches, described; undefined when none does. */
function matchingPattern(
  selector: ContainerSelector,
  subject: SelectionSubject,
): string | undefined {
  const name = selector.names.find((p) => globMatches(p, subject.name));
  if (name !== undefined) return `name pattern ${JSON.stringify(name)}`;
  const image = selector.images.find((p) => globMatches(p, subject.image));
  return image !== undefined ? `image pattern ${JSON.stringify(image)}` : undefined;
}

/**
 * Whether `text` matches `pattern` as a whole, where `*` matches any run of characters and `?`
 * exactly one. The text is a host's word (hostile), the pattern an operator's: the greedy
 * matcher backtracks only to the last `*`, so the work is at most pattern × text characters
 * and nothing is compiled or allocated per call.
 */
export function globMatches(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let star = -1;
  let resume = 0;
  while (t < text.length) {
    const c = pattern[p];
    if (c === "*") {
      star = p++;
      resume = t;
    } else if (c !== undefined && (c === "?" || c === text[t])) {
      p++;
      t++;
    } else if (star >= 0) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (pattern[p] === "*") p++;
  return p === pattern.length;
}
