// Small elements every view uses: badges coloured by what their value means, and relative times
// that keep themselves current.

import { h } from "./dom.js";
import { clockTime, relTime } from "./format.js";

/**
 * @import { Props } from "./dom.js"
 * @import { ContainerEvent, ContainerSnapshot, Healing, HealthReport, HostSummary, NotHealing,
 *   RemediationRecord } from "./api-types.js"
 */

/** @typedef {"ok" | "bad" | "warn" | "info" | "muted"} Tone The colour of a value (theme.css). */

/** @type {Record<ContainerSnapshot["health"], Tone>} */
export const HEALTH_TONE = { healthy: "ok", unhealthy: "bad", starting: "warn", none: "muted" };
/** @type {Record<ContainerSnapshot["state"], Tone>} */
export const STATE_TONE = {
  running: "ok",
  restarting: "warn",
  paused: "warn",
  created: "muted",
  exited: "bad",
  dead: "bad",
  removing: "muted",
};
/** @type {Record<HostSummary["status"], Tone>} */
export const HOST_TONE = { up: "ok", stale: "warn", down: "bad" };
/** @type {Record<HealthReport["status"], Tone>} */
export const FLEET_TONE = { healthy: "ok", degraded: "warn", unhealthy: "bad" };
/** @type {Record<RemediationRecord["phase"], Tone>} */
export const PHASE_TONE = {
  decided: "info",
  restarting: "info",
  restarted: "ok",
  failed: "bad",
  skipped: "muted",
  quarantined: "bad",
  released: "ok",
  stopped: "warn",
  recreated: "ok",
  alerted: "warn",
  unhealed: "bad",
  disabled: "warn",
  enabled: "info",
};
/** @type {Record<ContainerEvent["action"], Tone>} */
export const ACTION_TONE = {
  healthy: "ok",
  unhealthy: "bad",
  starting: "warn",
  die: "bad",
  oom: "bad",
  kill: "warn",
  stop: "warn",
  start: "info",
  restart: "info",
  create: "muted",
  destroy: "muted",
  pause: "warn",
  unpause: "info",
};
/** @type {Record<Healing["restarts"][number]["outcome"], Tone>} */
export const OUTCOME_TONE = {
  restarted: "ok",
  stopped: "warn",
  refused: "warn",
  skipped: "muted",
  failed: "bad",
  pending: "info",
  recreated: "ok",
};

/** @type {Record<NotHealing["reason"], Tone>} held by the policy, or stuck after a failure */
export const NOT_HEALING_TONE = { held: "warn", stuck: "bad" };

/**
 * @param {string} text
 * @param {Tone} tone
 * @param {Props} [extra] more attributes
 */
export function badge(text, tone, extra = {}) {
  return h("span", { class: `badge tone-${tone}`, text, ...extra });
}

/**
 * A relative time that keeps itself current (see tickClocks).
 * @param {string | undefined} iso
 * @param {string} [cls]
 */
export function timeEl(iso, cls = "nowrap") {
  const el = h("time", {
    class: `rel ${cls}`.trim(),
    datetime: iso || undefined,
    text: relTime(iso),
  });
  if (iso) el.title = new Date(iso).toLocaleString();
  return el;
}

/** Brings every relative time on the page up to date. */
export function tickClocks() {
  for (const el of document.querySelectorAll("time.rel[datetime]")) {
    const text = relTime(el.getAttribute("datetime"));
    if (el.textContent !== text) el.textContent = text;
  }
}

/**
 * Why fleetheal is not healing a container: `held: backoff until 10:32:05`, `stuck:
 * docker-error`, with the handler's sentence as the tooltip.
 * @param {NotHealing} reason
 * @param {Props} [extra] more attributes
 */
export function notHealingBadge(reason, extra = {}) {
  const until = reason.until ? ` until ${clockTime(reason.until)}` : "";
  return badge(`${reason.reason}: ${reason.code}${until}`, NOT_HEALING_TONE[reason.reason], {
    title: `Not being healed since ${clockTime(reason.since)}: ${reason.message}`,
    "data-reason": reason.reason,
    "data-code": reason.code,
    ...extra,
  });
}
