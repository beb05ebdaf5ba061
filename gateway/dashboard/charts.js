// Plain SVG charts, drawn by the page itself under the strict CSP (no library, no inline style).
// The SVG stretches to its box (preserveAspectRatio none) and keeps its text outside, in HTML,
// so that labels stay readable at a phone's width and a laptop's. Every chart says what it shows
// in words as well: a caption, a text summary of its totals, and a title on each bucket.

import { h, s } from "./dom.js";
import { shortTime } from "./format.js";

/**
 * @import { HistoryCounts } from "./api-types.js"
 * @import { Tone } from "./widgets.js"
 */

/** @typedef {"restarts" | "failed" | "unhealthy"} CountKey */
/** @typedef {{ key: CountKey, label: string, one: string, many: string, tone: Tone }} Series */

/** @type {Record<CountKey, Tone>} each series' colour, in every chart */
export const TONE = { restarts: "info", failed: "bad", unhealthy: "warn" };

/** @type {Series[]} the series of `GET /history/counts`, in the order they are drawn */
export const COUNT_SERIES = [
  { key: "restarts", label: "Restarts", one: "restart", many: "restarts", tone: TONE.restarts },
  {
    key: "failed",
    label: "Failed attempts",
    one: "failed attempt",
    many: "failed attempts",
    tone: TONE.failed,
  },
  {
    key: "unhealthy",
    label: "Unhealthy transitions",
    one: "unhealthy transition",
    many: "unhealthy transitions",
    tone: TONE.unhealthy,
  },
];

/** The plotting area's units: each bucket is BUCKET_W wide, the area HEIGHT high. */
const BUCKET_W = 10;
const HEIGHT = 100;

/**
 * "1 restart", "3 restarts".
 * @param {number} n
 * @param {Series} series
 */
export function countText(n, series) {
  return `${n} ${n === 1 ? series.one : series.many}`;
}

/**
 * The smallest of 1, 2, 5, 10, 20, 50, … that is at least `n`: the top of the y axis.
 * @param {number} n
 */
export function niceMax(n) {
  if (!(n > 1)) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(n));
  for (const step of [1, 2, 5, 10]) if (step * magnitude >= n) return step * magnitude;
  return 10 * magnitude;
}

/**
 * A chart's totals in one sentence.
 * @param {string} scope e.g. "in the last hour on all hosts"
 * @param {Record<CountKey, number>} totals
 */
export function summaryText(scope, totals) {
  const parts = COUNT_SERIES.map((series) => countText(totals[series.key], series));
  return `${scope.charAt(0).toUpperCase()}${scope.slice(1)}: ${parts.join(", ")}.`;
}

/**
 * Swatches naming each series' colour, with its total.
 * @param {Record<CountKey, number>} totals
 */
export function legend(totals) {
  return h(
    "ul",
    { class: "chart-legend" },
    ...COUNT_SERIES.map((series) =>
      h(
        "li",
        { class: `tone-${series.tone}` },
        h("span", { class: "swatch", "aria-hidden": "true" }),
        h("span", { text: series.label }),
        h("strong", { text: String(totals[series.key]), "data-testid": `total-${series.key}` }),
      ),
    ),
  );
}

/**
 * One bucket: restarts with failed attempts on top, and unhealthy transitions beside them.
 * @param {HistoryCounts["buckets"][number]} bucket
 * @param {number} i
 * @param {number} top the y axis' top
 * @param {string} label the bucket's time span, for its title
 */
function bucketGroup(bucket, i, top, label) {
  const x = i * BUCKET_W;
  /** @param {number} n */
  const height = (n) => (n > 0 ? Math.max(2, (n / top) * HEIGHT) : 0);
  const restarts = height(bucket.restarts);
  const failed = height(bucket.failed);
  const unhealthy = height(bucket.unhealthy);
  /**
   * @param {string} tone
   * @param {number} bx
   * @param {number} y
   * @param {number} bh
   */
  const bar = (tone, bx, y, bh) =>
    bh > 0 ? s("rect", { class: `chart-bar tone-${tone}`, x: bx, y, width: 4, height: bh }) : null;
  const words = COUNT_SERIES.map((series) => countText(bucket[series.key], series)).join(", ");
  return s(
    "g",
    {
      class: "chart-bucket",
      "data-testid": "chart-bucket",
      "data-start": bucket.start,
      "data-restarts": bucket.restarts,
      "data-failed": bucket.failed,
      "data-unhealthy": bucket.unhealthy,
    },
    s("title", { text: `${label}: ${words}` }),
    // Hovering anywhere in the bucket's column shows its title.
    s("rect", { class: "chart-hit", x, y: 0, width: BUCKET_W, height: HEIGHT }),
    bar(TONE.restarts, x + 1, HEIGHT - restarts, restarts),
    bar(TONE.failed, x + 1, HEIGHT - restarts - failed, failed),
    bar(TONE.unhealthy, x + 5, HEIGHT - unhealthy, unhealthy),
  );
}

/**
 * Counts over time as bars, one group per bucket, with its axes, legend and summary.
 * @param {HistoryCounts} counts
 * @param {{ scope: string, per: string }} words `scope`: "in the last hour on all hosts";
 *   `per`: "per minute"
 */
export function countsChart(counts, { scope, per }) {
  const buckets = counts.buckets;
  const tallest = Math.max(0, ...buckets.map((b) => Math.max(b.restarts + b.failed, b.unhealthy)));
  const top = niceMax(tallest);
  const stepMs = counts.bucketSeconds * 1000;
  const summary = summaryText(scope, counts.totals);
  const title = `Restarts and unhealthy transitions ${per}, ${scope}`;
  const svg = s(
    "svg",
    {
      class: "chart-svg",
      viewBox: `0 0 ${buckets.length * BUCKET_W} ${HEIGHT}`,
      preserveAspectRatio: "none",
      role: "img",
      "aria-label": `${title}. ${summary}`,
    },
    s("title", { text: title }),
    s("line", {
      class: "grid",
      x1: 0,
      x2: buckets.length * BUCKET_W,
      y1: HEIGHT / 2,
      y2: HEIGHT / 2,
    }),
    s("line", {
      class: "chart-axis",
      x1: 0,
      x2: buckets.length * BUCKET_W,
      y1: HEIGHT,
      y2: HEIGHT,
    }),
    ...buckets.map((b, i) => {
      const start = Date.parse(b.start);
      return bucketGroup(b, i, top, `${shortTime(start)}–${shortTime(start + stepMs)}`);
    }),
  );
  const middle = buckets[Math.floor(buckets.length / 2)];
  return h(
    "figure",
    {
      class: "chart",
      "data-testid": "counts-chart",
      "data-window": counts.window,
      "data-host": counts.host ?? "",
      "data-from": counts.from,
      "data-to": counts.to,
      "data-restarts": counts.totals.restarts,
      "data-failed": counts.totals.failed,
      "data-unhealthy": counts.totals.unhealthy,
    },
    h("figcaption", { class: "chart-caption", text: title }),
    legend(counts.totals),
    h(
      "div",
      { class: "chart-plot" },
      h(
        "div",
        { class: "chart-y", "aria-hidden": "true" },
        h("span", { text: String(top) }),
        h("span", { text: top >= 2 ? String(top / 2) : "" }),
        h("span", { text: "0" }),
      ),
      svg,
      h(
        "div",
        { class: "chart-x", "aria-hidden": "true" },
        h("span", { text: shortTime(counts.from) }),
        h("span", { text: middle ? shortTime(middle.start) : "" }),
        h("span", { text: "now" }),
      ),
    ),
    h("p", { class: "chart-axes muted", text: `Count ${per} (vertical) by time (horizontal).` }),
    h("p", { class: "chart-summary", "data-testid": "chart-summary", text: summary }),
    counts.truncated
      ? h("p", {
          class: "callout tone-warn",
          "data-testid": "chart-truncated",
          text:
            counts.truncated === "deadline"
              ? "Counting took too long: these counts are incomplete."
              : `More records than the gateway counts at once (${counts.scanned} read): these counts are incomplete.`,
        })
      : null,
  );
}
