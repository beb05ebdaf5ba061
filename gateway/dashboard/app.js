// The fleetheal dashboard, as native ES modules without a build step: index.html loads this one,
// and the gateway serves every module from /assets/ under a strict CSP. Each view has its module;
// this one starts them, and keeps the page current.

import { wireActionDialog } from "./action-dialog.js";
import { wireActionButtons } from "./actions.js";
import { loadActivity, wireActivity } from "./activity.js";
import { filtersFromHash, wireFilters, writeFiltersToForm } from "./container-filters.js";
import { wirePager } from "./container-table.js";
import { $ } from "./dom.js";
import { loadFeedHistory, updateFeedEmpty, wireFeed } from "./feed.js";
import { loadPolicy, renderHeader } from "./header.js";
import { loadHealth } from "./health.js";
import { loadHosts, scheduleHostsRefresh } from "./hosts.js";
import { live } from "./live.js";
import { refreshAll } from "./refresh.js";
import { route } from "./router.js";
import { state } from "./state.js";
import { wireTokenDialog } from "./token-dialog.js";
import { tickClocks } from "./widgets.js";

/** With a new token: reload everything, and reconnect the stream with it. */
function reload() {
  refreshAll();
  live.restart();
}

async function boot() {
  wireFilters();
  wirePager();
  wireFeed();
  wireActivity();
  wireTokenDialog(reload);
  wireActionDialog(reload);
  wireActionButtons();
  window.addEventListener("hashchange", route);

  state.filters = filtersFromHash();
  writeFiltersToForm();
  renderHeader();
  route();
  await loadHealth();
  loadHosts();
  loadPolicy();
  loadActivity();
  try {
    const last = await loadFeedHistory();
    if (last > 0) live.lastEventId = String(last);
  } catch {
    // The live stream still works without the history.
  }
  updateFeedEmpty();
  live.run();

  setInterval(tickClocks, 5_000);
  // A safety net for what the stream does not carry (policy edits, agent versions), and for
  // when the stream is down.
  setInterval(() => {
    loadPolicy();
    scheduleHostsRefresh(0);
    // The buckets move on with the clock, records or not.
    if (!document.hidden) loadActivity();
    if ($("live-status").dataset.state !== "live") refreshAll();
  }, 30_000);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") refreshAll();
  });
}

boot();
