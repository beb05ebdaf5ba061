// The container table's filters: the form above it, the host cards and the activity chart's
// hosts (a click filters by that host; the chart follows the host filter), and the overview's URL, which carries them so that a link or a reload keeps them.

import { loadActivity } from "./activity.js";
import { qs } from "./api.js";
import { firstPage, loadContainers } from "./container-table.js";
import { $, closest, control } from "./dom.js";
import { renderHostFilterOptions, renderHosts } from "./hosts.js";
import { noFilters, state } from "./state.js";

/** @import { Filters } from "./state.js" */

/** The filters in the overview's URL (`#/?host=a&health=unhealthy`). */
export function filtersFromHash() {
  const q = new URLSearchParams(location.hash.split("?")[1] || "");
  return {
    host: q.get("host") || "",
    health: q.get("health") || "",
    state: q.get("state") || "",
    name: q.get("name") || "",
    quarantined: q.get("quarantined") === "1",
    optedIn: q.get("optedIn") === "1",
  };
}

/** The overview's URL with these filters. */
export function overviewHash(filters = state.filters) {
  return `#/${qs({ ...filters })}`;
}

function form() {
  const el = $("filters", HTMLFormElement);
  return {
    el,
    host: control(el, "host", HTMLSelectElement),
    health: control(el, "health", HTMLSelectElement),
    state: control(el, "state", HTMLSelectElement),
    name: control(el, "name", HTMLInputElement),
    quarantined: control(el, "quarantined", HTMLInputElement),
    optedIn: control(el, "optedIn", HTMLInputElement),
  };
}

/** Shows the current filters in the form; the name field keeps what is being typed there. */
export function writeFiltersToForm() {
  const f = form();
  renderHostFilterOptions();
  f.health.value = state.filters.health;
  f.state.value = state.filters.state;
  if (document.activeElement !== f.name) f.name.value = state.filters.name;
  f.quarantined.checked = state.filters.quarantined;
  f.optedIn.checked = state.filters.optedIn;
}

/**
 * Filters the table: back to its first page, and the URL follows.
 * @param {Filters} filters
 */
export function setFilters(filters) {
  const hostChanged = filters.host !== state.filters.host;
  state.filters = filters;
  firstPage();
  const hash = overviewHash(filters);
  if (location.hash !== hash && state.route.view === "overview")
    history.replaceState(null, "", hash);
  writeFiltersToForm();
  renderHosts();
  loadContainers();
  if (hostChanged) loadActivity();
}

/** Wires the filter form and the host cards. */
export function wireFilters() {
  const f = form();
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let nameTimer;
  /** @returns {Filters} */
  const fromForm = () => ({
    host: f.host.value,
    health: f.health.value,
    state: f.state.value,
    name: f.name.value,
    quarantined: f.quarantined.checked,
    optedIn: f.optedIn.checked,
  });
  f.el.addEventListener("change", (e) => {
    if (e.target === f.name) return;
    setFilters(fromForm());
  });
  f.name.addEventListener("input", () => {
    clearTimeout(nameTimer);
    nameTimer = setTimeout(() => setFilters(fromForm()), 300);
  });
  f.el.addEventListener("submit", (e) => {
    e.preventDefault();
    setFilters(fromForm());
  });
  f.el.addEventListener("reset", (e) => {
    e.preventDefault();
    setFilters(noFilters());
  });
  $("host-grid").addEventListener("click", (e) => {
    const card = closest(e, ".host-card");
    const host = card instanceof HTMLElement ? card.dataset.host : undefined;
    if (!host) return;
    setFilters({ ...state.filters, host: state.filters.host === host ? "" : host });
  });
  $("activity-chart").addEventListener("click", (e) => {
    const button = closest(e, ".activity-host");
    if (button instanceof HTMLElement)
      setFilters({ ...state.filters, host: button.dataset.host || "" });
  });
}
