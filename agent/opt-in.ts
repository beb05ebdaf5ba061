import type { Labels } from "../contracts/index.js";

/** Which containers an agent acts for. */
export interface OptInPolicy {
  label: string;
  watchAll: boolean;
}

/** A container opts in with `<label>=true`, or every container does when the agent watches all. */
export function isOptedIn(policy: OptInPolicy, labels: Labels): boolean {
  return policy.watchAll || labels[policy.label] === "true";
}
