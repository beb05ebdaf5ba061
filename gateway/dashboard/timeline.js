// A container's own timeline on its detail page: its health over time, what fleetheal did and
// what Docker reported, from the records the page loaded (`GET /events` for the container).

import { summaryText, TONE } from "./charts.js";
import { h, s } from "./dom.js";
import { clockTime, shortTime } from "./format.js";
import { ACTION_TONE, HEALTH_TONE, PHASE_TONE } from "./widgets.js";

/**
 * @import { HistoryWindow, StreamRecord } from "./api-types.js"
 * @import { CountKey } from "./charts.js"
 */

/** @type {Record<HistoryWindow, { ms: number, scope: string }>} */
const WINDOWS = {
  "1h": { ms: 3_600_000, scope: "in the last hour" },
  "24h": { ms: 86_400_000, scope: "in the last day" },
};
/** The plotting area's width in its own units; it stretches to the panel. */
const W = 1000;
/** What the Healing lane marks; the other phases are steps on the way (decided, skipped, …). */
const HEALING_MARKS = new Set([
  "restarted",
  "failed",
  "quarantined",
  "released",
  "stopped",
  "recreated",
  "unhealed",
]);
/** What the Docker lane marks. */
const DOCKER_MARKS = new Set(["die", "oom", "kill", "start", "restart"]);

/** The timeline's window, kept while the page is open. */
let shown = /** @type {HistoryWindow} */ ("24h");

/**
 * @param {StreamRecord} r
 * @returns {number} the record's time: Docker's for events, the record's own for remediations
 */
const timeOf = (r) => Date.parse(r.kind === "event" ? r.event.time : r.remediation.at);

/**
 * @param {string} cls
 * @param {number} x1
 * @param {number} x2
 * @param {string} title
 * @param {Record<string, string>} data
 */
function mark(cls, x1, x2, title, data) {
  return s(
    x1 === x2 ? "line" : "rect",
    x1 === x2
      ? { class: `timeline-mark ${cls}`, x1, x2, y1: 1, y2: 9, ...data }
      : {
          class: `timeline-span ${cls}`,
          x: x1,
          width: Math.max(0.5, x2 - x1),
          y: 0,
          height: 10,
          ...data,
        },
    s("title", { text: title }),
  );
}

/**
 * @param {string} label
 * @param {string} testid
 * @param {SVGElement[]} marks
 */
function lane(label, testid, marks) {
  return [
    h("span", { class: "timeline-lane-label", text: label }),
    s(
      "svg",
      {
        class: "timeline-svg",
        viewBox: `0 0 ${W} 10`,
        preserveAspectRatio: "none",
        "data-testid": testid,
        "aria-hidden": "true",
      },
      ...marks,
    ),
  ];
}

/**
 * The container's timeline over the chosen window.
 * @param {StreamRecord[]} records the container's records, any order
 * @param {{ truncated?: boolean, now?: number }} [options] `truncated`: the page loaded only
 *   part of the day's records
 * @returns {HTMLElement}
 */
export function timelinePanel(records, { truncated = false, now = Date.now() } = {}) {
  const { ms, scope } = WINDOWS[shown];
  const from = now - ms;
  /** @param {number} t */
  const x = (t) => Math.round(((Math.min(Math.max(t, from), now) - from) / ms) * W * 10) / 10;
  const inWindow = (/** @type {number} */ t) => t >= from && t <= now;
  const sorted = records.slice().sort((a, b) => timeOf(a) - timeOf(b) || a.seq - b.seq);
  /** @type {Record<CountKey, number>} */
  const totals = { restarts: 0, failed: 0, unhealthy: 0 };

  // Health: a span from each transition to the next; the state at the window's start is the
  // last transition before it, when the page has it.
  const health = sorted.filter(
    (r) =>
      r.kind === "event" &&
      ["healthy", "unhealthy", "starting"].includes(r.event.action) &&
      r.event.source !== "resync",
  );
  /** @type {SVGElement[]} */
  const healthMarks = [];
  health.forEach((r, i) => {
    if (r.kind !== "event") return;
    const start = timeOf(r);
    const next = health[i + 1];
    const end = next ? timeOf(next) : now;
    if (r.event.action === "unhealthy" && inWindow(start)) totals.unhealthy++;
    if (end < from) return;
    const status = /** @type {"healthy" | "unhealthy" | "starting"} */ (r.event.action);
    healthMarks.push(
      mark(
        `tone-${HEALTH_TONE[status]}`,
        x(start),
        Math.max(x(end), x(start) + 0.5),
        `${clockTime(r.event.time)}: ${status}`,
        { "data-testid": "timeline-health", "data-status": status },
      ),
    );
  });

  /** @type {SVGElement[]} */
  const healingMarks = [];
  /** @type {SVGElement[]} */
  const dockerMarks = [];
  for (const r of sorted) {
    const t = timeOf(r);
    if (!inWindow(t)) continue;
    if (r.kind === "remediation" && HEALING_MARKS.has(r.remediation.phase)) {
      const m = r.remediation;
      if (m.phase === "restarted") totals.restarts++;
      if (m.phase === "failed") totals.failed++;
      // Restarts and failures in the activity chart's colours; the rest in the feed's.
      const tone =
        m.phase === "restarted"
          ? TONE.restarts
          : m.phase === "failed"
            ? TONE.failed
            : PHASE_TONE[m.phase];
      healingMarks.push(
        mark(`tone-${tone}`, x(t), x(t), `${clockTime(m.at)} ${m.phase}: ${m.message}`, {
          "data-testid": "timeline-mark",
          "data-phase": m.phase,
        }),
      );
    } else if (r.kind === "event" && DOCKER_MARKS.has(r.event.action)) {
      const e = r.event;
      dockerMarks.push(
        mark(`tone-${ACTION_TONE[e.action]}`, x(t), x(t), `${clockTime(e.time)} ${e.action}`, {
          "data-testid": "timeline-docker",
          "data-action": e.action,
        }),
      );
    }
  }

  const summary = summaryText(scope, totals);
  const panel = h(
    "section",
    {
      class: "panel panel-wide timeline",
      "data-testid": "container-timeline",
      "data-window": shown,
      "data-restarts": totals.restarts,
      "data-failed": totals.failed,
      "data-unhealthy": totals.unhealthy,
    },
    h(
      "div",
      { class: "timeline-head" },
      h("h3", { text: "Timeline" }),
      h(
        "fieldset",
        { class: "seg", "aria-label": "Time window" },
        ...Object.keys(WINDOWS).map((w) =>
          h("button", {
            type: "button",
            class: "seg-btn",
            text: w === "1h" ? "Last hour" : "Last day",
            "aria-pressed": w === shown ? "true" : "false",
            "data-testid": `timeline-${w}`,
            onclick: () => {
              shown = /** @type {HistoryWindow} */ (w);
              panel.replaceWith(timelinePanel(records, { truncated }));
            },
          }),
        ),
      ),
    ),
    h(
      "figure",
      { class: "chart", role: "group", "aria-label": `Timeline ${scope}. ${summary}` },
      h("div", { class: "timeline-lanes" }, [
        ...lane("Health", "timeline-health-lane", healthMarks),
        ...lane("Healing", "timeline-healing-lane", healingMarks),
        ...lane("Docker", "timeline-docker-lane", dockerMarks),
        h("span", {}),
        h(
          "div",
          { class: "chart-x", "aria-hidden": "true" },
          h("span", { text: shortTime(from) }),
          h("span", { text: shortTime(from + ms / 2) }),
          h("span", { text: "now" }),
        ),
      ]),
      h("p", {
        class: "chart-axes muted",
        text: "Time across. Health: green healthy, amber starting, red unhealthy. Healing: blue restarted, red failed, as in the activity chart. Hover a mark for its time and what happened.",
      }),
      h("p", { class: "chart-summary", "data-testid": "timeline-summary", text: summary }),
      truncated
        ? h("p", {
            class: "callout tone-warn",
            text: "The container has more records than the page loads: the timeline is incomplete.",
          })
        : null,
    ),
  );
  return panel;
}
