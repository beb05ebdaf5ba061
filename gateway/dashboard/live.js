// The live stream (`GET /events/stream`): Server-Sent Events over fetch(), so that it can carry
// the Authorization header, which EventSource cannot. Records go to the feed, health reports to
// the header, banner and hosts; the table and the detail reload behind them.

import { countsInActivity, scheduleActivityRefresh } from "./activity.js";
import { scheduleContainersRefresh } from "./container-table.js";
import { DETAIL_RECORDS_MAX, scheduleDetailRefresh } from "./detail.js";
import { $ } from "./dom.js";
import { addRecords, recordInfo } from "./feed.js";
import { applyHealth } from "./health.js";
import { scheduleHostsRefresh } from "./hosts.js";
import { readAuthNeeded, readAuthOk } from "./notices.js";
import { refreshAll } from "./refresh.js";
import { createSseParser } from "./sse-parser.js";
import { state } from "./state.js";
import { readToken } from "./tokens.js";

/** @import { HealthReport, StreamRecord } from "./api-types.js" */

/** The gateway sends a comment every 15 s: this much silence means the connection is dead. */
const STREAM_SILENCE_MS = 75_000;
/** The table and detail follow health changes at most this often. */
const HEALTH_REFRESH_MS = 2_000;

/** @typedef {"connecting" | "live" | "reconnecting" | "auth"} LiveState */

/**
 * @param {LiveState} status
 * @param {string} [text] what the header says, when not the state's name
 */
function setLive(status, text) {
  const el = $("live-status");
  el.dataset.state = status;
  const label = el.querySelector(".live-text");
  if (label) label.textContent = text || status;
  el.title =
    status === "live"
      ? "Receiving live updates"
      : status === "auth"
        ? "A read token is needed for live updates"
        : "Live updates interrupted; reconnecting";
}

/** @param {StreamRecord} record */
function onLiveRecord(record) {
  addRecords([record], { live: true });
  const info = recordInfo(record);
  if (state.route.view === "overview") {
    scheduleContainersRefresh();
    if (countsInActivity(record)) scheduleActivityRefresh();
  }
  if (
    state.route.view === "detail" &&
    state.detail &&
    info.host === state.detail.host &&
    info.id === state.detail.container.id
  ) {
    if (!state.detailEvents.some((r) => r.seq === record.seq)) {
      state.detailEvents = [record, ...state.detailEvents].slice(0, DETAIL_RECORDS_MAX);
    }
    scheduleDetailRefresh();
  }
  if (
    record.kind === "remediation" &&
    ["quarantined", "released", "restarted"].includes(record.remediation.phase)
  ) {
    scheduleHostsRefresh();
  }
}

let lastHealthRefresh = 0;
/** @type {ReturnType<typeof setTimeout> | undefined} */
let healthTimer;

/** @param {HealthReport} report */
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

/** The stream's one connection, reconnected with backoff for as long as the page is open. */
export const live = {
  /** @type {string | undefined} the last record's id, to resume from after a reconnect */
  lastEventId: undefined,
  /** @type {AbortController | undefined} */
  controller: undefined,
  /** @type {(() => void) | undefined} ends the wait before the next reconnect */
  wake: undefined,
  backoff: 1_000,
  connectedOnce: false,

  async run() {
    for (;;) {
      await this.connect();
      const delay = this.backoff + Math.random() * 500;
      this.backoff = Math.min(this.backoff * 2, 30_000);
      await new Promise((resolve) => {
        this.wake = () => resolve(undefined);
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
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let silence;
    const watchdog = () => {
      clearTimeout(silence);
      silence = setTimeout(() => controller.abort(), STREAM_SILENCE_MS);
    };
    setLive(this.connectedOnce ? "reconnecting" : "connecting");
    try {
      /** @type {Record<string, string>} */
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
      const parser = createSseParser({
        onMessage: (msg) => {
          if (msg.id !== undefined && msg.id !== "") this.lastEventId = msg.id;
          /** @type {unknown} */
          let payload;
          try {
            payload = JSON.parse(msg.data);
          } catch {
            return;
          }
          // The gateway's own events, in the shapes its schemas give them.
          if (msg.event === "record") onLiveRecord(/** @type {StreamRecord} */ (payload));
          else if (msg.event === "health") onLiveHealth(/** @type {HealthReport} */ (payload));
        },
      });
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) {
          parser.end();
          break;
        }
        watchdog();
        parser.feed(value);
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
