import { z } from "zod";
import { VERSION } from "../common/version.js";
import {
  AddedHost,
  ApiErrorBody,
  ContainerDetail,
  ContainerPage,
  type ContainersQuery,
  EventsPage,
  type EventsQuery,
  HealingSwitchResult,
  HostList,
  PauseResult,
  PolicyDocument,
  ReleaseResult,
  RemovedHost,
  RestartResult,
} from "../gateway/http/api-schemas.js";
import { HealthReport } from "../gateway/view/health-report.js";
import type { GatewayTarget } from "./gateway-config.js";
import { GatewayError, hint, issues, snippet, transportError } from "./gateway-error.js";

// Defined apart, where the command runner can see it without loading the API's schemas.
export { GatewayError } from "./gateway-error.js";

/** A validated answer, and the JSON exactly as the gateway sent it, for `--json`. */
export interface Answer<T> {
  value: T;
  json: unknown;
}

export interface ClientOptions {
  /** Injected by tests; Node's global fetch otherwise. */
  fetch?: typeof fetch;
  /** Deadline of a read; actions get longer (see ACTION_TIMEOUT_MS). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

const READ_TIMEOUT_MS = 30_000;
/**
 * A restart waits for the agent (FLEETHEAL_COMMAND_TIMEOUT_MS, 60 s by default) and then for
 * Docker's stop timeout; the gateway answers 504 itself when the agent is late, so this deadline
 * only catches a gateway that never answers.
 */
const ACTION_TIMEOUT_MS = 180_000;

/** What the CLI reads of `/livez` (public): the gateway's version. */
const Livez = z.object({ version: z.string().max(128) });

export type StreamFilter = Pick<EventsQuery, "host" | "container" | "kind">;

/** An open `/events/stream` response. */
export interface EventStream {
  body: ReadableStream<Uint8Array>;
  /** Ends the connection (aborting the request) and forgets the caller's signal. */
  close(): Promise<void>;
}

/**
 * The gateway's REST API as typed calls. Every answer is validated with the same zod schemas
 * the gateway validates its own responses with (gateway/http/api-schemas.ts): a gateway of another
 * version, or something else on that port, is reported as FLEETHEAL_ERR_BAD_RESPONSE, never
 * rendered as garbage or crashed on.
 */
export class GatewayClient {
  readonly url: string;
  private readonly token: string | undefined;
  private readonly fetchFn: typeof fetch;
  private readonly timeoutMs: number;
  private readonly signal: AbortSignal | undefined;

  constructor(target: GatewayTarget, options: ClientOptions = {}) {
    this.url = target.url;
    this.token = target.token;
    this.fetchFn = options.fetch ?? fetch;
    this.timeoutMs = options.timeoutMs ?? READ_TIMEOUT_MS;
    this.signal = options.signal;
  }

  health(): Promise<Answer<HealthReport>> {
    return this.get("/health", {}, HealthReport);
  }

  /** The gateway's version, from `/livez`, which needs no token. */
  livez(): Promise<Answer<z.infer<typeof Livez>>> {
    return this.get("/livez", {}, Livez);
  }

  /** The fleet policy with its defaults filled in, and its revision (the ETag). */
  policy(): Promise<Answer<PolicyDocument>> {
    return this.get("/policy", {}, PolicyDocument);
  }

  /**
   * Replaces the fleet policy. With `revision`, sent as `If-Match`, the gateway refuses (412)
   * when the policy is no longer at that revision instead of overwriting someone's change.
   */
  putPolicy(policy: unknown, revision: number | undefined): Promise<Answer<PolicyDocument>> {
    return this.write(
      "PUT",
      "/policy",
      policy,
      PolicyDocument,
      revision === undefined ? {} : { "if-match": `"${revision}"` },
    );
  }

  hosts(): Promise<Answer<z.infer<typeof HostList>>> {
    return this.get("/hosts", {}, HostList);
  }

  /** Adds a host to the fleet of the `up` the gateway runs in; answers its join token. */
  addHost(host: string): Promise<Answer<z.infer<typeof AddedHost>>> {
    return this.post("/hosts", { host }, AddedHost);
  }

  /** Removes a host from the fleet of the `up` the gateway runs in. */
  removeHost(host: string): Promise<Answer<z.infer<typeof RemovedHost>>> {
    return this.call(
      "DELETE",
      `/hosts/${enc(host)}`,
      undefined,
      {},
      RemovedHost,
      Math.max(this.timeoutMs, ACTION_TIMEOUT_MS),
    );
  }

  containers(query: Partial<ContainersQuery>): Promise<Answer<ContainerPage>> {
    return this.get("/containers", query, ContainerPage);
  }

  container(host: string, ref: string): Promise<Answer<ContainerDetail>> {
    return this.get(`/containers/${enc(host)}/${enc(ref)}`, {}, ContainerDetail);
  }

  events(query: Partial<EventsQuery>): Promise<Answer<EventsPage>> {
    return this.get("/events", query, EventsPage);
  }

  restart(
    host: string,
    ref: string,
    body: { reason?: string; stopTimeoutSeconds?: number },
    idempotencyKey?: string,
  ): Promise<Answer<RestartResult>> {
    return this.post(
      `/containers/${enc(host)}/${enc(ref)}/restart`,
      body,
      RestartResult,
      idempotencyKey === undefined ? {} : { "idempotency-key": idempotencyKey },
    );
  }

  release(
    host: string,
    ref: string,
    body: { reason?: string },
  ): Promise<Answer<z.infer<typeof ReleaseResult>>> {
    return this.post(`/containers/${enc(host)}/${enc(ref)}/release`, body, ReleaseResult);
  }

  /** Switches healing off (`enabled: false`) or back on for one container, by its name. */
  setHealing(
    host: string,
    ref: string,
    body: { enabled: boolean; reason?: string },
  ): Promise<Answer<HealingSwitchResult>> {
    return this.write(
      "PUT",
      `/containers/${enc(host)}/${enc(ref)}/healing`,
      body,
      HealingSwitchResult,
    );
  }

  setPaused(paused: boolean, reason?: string): Promise<Answer<z.infer<typeof PauseResult>>> {
    return this.post(
      paused ? "/pause" : "/resume",
      reason === undefined ? {} : { reason },
      PauseResult,
    );
  }

  /**
   * Opens `/events/stream`. Resolves once the gateway has answered 200 with the headers; the
   * body is the caller's to read (cli/sse.ts), and to end with `close()` or `signal`.
   */
  async openEventStream(
    filter: StreamFilter,
    lastEventId: number | undefined,
    signal: AbortSignal,
  ): Promise<EventStream> {
    const headers: Record<string, string> = { accept: "text/event-stream" };
    if (lastEventId !== undefined) headers["last-event-id"] = String(lastEventId);
    // Only the wait for the headers has a deadline: the signal given to fetch also governs the
    // body, and a live stream may rightly be quiet for long.
    const controller = new AbortController();
    const stop = () => controller.abort(signal.reason);
    signal.addEventListener("abort", stop, { once: true });
    const timer = setTimeout(
      () => controller.abort(new DOMException("no answer in time", "TimeoutError")),
      this.timeoutMs,
    );
    let res: Response;
    try {
      res = await this.send(
        "GET",
        this.path("/events/stream", filter),
        undefined,
        headers,
        controller.signal,
      );
      if (!res.ok) throw await this.errorOf("GET /events/stream", res, controller.signal);
    } catch (error) {
      signal.removeEventListener("abort", stop);
      throw error;
    } finally {
      clearTimeout(timer);
    }
    // The abort listener stays while the body is read, so that Ctrl-C ends a pending read at
    // once; close() removes it, or every reconnect would leave one behind.
    const close = async () => {
      signal.removeEventListener("abort", stop);
      controller.abort();
    };
    const type = res.headers.get("content-type") ?? "";
    if (!type.startsWith("text/event-stream") || !res.body) {
      await close();
      throw new GatewayError(
        "FLEETHEAL_ERR_BAD_RESPONSE",
        `GET /events/stream answered ${type || "no content type"}, not an event stream`,
        res.status,
      );
    }
    return { body: res.body, close };
  }

  private get<S extends z.ZodType>(
    path: string,
    query: Record<string, unknown>,
    schema: S,
  ): Promise<Answer<z.infer<S>>> {
    return this.call("GET", this.path(path, query), undefined, {}, schema, this.timeoutMs);
  }

  private post<S extends z.ZodType>(
    path: string,
    body: unknown,
    schema: S,
    headers: Record<string, string> = {},
  ): Promise<Answer<z.infer<S>>> {
    return this.write("POST", path, body, schema, headers);
  }

  /** A request with a JSON body: an action, with the actions' longer deadline. */
  private write<S extends z.ZodType>(
    method: "POST" | "PUT",
    path: string,
    body: unknown,
    schema: S,
    headers: Record<string, string> = {},
  ): Promise<Answer<z.infer<S>>> {
    return this.call(
      method,
      path,
      JSON.stringify(body),
      { "content-type": "application/json", ...headers },
      schema,
      Math.max(this.timeoutMs, ACTION_TIMEOUT_MS),
    );
  }

  private path(path: string, query: Record<string, unknown>): string {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value === undefined) continue;
      params.set(key, typeof value === "boolean" ? (value ? "1" : "0") : String(value));
    }
    const search = params.toString();
    return search ? `${path}?${search}` : path;
  }

  private async call<S extends z.ZodType>(
    method: string,
    path: string,
    body: string | undefined,
    headers: Record<string, string>,
    schema: S,
    timeoutMs: number,
  ): Promise<Answer<z.infer<S>>> {
    const what = `${method} ${path.split("?")[0]}`;
    const deadline = AbortSignal.timeout(timeoutMs);
    const signal = this.signal ? AbortSignal.any([this.signal, deadline]) : deadline;
    const res = await this.send(
      method,
      path,
      body,
      { accept: "application/json", ...headers },
      signal,
    );
    if (!res.ok) throw await this.errorOf(what, res, signal);
    const text = await readText(res, what, signal);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new GatewayError(
        "FLEETHEAL_ERR_BAD_RESPONSE",
        `${what} answered ${res.status} with a body that is not JSON: ${snippet(text)}`,
        res.status,
      );
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      throw new GatewayError(
        "FLEETHEAL_ERR_BAD_RESPONSE",
        `${what} answered ${res.status} with a body that is not the API's (is ${this.url} a fleetheal gateway of this version?): ${issues(parsed.error)}`,
        res.status,
      );
    }
    return { value: parsed.data, json };
  }

  private async send(
    method: string,
    path: string,
    body: string | undefined,
    headers: Record<string, string>,
    signal: AbortSignal,
  ): Promise<Response> {
    const all: Record<string, string> = { "user-agent": `fleetheal-cli/${VERSION}`, ...headers };
    if (this.token !== undefined) all.authorization = `Bearer ${this.token}`;
    try {
      return await this.fetchFn(`${this.url}${path}`, { method, headers: all, body, signal });
    } catch (error) {
      throw transportError(`${method} ${path.split("?")[0]}`, this.url, error, signal);
    }
  }

  /** The API's own error, or a description of whatever answered instead. */
  private async errorOf(what: string, res: Response, signal?: AbortSignal): Promise<GatewayError> {
    const text = await readText(res, what, signal).catch(() => "");
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    const body = ApiErrorBody.safeParse(json);
    if (body.success) {
      const { code, message, details } = body.data.error;
      return new GatewayError(code, hint(code, message, this.token), res.status, details);
    }
    return new GatewayError(
      "FLEETHEAL_ERR_HTTP",
      `${what} answered HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ""}, not in the API's error format${text ? `: ${snippet(text)}` : ""}`,
      res.status,
    );
  }
}

/** Reading the body can fail after the headers: a reset, or the deadline. */
async function readText(res: Response, what: string, signal?: AbortSignal): Promise<string> {
  try {
    return await res.text();
  } catch (error) {
    throw transportError(what, res.url, error, signal);
  }
}

function enc(segment: string): string {
  return encodeURIComponent(segment);
}
