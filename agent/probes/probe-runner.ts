// Runs one label probe once. Never throws: every failure is a result with a readable output.

import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { connect, isIP } from "node:net";
import { healthOutput } from "../../common/health-output.js";
import { MAX_HEALTH_OUTPUT, type ProbeResultKind } from "../../contracts/index.js";
import type { DockerEngine } from "../docker-engine.js";
import { explicitHost, type ProbeAccess, resolveProbeHost } from "./probe-access.js";
import { formatDuration, type ProbeSpec } from "./probe-spec.js";

/** Most output kept from one probe, like the snapshot's `lastHealthOutput`. */
export const MAX_PROBE_OUTPUT = MAX_HEALTH_OUTPUT;

export const NO_ADDRESS_ERROR = "no address to probe: give host:port";

export interface ProbeTarget {
  containerId: string;
  /** The container's own addresses, as Docker reports them. */
  ipAddresses: string[];
  /** Docker's HostConfig.NetworkMode. */
  networkMode?: string;
}

export interface ProbeResult {
  ok: boolean;
  output: string;
  /**
   * Why the target was refused (FLEETHEAL_PROBE_ALLOW), naming the label: the probe contacted
   * nothing, and its result says nothing about the container's health.
   */
  refused?: string;
  /**
   * The probe could not be carried out (Docker's exec failed, no address to probe, the name did
   * not resolve in time): a failure for the container's health, counted apart for the operator.
   */
  error?: true;
}

/**
 * How a probe run that reached its target ended, as the agent counts it (PROBE_RESULTS of
 * contracts/host-snapshot.ts; a refused target is counted where it is refused).
 */
export function probeResultKind(result: ProbeResult): Exclude<ProbeResultKind, "refused"> {
  if (result.error) return "error";
  return result.ok ? "pass" : "fail";
}

/**
 * The address probed when the label gives only a port: the container's first own address, or
 * loopback for a container on the host's network. Never anything else.
 */
export function defaultProbeAddress(target: Omit<ProbeTarget, "containerId">): string | undefined {
  const own = target.ipAddresses.find((a) => a !== "");
  if (own !== undefined) return own;
  return target.networkMode === "host" ? "127.0.0.1" : undefined;
}

/** Whether `spec` needs {@link defaultProbeAddress} (it gives no host of its own). */
export function needsDefaultAddress(spec: ProbeSpec): boolean {
  return (
    (spec.kind === "tcp" && spec.host === undefined) ||
    (spec.kind === "http" && spec.url === undefined)
  );
}

/** What {@link runProbe} needs besides the probe and its target. */
export interface ProbeRunOptions {
  docker: Pick<DockerEngine, "exec">;
  /** Which explicit hosts the probe may reach (FLEETHEAL_PROBE_ALLOW). */
  access: ProbeAccess;
  /** Aborts the probe (it then fails with "aborted"). */
  signal?: AbortSignal;
}

/**
 * Runs `spec` once against the container. tcp: a connect within the timeout passes; http: a GET
 * answered 200..399 within the timeout passes (redirects are not followed); exec: `sh -c` in the
 * container exits 0 within the timeout. An explicit host is resolved once, checked against the
 * allow list, and connected to at the checked address; a host the list does not allow is not
 * contacted and the result carries `refused`.
 */
export async function runProbe(
  spec: ProbeSpec,
  target: ProbeTarget,
  options: ProbeRunOptions,
): Promise<ProbeResult> {
  const { docker, signal } = options;
  try {
    if (signal?.aborted) return { ok: false, output: "aborted" };
    if (spec.kind === "exec") {
      const result = await runExec(
        spec.command,
        spec.timeoutMs,
        target.containerId,
        docker,
        signal,
      );
      return { ...result, output: clip(result.output) };
    }
    const place = await connectTo(spec, target, options);
    if ("result" in place) return { ...place.result, output: clip(place.result.output) };
    let result: ProbeResult;
    if (spec.kind === "tcp") {
      result = await runTcp(place, spec.port, spec.timeoutMs, signal);
    } else if (spec.url === undefined) {
      const authority = `${hostForUrl(place.address)}:${spec.port}`;
      const url = new URL(`http://${authority}${spec.path}`);
      result = await runHttp(url, place, spec.timeoutMs, signal);
    } else {
      result = await runHttp(new URL(spec.url), place, spec.timeoutMs, signal);
    }
    return { ok: result.ok, output: clip(result.output) };
  } catch (error) {
    return { ok: false, output: clip(describe(error)), error: true };
  }
}

/** Where a tcp or http probe connects: a checked address (and the name it was resolved from). */
interface Place {
  address: string;
  name?: string;
}

async function connectTo(
  spec: ProbeSpec,
  target: ProbeTarget,
  { access, signal }: ProbeRunOptions,
): Promise<Place | { result: ProbeResult }> {
  const host = explicitHost(spec);
  if (host === undefined) {
    // The `:port` forms: the container's own address, as Docker reports it.
    const address = defaultProbeAddress(target);
    return address === undefined
      ? { result: { ok: false, output: NO_ADDRESS_ERROR, error: true } }
      : { address };
  }
  const resolving = resolveProbeHost(spec, host, access);
  const checked = await withinTimeout(resolving, spec.timeoutMs, signal);
  if (checked === "aborted") return { result: { ok: false, output: "aborted" } };
  if (checked === "timeout") {
    const after = formatDuration(spec.timeoutMs);
    return {
      result: { ok: false, output: `resolving ${host} timed out after ${after}`, error: true },
    };
  }
  if ("refused" in checked) {
    return { result: { ok: false, output: checked.refused, refused: checked.refused } };
  }
  return isIP(host) === 0 ? { address: checked.address, name: host } : { address: checked.address };
}

/** `work`'s value, or why it was not waited for (the resolver cannot be cancelled). */
async function withinTimeout<T>(
  work: Promise<T>,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<T | "timeout" | "aborted"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  const stop = new Promise<"timeout" | "aborted">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), timeoutMs);
    onAbort = () => resolve("aborted");
    signal?.addEventListener("abort", onAbort, { once: true });
  });
  try {
    return await Promise.race([work, stop]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener("abort", onAbort);
  }
}

async function runExec(
  command: string[],
  timeoutMs: number,
  containerId: string,
  docker: Pick<DockerEngine, "exec">,
  signal: AbortSignal | undefined,
): Promise<ProbeResult> {
  // The engine's exec cannot be cancelled; an abort stops waiting for it.
  const exec = docker.exec(containerId, command, timeoutMs).then(
    (r): ProbeResult =>
      r.exitCode === -1
        ? {
            ok: false,
            output: `probe timed out after ${formatDuration(timeoutMs)}${r.output ? `: ${r.output}` : ""}`,
          }
        : {
            ok: r.exitCode === 0,
            output: r.output.trim() || (r.exitCode === 0 ? "" : `exit code ${r.exitCode}`),
          },
    (error: unknown): ProbeResult => ({
      ok: false,
      output: `exec failed: ${describe(error)}`,
      error: true,
    }),
  );
  if (!signal) return exec;
  return new Promise<ProbeResult>((resolve) => {
    const onAbort = () => resolve({ ok: false, output: "aborted" });
    signal.addEventListener("abort", onAbort, { once: true });
    void exec.then((r) => {
      signal.removeEventListener("abort", onAbort);
      resolve(r);
    });
  });
}

function runTcp(
  place: Place,
  port: number,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<ProbeResult> {
  const where = describePlace(place, port);
  return new Promise<ProbeResult>((resolve) => {
    const socket = connect({ host: place.address, port });
    let settled = false;
    const finish = (result: ProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      socket.destroy();
      resolve(result);
    };
    const onAbort = () => finish({ ok: false, output: "aborted" });
    const timer = setTimeout(
      () =>
        finish({
          ok: false,
          output: `connect to ${where} timed out after ${formatDuration(timeoutMs)}`,
        }),
      timeoutMs,
    );
    signal?.addEventListener("abort", onAbort, { once: true });
    socket.once("connect", () => finish({ ok: true, output: `connected to ${where}` }));
    socket.on("error", (error) => finish({ ok: false, output: describe(error) }));
  });
}

/**
 * One GET of `url`, sent to the checked address (the URL's own host goes in the Host header and,
 * for https, in TLS's server name and certificate check). The answer's body is not read, and a
 * redirect is not followed: node:http never follows one, so a Location cannot lead the probe
 * anywhere the allow list did not check.
 */
function runHttp(
  url: URL,
  place: Place,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<ProbeResult> {
  const timeout = AbortSignal.timeout(timeoutMs);
  const combined = signal ? AbortSignal.any([timeout, signal]) : timeout;
  const tls = url.protocol === "https:";
  const shown = url.href;
  return new Promise<ProbeResult>((resolve) => {
    const req = (tls ? httpsRequest : httpRequest)({
      host: place.address,
      port: url.port === "" ? (tls ? 443 : 80) : Number(url.port),
      path: `${url.pathname}${url.search}`,
      method: "GET",
      headers: { host: url.host, "user-agent": "fleetheal-probe", accept: "*/*" },
      ...(tls && place.name !== undefined ? { servername: place.name } : {}),
      // One connection per probe: nothing pooled outlives it.
      agent: false,
      signal: combined,
    });
    req.on("response", (res) => {
      const status = res.statusCode ?? 0;
      // The body is not needed; dropping it frees the connection.
      res.on("error", () => {});
      res.destroy();
      resolve({ ok: status >= 200 && status <= 399, output: `HTTP ${status}` });
    });
    // Kept for the request's whole life: an abort after the answer must not go unhandled.
    req.on("error", (error) => {
      if (signal?.aborted) resolve({ ok: false, output: "aborted" });
      else if (timeout.aborted) {
        resolve({ ok: false, output: `GET ${shown} timed out after ${formatDuration(timeoutMs)}` });
      } else resolve({ ok: false, output: describe(error) });
    });
    req.end();
  });
}

/** `host:port`, with the address connected to when the label named the host. */
function describePlace(place: Place, port: number): string {
  const at = `${hostForUrl(place.address)}:${port}`;
  return place.name === undefined ? at : `${place.name}:${port} (${place.address})`;
}

function hostForUrl(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}

/** An error's message, with its cause (fetch reports "fetch failed" and the reason as cause). */
function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? `: ${error.cause.message}` : "";
    return `${error.message}${cause}`;
  }
  return String(error);
}

/**
 * A probe's output as every health check output is published (common/health-output.ts): its
 * last lines, control characters escaped, so the probe's view, the snapshot and events agree.
 */
function clip(output: string): string {
  return healthOutput(output.trimStart()) ?? "";
}
