// What the page knows: one object that the views read and the loaders fill in. Each view renders
// from it; nothing else keeps a copy.

/**
 * @import { ContainerDetail, ContainerPage, HealthReport, HostSummary, PolicyDocument,
 *   StreamRecord } from "./api-types.js"
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

/** @typedef {"" | StreamRecord["kind"]} FeedKind The feed's filter: every kind, or one. */

/** @returns {Filters} */
export function noFilters() {
  return { host: "", health: "", state: "", name: "", quarantined: false, optedIn: false };
}

export const state = {
  /** @type {Map<string, HostView>} by host id */
  hosts: new Map(),
  /** @type {HealthReport | null} */
  health: null,
  /** @type {PolicyDocument | null} */
  policy: null,
  filters: noFilters(),
  pageSize: 50,
  /** @type {(string | undefined)[]} cursors[i] is the cursor of page i (undefined for the first). */
  cursors: [undefined],
  page: 0,
  /** @type {ContainerPage | null} */
  pageData: null,
  /** @type {StreamRecord[]} newest first */
  feed: [],
  /** @type {Set<number>} the sequences in `feed` */
  feedSeqs: new Set(),
  /** @type {FeedKind} */
  feedKind: "",
  /** @type {Route} */
  route: { view: "overview" },
  /** @type {ContainerDetail | null} */
  detail: null,
  /** @type {StreamRecord[]} the detail's container's records, newest first */
  detailEvents: [],
  /** @type {"unknown" | "needed" | "ok"} whether reads need a token this tab lacks */
  readAuth: "unknown",
  historyLoaded: false,
  /** @type {"" | "auth" | "offline"} the notice shown under the header */
  noticeKind: "",
};
