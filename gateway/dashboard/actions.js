// The actions: restart or release a container, pause or resume healing. Their buttons, wherever
// a view draws them, say which action they are (`data-action`) and on what (`data-host`,
// `data-id`, `data-name`); one listener here confirms and performs it.

import { openAction } from "./action-dialog.js";
import { pauseHealing, releaseContainer, restartContainer, switchHealing } from "./api.js";
import { scheduleContainersRefresh } from "./container-table.js";
import { scheduleDetailRefresh } from "./detail.js";
import { closest } from "./dom.js";
import { fmtDuration, shortId } from "./format.js";
import { loadPolicy, renderHeader } from "./header.js";
import { scheduleHostsRefresh } from "./hosts.js";
import { state } from "./state.js";

/** A random UUID, also where randomUUID is missing. */
function uuid() {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  // randomUUID needs a secure context; a gateway on plain http over the LAN is not one.
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = ((b[6] ?? 0) & 0x0f) | 0x40;
  b[8] = ((b[8] ?? 0) & 0x3f) | 0x80;
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * @param {string} host
 * @param {string} id
 * @param {string} name
 */
function confirmRestart(host, id, name) {
  // One key per confirmation: a retry after a timeout cannot restart twice.
  const key = uuid();
  openAction({
    title: `Restart ${name || shortId(id)}?`,
    text: `The agent on ${host} restarts this container now, whatever its health. The restart is recorded in the audit trail.`,
    confirmLabel: "Restart",
    danger: true,
    perform: async (reason) => {
      const result = await restartContainer(host, id, reason ? { reason } : {}, key);
      scheduleContainersRefresh(0);
      scheduleDetailRefresh(0);
      const dup = result.duplicate ? " (already done for this request)" : "";
      if (result.outcome === "restarted") {
        return {
          tone: "ok",
          title: `Restarted ${name || shortId(id)} on ${host}${dup}`,
          message: `${result.message} · ${fmtDuration(result.durationMs)} · command ${result.commandId}`,
        };
      }
      return {
        tone: result.outcome === "failed" ? "bad" : "warn",
        title: `Restart ${result.outcome}: ${name || shortId(id)}${dup}`,
        message: `${result.message} [${result.code}]`,
      };
    },
  });
}

/**
 * @param {string} host
 * @param {string} id
 * @param {string} name
 */
function confirmRelease(host, id, name) {
  openAction({
    title: `Release ${name || shortId(id)} from quarantine?`,
    text: `fleetheal may restart it again when it turns unhealthy; restarts before now no longer count against its budget.`,
    confirmLabel: "Release",
    perform: async (reason) => {
      const result = await releaseContainer(host, id, reason ? { reason } : {});
      scheduleContainersRefresh(0);
      scheduleDetailRefresh(0);
      scheduleHostsRefresh(0);
      return {
        tone: "ok",
        title: `Released ${result?.name || name || shortId(id)}`,
        message: `on ${host}`,
      };
    },
  });
}

/**
 * @param {string} host
 * @param {string} id
 * @param {string} name
 * @param {boolean} enabled switch healing back on, or off
 */
function confirmHealingSwitch(host, id, name, enabled) {
  const label = name || shortId(id);
  openAction({
    title: enabled ? `Switch healing back on for ${label}?` : `Switch healing off for ${label}?`,
    text: enabled
      ? `fleetheal heals ${label} on ${host} again when it is unhealthy. The change is recorded in the audit trail.`
      : `fleetheal leaves ${label} on ${host} alone, even when it is unhealthy, until healing is switched back on. The switch is kept by name, so it outlives a recreate, and is recorded in the audit trail.`,
    confirmLabel: enabled ? "Switch on" : "Switch off",
    danger: !enabled,
    perform: async (reason) => {
      const result = await switchHealing(host, id, { enabled, ...(reason ? { reason } : {}) });
      scheduleContainersRefresh(0);
      scheduleDetailRefresh(0);
      const already = result.changed ? "" : " (it already was)";
      return {
        tone: result.enabled ? "ok" : "warn",
        title: `Healing ${result.enabled ? "on" : "off"} for ${result.name}${already}`,
        message: `on ${result.host} · policy revision ${result.revision}`,
      };
    },
  });
}

/** @param {boolean} pause pause, or resume */
function confirmPause(pause) {
  openAction({
    title: pause ? "Pause healing fleet-wide?" : "Resume healing?",
    text: pause
      ? "No container is restarted automatically until healing is resumed. Triggers are deferred, not lost."
      : "Unhealthy opted-in containers are restarted again, including those whose triggers were deferred.",
    confirmLabel: pause ? "Pause healing" : "Resume healing",
    danger: pause,
    perform: async (reason) => {
      const result = await pauseHealing(pause, reason ? { reason } : {});
      if (state.policy?.policy) {
        state.policy = {
          ...state.policy,
          policy: { ...state.policy.policy, paused: result.paused },
          revision: result.revision,
        };
      }
      renderHeader();
      loadPolicy();
      return {
        tone: result.paused ? "warn" : "ok",
        title: result.paused ? "Healing paused" : "Healing resumed",
        message: `policy revision ${result.revision}`,
      };
    },
  });
}

/** Listens for clicks on action buttons, on the whole page. */
export function wireActionButtons() {
  document.addEventListener("click", (e) => {
    const button = closest(e, "button[data-action]");
    if (!(button instanceof HTMLButtonElement)) return;
    const { action, host = "", id = "", name = "" } = button.dataset;
    if (action === "restart") confirmRestart(host, id, name);
    else if (action === "release") confirmRelease(host, id, name);
    else if (action === "healing-off" || action === "healing-on")
      confirmHealingSwitch(host, id, name, action === "healing-on");
    else if (action === "pause" || action === "resume") confirmPause(action === "pause");
  });
}
