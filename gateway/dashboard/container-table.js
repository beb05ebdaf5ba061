// The overview's container table: one page of `GET /containers` with the current filters, and
// the pager. Its Restart and Release buttons are actions (actions.js).

import { ApiError, fetchContainers } from "./api.js";
import { $, closest, h } from "./dom.js";
import { containerHref, relTime, shortId } from "./format.js";
import { state } from "./state.js";
import { toast } from "./toasts.js";
import { badge, HEALTH_TONE, HOST_TONE, notHealingBadge, STATE_TONE, timeEl } from "./widgets.js";

/** @import { ContainerPage, ContainerSummary } from "./api-types.js" */
/** @import { Child } from "./dom.js" */

/** How long the table waits for a burst of live records to end before it reloads. */
export const TABLE_DEBOUNCE_MS = 400;

/** The table's paging: only this module reads or changes it. */
const paging = {
  size: 50,
  /** @type {(string | undefined)[]} cursors[i] is the cursor of page i (undefined for the first). */
  cursors: [undefined],
  index: 0,
  /** @type {ContainerPage | null} the page shown */
  shown: null,
};

/** Whether the table has loaded a page yet. */
export const tableLoaded = () => paging.shown !== null;

let containersSeq = 0;

/** Loads the current page with the current filters; an older answer never replaces a newer. */
export async function loadContainers() {
  const seq = ++containersSeq;
  const f = state.filters;
  const table = $("container-rows").closest("table");
  table?.setAttribute("aria-busy", "true");
  try {
    const page = await fetchContainers({
      host: f.host,
      health: f.health,
      state: f.state,
      name: f.name.trim(),
      quarantined: f.quarantined,
      optedIn: f.optedIn,
      limit: paging.size,
      cursor: paging.cursors[paging.index],
    });
    if (seq !== containersSeq) return;
    paging.shown = page;
    renderContainers();
  } catch (error) {
    if (seq !== containersSeq) return;
    if (error instanceof ApiError && error.status === 400) {
      toast("bad", "Filter rejected", error.message);
    }
  } finally {
    if (seq === containersSeq) table?.removeAttribute("aria-busy");
  }
}

/** @type {ReturnType<typeof setTimeout> | undefined} */
let tableTimer;

/** Reloads the table after `ms` without another call, if the overview is shown then. */
export function scheduleContainersRefresh(ms = TABLE_DEBOUNCE_MS) {
  clearTimeout(tableTimer);
  tableTimer = setTimeout(() => {
    if (state.route.view === "overview") loadContainers();
  }, ms);
}

/**
 * @param {string} label the column's name, shown on narrow screens
 * @param {...Child} children
 */
function cell(label, ...children) {
  return h("td", { "data-label": label }, ...children);
}

/** @param {ContainerSummary} c */
function containerRow(c) {
  const target = { "data-host": c.host, "data-id": c.id, "data-name": c.name };
  const restartBtn = h("button", {
    type: "button",
    class: "btn btn-small",
    text: "Restart",
    "data-testid": "restart-button",
    "data-action": "restart",
    ...target,
    title: c.optedIn
      ? `Restart ${c.name}`
      : `Restart ${c.name} (not opted in: the agent may refuse)`,
  });
  const releaseBtn = c.quarantined
    ? h("button", {
        type: "button",
        class: "btn btn-small",
        text: "Release",
        "data-testid": "release-button",
        "data-action": "release",
        ...target,
      })
    : null;
  const healing = [];
  if (c.notHealing)
    healing.push(notHealingBadge(c.notHealing, { "data-testid": "not-healing-badge" }));
  if (c.quarantined)
    healing.push(badge("quarantined", "bad", { "data-testid": "quarantined-badge" }));
  healing.push(c.optedIn ? badge("opted in", "info") : badge("not watched", "muted"));
  const row = h(
    "tr",
    {
      "data-testid": "container-row",
      ...target,
      "data-health": c.health,
      "data-state": c.state,
      class: c.hostStatus !== "up" ? "is-stale" : "",
    },
    cell(
      "Name",
      h("a", {
        class: "cname",
        href: containerHref(c.host, c.id),
        text: c.name || shortId(c.id),
        "data-testid": "container-link",
      }),
      h("div", { class: "sub mono", text: c.image, title: c.image }),
    ),
    cell(
      "Host",
      h("span", { class: "nowrap", text: c.host }),
      c.hostStatus !== "up" ? badge(c.hostStatus, HOST_TONE[c.hostStatus] || "muted") : null,
    ),
    cell(
      "State",
      badge(c.state, STATE_TONE[c.state] || "muted", { "data-testid": "container-state" }),
    ),
    cell(
      "Health",
      badge(c.health, HEALTH_TONE[c.health] || "muted", { "data-testid": "container-health" }),
      c.failingStreak > 0 ? h("span", { class: "sub", text: ` ${c.failingStreak} failing` }) : null,
    ),
    h(
      "td",
      {
        "data-label": "Restarts",
        class: "num",
        title: `${c.restarts} by fleetheal${c.lastRestartAt ? `, last ${relTime(c.lastRestartAt)}` : ""}; ${c.restartCount} by Docker's restart policy`,
      },
      h("span", { "data-testid": "container-restarts", text: String(c.restarts) }),
      c.restartCount ? h("span", { class: "sub", text: ` +${c.restartCount}` }) : null,
    ),
    cell("Started", c.startedAt ? timeEl(c.startedAt) : h("span", { class: "muted", text: "—" })),
    cell("Healing", h("div", { class: "badges" }, ...healing)),
    h(
      "td",
      { class: "actions-col", "data-label": "" },
      h("div", { class: "row-actions" }, releaseBtn, restartBtn),
    ),
  );
  row.addEventListener("click", (e) => {
    // The whole row opens the detail, except where the click was on a control.
    if (closest(e, "a, button")) return;
    location.hash = containerHref(c.host, c.id);
  });
  return row;
}

/** @type {Map<string, { sig: string, row: HTMLTableRowElement }>} by `<host>/<id>` */
const rowCache = new Map();

function renderContainers() {
  const page = paging.shown;
  const tbody = $("container-rows");
  const list = page?.containers || [];
  // A row is rebuilt only when its container changed, so clicks and focus are not lost.
  const rows = list.map((c) => {
    const key = `${c.host}/${c.id}`;
    const sig = JSON.stringify(c);
    const cached = rowCache.get(key);
    if (cached && cached.sig === sig) return cached.row;
    const row = containerRow(c);
    rowCache.set(key, { sig, row });
    return row;
  });
  const current = [...tbody.children];
  if (current.length !== rows.length || current.some((r, i) => r !== rows[i]))
    tbody.replaceChildren(...rows);
  const keep = new Set(list.map((c) => `${c.host}/${c.id}`));
  for (const key of [...rowCache.keys()]) if (!keep.has(key)) rowCache.delete(key);

  $("container-empty").hidden = list.length > 0;
  const total = page?.total ?? 0;
  $("container-count").textContent = page ? String(total) : "";
  const start = paging.index * paging.size;
  $("page-info").textContent =
    total === 0 ? "0 of 0" : `${start + 1}–${start + list.length} of ${total}`;
  $("page-prev", HTMLButtonElement).disabled = paging.index === 0;
  $("page-next", HTMLButtonElement).disabled = !page?.next;
}

/** Goes back to the first page, for new filters or a new page size. */
export function firstPage() {
  paging.cursors = [undefined];
  paging.index = 0;
}

/** Wires the pager: previous, next, and the page size. */
export function wirePager() {
  $("page-prev").addEventListener("click", () => {
    if (paging.index === 0) return;
    paging.index--;
    loadContainers();
  });
  $("page-next").addEventListener("click", () => {
    const next = paging.shown?.next;
    if (!next) return;
    paging.cursors[paging.index + 1] = next;
    paging.cursors.length = paging.index + 2;
    paging.index++;
    loadContainers();
  });
  const size = $("page-size", HTMLSelectElement);
  size.addEventListener("change", () => {
    paging.size = Number(size.value) || 50;
    firstPage();
    loadContainers();
  });
}
