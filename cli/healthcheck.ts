import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { describeError } from "../common/errors.js";
import type { Stoppable } from "../common/lifecycle.js";

// `fleetheal healthcheck`: the container image's HEALTHCHECK. It answers "is this container's
// role alive and able to do its work", and it does so without NATS: with per-host credentials
// (docs/SECURITY.md) a role may not publish `$SRV.PING`, `$SRV` does not cross NATS accounts
// anyway (the host snapshot carries an agent's counters), and a NATS outage is NATS's own
// healthcheck's business, not a reason to call every agent broken. So:
// - gateway: GET /livez on the local port, which the gateway answers while it serves HTTP.
// - up: the same, and the Docker ping below: `up` in a container is its own agent, and a
//   container without the socket's group would serve /livez while healing nothing.
// - agent and handler serve no HTTP. Once started (connected to NATS, consumers bound, the agent
//   reading Docker events) they refresh a heartbeat file from their event loop, and the check
//   wants it fresh: a process that is still starting, has died or is wedged fails.
// - agent: also a Docker ping through the agent's own DOCKER_HOST, from the same container,
//   user and groups, since a socket the agent cannot open (the wrong DOCKER_GID) is the
//   commonest mistake in a compose deployment and the agent cannot heal anything without it.

/** The roles a healthcheck knows how to judge. */
export const PROBED_ROLES = ["agent", "handler", "gateway", "up"] as const;
export type ProbedRole = (typeof PROBED_ROLES)[number];

/** How often a running agent or handler refreshes its heartbeat. */
export const HEARTBEAT_INTERVAL_MS = 5_000;
/**
 * A heartbeat older than this fails the check: six missed beats, so that a loaded host (two
 * cores shared with everything else) does not flap, while a wedged event loop is still found.
 */
export const HEARTBEAT_STALE_MS = 30_000;
/** Each network probe (gateway HTTP, Docker ping) gets this long. */
const PROBE_TIMEOUT_MS = 3_000;

/** The heartbeat file of `role`; the container's tmpdir, shared by the role and the check. */
export function heartbeatFile(role: "agent" | "handler", dir = tmpdir()): string {
  return join(dir, `fleetheal-${role}.heartbeat`);
}

interface Heartbeat {
  pid: number;
  /** Epoch milliseconds of the last beat. */
  at: number;
}

/**
 * Keeps `role`'s heartbeat file fresh while `running` runs, and removes it when stopped. The
 * first beat is written at once. A file that cannot be written (a read-only /tmp) is reported
 * once on stderr and does not stop the role: only the healthcheck depends on it.
 */
export function keepHeartbeat(
  role: "agent" | "handler",
  running: Stoppable,
  opts: { dir?: string; intervalMs?: number; now?: () => number } = {},
): Stoppable {
  const file = heartbeatFile(role, opts.dir);
  const now = opts.now ?? Date.now;
  let warned = false;
  const beat = (): void => {
    const body: Heartbeat = { pid: process.pid, at: now() };
    // Written aside and renamed, so the check never reads half a file.
    const partial = `${file}.${process.pid}`;
    try {
      writeFileSync(partial, JSON.stringify(body));
      renameSync(partial, file);
    } catch (error) {
      if (!warned) {
        warned = true;
        process.stderr.write(
          `fleetheal: cannot write the heartbeat ${file} (${describeError(error)}); \`fleetheal healthcheck\` will report this ${role} as unhealthy\n`,
        );
      }
    }
  };
  beat();
  const timer = setInterval(beat, opts.intervalMs ?? HEARTBEAT_INTERVAL_MS);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      rmSync(file, { force: true });
      await running.stop();
    },
  };
}

/** The outcome of one check, with the line Docker keeps in `docker inspect`'s health log. */
export interface HealthResult {
  healthy: boolean;
  message: string;
}

/** What {@link checkHealth} reads and calls; tests replace them. */
export interface HealthDeps {
  env: NodeJS.ProcessEnv;
  dir?: string;
  now?: () => number;
  /** Whether a process id is alive. */
  isAlive?: (pid: number) => boolean;
  /** GET a URL and return the status and JSON body. */
  getJson?: (url: string) => Promise<{ status: number; body: unknown }>;
  /** Ping the Docker engine that DOCKER_HOST names (the agent's engine). */
  pingDocker?: () => Promise<void>;
}

/** Judges whether `role`, running in this container, is healthy. */
export async function checkHealth(role: ProbedRole, deps: HealthDeps): Promise<HealthResult> {
  if (role === "gateway") return checkGateway(deps);
  const first = role === "up" ? await checkGateway(deps) : checkHeartbeat(role, deps);
  if (!first.healthy || role === "handler") return first;
  const docker = await checkDocker(role, deps);
  return docker.healthy
    ? { healthy: true, message: `${first.message}; ${docker.message}` }
    : docker;
}

/** A Docker ping through DOCKER_HOST, as the agent (on its own or in `up`) connects. */
async function checkDocker(role: "agent" | "up", deps: HealthDeps): Promise<HealthResult> {
  const dockerHost = deps.env.DOCKER_HOST || "unix:///var/run/docker.sock";
  try {
    await withTimeout((deps.pingDocker ?? pingDocker)(), `Docker at ${dockerHost}`);
  } catch (error) {
    const denied = /EACCES|permission denied/i.test(describeError(error));
    return {
      healthy: false,
      message: `${role} cannot reach Docker at ${dockerHost}: ${describeError(error)}${
        denied
          ? " (the container needs the socket's group, `stat -c %g /var/run/docker.sock`: DOCKER_GID with compose, --group-add with docker run)"
          : ""
      }`,
    };
  }
  return { healthy: true, message: `Docker answers at ${dockerHost}` };
}

function checkHeartbeat(role: "agent" | "handler", deps: HealthDeps): HealthResult {
  const file = heartbeatFile(role, deps.dir);
  let beat: Heartbeat;
  try {
    beat = JSON.parse(readFileSync(file, "utf8")) as Heartbeat;
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === "ENOENT";
    return {
      healthy: false,
      message: missing
        ? `no heartbeat in ${file}: the ${role} has not started (is NATS reachable?)`
        : `unreadable heartbeat ${file}: ${describeError(error)}`,
    };
  }
  const ageMs = (deps.now ?? Date.now)() - beat.at;
  if (!(deps.isAlive ?? isAlive)(beat.pid)) {
    return { healthy: false, message: `the ${role} (pid ${beat.pid}) is no longer running` };
  }
  if (!(ageMs <= HEARTBEAT_STALE_MS)) {
    return {
      healthy: false,
      message: `the ${role} (pid ${beat.pid}) last beat ${Math.round(ageMs / 1000)} s ago: its event loop is stuck`,
    };
  }
  return {
    healthy: true,
    message: `${role} (pid ${beat.pid}) alive, last beat ${Math.round(ageMs / 1000)} s ago`,
  };
}

async function checkGateway(deps: HealthDeps): Promise<HealthResult> {
  // The gateway's own validation, so the check probes exactly where the gateway listens.
  const { loadGatewayConfig } = await import("../gateway/config.js");
  let port: number;
  let host: string;
  try {
    ({ port, host } = loadGatewayConfig(deps.env));
  } catch (error) {
    return { healthy: false, message: describeError(error) };
  }
  if (port === 0) {
    return {
      healthy: false,
      message: "FLEETHEAL_GATEWAY_PORT=0 picks a random port: the healthcheck needs a fixed one",
    };
  }
  // A wildcard bind answers on loopback; a specific address only on itself.
  const target =
    host === "0.0.0.0" || host === "::" || host === ""
      ? "127.0.0.1"
      : host.includes(":")
        ? `[${host}]`
        : host;
  const url = `http://${target}:${port}/livez`;
  try {
    const { status, body } = await withTimeout((deps.getJson ?? getJson)(url), url);
    const live = body as { status?: unknown; nats?: unknown };
    if (status !== 200 || live.status !== "ok") {
      return { healthy: false, message: `${url} answered ${status}: ${JSON.stringify(body)}` };
    }
    return { healthy: true, message: `${url} ok (NATS ${String(live.nats)})` };
  } catch (error) {
    // fetch hides the reason (ECONNREFUSED…) in its cause.
    const cause = (error as { cause?: unknown }).cause;
    const why = cause === undefined ? describeError(error) : describeError(cause);
    return { healthy: false, message: `${url}: ${why}` };
  }
}

/**
 * The role of a fleetheal command line (`node /app/bin/fleetheal.js agent`, or `fleetheal
 * handler`): the word after the program. Undefined for anything else.
 */
export function roleOfCommandLine(argv: string[]): ProbedRole | undefined {
  const at = argv.findIndex((arg) => /^fleetheal(\.js)?$/.test(basename(arg)));
  const role = at >= 0 ? argv[at + 1] : undefined;
  return PROBED_ROLES.find((r) => r === role);
}

/**
 * `fleetheal healthcheck [role]`: judges `named`, or the role of the container's main process;
 * resolves with the exit code, 0 healthy or 1, with one line saying why.
 */
export async function healthcheckCommand(
  named: string | undefined,
  io: { out: (line: string) => void; err: (line: string) => void },
  deps: HealthDeps = { env: process.env },
): Promise<number> {
  const role = named === undefined ? mainProcessRole() : PROBED_ROLES.find((r) => r === named);
  if (!role) {
    io.err(
      named === undefined
        ? "fleetheal healthcheck: PID 1 is not a fleetheal role; name one: agent, handler, gateway or up"
        : `fleetheal healthcheck: unknown role '${named}'; one of agent, handler, gateway, up`,
    );
    return 1;
  }
  const result = await checkHealth(role, deps);
  (result.healthy ? io.out : io.err)(
    `${result.healthy ? "healthy" : "unhealthy"}: ${result.message}`,
  );
  return result.healthy ? 0 : 1;
}

function mainProcessRole(): ProbedRole | undefined {
  try {
    return roleOfCommandLine(readFileSync("/proc/1/cmdline", "utf8").split("\0"));
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, it just is not ours to signal.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function getJson(url: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON: reported as text.
  }
  return { status: res.status, body };
}

// The agent's own client construction (`new Dockerode()`: DOCKER_HOST, DOCKER_TLS_VERIFY,
// DOCKER_CERT_PATH), so the check reaches exactly what the agent reaches.
async function pingDocker(): Promise<void> {
  const { default: Docker } = await import("dockerode");
  await new Docker().ping();
}

async function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`${what} did not answer within ${PROBE_TIMEOUT_MS} ms`)),
          PROBE_TIMEOUT_MS,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
