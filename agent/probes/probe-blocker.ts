// Why a container with probe labels is not probed: the labels are unusable, Docker's own
// HEALTHCHECK wins, the target is refused (FLEETHEAL_PROBE_ALLOW), or there is no address.

import type { ContainerDetails } from "../docker-engine.js";
import { probeRefusal } from "./probe-access.js";
import type { ProbeAllowList } from "./probe-allow.js";
import { defaultProbeAddress, NO_ADDRESS_ERROR, needsDefaultAddress } from "./probe-runner.js";
import { PROBE_LABEL_PREFIX, type ProbeLabelsResult } from "./probe-spec.js";

export const HEALTHCHECK_WINS_ERROR =
  "not used: the container has a Docker HEALTHCHECK, which takes precedence";

/**
 * How a reason not to probe is logged: `error` for labels that are wrong, `warn` for labels
 * that are right but not used, `refused` (a warning, counted) for a target the operator did
 * not allow.
 */
export type BlockLevel = "error" | "warn" | "refused";

/** Why the probe of `parsed` does not run on the container of `details`; undefined when it runs. */
export function whyNotProbed(
  parsed: ProbeLabelsResult,
  details: ContainerDetails,
  allow: ProbeAllowList,
  /** A refusal found when the probe last ran with these labels (its name resolved outside). */
  refusedBefore: string | undefined,
): { error: string; level: BlockLevel } | undefined {
  if (!parsed.ok) return { error: parsed.error, level: "error" };
  if (details.hasHealthcheck) return { error: HEALTHCHECK_WINS_ERROR, level: "warn" };
  const refusal = probeRefusal(parsed.spec, allow) ?? refusedBefore;
  if (refusal !== undefined) return { error: refusal, level: "refused" };
  if (
    details.state === "running" &&
    needsDefaultAddress(parsed.spec) &&
    !defaultProbeAddress(details)
  ) {
    return {
      error: `${PROBE_LABEL_PREFIX}${parsed.spec.kind}: ${NO_ADDRESS_ERROR} (network mode ${
        details.networkMode ?? "unknown"
      } gives the container no address of its own)`,
      level: "error",
    };
  }
  return undefined;
}
