// The overview's host cards, and the host filter's options that list the same hosts. A click on
// a card filters the container table (container-filters.js).

import { fetchHosts } from "./api.js";
import { $, h, s } from "./dom.js";
import { fmtUptime, relTime } from "./format.js";
import { state } from "./state.js";
import { badge, HOST_TONE, timeEl } from "./widgets.js";

/**
 * @import { HostSummary } from "./api-types.js"
 * @import { HostView } from "./state.js"
 * @import { Tone } from "./widgets.js"
 */

/** @type {Map<string, { sig: string, el: HTMLElement }>} each host's card, by host id */
const cardCache = new Map();

export function renderHosts() {
  const grid = $("host-grid");
  const hosts = [...state.hosts.values()].sort((a, b) => a.id.localeCompare(b.id));
  $("host-count").textContent = hosts.length ? String(hosts.length) : "";
  if (hosts.length === 0) {
    grid.replaceChildren(
      h("p", {
        class: "empty",
        text: state.health ? "No host has reported yet. Start an agent on each host." : "Loading…",
      }),
    );
    renderHostFilterOptions();
    return;
  }
  // Health messages arrive several times a second; a card is rebuilt only when more than its
  // last-seen time changed, so clicks and focus are not lost to needless re-rendering.
  const cards = hosts.map((host) => {
    const { lastSeen, ...rest } = host;
    const sig = JSON.stringify([rest, state.filters.host === host.id]);
    let cached = cardCache.get(host.id);
    if (!cached || cached.sig !== sig) {
      cached = { sig, el: hostCard(host) };
      cardCache.set(host.id, cached);
    }
    const seen = cached.el.querySelector("time.seen");
    if (seen instanceof HTMLElement && lastSeen && seen.getAttribute("datetime") !== lastSeen) {
      seen.setAttribute("datetime", lastSeen);
      seen.title = new Date(lastSeen).toLocaleString();
      seen.textContent = relTime(lastSeen);
    }
    return cached.el;
  });
  for (const id of [...cardCache.keys()]) if (!state.hosts.has(id)) cardCache.delete(id);
  const current = [...grid.children];
  if (current.length !== cards.length || current.some((el, i) => el !== cards[i])) {
    grid.replaceChildren(...cards);
  }
  renderHostFilterOptions();
}

/**
 * A bar of the host's containers by health.
 * @param {HostSummary["containers"]} counts
 */
function countsBar(counts) {
  const total = counts.total || 0;
  const svg = s("svg", {
    class: "bar",
    viewBox: "0 0 100 6",
    preserveAspectRatio: "none",
    "aria-hidden": "true",
  });
  svg.append(s("rect", { class: "bar-bg", x: 0, y: 0, width: 100, height: 6, rx: 3 }));
  if (total > 0) {
    let x = 0;
    for (const key of /** @type {const} */ (["healthy", "starting", "unhealthy", "none"])) {
      const w = ((counts[key] || 0) / total) * 100;
      if (w <= 0) continue;
      svg.append(
        s("rect", { class: `bar-${key}`, x: x.toFixed(2), y: 0, width: w.toFixed(2), height: 6 }),
      );
      x += w;
    }
  }
  return svg;
}

/** @param {HostView} host */
function hostCard(host) {
  const c = host.containers;
  const docker = host.docker;
  const selected = state.filters.host === host.id;
  const statusTone = HOST_TONE[host.status] || "muted";
  /**
   * @param {string} label
   * @param {number} n
   * @param {Tone} tone
   * @param {string} key
   */
  const count = (label, n, tone, key) =>
    h(
      "li",
      { class: `cnt ${n ? `tone-${tone}` : "cnt-zero"}`, "data-testid": `host-${key}` },
      h("span", { class: "cnt-n", text: String(n || 0) }),
      h("span", { class: "cnt-l", text: label }),
    );
  return h(
    "button",
    {
      type: "button",
      class: `host-card tone-${statusTone}${selected ? " is-selected" : ""}`,
      "data-testid": "host-card",
      "data-host": host.id,
      "data-status": host.status,
      "aria-pressed": selected ? "true" : "false",
      title: selected ? "Show all hosts" : `Show only containers on ${host.id}`,
    },
    h(
      "div",
      { class: "host-head" },
      h("span", { class: "host-name", text: host.id, "data-testid": "host-name" }),
      badge(host.status || "?", statusTone, { "data-testid": "host-status" }),
    ),
    h(
      "div",
      { class: "host-meta" },
      h(
        "span",
        {
          class: `docker tone-${docker.status === "up" ? "ok" : "bad"}`,
          "data-testid": "host-docker",
          title: docker.error || "",
        },
        h("span", { class: "dot", "aria-hidden": "true" }),
        `Docker ${docker.version ? `${docker.version} ` : ""}${docker.status || "?"}`,
      ),
      h("span", { class: "muted" }, "seen ", timeEl(host.lastSeen, "nowrap seen")),
    ),
    countsBar(c),
    h(
      "ul",
      { class: "counts" },
      count("healthy", c.healthy, "ok", "healthy"),
      count("unhealthy", c.unhealthy, "bad", "unhealthy"),
      count("starting", c.starting, "warn", "starting"),
      count("no check", c.none, "muted", "none"),
      count("quarantined", host.quarantined, "bad", "quarantined"),
    ),
    docker.status === "down" && docker.error
      ? h("p", { class: "host-error", text: docker.error })
      : null,
    host.agent
      ? h(
          "div",
          { class: "host-foot muted" },
          h("span", { text: `agent ${host.agent.version}` }),
          h("span", { text: `up ${fmtUptime(host.agent.uptimeSeconds)}` }),
          h("span", { text: `${c.total} containers` }),
          host.outbox?.dropped
            ? h("span", { class: "tone-warn", text: `${host.outbox.dropped} dropped` })
            : null,
        )
      : null,
  );
}

/** The host filter lists every known host, and the one filtered by even when it is gone. */
export function renderHostFilterOptions() {
  const select = document.querySelector('#filters select[name="host"]');
  if (!(select instanceof HTMLSelectElement)) throw new Error("index.html has no host filter");
  const ids = [...state.hosts.keys()].sort();
  if (state.filters.host && !ids.includes(state.filters.host)) ids.push(state.filters.host);
  const current = [...select.options].slice(1).map((o) => o.value);
  if (current.join("\n") !== ids.join("\n")) {
    select.replaceChildren(
      h("option", { value: "", text: "All hosts" }),
      ...ids.map((id) => h("option", { value: id, text: id })),
    );
  }
  select.value = state.filters.host;
}

export async function loadHosts() {
  try {
    const body = await fetchHosts();
    /** @type {Map<string, HostView>} */
    const next = new Map();
    for (const host of body.hosts || []) next.set(host.id, host);
    state.hosts = next;
    renderHosts();
  } catch {
    // Shown through the notice; the next refresh tries again.
  }
}

/** @type {ReturnType<typeof setTimeout> | undefined} */
let hostsTimer;

/** Reloads the hosts soon; calls while one is due join it. */
export function scheduleHostsRefresh(ms = 1_000) {
  if (hostsTimer) return;
  hostsTimer = setTimeout(() => {
    hostsTimer = undefined;
    loadHosts();
  }, ms);
}
