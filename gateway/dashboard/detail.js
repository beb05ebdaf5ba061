// A container's detail page (`#/containers/<host>/<id>`): its state, healing, output, restart
// history, labels and recent records.

import { ApiError, fetchContainer, fetchEvents } from "./api.js";
import { TABLE_DEBOUNCE_MS } from "./container-table.js";
import {
  detailHead,
  eventsPanel,
  healingPanel,
  historyPanel,
  infoPanel,
  labelsPanel,
  outputPanel,
} from "./detail-panels.js";
import { $, h } from "./dom.js";
import { state } from "./state.js";

let detailSeq = 0;

/**
 * Loads the shown container and its records of the last day, unless `quiet` keeps the records
 * it has (they follow the live stream) and the page as it is while loading.
 * @param {{ quiet?: boolean }} [options]
 */
export async function loadDetail({ quiet = false } = {}) {
  const route = state.route;
  if (route.view !== "detail") return;
  const seq = ++detailSeq;
  const root = $("detail");
  if (!quiet) root.replaceChildren(h("p", { class: "empty", text: "Loading…" }));
  try {
    const detail = await fetchContainer(route.host, route.id);
    if (seq !== detailSeq) return;
    state.detail = detail;
    let events = state.detailEvents;
    if (!quiet || events.length === 0) {
      try {
        const page = await fetchEvents({
          host: detail.host,
          container: detail.container.id,
          since: "24h",
          limit: 200,
        });
        events = (page.records || []).slice().reverse();
      } catch {
        events = [];
      }
      if (seq !== detailSeq) return;
      state.detailEvents = events;
    }
    renderDetail();
  } catch (error) {
    if (seq !== detailSeq) return;
    state.detail = null;
    const msg =
      error instanceof ApiError && error.status === 404
        ? `No container "${route.id}" on host "${route.host}".`
        : error instanceof ApiError
          ? error.message
          : String(error);
    root.replaceChildren(
      h(
        "div",
        { class: "panel empty", "data-testid": "detail-error" },
        h("strong", { text: "Cannot show this container" }),
        h("p", { text: msg }),
      ),
    );
  }
}

/** @type {ReturnType<typeof setTimeout> | undefined} */
let detailTimer;

/** Reloads the detail after `ms` without another call, if it is shown then. */
export function scheduleDetailRefresh(ms = TABLE_DEBOUNCE_MS) {
  clearTimeout(detailTimer);
  detailTimer = setTimeout(() => {
    if (state.route.view === "detail") loadDetail({ quiet: true });
  }, ms);
}

function renderDetail() {
  const d = state.detail;
  if (!d) return;
  const c = d.container;
  const root = $("detail");
  root.replaceChildren(
    detailHead(d),
    h(
      "div",
      { class: "detail-grid" },
      infoPanel(c),
      healingPanel(d.healing),
      outputPanel(c),
      historyPanel(d.healing),
      labelsPanel(c),
      eventsPanel(state.detailEvents),
    ),
  );
  root.dataset.host = d.host;
  root.dataset.id = c.id;
}
