import { z } from "zod";
import type { HostSnapshot } from "../../contracts/index.js";

/*
 * Containers counted by health: the fleet view keeps them per host and the health report adds
 * them up, so they live here, below both, rather than in either.
 */

/** A host's (or the fleet's) containers by health. */
export const ContainerCounts = z.object({
  total: z.number().int(),
  healthy: z.number().int(),
  unhealthy: z.number().int(),
  starting: z.number().int(),
  none: z.number().int(),
});
export type ContainerCounts = z.infer<typeof ContainerCounts>;

/** All zero: the start of a sum. */
export function emptyCounts(): ContainerCounts {
  return { total: 0, healthy: 0, unhealthy: 0, starting: 0, none: 0 };
}

/** Counts one host's containers by health. */
export function countByHealth(snapshot: HostSnapshot): ContainerCounts {
  const counts = emptyCounts();
  for (const c of snapshot.containers) {
    counts.total++;
    counts[c.health]++;
  }
  return counts;
}
