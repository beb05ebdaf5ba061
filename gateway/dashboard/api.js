// The gateway's HTTP API as the dashboard calls it. Reads carry the read token, actions the
// admin token; each call's answer has the type of the API's own schema (api-types.js).

import { readAuthNeeded, readAuthOk, showNotice } from "./notices.js";
import { getToken, readToken } from "./tokens.js";

/**
 * @import { ApiErrorBody, ContainerDetail, ContainerPage, ContainersQuery, EventsPage,
 *   EventsQuery, HealingSwitchRequest, HealingSwitchResult, HealthReport, HistoryCounts,
 *   HistoryCountsQuery, HostList,
 *   PauseRequest, PauseResult, PolicyDocument, QueryOf, ReleaseRequest, ReleaseResult,
 *   RestartRequest, RestartResult } from "./api-types.js"
 */

/** What the gateway answered instead of what was asked, or that it could not be reached. */
export class ApiError extends Error {
  /**
   * @param {number} status the HTTP status; 0 when the gateway could not be reached
   * @param {string} code the API's error code, or `HTTP_<status>` when the answer had none
   * @param {string} message
   * @param {unknown} [details]
   * @param {unknown} [cause] what failed underneath, when it was not an answer
   */
  constructor(status, code, message, details, cause) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/**
 * @typedef {object} CallOptions
 * @property {string} [method]
 * @property {unknown} [body] sent as JSON
 * @property {boolean} [admin] send the admin token (actions) instead of the read token
 * @property {Record<string, string>} [headers]
 */

/**
 * Calls the gateway and returns its JSON answer; throws ApiError for anything but a 2xx.
 * @param {string} path
 * @param {CallOptions} [options]
 * @returns {Promise<unknown>}
 */
async function call(path, { method = "GET", body, admin = false, headers = {} } = {}) {
  /** @type {Record<string, string>} */
  const sent = { Accept: "application/json", ...headers };
  const token = admin ? getToken("admin") : readToken();
  if (token) sent.Authorization = `Bearer ${token}`;
  if (body !== undefined) sent["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(path, {
      method,
      headers: sent,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "same-origin",
    });
  } catch (error) {
    throw new ApiError(0, "NETWORK", "The gateway cannot be reached.", undefined, error);
  }
  const text = await res.text();
  /** @type {unknown} */
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const err =
      data && typeof data === "object"
        ? /** @type {Partial<ApiErrorBody>} */ (data).error
        : undefined;
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

/**
 * GET with the read token; a 401 asks the user for one, and is rethrown like every error.
 * @param {string} path
 */
async function read(path) {
  try {
    return await call(path);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) readAuthNeeded();
    else if (error instanceof ApiError && error.status === 0) showNotice("offline");
    throw error;
  }
}

/**
 * A query string: `?a=1&b=x`, without the empty parameters, or "" when all are.
 * @param {Record<string, string | number | boolean | null | undefined>} params
 */
export function qs(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === "" || v === false) continue;
    q.set(k, v === true ? "1" : String(v));
  }
  const str = q.toString();
  return str ? `?${str}` : "";
}

/**
 * @param {string} host
 * @param {string} id
 */
const containerPath = (host, id) =>
  `/containers/${encodeURIComponent(host)}/${encodeURIComponent(id)}`;

/** `GET /health` */
export const fetchHealth = () => /** @type {Promise<HealthReport>} */ (read("/health"));

/** `GET /hosts` */
export const fetchHosts = () => /** @type {Promise<HostList>} */ (read("/hosts"));

/** `GET /policy` */
export const fetchPolicy = () => /** @type {Promise<PolicyDocument>} */ (read("/policy"));

/** `GET /containers` @param {QueryOf<ContainersQuery>} query */
export const fetchContainers = (query) =>
  /** @type {Promise<ContainerPage>} */ (read(`/containers${qs(query)}`));

/**
 * `GET /containers/:host/:id`
 * @param {string} host
 * @param {string} id
 */
export const fetchContainer = (host, id) =>
  /** @type {Promise<ContainerDetail>} */ (read(containerPath(host, id)));

/** `GET /events` @param {QueryOf<EventsQuery>} query */
export const fetchEvents = (query) =>
  /** @type {Promise<EventsPage>} */ (read(`/events${qs(query)}`));

/** `GET /history/counts` @param {QueryOf<HistoryCountsQuery>} query */
export const fetchHistoryCounts = (query) =>
  /** @type {Promise<HistoryCounts>} */ (read(`/history/counts${qs(query)}`));

/**
 * `POST /containers/:host/:id/restart`. The same idempotency key never restarts twice.
 * @param {string} host
 * @param {string} id
 * @param {RestartRequest} body
 * @param {string} idempotencyKey
 */
export const restartContainer = (host, id, body, idempotencyKey) =>
  /** @type {Promise<RestartResult>} */ (
    call(`${containerPath(host, id)}/restart`, {
      method: "POST",
      admin: true,
      body,
      headers: { "Idempotency-Key": idempotencyKey },
    })
  );

/**
 * `POST /containers/:host/:id/release`
 * @param {string} host
 * @param {string} id
 * @param {ReleaseRequest} body
 */
export const releaseContainer = (host, id, body) =>
  /** @type {Promise<ReleaseResult>} */ (
    call(`${containerPath(host, id)}/release`, { method: "POST", admin: true, body })
  );

/**
 * `PUT /containers/:host/:id/healing`: healing off (`enabled: false`) or back on, by name.
 * @param {string} host
 * @param {string} id
 * @param {HealingSwitchRequest} body
 */
export const switchHealing = (host, id, body) =>
  /** @type {Promise<HealingSwitchResult>} */ (
    call(`${containerPath(host, id)}/healing`, { method: "PUT", admin: true, body })
  );

/**
 * `POST /pause` or `POST /resume`
 * @param {boolean} pause
 * @param {PauseRequest} body
 */
export const pauseHealing = (pause, body) =>
  /** @type {Promise<PauseResult>} */ (
    call(pause ? "/pause" : "/resume", { method: "POST", admin: true, body })
  );
