// The overview's activity chart: restarts and unhealthy transitions over the last hour or the
// last day (`GET /history/counts`), for the whole fleet or for the host the table is filtered by.
// A click on a host below the chart filters by it (container-filters.js wires that).

import { fetchHistoryCounts } from "./api.js";
import { countsChart } from "./charts.js";
import { $, h } from "./dom.js";
import { state } from "./state.js";

/**
 * @import { HistoryCounts, HistoryWindow, StreamRecord } from "./api-types.js"
 */

/** The gateway reuses a count for 5 s: refreshing sooner would show the same. */
const REFRESH_AFTER_RECORD_MS = 5_000;
/** Hosts named below the fleet's chart; the busiest first. */
const HOSTS_SHOWN = 12;

/** @type {Record<HistoryWindow, { scope: string, per: string }>} */
const WORDS = {
  "1h": { scope: "in the last hour", per: "per minute" },
  "24h": { scope: "in the last day", per: "per 15 minutes" },
};

/** What the chart shows: only this module reads or changes it. */
const activity = {
  /** @type {HistoryWindow} */
  window: "1h",
  seq: 0,
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  timer: undefined,
};

/** Loads and draws the chart for the current window and host filter. */
export async function loadActivity() {
  if (state.route.view !== "overview") return;
  const seq = ++activity.seq;
  const host = state.filters.host;
  try {
    const counts = await fetchHistoryCounts({ window: activity.window, host: host || undefined });
    if (seq === activity.seq) renderActivity(counts);
  } catch (error) {
    if (seq !== activity.seq) return;
    $("activity-chart").replaceChildren(
      h("p", {
        class: "empty",
        "data-testid": "activity-error",
        text: `Cannot show the activity: ${error instanceof Error ? error.message : String(error)}`,
      }),
    );
  }
}

/** @param {HistoryCounts} counts */
function renderActivity(counts) {
  const words = WORDS[counts.window];
  const where = counts.host ? `on ${counts.host}` : "on all hosts";
  $("activity-scope").textContent = counts.host ?? "all hosts";
  const busy = counts.hosts.filter((x) => x.restarts + x.failed + x.unhealthy > 0);
  const hosts = counts.host
    ? h(
        "div",
        { class: "activity-hosts" },
        h("button", {
          type: "button",
          class: "btn btn-small activity-host",
          "data-host": "",
          "data-testid": "activity-all-hosts",
          text: "Show all hosts",
        }),
      )
    : busy.length
      ? h(
          "div",
          { class: "activity-hosts" },
          h("span", { class: "muted", text: "By host (restarts · failed · unhealthy):" }),
          ...busy.slice(0, HOSTS_SHOWN).map((x) =>
            h(
              "button",
              {
                type: "button",
                class: "btn btn-small activity-host",
                "data-host": x.host,
                "data-testid": "activity-host",
                title: `Show only ${x.host}`,
              },
              h("span", { text: x.host }),
              h("span", { class: "muted", text: `${x.restarts} · ${x.failed} · ${x.unhealthy}` }),
            ),
          ),
          busy.length > HOSTS_SHOWN || counts.hostsOmitted > 0
            ? h("span", {
                class: "muted",
                text: `and ${busy.length - Math.min(busy.length, HOSTS_SHOWN) + counts.hostsOmitted} more`,
              })
            : null,
        )
      : null;
  const chart = countsChart(counts, { scope: `${words.scope} ${where}`, per: words.per });
  $("activity-chart").replaceChildren(...(hosts ? [chart, hosts] : [chart]));
}

/** Reloads the chart soon; calls while one is due join it. */
export function scheduleActivityRefresh(ms = REFRESH_AFTER_RECORD_MS) {
  if (activity.timer) return;
  activity.timer = setTimeout(() => {
    activity.timer = undefined;
    if (!document.hidden) loadActivity();
  }, ms);
}

/**
 * Whether a live record changes what the chart counts: a restart, a failed attempt or an
 * unhealthy transition (not the agents' resync re-assertions).
 * @param {StreamRecord} record
 */
export function countsInActivity(record) {
  if (record.kind === "remediation") {
    return record.remediation.phase === "restarted" || record.remediation.phase === "failed";
  }
  return record.event.action === "unhealthy" && record.event.source !== "resync";
}

/** Wires the Last hour / Last day switch. */
export function wireActivity() {
  const buttons = [...$("activity-window").querySelectorAll(".seg-btn")];
  for (const btn of buttons) {
    if (!(btn instanceof HTMLElement)) continue;
    btn.addEventListener("click", () => {
      activity.window = btn.dataset.window === "24h" ? "24h" : "1h";
      for (const b of buttons) b.setAttribute("aria-pressed", b === btn ? "true" : "false");
      loadActivity();
    });
  }
}
