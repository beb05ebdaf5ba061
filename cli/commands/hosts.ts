import type { HostSummary } from "../../gateway/api-schemas.js";
import { defineCommand, GATEWAY_OPTIONS } from "../command.js";
import { EXIT } from "../exit-codes.js";
import { relativeTime, renderTable, shortDuration } from "../table.js";
import { clientFor, printJson } from "./shared.js";

/** `fleetheal hosts`: every host the gateway knows, from GET /hosts. */
export const hosts = defineCommand({
  name: "hosts",
  usage: "fleetheal hosts [options]",
  description: `Every host from GET /hosts: its status (up, stale after missed heartbeats, down later),
when its agent was last heard from, Docker's state and version, the agent's version and
uptime, its containers by health, quarantined containers, and the agent's outbox (events
waiting for a JetStream ack, and events it had to drop).`,
  options: GATEWAY_OPTIONS,
  positionals: 0,
  async run({ options }, ctx) {
    const client = clientFor(options, ctx, { action: false });
    const { value, json } = await client.hosts();
    if (options.json) {
      printJson(ctx, json);
      return EXIT.OK;
    }
    if (value.hosts.length === 0) {
      ctx.io.out("no hosts have reported yet");
      return EXIT.OK;
    }
    for (const line of renderHosts(value.hosts, ctx.now())) ctx.io.out(line);
    return EXIT.OK;
  },
});

export function renderHosts(list: readonly HostSummary[], now: number): string[] {
  return renderTable<HostSummary>(
    [
      { header: "HOST", value: (h) => h.id },
      { header: "STATUS", value: (h) => h.status },
      { header: "LAST SEEN", value: (h) => relativeTime(h.lastSeen, now) },
      {
        header: "DOCKER",
        value: (h) => (h.docker.status === "up" ? `up ${h.docker.version ?? ""}`.trim() : "down"),
      },
      { header: "AGENT", value: (h) => h.agent.version },
      { header: "UPTIME", value: (h) => shortDuration(h.agent.uptimeSeconds * 1000) },
      { header: "CONTAINERS", value: (h) => String(h.containers.total), align: "right" },
      { header: "HEALTHY", value: (h) => String(h.containers.healthy), align: "right" },
      { header: "UNHEALTHY", value: (h) => String(h.containers.unhealthy), align: "right" },
      { header: "QUARANTINED", value: (h) => String(h.quarantined), align: "right" },
      {
        header: "OUTBOX",
        value: (h) =>
          `${h.outbox.depth}/${h.outbox.capacity}${h.outbox.dropped > 0 ? ` (${h.outbox.dropped} dropped)` : ""}`,
        align: "right",
      },
    ],
    list,
  );
}
