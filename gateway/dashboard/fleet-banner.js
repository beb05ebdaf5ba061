// The overview's banner: the fleet's status and its totals.

import { $, h } from "./dom.js";
import { state } from "./state.js";
import { FLEET_TONE } from "./widgets.js";

/** @import { Tone } from "./widgets.js" */

export function renderBanner() {
  const report = state.health;
  const banner = $("fleet-banner");
  const status = report?.status || "unknown";
  banner.dataset.status = status;
  banner.className = `banner tone-${(report && FLEET_TONE[report.status]) || "muted"}`;
  $("fleet-status").textContent = report ? status : "loading…";
  const stats = $("fleet-stats");
  if (!report) return;
  const { hosts, containers: c, quarantined } = report.totals;
  const notHealing = report.notHealing;
  /**
   * @param {string} label
   * @param {string | number} value
   * @param {Tone | null} tone the colour when the value is not 0
   * @param {string} testid
   */
  const stat = (label, value, tone, testid) =>
    h(
      "div",
      { class: `stat ${tone && value ? `tone-${tone}` : ""}`.trim(), "data-testid": testid },
      h("dt", { class: "stat-l", text: label }),
      h("dd", { class: "stat-v", text: String(value) }),
    );
  const items = [
    stat("Hosts up", `${hosts.up}/${hosts.total}`, null, "stat-hosts"),
    hosts.stale ? stat("Stale", hosts.stale, "warn", "stat-stale") : null,
    hosts.down ? stat("Down", hosts.down, "bad", "stat-down") : null,
    stat("Containers", c.total, null, "stat-containers"),
    stat("Healthy", c.healthy, "ok", "stat-healthy"),
    stat("Unhealthy", c.unhealthy, "bad", "stat-unhealthy"),
    stat("Starting", c.starting, "warn", "stat-starting"),
    stat("Quarantined", quarantined, "bad", "stat-quarantined"),
    stat(
      "Not healed",
      notHealing.total,
      notHealing.byReason.stuck ? "bad" : "warn",
      "stat-not-healing",
    ),
  ];
  stats.replaceChildren(...items.filter((item) => item !== null));
}
