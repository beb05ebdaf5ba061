import type { HealthReport } from "../../gateway/view/health-report.js";
import { defineCommand } from "../command.js";
import { EXIT } from "../exit-codes.js";
import { relativeTime, renderTable } from "../table.js";
import { clientFor, counts, GATEWAY_COMMAND, GATEWAY_OPTIONS, printJson } from "./shared.js";

type HostHealth = HealthReport["hosts"][number];

/** `fleetheal status`: the fleet's health, with an exit code to branch on. */
export const status = defineCommand({
  ...GATEWAY_COMMAND,
  name: "status",
  summary: "The fleet's health (GET /health); exit code 1 when degraded or unhealthy.",
  description: `The fleet's health from GET /health: the overall status, hosts by status, containers by
health (down hosts' containers are not counted) and quarantined containers, then one line
per host. Exit code 0 when the fleet is healthy and 1 when it is degraded or unhealthy,
like GET /health?strict=1 answering 503, so scripts and cron jobs can use it as a check.`,
  options: GATEWAY_OPTIONS,
  notes: `healthy: every host is up with Docker reachable, no container is unhealthy and the stored
policy is valid. unhealthy: no host is up or stale (an empty fleet too). Anything else is
degraded. While the stored policy is invalid, a policy line says which revision and why.`,
  async run({ options }, ctx) {
    const client = clientFor(options, ctx, { action: false });
    const { value: report, json } = await client.health();
    if (options.json) printJson(ctx, json);
    else for (const line of renderStatus(report, ctx.now())) ctx.io.out(line);
    return report.status === "healthy" ? EXIT.OK : EXIT.NEGATIVE;
  },
});

/** The human form of a health report: a summary, then a table of hosts. */
export function renderStatus(report: HealthReport, now: number): string[] {
  const { hosts, containers, quarantined } = report.totals;
  const lines = [
    `fleet        ${report.status}`,
    `hosts        ${hosts.total}${
      hosts.total > 0
        ? ` (${counts([
            ["up", hosts.up],
            ["stale", hosts.stale],
            ["down", hosts.down],
          ])})`
        : ""
    }`,
    `containers   ${containers.total}${
      containers.total > 0
        ? ` (${counts([
            ["healthy", containers.healthy],
            ["unhealthy", containers.unhealthy],
            ["starting", containers.starting],
            ["without health check", containers.none],
          ])})`
        : ""
    }`,
    `quarantined  ${quarantined}`,
    ...notHealingLine(report.notHealing),
    ...policyLine(report.policy),
  ];
  if (report.hosts.length === 0) return [...lines, "", "no hosts have reported yet"];
  return [
    ...lines,
    "",
    ...renderTable<HostHealth>(
      [
        { header: "HOST", value: (h) => h.id },
        { header: "STATUS", value: (h) => h.status },
        { header: "DOCKER", value: (h) => h.docker },
        { header: "LAST SEEN", value: (h) => relativeTime(h.lastSeen, now) },
        { header: "CONTAINERS", value: (h) => String(h.containers.total), align: "right" },
        { header: "HEALTHY", value: (h) => String(h.containers.healthy), align: "right" },
        { header: "UNHEALTHY", value: (h) => String(h.containers.unhealthy), align: "right" },
        { header: "STARTING", value: (h) => String(h.containers.starting), align: "right" },
        { header: "NO CHECK", value: (h) => String(h.containers.none), align: "right" },
        { header: "QUARANTINED", value: (h) => String(h.quarantined), align: "right" },
      ],
      report.hosts,
    ),
  ];
}

/** A line about the containers fleetheal is not healing, only while there are some. */
function notHealingLine({ total, byReason }: HealthReport["notHealing"]): string[] {
  if (total === 0) return [];
  const parts = counts([
    ["held", byReason.held],
    ["stuck", byReason.stuck],
  ]);
  return [`not healed   ${total} (${parts}): fleetheal containers --health unhealthy`];
}

/** A line about the stored policy, only while it is invalid: then it is what needs fixing. */
function policyLine(policy: HealthReport["policy"]): string[] {
  if (!policy.invalid) return [];
  const inForce =
    policy.inForce === "paused"
      ? "healing is paused until a valid policy is stored"
      : policy.inForce === "defaults"
        ? "the defaults stay in force"
        : `revision ${policy.revision} stays in force`;
  return [
    `policy       revision ${policy.invalid.revision} is invalid; ${inForce}: ${policy.invalid.error}`,
  ];
}
