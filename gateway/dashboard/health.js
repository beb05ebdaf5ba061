// The fleet's health (`GET /health`, and the live stream's `health` messages): it updates the
// header, the banner and the host cards.

import { fetchHealth } from "./api.js";
import { renderBanner } from "./fleet-banner.js";
import { loadPolicy, renderHeader } from "./header.js";
import { renderHosts, scheduleHostsRefresh } from "./hosts.js";
import { state } from "./state.js";

/** @import { HealthReport } from "./api-types.js" */

/**
 * Takes in a health report: the hosts' status, counts and last-seen times, and the policy's.
 * @param {HealthReport} report
 */
export function applyHealth(report) {
  if (!report || !Array.isArray(report.hosts)) return;
  const before = state.health?.policy;
  state.health = report;
  // The policy changed (stored, or found invalid or fixed): the header shows the new one.
  const after = report.policy;
  if (before && after && (before.revision !== after.revision || before.status !== after.status)) {
    loadPolicy();
  }
  let unknownHost = false;
  const seen = new Set();
  for (const hh of report.hosts) {
    seen.add(hh.id);
    const existing = state.hosts.get(hh.id);
    if (!existing) {
      unknownHost = true;
      state.hosts.set(hh.id, {
        id: hh.id,
        status: hh.status,
        lastSeen: hh.lastSeen,
        docker: { status: hh.docker },
        containers: hh.containers,
        quarantined: hh.quarantined ?? 0,
      });
    } else {
      existing.status = hh.status;
      existing.lastSeen = hh.lastSeen;
      existing.docker = { ...existing.docker, status: hh.docker };
      existing.containers = hh.containers;
      if (typeof hh.quarantined === "number") existing.quarantined = hh.quarantined;
    }
  }
  for (const id of [...state.hosts.keys()]) if (!seen.has(id)) state.hosts.delete(id);
  renderHeader();
  renderBanner();
  renderHosts();
  // /health does not carry agent details: /hosts has them.
  if (unknownHost) scheduleHostsRefresh(200);
}

export async function loadHealth() {
  try {
    applyHealth(await fetchHealth());
  } catch {
    // Shown through the notice; the next refresh tries again.
  }
}
