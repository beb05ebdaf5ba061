// fleetheal dashboard: plain ES module, no build step, no dependencies. Served by the gateway at
// `/` (index.html) and `/assets/*` under a strict CSP, so: no inline scripts or styles, no eval,
// and every piece of data reaches the DOM through textContent or setAttribute, never as HTML.

const FEED_MAX = 200;
const TABLE_DEBOUNCE_MS = 400;
const HEALTH_REFRESH_MS = 2_000;
const STREAM_SILENCE_MS = 75_000;
const TOKEN_KEYS = { read: "fleetheal.readToken", admin: "fleetheal.adminToken" };

// ---------------------------------------------------------------------------------------------
// Small DOM helpers

const $ = (id) => document.getElementById(id);

/** Creates an element; `props.text` sets textContent, `on*` adds listeners, others are attributes. */
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  appendAll(el, children);
  return el;
}

const SVG_NS = "http://www.w3.org/2000/svg";
function s(tag, props = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setProps(el, props);
  appendAll(el, children);
  return el;
}

function setProps(el, props) {
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") el.textContent = String(value);
    else if (key === "class") el.setAttribute("class", value);
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else el.setAttribute(key, value === true ? "" : String(value));
  }
}

function appendAll(el, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

// ---------------------------------------------------------------------------------------------
// Formatting

function relTime(iso) {
  if (!iso) return "—";
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return String(iso);
  const diff = Math.round((Date.now() - t) / 1000);
  const abs = Math.abs(diff);
  let text;
  if (abs < 5) return "just now";
  if (abs < 60) text = `${abs}s`;
  else if (abs < 3600) text = `${Math.floor(abs / 60)}m`;
  else if (abs < 86400) text = `${Math.floor(abs / 3600)}h`;
  else text = `${Math.floor(abs / 86400)}d`;
  return diff >= 0 ? `${text} ago` : `in ${text}`;
}

/** A relative time that keeps itself current (see tickClocks). */
function timeEl(iso, cls = "nowrap") {
  const el = h("time", {
    class: `rel ${cls}`.trim(),
    datetime: iso || undefined,
    text: relTime(iso),
  });
  if (iso) el.title = new Date(iso).toLocaleString();
  return el;
}

function clockTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const time = d.toLocaleTimeString([], {
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hour12: false,
  });
  if (d.toDateString() === new Date().toDateString()) return time;
  return `${d.toLocaleDateString([], { month: "short", day: "numeric" })} ${time}`;
}

function shortId(id) {
  return typeof id === "string" ? id.slice(0, 12) : "";
}

function fmtDuration(ms) {
  if (typeof ms !== "number") return "";
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

function fmtUptime(seconds) {
  if (typeof seconds !== "number") return "—";
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86400)
    return `${Math.floor(seconds / 3600)}h ${Math.floor((seconds % 3600) / 60)}m`;
  return `${Math.floor(seconds / 86400)}d ${Math.floor((seconds % 86400) / 3600)}h`;
}

function containerHref(host, id) {
  return `#/containers/${encodeURIComponent(host)}/${encodeURIComponent(id)}`;
}

function badge(text, tone, extra = {}) {
  return h("span", { class: `badge tone-${tone}`, text, ...extra });
}

const HEALTH_TONE = { healthy: "ok", unhealthy: "bad", starting: "warn", none: "muted" };
const STATE_TONE = {
  running: "ok",
  restarting: "warn",
  paused: "warn",
  created: "muted",
  exited: "bad",
  dead: "bad",
  removing: "muted",
};
const HOST_TONE = { up: "ok", stale: "warn", down: "bad" };
const FLEET_TONE = { healthy: "ok", degraded: "warn", unhealthy: "bad" };
const PHASE_TONE = {
  decided: "info",
  restarting: "info",
  restarted: "ok",
  failed: "bad",
  skipped: "muted",
  quarantined: "bad",
  released: "ok",
};
const ACTION_TONE = {
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
const OUTCOME_TONE = {
  restarted: "ok",
  stopped: "warn",
  refused: "warn",
  skipped: "muted",
  failed: "bad",
  pending: "info",
};

// ---------------------------------------------------------------------------------------------
// Tokens and the API

function getToken(kind) {
  try {
    return sessionStorage.getItem(TOKEN_KEYS[kind]) || "";
  } catch {
    return "";
  }
}

function setToken(kind, value) {
  try {
    if (value) sessionStorage.setItem(TOKEN_KEYS[kind], value);
    else sessionStorage.removeItem(TOKEN_KEYS[kind]);
  } catch {
    // Storage disabled: the token then lives only as long as this call.
  }
}

/** Reads accept the read token or the admin token, so an administrator needs to enter only one. */
function readToken() {
  return getToken("read") || getToken("admin");
}

class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/** Calls the gateway. Reads carry the read token, mutations the admin token. */
async function api(path, { method = "GET", body, admin = false, headers = {}, signal } = {}) {
  const h2 = { Accept: "application/json", ...headers };
  const token = admin ? getToken("admin") : readToken();
  if (token) h2.Authorization = `Bearer ${token}`;
  if (body !== undefined) h2["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(path, {
      method,
      headers: h2,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: "no-store",
      credentials: "same-origin",
    });
  } catch (error) {
    if (error?.name === "AbortError") throw error;
    throw new ApiError(0, "NETWORK", "The gateway cannot be reached.");
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const err = data && typeof data === "object" ? data.error : undefined;
    throw new ApiError(
      res.status,
      err?.code || `HTTP_${res.status}`,
      err?.message || `${res.status} ${res.statusText || "error"}`,
      err?.details,
    );
  }
  if (!admin) readAuthOk();
  return data;
}

/** GET with the read token; a 401 asks the user for one and is rethrown. */
async function read(path, opts) {
  try {
    return await api(path, opts);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) readAuthNeeded();
    else if (error instanceof ApiError && error.status === 0) showNotice("offline");
    throw error;
  }
}

function qs(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === "" || v === false) continue;
    q.set(k, v === true ? "1" : String(v));
  }
  const str = q.toString();
  return str ? `?${str}` : "";
}

function uuid() {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  // randomUUID needs a secure context; a gateway on plain http over the LAN is not one.
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// ---------------------------------------------------------------------------------------------
// State

const state = {
  /** id -> HostSummary, merged with the latest /health. */
  hosts: new Map(),
  health: null,
  policy: null,
  filters: { host: "", health: "", state: "", name: "", quarantined: false, optedIn: false },
  pageSize: 50,
  /** cursors[i] is the cursor of page i (undefined for the first). */
  cursors: [undefined],
  page: 0,
  pageData: null,
  feed: [],
  feedSeqs: new Set(),
  feedKind: "",
  route: { view: "overview" },
  detail: null,
  detailEvents: [],
  readAuth: "unknown",
  historyLoaded: false,
  noticeKind: "",
};

// ---------------------------------------------------------------------------------------------
// Notices and toasts

function showNotice(kind) {
  const el = $("notice");
  if (state.noticeKind === kind) return;
  state.noticeKind = kind;
  el.replaceChildren();
  el.dataset.kind = kind;
  if (kind === "auth") {
    el.append(
      h("span", { text: "This gateway needs a read token to show the fleet." }),
      h("button", {
        type: "button",
        class: "btn btn-small btn-primary",
        text: "Enter token",
        onclick: () => openTokenDialog("read"),
      }),
    );
  } else if (kind === "offline") {
    el.append(h("span", { text: "The gateway cannot be reached. Retrying…" }));
  }
  el.hidden = false;
}

function clearNotice(kind) {
  if (state.noticeKind !== kind) return;
  state.noticeKind = "";
  $("notice").hidden = true;
}

function readAuthNeeded() {
  const first = state.readAuth !== "needed";
  state.readAuth = "needed";
  showNotice("auth");
  if (first && !readToken()) openTokenDialog("read");
}

function readAuthOk() {
  state.readAuth = "ok";
  clearNotice("auth");
  clearNotice("offline");
}

function toast(tone, title, message) {
  const close = h("button", {
    type: "button",
    class: "toast-close",
    "aria-label": "Dismiss",
    text: "×",
  });
  const el = h(
    "div",
    {
      class: `toast tone-${tone}`,
      role: tone === "bad" ? "alert" : "status",
      "data-testid": "toast",
      "data-tone": tone,
    },
    h(
      "div",
      { class: "toast-body" },
      h("strong", { text: title }),
      message ? h("p", { text: message }) : null,
    ),
    close,
  );
  const remove = () => el.remove();
  close.addEventListener("click", remove);
  $("toasts").prepend(el);
  // Errors stay until dismissed; the rest fade after a while.
  if (tone !== "bad") setTimeout(remove, 10_000);
  while ($("toasts").childElementCount > 4) $("toasts").lastElementChild.remove();
}

// ---------------------------------------------------------------------------------------------
// Header: fleet status and policy

function renderHeader() {
  const pill = $("fleet-pill");
  const status = state.health?.status;
  pill.className = `pill tone-${FLEET_TONE[status] || "muted"}`;
  pill.textContent = status ? `fleet ${status}` : "fleet …";
  pill.dataset.status = status || "unknown";

  const healing = $("healing-state");
  const toggle = $("pause-toggle");
  const policy = state.policy?.policy;
  const invalid = state.health?.policy?.invalid;
  if (invalid) {
    // GET /policy refuses an invalid stored policy; /health says why and what stays in force.
    healing.className = "pill tone-bad";
    healing.textContent = "policy invalid";
    healing.dataset.state = "policy-invalid";
    healing.title = `The stored policy (revision ${invalid.revision}) is invalid and was rejected: ${invalid.error}. ${
      state.health.policy.inForce === "paused"
        ? "Healing is paused until a valid policy is stored."
        : "The last valid policy stays in force."
    } Replace it with PUT /policy.`;
    toggle.hidden = true;
  } else if (!policy) {
    healing.className = "pill pill-muted";
    healing.textContent = "healing ?";
    healing.dataset.state = "unknown";
    toggle.hidden = true;
  } else {
    const paused = Boolean(policy.paused);
    healing.className = `pill ${paused ? "tone-warn" : "tone-ok"}`;
    healing.textContent = paused
      ? "healing paused"
      : policy.dryRun
        ? "healing dry-run"
        : "healing active";
    healing.dataset.state = paused ? "paused" : "active";
    healing.title = paused
      ? "Healing is paused fleet-wide: unhealthy containers are not restarted automatically."
      : policy.dryRun
        ? "Dry run: fleetheal decides and records, but never restarts."
        : "Unhealthy opted-in containers are restarted automatically.";
    toggle.hidden = false;
    toggle.textContent = paused ? "Resume healing" : "Pause healing";
    toggle.dataset.action = paused ? "resume" : "pause";
    toggle.className = `btn btn-small ${paused ? "btn-primary" : ""}`;
  }
  document.body.classList.toggle("is-paused", Boolean(policy?.paused));
}

// ---------------------------------------------------------------------------------------------
// Overview: banner and host cards

function applyHealth(report) {
  if (!report || !Array.isArray(report.hosts)) return;
  const before = state.health?.policy;
  state.health = report;
  // The policy changed (stored, or found invalid or fixed): the header shows the new one.
  const after = report.policy;
  if (before && after && (before.revision !== after.revision || before.status !== after.status)) {
    loadPolicy();
  }
  let unknownHost = false;
  const seen = new Set();
  for (const hh of report.hosts) {
    seen.add(hh.id);
    const existing = state.hosts.get(hh.id);
    if (!existing) {
      unknownHost = true;
      state.hosts.set(hh.id, {
        id: hh.id,
        status: hh.status,
        lastSeen: hh.lastSeen,
        docker: { status: hh.docker },
        containers: hh.containers,
        quarantined: hh.quarantined ?? 0,
      });
    } else {
      existing.status = hh.status;
      existing.lastSeen = hh.lastSeen;
      existing.docker = { ...(existing.docker || {}), status: hh.docker };
      existing.containers = hh.containers;
      if (typeof hh.quarantined === "number") existing.quarantined = hh.quarantined;
    }
  }
  for (const id of [...state.hosts.keys()]) if (!seen.has(id)) state.hosts.delete(id);
  renderHeader();
  renderBanner();
  renderHosts();
  if (unknownHost) scheduleHostsRefresh(200);
}

function renderBanner() {
  const report = state.health;
  const banner = $("fleet-banner");
  const status = report?.status || "unknown";
  banner.dataset.status = status;
  banner.className = `banner tone-${FLEET_TONE[status] || "muted"}`;
  $("fleet-status").textContent = report ? status : "loading…";
  const stats = $("fleet-stats");
  if (!report) return;
  const t = report.totals || {};
  const hostsT = t.hosts || {};
  const c = t.containers || {};
  const quarantined =
    typeof t.quarantined === "number"
      ? t.quarantined
      : [...state.hosts.values()].reduce((n, host) => n + (host.quarantined || 0), 0);
  const stat = (label, value, tone, testid) =>
    h(
      "div",
      { class: `stat ${tone && value ? `tone-${tone}` : ""}`.trim(), "data-testid": testid },
      h("dt", { class: "stat-l", text: label }),
      h("dd", { class: "stat-v", text: String(value ?? 0) }),
    );
  const items = [
    stat("Hosts up", `${hostsT.up ?? 0}/${hostsT.total ?? 0}`, null, "stat-hosts"),
    hostsT.stale ? stat("Stale", hostsT.stale, "warn", "stat-stale") : null,
    hostsT.down ? stat("Down", hostsT.down, "bad", "stat-down") : null,
    stat("Containers", c.total, null, "stat-containers"),
    stat("Healthy", c.healthy, "ok", "stat-healthy"),
    stat("Unhealthy", c.unhealthy, "bad", "stat-unhealthy"),
    stat("Starting", c.starting, "warn", "stat-starting"),
    stat("Quarantined", quarantined, "bad", "stat-quarantined"),
  ];
  stats.replaceChildren(...items.filter(Boolean));
}

function countsBar(counts) {
  const total = counts?.total || 0;
  const svg = s("svg", {
    class: "bar",
    viewBox: "0 0 100 6",
    preserveAspectRatio: "none",
    "aria-hidden": "true",
  });
  svg.append(s("rect", { class: "bar-bg", x: 0, y: 0, width: 100, height: 6, rx: 3 }));
  if (total > 0) {
    let x = 0;
    for (const key of ["healthy", "starting", "unhealthy", "none"]) {
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

function renderHosts() {
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
    if (seen && lastSeen && seen.getAttribute("datetime") !== lastSeen) {
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

const cardCache = new Map();

function hostCard(host) {
  const c = host.containers || { total: 0, healthy: 0, unhealthy: 0, starting: 0, none: 0 };
  const docker = host.docker || {};
  const selected = state.filters.host === host.id;
  const count = (label, n, tone, key) =>
    h(
      "li",
      { class: `cnt ${n ? `tone-${tone}` : "cnt-zero"}`, "data-testid": `host-${key}` },
      h("span", { class: "cnt-n", text: String(n || 0) }),
      h("span", { class: "cnt-l", text: label }),
    );
  const card = h(
    "button",
    {
      type: "button",
      class: `host-card tone-${HOST_TONE[host.status] || "muted"}${selected ? " is-selected" : ""}`,
      "data-testid": "host-card",
      "data-host": host.id,
      "data-status": host.status,
      "aria-pressed": selected ? "true" : "false",
      title: selected ? "Show all hosts" : `Show only containers on ${host.id}`,
      onclick: () => setFilters({ ...state.filters, host: selected ? "" : host.id }),
    },
    h(
      "div",
      { class: "host-head" },
      h("span", { class: "host-name", text: host.id, "data-testid": "host-name" }),
      badge(host.status || "?", HOST_TONE[host.status] || "muted", {
        "data-testid": "host-status",
      }),
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
  return card;
}

function renderHostFilterOptions() {
  const select = document.querySelector('#filters select[name="host"]');
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

async function loadHealth() {
  try {
    applyHealth(await read("/health"));
  } catch {
    // Shown through the notice; the next refresh tries again.
  }
}

async function loadHosts() {
  try {
    const body = await read("/hosts");
    const next = new Map();
    for (const host of body.hosts || []) next.set(host.id, host);
    state.hosts = next;
    renderBanner();
    renderHosts();
  } catch {
    // As above.
  }
}

async function loadPolicy() {
  try {
    state.policy = await read("/policy");
  } catch {
    state.policy = null;
  }
  renderHeader();
}

let hostsTimer;
function scheduleHostsRefresh(ms = 1_000) {
  if (hostsTimer) return;
  hostsTimer = setTimeout(() => {
    hostsTimer = undefined;
    loadHosts();
  }, ms);
}

// ---------------------------------------------------------------------------------------------
// Container table

function filtersFromHash() {
  const q = new URLSearchParams(location.hash.split("?")[1] || "");
  return {
    host: q.get("host") || "",
    health: q.get("health") || "",
    state: q.get("state") || "",
    name: q.get("name") || "",
    quarantined: q.get("quarantined") === "1",
    optedIn: q.get("optedIn") === "1",
  };
}

function writeFiltersToForm() {
  const form = $("filters");
  renderHostFilterOptions();
  form.elements.health.value = state.filters.health;
  form.elements.state.value = state.filters.state;
  if (document.activeElement !== form.elements.name) form.elements.name.value = state.filters.name;
  form.elements.quarantined.checked = state.filters.quarantined;
  form.elements.optedIn.checked = state.filters.optedIn;
}

function setFilters(filters) {
  state.filters = filters;
  state.cursors = [undefined];
  state.page = 0;
  const hash = `#/${qs(filters)}`;
  if (location.hash !== hash && state.route.view === "overview")
    history.replaceState(null, "", hash);
  writeFiltersToForm();
  renderHosts();
  loadContainers();
}

let containersSeq = 0;
async function loadContainers() {
  const seq = ++containersSeq;
  const f = state.filters;
  const path = `/containers${qs({
    host: f.host,
    health: f.health,
    state: f.state,
    name: f.name.trim(),
    quarantined: f.quarantined,
    optedIn: f.optedIn,
    limit: state.pageSize,
    cursor: state.cursors[state.page],
  })}`;
  const table = $("container-rows").closest("table");
  table.setAttribute("aria-busy", "true");
  try {
    const page = await read(path);
    if (seq !== containersSeq) return;
    state.pageData = page;
    renderContainers();
  } catch (error) {
    if (seq !== containersSeq) return;
    if (error instanceof ApiError && error.status === 400) {
      toast("bad", "Filter rejected", error.message);
    }
  } finally {
    if (seq === containersSeq) table.removeAttribute("aria-busy");
  }
}

let tableTimer;
function scheduleContainersRefresh(ms = TABLE_DEBOUNCE_MS) {
  clearTimeout(tableTimer);
  tableTimer = setTimeout(() => {
    if (state.route.view === "overview") loadContainers();
  }, ms);
}

function cell(label, ...children) {
  return h("td", { "data-label": label }, ...children);
}

function containerRow(c) {
  const restartBtn = h("button", {
    type: "button",
    class: "btn btn-small",
    text: "Restart",
    "data-testid": "restart-button",
    title: c.optedIn
      ? `Restart ${c.name}`
      : `Restart ${c.name} (not opted in: the agent may refuse)`,
    onclick: (e) => {
      e.stopPropagation();
      confirmRestart(c.host, c.id, c.name);
    },
  });
  const releaseBtn = c.quarantined
    ? h("button", {
        type: "button",
        class: "btn btn-small",
        text: "Release",
        "data-testid": "release-button",
        onclick: (e) => {
          e.stopPropagation();
          confirmRelease(c.host, c.id, c.name);
        },
      })
    : null;
  const healing = [];
  if (c.quarantined)
    healing.push(badge("quarantined", "bad", { "data-testid": "quarantined-badge" }));
  healing.push(c.optedIn ? badge("opted in", "info") : badge("not watched", "muted"));
  const row = h(
    "tr",
    {
      "data-testid": "container-row",
      "data-host": c.host,
      "data-id": c.id,
      "data-name": c.name,
      "data-health": c.health,
      "data-state": c.state,
      class: c.hostStatus !== "up" ? "is-stale" : "",
    },
    cell(
      "Name",
      h("a", {
        class: "cname",
        href: containerHref(c.host, c.id),
        text: c.name || shortId(c.id),
        "data-testid": "container-link",
      }),
      h("div", { class: "sub mono", text: c.image, title: c.image }),
    ),
    cell(
      "Host",
      h("span", { class: "nowrap", text: c.host }),
      c.hostStatus !== "up" ? badge(c.hostStatus, HOST_TONE[c.hostStatus] || "muted") : null,
    ),
    cell(
      "State",
      badge(c.state, STATE_TONE[c.state] || "muted", { "data-testid": "container-state" }),
    ),
    cell(
      "Health",
      badge(c.health, HEALTH_TONE[c.health] || "muted", { "data-testid": "container-health" }),
      c.failingStreak > 0 ? h("span", { class: "sub", text: ` ${c.failingStreak} failing` }) : null,
    ),
    h(
      "td",
      {
        "data-label": "Restarts",
        class: "num",
        title: `${c.restarts} by fleetheal${c.lastRestartAt ? `, last ${relTime(c.lastRestartAt)}` : ""}; ${c.restartCount} by Docker's restart policy`,
      },
      h("span", { "data-testid": "container-restarts", text: String(c.restarts) }),
      c.restartCount ? h("span", { class: "sub", text: ` +${c.restartCount}` }) : null,
    ),
    cell("Started", c.startedAt ? timeEl(c.startedAt) : h("span", { class: "muted", text: "—" })),
    cell("Healing", h("div", { class: "badges" }, ...healing)),
    h(
      "td",
      { class: "actions-col", "data-label": "" },
      h("div", { class: "row-actions" }, releaseBtn, restartBtn),
    ),
  );
  row.addEventListener("click", (e) => {
    // The whole row opens the detail, except where the click was on a control.
    if (e.target.closest("a, button")) return;
    location.hash = containerHref(c.host, c.id);
  });
  return row;
}

const rowCache = new Map();
function renderContainers() {
  const page = state.pageData;
  const tbody = $("container-rows");
  const list = page?.containers || [];
  const rows = list.map((c) => {
    const key = `${c.host}/${c.id}`;
    const sig = JSON.stringify(c);
    const cached = rowCache.get(key);
    if (cached && cached.sig === sig) return cached.row;
    const row = containerRow(c);
    rowCache.set(key, { sig, row });
    return row;
  });
  const current = [...tbody.children];
  if (current.length !== rows.length || current.some((r, i) => r !== rows[i]))
    tbody.replaceChildren(...rows);
  const keep = new Set(list.map((c) => `${c.host}/${c.id}`));
  for (const key of [...rowCache.keys()]) if (!keep.has(key)) rowCache.delete(key);

  $("container-empty").hidden = list.length > 0;
  const total = page?.total ?? 0;
  $("container-count").textContent = page ? String(total) : "";
  const start = state.page * state.pageSize;
  $("page-info").textContent =
    total === 0 ? "0 of 0" : `${start + 1}–${start + list.length} of ${total}`;
  $("page-prev").disabled = state.page === 0;
  $("page-next").disabled = !page?.next;
}

function wireTable() {
  const form = $("filters");
  let nameTimer;
  const fromForm = () => ({
    host: form.elements.host.value,
    health: form.elements.health.value,
    state: form.elements.state.value,
    name: form.elements.name.value,
    quarantined: form.elements.quarantined.checked,
    optedIn: form.elements.optedIn.checked,
  });
  form.addEventListener("change", (e) => {
    if (e.target.name === "name") return;
    setFilters(fromForm());
  });
  form.elements.name.addEventListener("input", () => {
    clearTimeout(nameTimer);
    nameTimer = setTimeout(() => setFilters(fromForm()), 300);
  });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    setFilters(fromForm());
  });
  form.addEventListener("reset", (e) => {
    e.preventDefault();
    setFilters({ host: "", health: "", state: "", name: "", quarantined: false, optedIn: false });
  });
  $("page-prev").addEventListener("click", () => {
    if (state.page === 0) return;
    state.page--;
    loadContainers();
  });
  $("page-next").addEventListener("click", () => {
    const next = state.pageData?.next;
    if (!next) return;
    state.cursors[state.page + 1] = next;
    state.cursors.length = state.page + 2;
    state.page++;
    loadContainers();
  });
  $("page-size").addEventListener("change", (e) => {
    state.pageSize = Number(e.target.value) || 50;
    state.cursors = [undefined];
    state.page = 0;
    loadContainers();
  });
}

// ---------------------------------------------------------------------------------------------
// Container detail

let detailSeq = 0;
async function loadDetail({ quiet = false } = {}) {
  const route = state.route;
  if (route.view !== "detail") return;
  const seq = ++detailSeq;
  const root = $("detail");
  if (!quiet) root.replaceChildren(h("p", { class: "empty", text: "Loading…" }));
  try {
    const detail = await read(
      `/containers/${encodeURIComponent(route.host)}/${encodeURIComponent(route.id)}`,
    );
    if (seq !== detailSeq) return;
    state.detail = detail;
    let events = state.detailEvents;
    if (!quiet || events.length === 0) {
      try {
        const page = await read(
          `/events${qs({ host: detail.host, container: detail.container.id, since: "24h", limit: 200 })}`,
        );
        events = (page.records || []).slice().reverse();
      } catch {
        events = [];
      }
      if (seq !== detailSeq) return;
      state.detailEvents = events;
    }
    renderDetail();
  } catch (error) {
    if (seq !== detailSeq) return;
    state.detail = null;
    const msg =
      error instanceof ApiError && error.status === 404
        ? `No container "${route.id}" on host "${route.host}".`
        : error instanceof ApiError
          ? error.message
          : String(error);
    root.replaceChildren(
      h(
        "div",
        { class: "panel empty", "data-testid": "detail-error" },
        h("strong", { text: "Cannot show this container" }),
        h("p", { text: msg }),
      ),
    );
  }
}

let detailTimer;
function scheduleDetailRefresh(ms = TABLE_DEBOUNCE_MS) {
  clearTimeout(detailTimer);
  detailTimer = setTimeout(() => {
    if (state.route.view === "detail") loadDetail({ quiet: true });
  }, ms);
}

/** 3600 -> "1h", 90 -> "1m30s": policy windows as people write them. */
function formatSeconds(total) {
  const parts = [];
  let rest = Math.max(0, Math.round(total));
  for (const [unit, size] of [
    ["d", 86_400],
    ["h", 3_600],
    ["m", 60],
    ["s", 1],
  ]) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return parts.join("") || "0s";
}

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

function panel(title, testid, ...children) {
  return h(
    "section",
    { class: "panel", "data-testid": testid },
    h("h3", { text: title }),
    ...children,
  );
}

function renderDetail() {
  const d = state.detail;
  if (!d) return;
  const c = d.container;
  const heal = d.healing || {};
  const root = $("detail");

  const actions = h(
    "div",
    { class: "detail-actions" },
    heal.quarantined
      ? h("button", {
          type: "button",
          class: "btn",
          text: "Release from quarantine",
          "data-testid": "detail-release",
          onclick: () => confirmRelease(d.host, c.id, c.name),
        })
      : null,
    h("button", {
      type: "button",
      class: "btn btn-primary",
      text: "Restart",
      "data-testid": "detail-restart",
      onclick: () => confirmRestart(d.host, c.id, c.name),
    }),
  );

  const head = h(
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

  const probe = c.probe
    ? `${c.probe.kind || "?"} ${c.probe.target}${c.probe.error ? ` (error: ${c.probe.error})` : ""}`
    : undefined;
  const info = panel(
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
  const healing = panel(
    "Healing",
    "detail-healing",
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

  const output = panel(
    "Last health output",
    "detail-output",
    c.lastHealthOutput
      ? h("pre", { class: "output", text: c.lastHealthOutput, "data-testid": "health-output" })
      : h("p", { class: "muted", text: "No output recorded.", "data-testid": "health-output" }),
  );

  const restarts = heal.restarts || [];
  const history = panel(
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

  const labelEntries = Object.entries(c.labels || {}).sort(([a], [b]) => a.localeCompare(b));
  const labels = panel(
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

  const events = panel(
    "Recent activity",
    "detail-events",
    state.detailEvents.length
      ? h(
          "ol",
          { class: "feed-list compact" },
          ...state.detailEvents.slice(0, 50).map((r) => feedItem(r, false)),
        )
      : h("p", { class: "muted", text: "Nothing in the last 24 hours." }),
  );

  root.replaceChildren(
    head,
    h("div", { class: "detail-grid" }, info, healing, output, history, labels, events),
  );
  root.dataset.host = d.host;
  root.dataset.id = c.id;
}

// ---------------------------------------------------------------------------------------------
// Event feed

function recordInfo(r) {
  if (r.kind === "remediation") {
    const m = r.remediation || {};
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
  const e = r.event || {};
  const container = e.container || {};
  let text = "";
  if (e.action === "die")
    text = `exited with code ${e.exitCode ?? "?"}${e.stopped ? " (stopped)" : ""}`;
  else if (e.action === "kill") text = `killed${e.signal ? ` (signal ${e.signal})` : ""}`;
  else if (["healthy", "unhealthy", "starting"].includes(e.action)) text = `health: ${e.action}`;
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

function feedItem(r, showContainer = true) {
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
  if (state.feedKind && state.feedKind !== r.kind) li.hidden = true;
  return li;
}

function addRecords(records, { live }) {
  const fresh = [];
  for (const r of records) {
    if (!r || typeof r.seq !== "number" || state.feedSeqs.has(r.seq)) continue;
    state.feedSeqs.add(r.seq);
    fresh.push(r);
  }
  if (fresh.length === 0) return;
  fresh.sort((a, b) => b.seq - a.seq);
  const list = $("feed");
  const merged = [...fresh, ...state.feed].sort((a, b) => b.seq - a.seq);
  const inOrder = fresh.every((r) => state.feed.length === 0 || r.seq > state.feed[0].seq);
  if (inOrder) {
    list.prepend(
      ...fresh.map((r) => {
        const li = feedItem(r);
        if (live) li.classList.add("is-new");
        return li;
      }),
    );
  }
  state.feed = merged.slice(0, FEED_MAX);
  for (const r of merged.slice(FEED_MAX)) state.feedSeqs.delete(r.seq);
  if (!inOrder) list.replaceChildren(...state.feed.map((r) => feedItem(r)));
  while (list.childElementCount > FEED_MAX) list.lastElementChild.remove();
  updateFeedEmpty();
}

function updateFeedEmpty() {
  const visible = state.feed.some((r) => !state.feedKind || r.kind === state.feedKind);
  $("feed-empty").hidden = visible;
}

function wireFeed() {
  for (const btn of document.querySelectorAll(".seg-btn")) {
    btn.addEventListener("click", () => {
      state.feedKind = btn.dataset.kind || "";
      for (const b of document.querySelectorAll(".seg-btn"))
        b.setAttribute("aria-pressed", b === btn ? "true" : "false");
      for (const li of $("feed").children)
        li.hidden = Boolean(state.feedKind) && li.dataset.kind !== state.feedKind;
      updateFeedEmpty();
    });
  }
}

/** The last hour of records, following `next` a few pages; returns the highest sequence seen. */
async function loadFeedHistory() {
  let after;
  let all = [];
  for (let i = 0; i < 5; i++) {
    const page = await read(`/events${qs({ since: "1h", limit: 500, after })}`);
    all = all.concat(page.records || []);
    if (all.length > FEED_MAX * 2) all = all.slice(-FEED_MAX);
    if (page.next === undefined || page.next === null || page.next === after) break;
    after = page.next;
  }
  addRecords(all, { live: false });
  state.historyLoaded = true;
  return all.reduce((max, r) => (typeof r.seq === "number" && r.seq > max ? r.seq : max), 0);
}

function onLiveRecord(record) {
  addRecords([record], { live: true });
  const info = recordInfo(record);
  if (state.route.view === "overview") scheduleContainersRefresh();
  if (
    state.route.view === "detail" &&
    state.detail &&
    info.host === state.detail.host &&
    info.id === state.detail.container.id
  ) {
    if (!state.detailEvents.some((r) => r.seq === record.seq)) {
      state.detailEvents = [record, ...state.detailEvents].slice(0, 200);
    }
    scheduleDetailRefresh();
  }
  if (
    record.kind === "remediation" &&
    ["quarantined", "released", "restarted"].includes(record.remediation?.phase)
  ) {
    scheduleHostsRefresh();
  }
}

let lastHealthRefresh = 0;
let healthTimer;
function onLiveHealth(report) {
  applyHealth(report);
  // The fleet view changed; the table and detail follow, at most every couple of seconds.
  const wait = Math.max(0, lastHealthRefresh + HEALTH_REFRESH_MS - Date.now());
  if (healthTimer) return;
  healthTimer = setTimeout(() => {
    healthTimer = undefined;
    // A background tab catches up when it is shown again (see visibilitychange).
    if (document.hidden) return;
    lastHealthRefresh = Date.now();
    if (state.route.view === "overview") scheduleContainersRefresh(0);
    else scheduleDetailRefresh(0);
    scheduleHostsRefresh(0);
  }, wait);
}

// ---------------------------------------------------------------------------------------------
// Live stream: Server-Sent Events over fetch(), so that it can carry the Authorization header

function setLive(status, text) {
  const el = $("live-status");
  el.dataset.state = status;
  el.querySelector(".live-text").textContent = text || status;
  el.title =
    status === "live"
      ? "Receiving live updates"
      : status === "auth"
        ? "A read token is needed for live updates"
        : "Live updates interrupted; reconnecting";
}

/** Parses the text/event-stream format (any of CRLF, LF, CR line ends) into messages. */
function sseParser(onMessage) {
  let buf = "";
  let data = [];
  let event = "";
  let id;
  const line = (l) => {
    if (l === "") {
      if (data.length > 0) onMessage({ event: event || "message", data: data.join("\n"), id });
      data = [];
      event = "";
      return;
    }
    if (l[0] === ":") return;
    const colon = l.indexOf(":");
    const field = colon < 0 ? l : l.slice(0, colon);
    let value = colon < 0 ? "" : l.slice(colon + 1);
    if (value[0] === " ") value = value.slice(1);
    if (field === "data") data.push(value);
    else if (field === "event") event = value;
    else if (field === "id" && !value.includes("\0")) id = value;
  };
  return (chunk) => {
    buf += chunk;
    let start = 0;
    for (let i = 0; i < buf.length; i++) {
      const ch = buf[i];
      if (ch !== "\n" && ch !== "\r") continue;
      // A CR at the end of the chunk may be the first half of a CRLF.
      if (ch === "\r" && i + 1 === buf.length) break;
      const l = buf.slice(start, i);
      if (ch === "\r" && buf[i + 1] === "\n") i++;
      start = i + 1;
      line(l);
    }
    buf = buf.slice(start);
  };
}

const live = {
  lastEventId: undefined,
  controller: undefined,
  wake: undefined,
  backoff: 1_000,
  connectedOnce: false,

  async run() {
    for (;;) {
      await this.connect();
      const delay = this.backoff + Math.random() * 500;
      this.backoff = Math.min(this.backoff * 2, 30_000);
      await new Promise((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, delay);
      });
      this.wake = undefined;
    }
  },

  /** Drops the connection (if any) and reconnects at once, e.g. after a new token. */
  restart() {
    this.backoff = 1_000;
    this.controller?.abort();
    this.wake?.();
  },

  async connect() {
    const controller = new AbortController();
    this.controller = controller;
    let silence;
    const watchdog = () => {
      clearTimeout(silence);
      silence = setTimeout(() => controller.abort(), STREAM_SILENCE_MS);
    };
    setLive(this.connectedOnce ? "reconnecting" : "connecting");
    try {
      const headers = { Accept: "text/event-stream" };
      const token = readToken();
      if (token) headers.Authorization = `Bearer ${token}`;
      if (this.lastEventId !== undefined) headers["Last-Event-ID"] = String(this.lastEventId);
      const res = await fetch("/events/stream", {
        headers,
        signal: controller.signal,
        cache: "no-store",
      });
      if (res.status === 401) {
        readAuthNeeded();
        setLive("auth", "token needed");
        return;
      }
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      setLive("live");
      readAuthOk();
      this.backoff = 1_000;
      if (this.connectedOnce) {
        // Whatever changed while we were away: the records resume from Last-Event-ID, the rest
        // is reloaded.
        refreshAll();
      }
      this.connectedOnce = true;
      watchdog();
      const parse = sseParser((msg) => {
        if (msg.id !== undefined && msg.id !== "") this.lastEventId = msg.id;
        let payload;
        try {
          payload = JSON.parse(msg.data);
        } catch {
          return;
        }
        if (msg.event === "record") onLiveRecord(payload);
        else if (msg.event === "health") onLiveHealth(payload);
      });
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        watchdog();
        parse(value);
      }
    } catch {
      // Network error, abort or watchdog: reconnect with backoff.
    } finally {
      clearTimeout(silence);
      if (this.controller === controller) this.controller = undefined;
    }
    if ($("live-status").dataset.state !== "auth") setLive("reconnecting");
  },
};

// ---------------------------------------------------------------------------------------------
// Dialogs and actions

function openTokenDialog(reason) {
  const dialog = $("token-dialog");
  if (dialog.open) return;
  const form = $("token-form");
  form.elements.read.value = getToken("read");
  form.elements.admin.value = getToken("admin");
  $("token-text").textContent =
    reason === "read"
      ? "This gateway requires a read token. Tokens are kept in this browser tab only (sessionStorage)."
      : "Tokens are kept in this browser tab only (sessionStorage) and sent as an Authorization: Bearer header.";
  dialog.showModal();
  (reason === "read" ? form.elements.read : form.elements.admin).focus();
}

function wireTokenDialog() {
  const dialog = $("token-dialog");
  const form = $("token-form");
  $("token-button").addEventListener("click", () => openTokenDialog());
  $("token-cancel").addEventListener("click", () => dialog.close());
  $("token-clear").addEventListener("click", () => {
    setToken("read", "");
    setToken("admin", "");
    dialog.close();
    toast("info", "Tokens forgotten", "This tab no longer holds any token.");
    refreshAll();
    live.restart();
  });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const readBefore = readToken();
    setToken("read", form.elements.read.value.trim());
    setToken("admin", form.elements.admin.value.trim());
    dialog.close();
    if (readToken() !== readBefore || state.readAuth === "needed") {
      refreshAll();
      live.restart();
    }
  });
}

let pendingAction;

/**
 * Opens the confirmation dialog of an action. `perform(reason)` runs with the admin token and
 * returns the toast to show; a 401 keeps the dialog open and asks for the token again.
 */
function openAction({ title, text, confirmLabel, danger = false, withReason = true, perform }) {
  const dialog = $("action-dialog");
  const form = $("action-form");
  $("action-title").textContent = title;
  $("action-text").textContent = text;
  $("action-reason-field").hidden = !withReason;
  form.elements.reason.value = "";
  form.elements.token.value = getToken("admin");
  $("action-token-field").hidden = false;
  const confirm = $("action-confirm");
  confirm.textContent = confirmLabel;
  confirm.className = `btn ${danger ? "btn-danger" : "btn-primary"}`;
  confirm.disabled = false;
  setActionError("");
  pendingAction = { perform, confirmLabel };
  dialog.showModal();
  (getToken("admin") ? confirm : form.elements.token).focus();
}

function setActionError(message) {
  const el = $("action-error");
  el.textContent = message;
  el.hidden = !message;
}

function wireActionDialog() {
  const dialog = $("action-dialog");
  const form = $("action-form");
  $("action-cancel").addEventListener("click", () => {
    pendingAction = undefined;
    dialog.close();
  });
  dialog.addEventListener("close", () => {
    pendingAction = undefined;
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const action = pendingAction;
    if (!action || action.busy) return;
    const token = form.elements.token.value.trim();
    if (!token) {
      setActionError("Enter the admin token.");
      form.elements.token.focus();
      return;
    }
    setToken("admin", token);
    const confirm = $("action-confirm");
    action.busy = true;
    confirm.disabled = true;
    confirm.textContent = "Working…";
    setActionError("");
    try {
      const result = await action.perform(form.elements.reason.value.trim() || undefined);
      if (pendingAction === action) dialog.close();
      if (state.readAuth === "needed") {
        // Reads accept the admin token too.
        refreshAll();
        live.restart();
      }
      if (result) toast(result.tone, result.title, result.message);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        setToken("admin", "");
        form.elements.token.value = "";
        setActionError("The gateway rejected this admin token. Check it and try again.");
        form.elements.token.focus();
      } else if (error instanceof ApiError && error.status === 403) {
        setActionError(
          `${error.message} (The gateway has no admin token configured, so actions are disabled.)`,
        );
      } else if (error instanceof ApiError) {
        setActionError(
          `${error.message}${error.code && !error.code.startsWith("HTTP_") ? ` [${error.code}]` : ""}`,
        );
      } else {
        setActionError(String(error?.message || error));
      }
    } finally {
      action.busy = false;
      confirm.disabled = false;
      confirm.textContent = action.confirmLabel;
    }
  });
}

function containerPath(host, id, verb) {
  return `/containers/${encodeURIComponent(host)}/${encodeURIComponent(id)}/${verb}`;
}

function confirmRestart(host, id, name) {
  // One key per confirmation: a retry after a timeout cannot restart twice.
  const key = uuid();
  openAction({
    title: `Restart ${name || shortId(id)}?`,
    text: `The agent on ${host} restarts this container now, whatever its health. The restart is recorded in the audit trail.`,
    confirmLabel: "Restart",
    danger: true,
    perform: async (reason) => {
      const result = await api(containerPath(host, id, "restart"), {
        method: "POST",
        admin: true,
        body: reason ? { reason } : {},
        headers: { "Idempotency-Key": key },
      });
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

function confirmRelease(host, id, name) {
  openAction({
    title: `Release ${name || shortId(id)} from quarantine?`,
    text: `fleetheal may restart it again when it turns unhealthy; restarts before now no longer count against its budget.`,
    confirmLabel: "Release",
    perform: async (reason) => {
      const result = await api(containerPath(host, id, "release"), {
        method: "POST",
        admin: true,
        body: reason ? { reason } : {},
      });
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

function confirmPause(pause) {
  openAction({
    title: pause ? "Pause healing fleet-wide?" : "Resume healing?",
    text: pause
      ? "No container is restarted automatically until healing is resumed. Triggers are deferred, not lost."
      : "Unhealthy opted-in containers are restarted again, including those whose triggers were deferred.",
    confirmLabel: pause ? "Pause healing" : "Resume healing",
    danger: pause,
    perform: async (reason) => {
      const result = await api(pause ? "/pause" : "/resume", {
        method: "POST",
        admin: true,
        body: reason ? { reason } : {},
      });
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

// ---------------------------------------------------------------------------------------------
// Routing

/** The overview with the current filters, for the detail page's way back. */
function overviewHash() {
  return `#/${qs(state.filters)}`;
}

function parseRoute() {
  const hash = location.hash.replace(/^#/, "");
  const path = hash.split("?")[0];
  const m = /^\/containers\/([^/]+)\/([^/]+)\/?$/.exec(path);
  if (m) {
    try {
      return { view: "detail", host: decodeURIComponent(m[1]), id: decodeURIComponent(m[2]) };
    } catch {
      return { view: "overview" };
    }
  }
  return { view: "overview" };
}

function route() {
  const next = parseRoute();
  const prev = state.route;
  state.route = next;
  const detail = next.view === "detail";
  $("view-overview").hidden = detail;
  $("view-detail").hidden = !detail;
  document.body.dataset.view = next.view;
  if (detail) {
    $("back").href = overviewHash();
    if (prev.view !== "detail" || prev.host !== next.host || prev.id !== next.id) {
      state.detail = null;
      state.detailEvents = [];
      loadDetail();
      window.scrollTo(0, 0);
    }
    document.title = `${next.id} on ${next.host} · fleetheal`;
  } else {
    document.title = "fleetheal";
    const filters = filtersFromHash();
    const changed = JSON.stringify(filters) !== JSON.stringify(state.filters);
    if (changed) {
      state.filters = filters;
      state.cursors = [undefined];
      state.page = 0;
      writeFiltersToForm();
      renderHosts();
    }
    if (changed || prev.view !== "overview" || !state.pageData) loadContainers();
  }
}

// ---------------------------------------------------------------------------------------------
// Boot

function refreshAll() {
  loadHealth().then(loadHosts);
  loadPolicy();
  if (!state.historyLoaded) {
    loadFeedHistory()
      .then(updateFeedEmpty)
      .catch(() => {});
  }
  if (state.route.view === "overview") loadContainers();
  else loadDetail({ quiet: true });
}

function tickClocks() {
  for (const el of document.querySelectorAll("time.rel[datetime]")) {
    const text = relTime(el.getAttribute("datetime"));
    if (el.textContent !== text) el.textContent = text;
  }
}

async function boot() {
  wireTable();
  wireFeed();
  wireTokenDialog();
  wireActionDialog();
  $("pause-toggle").addEventListener("click", () =>
    confirmPause($("pause-toggle").dataset.action === "pause"),
  );
  window.addEventListener("hashchange", route);

  state.filters = filtersFromHash();
  writeFiltersToForm();
  renderHeader();
  route();
  await loadHealth();
  loadHosts();
  loadPolicy();
  try {
    const last = await loadFeedHistory();
    if (last > 0) live.lastEventId = String(last);
  } catch {
    // The live stream still works without the history.
  }
  updateFeedEmpty();
  live.run();

  setInterval(tickClocks, 5_000);
  // A safety net for what the stream does not carry (policy edits, agent versions), and for
  // when the stream is down.
  setInterval(() => {
    loadPolicy();
    scheduleHostsRefresh(0);
    if ($("live-status").dataset.state !== "live") refreshAll();
  }, 30_000);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") refreshAll();
  });
}

boot();
