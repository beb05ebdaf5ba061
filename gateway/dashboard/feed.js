// The live event feed beside the page: Docker events and remediation steps, newest first.

import { fetchEvents } from "./api.js";
import { $, h } from "./dom.js";
import { clockTime, containerHref, shortId } from "./format.js";
import { ACTION_TONE, badge, PHASE_TONE } from "./widgets.js";

/**
 * @import { StreamRecord } from "./api-types.js"
 * @import { Tone } from "./widgets.js"
 */

const FEED_MAX = 200;

/** @typedef {"" | StreamRecord["kind"]} FeedKind The feed's filter: every kind, or one. */

/** What the feed shows: only this module reads or changes it. */
const feed = {
  /** @type {StreamRecord[]} newest first */
  records: [],
  /** @type {Set<number>} the sequences in `records` */
  seqs: new Set(),
  /** @type {FeedKind} */
  kind: "",
  historyLoaded: false,
};

/** Whether the feed has the last hour's records, so that only the live stream adds to it now. */
export const feedHistoryLoaded = () => feed.historyLoaded;

/**
 * What a feed item shows of a record.
 * @typedef {object} RecordInfo
 * @property {string} host
 * @property {string} id the container's id
 * @property {string} name
 * @property {string} label the phase or the Docker action
 * @property {Tone} tone
 * @property {string} at
 * @property {string} text
 * @property {string} meta
 */

/**
 * @param {StreamRecord} r
 * @returns {RecordInfo}
 */
export function recordInfo(r) {
  if (r.kind === "remediation") {
    const m = r.remediation;
    return {
      host: m.host,
      id: m.containerId,
      name: m.containerName || shortId(m.containerId),
      label: m.phase,
      tone: PHASE_TONE[m.phase] || "muted",
      at: m.at || r.storedAt,
      text: m.message || m.code,
      meta: [m.code && m.code !== m.phase ? m.code : null, m.actor, m.dryRun ? "dry run" : null]
        .filter(Boolean)
        .join(" · "),
    };
  }
  const e = r.event;
  const container = e.container;
  let text = "";
  if (e.action === "die")
    text = `exited with code ${e.exitCode ?? "?"}${e.stopped ? " (stopped)" : ""}`;
  else if (e.action === "kill") text = `killed${e.signal ? ` (signal ${e.signal})` : ""}`;
  else if (e.action === "healthy" || e.action === "unhealthy" || e.action === "starting")
    text = `health: ${e.action}`;
  else text = e.action;
  return {
    host: e.host,
    id: container.id,
    name: container.name || shortId(container.id),
    label: e.action,
    tone: ACTION_TONE[e.action] || "muted",
    at: e.time || r.storedAt,
    text,
    meta: [e.source && e.source !== "docker" ? `via ${e.source}` : null, container.image]
      .filter(Boolean)
      .join(" · "),
  };
}

/**
 * @param {StreamRecord} r
 * @param {boolean} [showContainer] false on the container's own detail page
 */
export function feedItem(r, showContainer = true) {
  const info = recordInfo(r);
  const li = h(
    "li",
    {
      class: `feed-item kind-${r.kind}`,
      "data-testid": "feed-item",
      "data-kind": r.kind,
      "data-seq": r.seq,
      "data-label": info.label,
      "data-container": info.id,
      "data-name": info.name,
      "data-host": info.host,
    },
    h(
      "a",
      { href: info.host && info.id ? containerHref(info.host, info.id) : "#/", class: "feed-link" },
      h(
        "div",
        { class: "feed-top" },
        badge(info.label || r.kind, info.tone, { "data-testid": "feed-label" }),
        showContainer ? h("span", { class: "feed-name", text: info.name }) : null,
        showContainer ? h("span", { class: "feed-host muted", text: info.host }) : null,
        h("time", {
          class: "feed-time muted",
          datetime: info.at,
          text: clockTime(info.at),
          title: info.at ? new Date(info.at).toLocaleString() : "",
        }),
      ),
      info.text ? h("div", { class: "feed-text", text: info.text }) : null,
      info.meta ? h("div", { class: "feed-meta muted", text: info.meta }) : null,
    ),
  );
  if (feed.kind && feed.kind !== r.kind) li.hidden = true;
  return li;
}

/**
 * Adds records the feed does not have yet, keeping the newest FEED_MAX.
 * @param {StreamRecord[]} records
 * @param {{ live: boolean }} options `live` marks them as just arrived
 */
export function addRecords(records, { live }) {
  /** @type {StreamRecord[]} */
  const fresh = [];
  for (const r of records) {
    if (!r || typeof r.seq !== "number" || feed.seqs.has(r.seq)) continue;
    feed.seqs.add(r.seq);
    fresh.push(r);
  }
  if (fresh.length === 0) return;
  fresh.sort((a, b) => b.seq - a.seq);
  const list = $("feed");
  const merged = [...fresh, ...feed.records].sort((a, b) => b.seq - a.seq);
  const newest = feed.records[0];
  const inOrder = fresh.every((r) => newest === undefined || r.seq > newest.seq);
  if (inOrder) {
    list.prepend(
      ...fresh.map((r) => {
        const li = feedItem(r);
        if (live) li.classList.add("is-new");
        return li;
      }),
    );
  }
  feed.records = merged.slice(0, FEED_MAX);
  for (const r of merged.slice(FEED_MAX)) feed.seqs.delete(r.seq);
  if (!inOrder) list.replaceChildren(...feed.records.map((r) => feedItem(r)));
  while (list.childElementCount > FEED_MAX) list.lastElementChild?.remove();
  updateFeedEmpty();
}

export function updateFeedEmpty() {
  const visible = feed.records.some((r) => !feed.kind || r.kind === feed.kind);
  $("feed-empty").hidden = visible;
}

/** Wires the feed's All / Healing / Docker switch. */
export function wireFeed() {
  const buttons = [...document.querySelectorAll(".feed-head .seg-btn")];
  for (const btn of buttons) {
    if (!(btn instanceof HTMLElement)) continue;
    btn.addEventListener("click", () => {
      feed.kind = /** @type {FeedKind} */ (btn.dataset.kind || "");
      for (const b of buttons) b.setAttribute("aria-pressed", b === btn ? "true" : "false");
      for (const li of $("feed").children) {
        if (li instanceof HTMLElement) {
          li.hidden = Boolean(feed.kind) && li.dataset.kind !== feed.kind;
        }
      }
      updateFeedEmpty();
    });
  }
}

/** The last hour of records, following `next` a few pages; returns the highest sequence seen. */
export async function loadFeedHistory() {
  /** @type {number | undefined} */
  let after;
  /** @type {StreamRecord[]} */
  let all = [];
  for (let i = 0; i < 5; i++) {
    const page = await fetchEvents({ since: "1h", limit: 500, after });
    all = all.concat(page.records || []);
    if (all.length > FEED_MAX * 2) all = all.slice(-FEED_MAX);
    if (page.next === undefined || page.next === null || page.next === after) break;
    after = page.next;
  }
  addRecords(all, { live: false });
  feed.historyLoaded = true;
  return all.reduce((max, r) => (typeof r.seq === "number" && r.seq > max ? r.seq : max), 0);
}
