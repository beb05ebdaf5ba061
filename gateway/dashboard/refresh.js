// Reloading what the page shows, after it was away (a reconnect, a new token, a tab shown again).

import { loadActivity } from "./activity.js";
import { loadContainers } from "./container-table.js";
import { loadDetail } from "./detail.js";
import { feedHistoryLoaded, loadFeedHistory, updateFeedEmpty } from "./feed.js";
import { loadPolicy } from "./header.js";
import { loadHealth } from "./health.js";
import { loadHosts } from "./hosts.js";
import { state } from "./state.js";

/** Reloads the health, hosts and policy, the feed's history until it has it, and the view. */
export function refreshAll() {
  loadHealth().then(loadHosts);
  loadPolicy();
  if (!feedHistoryLoaded()) {
    loadFeedHistory()
      .then(updateFeedEmpty)
      .catch(() => {});
  }
  if (state.route.view === "overview") {
    loadContainers();
    loadActivity();
  } else loadDetail({ quiet: true });
}
