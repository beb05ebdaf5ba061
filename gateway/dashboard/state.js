// What more than one view reads: the route, the filters, the fleet's health, hosts and policy,
// and the container the detail shows. What only one view needs (the feed's records, the table's
// paging, the notice) stays in that view's module.

/**
 * @import { ContainerDetail, HealthReport, HostSummary, PolicyDocument, StreamRecord }
 *   from "./api-types.js"
 */

/**
 * A host as the page shows it: what `GET /hosts` said, updated by every `/health`. A host that
 * `/health` names before `/hosts` has listed it has no agent or outbox details yet.
 * @typedef {Omit<HostSummary, "agent" | "outbox" | "heartbeatMs">
 *   & Partial<Pick<HostSummary, "agent" | "outbox" | "heartbeatMs">>} HostView
 */

/**
 * The container table's filters, as the overview's URL carries them.
 * @typedef {object} Filters
 * @property {string} host
 * @property {string} health
 * @property {string} state
 * @property {string} name
 * @property {boolean} quarantined
 * @property {boolean} optedIn
 */

/**
 * Which page is shown: the overview, or one container's detail.
 * @typedef {{ view: "overview" } | { view: "detail", host: string, id: string }} Route
 */

/** @returns {Filters} */
export function noFilters() {
  return { host: "", health: "", state: "", name: "", quarantined: false, optedIn: false };
}

/** The one copy of what several views read; each loader fills in its part. */
export const state = {
  /** @type {Map<string, HostView>} by host id */
  hosts: new Map(),
  /** @type {HealthReport | null} */
  health: null,
  /** @type {PolicyDocument | null} */
  policy: null,
  filters: noFilters(),
  /** @type {Route} */
  route: { view: "overview" },
  /** @type {ContainerDetail | null} */
  detail: null,
  /** @type {StreamRecord[]} the detail's container's records, newest first */
  detailEvents: [],
  /** @type {"unknown" | "needed" | "ok"} whether reads need a token this tab lacks */
  readAuth: "unknown",
};
