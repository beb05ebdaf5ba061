// The page's two views, chosen by the URL's hash: the overview (`#/?<filters>`) and a
// container's detail (`#/containers/<host>/<id>`).

import { loadActivity } from "./activity.js";
import { filtersFromHash, overviewHash, writeFiltersToForm } from "./container-filters.js";
import { firstPage, loadContainers, tableLoaded } from "./container-table.js";
import { loadDetail } from "./detail.js";
import { $ } from "./dom.js";
import { renderHosts } from "./hosts.js";
import { state } from "./state.js";

/** @import { Route } from "./state.js" */

/** @returns {Route} */
function parseRoute() {
  const hash = location.hash.replace(/^#/, "");
  const path = hash.split("?")[0] ?? "";
  const m = /^\/containers\/([^/]+)\/([^/]+)\/?$/.exec(path);
  if (m?.[1] && m[2]) {
    try {
      return { view: "detail", host: decodeURIComponent(m[1]), id: decodeURIComponent(m[2]) };
    } catch {
      return { view: "overview" };
    }
  }
  return { view: "overview" };
}

/** Shows the view the URL names, loading what it needs. */
export function route() {
  const next = parseRoute();
  const prev = state.route;
  state.route = next;
  const detail = next.view === "detail";
  $("view-overview").hidden = detail;
  $("view-detail").hidden = !detail;
  document.body.dataset.view = next.view;
  if (next.view === "detail") {
    $("back", HTMLAnchorElement).href = overviewHash();
    if (prev.view !== "detail" || prev.host !== next.host || prev.id !== next.id) {
      state.detail = null;
      state.detailEvents = [];
      loadDetail();
      window.scrollTo(0, 0);
    }
    document.title = `${next.id} on ${next.host} · fleetheal`;
  } else {
    document.title = "fleetheal";
    const filters = filtersFromHash();
    const changed = JSON.stringify(filters) !== JSON.stringify(state.filters);
    if (changed) {
      state.filters = filters;
      firstPage();
      writeFiltersToForm();
      renderHosts();
    }
    if (changed || prev.view !== "overview" || !tableLoaded()) loadContainers();
    if (changed || prev.view !== "overview") loadActivity();
  }
}
