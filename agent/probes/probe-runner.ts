// Runs one label probe once. Never throws: every failure is a result with a readable output.

import { connect } from "node:net";
import { healthOutput } from "../../common/health-output.js";
import { MAX_HEALTH_OUTPUT } from "../../contracts/index.js";
import type { DockerEngine } from "../docker-engine.js";
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

/**
 * Runs `spec` once against the container. tcp: a connect within the timeout passes; http: a GET
 * answered 200..399 within the timeout passes (redirects are not followed); exec: `sh -c` in the
 * container exits 0 within the timeout. `signal` aborts the probe (it then fails with "aborted").
 */
export async function runProbe(
  spec: ProbeSpec,
  target: ProbeTarget,
  docker: Pick<DockerEngine, "exec">,
  signal?: AbortSignal,
): Promise<ProbeResult> {
  try {
    if (signal?.aborted) return { ok: false, output: "aborted" };
    let result: ProbeResult;
    switch (spec.kind) {
      case "exec":
        result = await runExec(spec.command, spec.timeoutMs, target.containerId, docker, signal);
        break;
      case "tcp": {
        const host = spec.host ?? defaultProbeAddress(target);
        result =
          host === undefined
            ? { ok: false, output: NO_ADDRESS_ERROR }
            : await runTcp(host, spec.port, spec.timeoutMs, signal);
        break;
      }
      case "http": {
        let url = spec.url;
        if (url === undefined) {
          const host = defaultProbeAddress(target);
          if (host !== undefined) url = `http://${hostForUrl(host)}:${spec.port}${spec.path}`;
        }
        result =
          url === undefined
            ? { ok: false, output: NO_ADDRESS_ERROR }
            : await runHttp(url, spec.timeoutMs, signal);
        break;
      }
      default:
        result = { ok: false, output: "unknown probe kind" };
    }
    return { ok: result.ok, output: clip(result.output) };
  } catch (error) {
    return { ok: false, output: clip(describe(error)) };
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
    (error: unknown): ProbeResult => ({ ok: false, output: `exec failed: ${describe(error)}` }),
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
  host: string,
  port: number,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<ProbeResult> {
  const where = `${hostForUrl(host)}:${port}`;
  return new Promise<ProbeResult>((resolve) => {
    const socket = connect({ host, port });
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
    socket.once("error", (error) => finish({ ok: false, output: describe(error) }));
  });
}

async function runHttp(
  url: string,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<ProbeResult> {
  const timeout = AbortSignal.timeout(timeoutMs);
  const combined = signal ? AbortSignal.any([timeout, signal]) : timeout;
  try {
    const res = await fetch(url, {
      method: "GET",
      redirect: "manual",
      signal: combined,
      headers: { "user-agent": "fleetheal-probe", accept: "*/*" },
    });
    // The body is not needed; dropping it frees the connection.
    await res.body?.cancel().catch(() => {});
    return { ok: res.status >= 200 && res.status <= 399, output: `HTTP ${res.status}` };
  } catch (error) {
    if (signal?.aborted) return { ok: false, output: "aborted" };
    if (timeout.aborted) {
      return { ok: false, output: `GET ${url} timed out after ${formatDuration(timeoutMs)}` };
    }
    return { ok: false, output: describe(error) };
  }
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
