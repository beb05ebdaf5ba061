// The agent benchmark's table.

import type { Footprint } from "../runner/proc.js";
import { CONFIG } from "./config.js";
import type { StepResult } from "./step.js";

/** The idle footprint and every burst step, as a Markdown table on stdout. */
export function printTable(
  idle: Footprint & { meetsCpuTarget: boolean; meetsRssTarget: boolean },
  steps: StepResult[],
  reference: { perSecond: number } | undefined,
): void {
  const out: string[] = [
    "",
    `Agent footprint, ${CONFIG.containers} running containers`,
    "",
    "| phase | Docker ev/s | stored once / expected | dup | stored lag p50/p99 ms | Docker delivery p50/p99 ms | agent CPU % of 1 core | agent RSS max MB |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
    `| idle ${idle.seconds} s | 0 | – | – | – | – | ${idle.cpuPercentOfOneCore} (target < 0.5: ${idle.meetsCpuTarget ? "met" : "MISSED"}) | ${idle.rssMbMax} (final ${idle.rssMbFinal}; target < 80: ${idle.meetsRssTarget ? "met" : "MISSED"}) |`,
  ];
  for (const s of steps) {
    out.push(
      `| ${s.kind} @ ${s.targetEventsPerSecond} | ${s.dockerEventsPerSecond} | ${s.stored - s.duplicated}/${s.dockerEvents} | ${s.duplicated} | ${s.lagMsP50}/${s.lagMsP99} | ${s.dockerDeliveryLagMsP50}/${s.dockerDeliveryLagMsP99} | ${s.agent.cpuPercentOfOneCore} | ${s.agent.rssMbMax} |`,
    );
  }
  if (reference)
    out.push(`\nbare JetStream publish+consume reference: ${reference.perSecond} msg/s`);
  console.log(out.join("\n"));
}
