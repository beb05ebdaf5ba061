// The panels of a container's detail page (detail.js puts them together).

import { h } from "./dom.js";
import { feedItem } from "./feed.js";
import { formatSeconds, shortId } from "./format.js";
import {
  badge,
  HEALTH_TONE,
  HOST_TONE,
  NOT_HEALING_TONE,
  notHealingBadge,
  OUTCOME_TONE,
  STATE_TONE,
  timeEl,
} from "./widgets.js";

/**
 * @import { ContainerDetail, ContainerSnapshot, Healing, StreamRecord } from "./api-types.js"
 * @import { Child } from "./dom.js"
 */

/**
 * One term and its value in a `<dl>`; an empty value shows as a dash.
 * @param {string} label
 * @param {Node | string | number | undefined} value
 * @param {string} [testid]
 */
function kv(label, value, testid) {
  return [
    h("dt", { text: label }),
    h(
      "dd",
      { "data-testid": testid },
      value instanceof Node
        ? value
        : h("span", { text: value === undefined || value === "" ? "—" : String(value) }),
    ),
  ];
}

/**
 * @param {string} title
 * @param {string} testid
 * @param {...Child} children
 */
function panel(title, testid, ...children) {
  return h(
    "section",
    { class: "panel", "data-testid": testid },
    h("h3", { text: title }),
    ...children,
  );
}

/**
 * The container's name, state and health, its host, and the buttons of its actions.
 * @param {ContainerDetail} d
 */
export function detailHead(d) {
  const c = d.container;
  const heal = d.healing;
  const target = { "data-host": d.host, "data-id": c.id, "data-name": c.name };
  const actions = h(
    "div",
    { class: "detail-actions" },
    heal.quarantined
      ? h("button", {
          type: "button",
          class: "btn",
          text: "Release from quarantine",
          "data-testid": "detail-release",
          "data-action": "release",
          ...target,
        })
      : null,
    h("button", {
      type: "button",
      class: "btn",
      text: heal.switchedOff ? "Switch healing on" : "Switch healing off",
      "data-testid": "detail-healing-switch",
      "data-action": heal.switchedOff ? "healing-on" : "healing-off",
      ...target,
    }),
    h("button", {
      type: "button",
      class: "btn btn-primary",
      text: "Restart",
      "data-testid": "detail-restart",
      "data-action": "restart",
      ...target,
    }),
  );
  return h(
    "div",
    { class: "detail-head" },
    h(
      "div",
      { class: "detail-title" },
      h("h2", { text: c.name || shortId(c.id), "data-testid": "detail-name" }),
      h(
        "div",
        { class: "badges" },
        badge(c.state, STATE_TONE[c.state] || "muted", { "data-testid": "detail-state" }),
        badge(c.health, HEALTH_TONE[c.health] || "muted", { "data-testid": "detail-health" }),
        heal.quarantined
          ? badge("quarantined", "bad", { "data-testid": "detail-quarantined" })
          : null,
        heal.notHealing
          ? notHealingBadge(heal.notHealing, { "data-testid": "detail-not-healing" })
          : null,
        heal.switchedOff
          ? badge("healing off", "warn", { "data-testid": "detail-switched-off" })
          : null,
        c.optedIn ? badge("opted in", "info") : badge("not watched", "muted"),
        h(
          "span",
          { class: "muted" },
          "on ",
          h("strong", { text: d.host }),
          " ",
          badge(d.hostStatus, HOST_TONE[d.hostStatus] || "muted"),
        ),
      ),
    ),
    actions,
  );
}

/** @param {ContainerSnapshot} c */
export function infoPanel(c) {
  const probe = c.probe
    ? `${c.probe.kind || "?"} ${c.probe.target}${c.probe.error ? ` (error: ${c.probe.error})` : ""}`
    : undefined;
  return panel(
    "Container",
    "detail-info",
    h(
      "dl",
      { class: "kv" },
      kv("ID", h("span", { class: "mono", text: shortId(c.id), title: c.id }), "detail-id"),
      kv("Image", h("span", { class: "mono wrap", text: c.image })),
      kv("Started", c.startedAt ? timeEl(c.startedAt) : "—", "detail-started"),
      c.state !== "running" ? kv("Exit code", c.exitCode) : [],
      kv("Health source", c.healthSource),
      kv("Failing streak", c.failingStreak, "detail-failing"),
      kv("Docker restarts", c.restartCount),
      probe ? kv("Probe", h("span", { class: "mono wrap", text: probe })) : [],
      c.networkMode ? kv("Network", c.networkMode) : [],
      c.compose ? kv("Compose", `${c.compose.project} / ${c.compose.service}`) : [],
    ),
  );
}

/**
 * Quarantine, backoff and the restart budget.
 * @param {Healing} heal
 */
export function healingPanel(heal) {
  const quarantine = heal.quarantined
    ? h(
        "div",
        { class: "callout tone-bad", "data-testid": "quarantine-state" },
        h("strong", { text: "Quarantined" }),
        " ",
        heal.quarantine?.since ? timeEl(heal.quarantine.since) : null,
        heal.quarantine?.reason ? h("p", { text: heal.quarantine.reason }) : null,
        h("p", {
          class: "muted",
          text: "fleetheal will not restart it until it is released or stays healthy long enough.",
        }),
      )
    : h(
        "div",
        { class: "callout tone-ok", "data-testid": "quarantine-state" },
        h("strong", { text: "Not quarantined" }),
      );
  const off = heal.switchedOff;
  const switchedOff = off
    ? h(
        "div",
        { class: "callout tone-warn", "data-testid": "switched-off-state" },
        h("strong", { text: "Healing switched off" }),
        " by ",
        h("span", { class: "mono", text: off.by }),
        " ",
        timeEl(off.since),
        off.reason ? h("p", { text: off.reason }) : null,
        h("p", {
          class: "muted",
          text: "fleetheal leaves this container alone, by name, until healing is switched back on.",
        }),
      )
    : null;
  const reason = heal.notHealing;
  const notHealing = reason
    ? h(
        "div",
        {
          class: `callout tone-${NOT_HEALING_TONE[reason.reason]}`,
          "data-testid": "not-healing-state",
        },
        h("strong", {
          text:
            reason.reason === "held"
              ? `Not being healed: held (${reason.code})`
              : `Not being healed: stuck (${reason.code})`,
        }),
        " since ",
        timeEl(reason.since),
        reason.until ? [", until ", timeEl(reason.until)] : null,
        h("p", { text: reason.message }),
      )
    : null;
  return panel(
    "Healing",
    "detail-healing",
    switchedOff,
    notHealing,
    quarantine,
    h(
      "dl",
      { class: "kv" },
      kv("Consecutive restarts", heal.consecutiveRestarts ?? 0, "detail-consecutive"),
      kv("Last restart", heal.lastRestartAt ? timeEl(heal.lastRestartAt) : "—"),
      kv("Healthy since", heal.healthySince ? timeEl(heal.healthySince) : "—"),
      heal.releasedAt ? kv("Released", timeEl(heal.releasedAt)) : [],
      heal.backoffUntil ? kv("Backoff until", timeEl(heal.backoffUntil), "detail-backoff") : [],
      heal.budget
        ? kv(
            "Restart budget",
            `${heal.budget.used} of ${heal.budget.allowed} used in ${formatSeconds(heal.budget.windowSeconds)}`,
            "detail-budget",
          )
        : [],
    ),
    ...(heal.labelErrors || []).map((message) =>
      h("p", { class: "callout tone-warn", text: `Ignored label: ${message}` }),
    ),
  );
}

/** @param {ContainerSnapshot} c */
export function outputPanel(c) {
  return panel(
    "Last health output",
    "detail-output",
    c.lastHealthOutput
      ? h("pre", { class: "output", text: c.lastHealthOutput, "data-testid": "health-output" })
      : h("p", { class: "muted", text: "No output recorded.", "data-testid": "health-output" }),
  );
}

/**
 * The restarts in the ledger, most recent first.
 * @param {Healing} heal
 */
export function historyPanel(heal) {
  const restarts = heal.restarts || [];
  return panel(
    "Restart history",
    "restart-history",
    restarts.length
      ? h(
          "div",
          { class: "table-scroll" },
          h(
            "table",
            { class: "mini" },
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                h("th", { text: "When" }),
                h("th", { text: "Outcome" }),
                h("th", { text: "Command" }),
                h("th", { text: "Incident" }),
              ),
            ),
            h(
              "tbody",
              {},
              ...restarts.map((r) =>
                h(
                  "tr",
                  { "data-testid": "restart-entry", "data-outcome": r.outcome },
                  h("td", {}, timeEl(r.at)),
                  h("td", {}, badge(r.outcome, OUTCOME_TONE[r.outcome] || "muted")),
                  h("td", { class: "mono wrap", text: r.commandId }),
                  h("td", { class: "mono wrap muted", text: r.incident }),
                ),
              ),
            ),
          ),
        )
      : h("p", { class: "muted", text: "fleetheal has not restarted this container." }),
  );
}

/** @param {ContainerSnapshot} c */
export function labelsPanel(c) {
  const labelEntries = Object.entries(c.labels || {}).sort(([a], [b]) => a.localeCompare(b));
  return panel(
    `Labels (${labelEntries.length})`,
    "detail-labels",
    labelEntries.length
      ? h(
          "dl",
          { class: "labels" },
          ...labelEntries.map(([k, v]) => [
            h("dt", { class: "mono", text: k }),
            h("dd", { class: "mono", text: v }),
          ]),
        )
      : h("p", { class: "muted", text: "No labels." }),
  );
}

/**
 * The container's records of the last day, newest first.
 * @param {StreamRecord[]} records
 */
export function eventsPanel(records) {
  return panel(
    "Recent activity",
    "detail-events",
    records.length
      ? h(
          "ol",
          { class: "feed-list compact" },
          ...records.slice(0, 50).map((r) => feedItem(r, false)),
        )
      : h("p", { class: "muted", text: "Nothing in the last 24 hours." }),
  );
}
