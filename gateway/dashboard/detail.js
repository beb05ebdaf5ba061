// A container's detail page (`#/containers/<host>/<id>`): its timeline, state, healing, output,
// restart history, labels and recent records.

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
import { timelinePanel } from "./timeline.js";

/** @import { StreamRecord } from "./api-types.js" */

let detailSeq = 0;

/** Records of the shown container the page keeps: the timeline's day, within reason. */
export const DETAIL_RECORDS_MAX = 1_000;
const PAGE = 250;
/** Whether the container had more records in the last day than the page keeps. */
let recordsCut = false;

/**
 * The container's records of the last day, newest first, following `next` up to
 * DETAIL_RECORDS_MAX (a few reads; the timeline says when there were more).
 * @param {string} host
 * @param {string} id
 */
async function loadRecords(host, id) {
  /** @type {StreamRecord[]} */
  let all = [];
  /** @type {number | undefined} */
  let after;
  recordsCut = false;
  for (let i = 0; ; i++) {
    const page = await fetchEvents({ host, container: id, since: "24h", limit: PAGE, after });
    all = all.concat(page.records || []);
    if (page.next === undefined || page.next === after) break;
    if (i + 1 >= DETAIL_RECORDS_MAX / PAGE) {
      recordsCut = true;
      break;
    }
    after = page.next;
  }
  return all.reverse();
}

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
        events = await loadRecords(detail.host, detail.container.id);
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
      timelinePanel(state.detailEvents, { truncated: recordsCut }),
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
