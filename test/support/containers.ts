// Test containers with a controllable healthcheck, and a recorder of Docker's own event stream
// that serves as the tests' independent witness of what happened to containers.

import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import type Docker from "dockerode";
import { LIFECYCLE_ACTIONS } from "../../contracts/index.js";
import { ensureBusyboxImage, TEST_IMAGE } from "./busybox-image.js";
import type { DockerEngine } from "./dockerd.js";
import { describeError, waitFor } from "./wait.js";

const MS = 1_000_000; // Docker API durations are in nanoseconds.

export interface TestContainerOptions {
  name: string;
  labels?: Record<string, string>;
  /** Create /tmp/healthy at every start (unless /tmp/broken exists). Default true. */
  healthy?: boolean;
  /** Attach the `test -f /tmp/healthy` healthcheck. Default true. */
  healthcheck?: boolean;
  /** A shell command (`CMD-SHELL`) as the healthcheck instead, for a check that prints. */
  healthcheckCommand?: string;
  /** Exit on its own this long after each start, as a crashing service would. */
  exitAfterMs?: number;
  /**
   * Healthcheck interval (default 500 ms). Many containers on two cores need a longer one, or
   * their own checks time out.
   */
  healthIntervalMs?: number;
  /**
   * Healthcheck timeout (default the interval, at least 1 s). A check that only times out under
   * load turns the container unhealthy on its own; a test that must cause every trouble itself
   * gives a long one.
   */
  healthTimeoutMs?: number;
  /** Exit code used with exitAfterMs. Default 1. */
  exitCode?: number;
  /** Another name for the test image (see tagTestImage), for tests that group by image. */
  image?: string;
  /** More of the create body (volumes, binds, a network mode); its HostConfig is merged in. */
  create?: Partial<Docker.ContainerCreateOptions>;
}

/**
 * Creates and starts a {@link TEST_IMAGE} container with NetworkMode "none", StopTimeout 2 and a
 * healthcheck `test -f /tmp/healthy` (interval 500 ms, timeout 1 s, 1 retry). Imports the image
 * into the engine if needed.
 */
export async function runTestContainer(
  engine: DockerEngine,
  opts: TestContainerOptions,
): Promise<{ id: string; name: string }> {
  await ensureBusyboxImage(engine);
  const container = await engine.docker.createContainer({
    name: opts.name,
    Image: opts.image ?? TEST_IMAGE,
    Cmd: ["sh", "-c", startScript(opts)],
    Labels: opts.labels ?? {},
    StopTimeout: 2,
    Healthcheck:
      (opts.healthcheck ?? true)
        ? {
            Test: opts.healthcheckCommand
              ? ["CMD-SHELL", opts.healthcheckCommand]
              : ["CMD", "test", "-f", "/tmp/healthy"],
            Interval: (opts.healthIntervalMs ?? 500) * MS,
            Timeout: (opts.healthTimeoutMs ?? Math.max(1_000, opts.healthIntervalMs ?? 0)) * MS,
            Retries: 1,
            StartPeriod: 0,
          }
        : undefined,
    ...opts.create,
    HostConfig: { NetworkMode: "none", ...opts.create?.HostConfig },
  });
  await container.start();
  return { id: container.id, name: opts.name };
}

// PID 1 gets no default signal dispositions, so SIGTERM is ignored unless trapped; and a shell
// runs traps only between commands, hence `sleep & wait`, which the signal interrupts at once.
function startScript(opts: TestContainerOptions): string {
  const lines = ["trap 'exit 0' TERM"];
  if (opts.healthy ?? true) {
    // The file lives in the container's writable layer and so survives restarts; recreating it
    // at start is what lets a restart repair the container, unless it is broken persistently.
    lines.push("if [ -f /tmp/broken ]; then rm -f /tmp/healthy; else touch /tmp/healthy; fi");
  } else {
    lines.push("rm -f /tmp/healthy");
  }
  if (opts.exitAfterMs !== undefined) {
    lines.push(`sleep ${(opts.exitAfterMs / 1000).toFixed(3)} & wait $!`);
    lines.push(`exit ${opts.exitCode ?? 1}`);
  }
  lines.push("while :; do sleep 1 & wait $!; done");
  return lines.join("\n");
}

/** Removes /tmp/healthy so the next healthcheck fails. */
export function makeUnhealthy(engine: DockerEngine, id: string): Promise<void> {
  return execOk(engine, id, ["rm", "-f", "/tmp/healthy"]);
}

/**
 * Makes the container unhealthy and waits, on Docker's own event stream, for its
 * `health_status: unhealthy` and then for a `restart` after it: a heal as Docker saw it. With
 * `action: "kill"`, for the restart's first SIGTERM instead: a heal that has begun.
 */
export async function makeUnhealthyUntilRestarted(
  engine: DockerEngine,
  recorder: DockerEventRecorder,
  id: string,
  opts: { timeoutMs: number; message: string; action?: "restart" | "kill" },
): Promise<DockerEventRecord> {
  await makeUnhealthy(engine, id);
  const unhealthy = await recorder.waitFor(
    (e) => e.id === id && e.action === "health_status: unhealthy",
    20_000,
    "container never turned unhealthy",
  );
  return recorder.waitFor(
    (e) =>
      e.id === id && e.action === (opts.action ?? "restart") && e.timeNano > unhealthy.timeNano,
    opts.timeoutMs,
    opts.message,
  );
}

/** Creates /tmp/healthy so the next healthcheck passes. */
export function makeHealthy(engine: DockerEngine, id: string): Promise<void> {
  return execOk(engine, id, ["touch", "/tmp/healthy"]);
}

/** Makes the container unhealthy in a way a restart does not repair. */
export function breakPersistently(engine: DockerEngine, id: string): Promise<void> {
  return execOk(engine, id, ["sh", "-c", "touch /tmp/broken && rm -f /tmp/healthy"]);
}

/** Runs a command in a running container, waits for it and throws unless it exits 0. */
export async function execOk(engine: DockerEngine, id: string, cmd: string[]): Promise<void> {
  await execOutput(engine, id, cmd);
}

/** Like {@link execOk}, and returns the command's output (stdout and stderr). */
export async function execOutput(engine: DockerEngine, id: string, cmd: string[]): Promise<string> {
  const exec = await engine.docker
    .getContainer(id)
    .exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({ hijack: true, stdin: false });
  const output = await new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    const done = (): void => resolve(demux(Buffer.concat(chunks)));
    stream.on("data", (b: Buffer) => chunks.push(b));
    stream.once("error", reject);
    stream.once("end", done);
    stream.once("close", done);
  });
  // The stream can end a moment before dockerd records the exit code.
  const info = await waitFor(
    async () => {
      const i = await exec.inspect();
      return i.Running ? undefined : i;
    },
    { timeoutMs: 10_000, message: `exec ${cmd.join(" ")} in ${id} did not finish` },
  );
  if (info.ExitCode !== 0) {
    throw new Error(`exec ${cmd.join(" ")} in ${id} exited ${info.ExitCode}: ${output.trim()}`);
  }
  return output;
}

/**
 * Runs a shell script in a new container of `image` (network none, `binds` mounted, the image's
 * user), waits for it, removes it and returns its output; throws unless it exits 0.
 */
export async function runScript(
  engine: DockerEngine,
  image: string,
  script: string,
  binds: string[] = [],
): Promise<string> {
  const container = await engine.docker.createContainer({
    Image: image,
    Entrypoint: ["sh", "-c"],
    Cmd: [script],
    HostConfig: { NetworkMode: "none", Binds: binds },
  });
  try {
    await container.start();
    const { StatusCode } = (await container.wait()) as { StatusCode: number };
    const text = await containerLogs(engine, container.id);
    if (StatusCode !== 0) throw new Error(`'${script}' in ${image} exited ${StatusCode}: ${text}`);
    return text;
  } finally {
    await container.remove({ force: true });
  }
}

/** Everything a container (without a TTY) wrote to stdout and stderr so far. */
export async function containerLogs(engine: DockerEngine, id: string): Promise<string> {
  const logs = await engine.docker.getContainer(id).logs({ stdout: true, stderr: true });
  return demux(logs);
}

// Without a TTY, exec output is framed: 1 byte stream id, 3 zero bytes, 4 bytes big-endian length.
function demux(buf: Buffer): string {
  const parts: Buffer[] = [];
  let offset = 0;
  while (offset + 8 <= buf.length) {
    const size = buf.readUInt32BE(offset + 4);
    parts.push(buf.subarray(offset + 8, offset + 8 + size));
    offset += 8 + size;
  }
  return Buffer.concat(parts).toString("utf8");
}

/** Polls inspect until the container's health status is `status`. */
export async function waitForHealth(
  engine: DockerEngine,
  id: string,
  status: "healthy" | "unhealthy" | "starting",
  timeoutMs: number,
): Promise<void> {
  let last = "unknown";
  await waitFor(
    async () => {
      const info = await engine.docker.getContainer(id).inspect();
      const health = info.State.Health;
      const lastLog = health?.Log?.at(-1);
      last = `${health?.Status ?? "no healthcheck"} (running=${info.State.Running}${
        lastLog ? `, last probe exit ${lastLog.ExitCode}` : ""
      })`;
      return health?.Status === status;
    },
    {
      timeoutMs,
      intervalMs: 100,
      message: () => `container ${id} on ${engine.name} not ${status}; last seen ${last}`,
    },
  );
}

/**
 * One incident of a healthy container, as Docker's own event stream shows it: its healthcheck is
 * made to fail, Docker reports it unhealthy, and whatever heals it (`healer`, for the message)
 * restarts it within `restartTimeoutMs`. Returns the two events, once the container is healthy
 * again.
 */
export async function healedOnce(
  engine: DockerEngine,
  recorder: DockerEventRecorder,
  id: string,
  healer: string,
  restartTimeoutMs: number,
): Promise<{ unhealthy: DockerEventRecord; restart: DockerEventRecord }> {
  await waitForHealth(engine, id, "healthy", 30_000);
  await makeUnhealthy(engine, id);
  const unhealthy = await recorder.waitFor(
    (e) => e.id === id && e.action === "health_status: unhealthy",
    30_000,
    "the container never turned unhealthy",
  );
  const restart = await recorder.waitFor(
    (e) => e.id === id && e.action === "restart" && e.timeNano > unhealthy.timeNano,
    restartTimeoutMs,
    `${healer} did not restart the unhealthy container`,
  );
  await waitForHealth(engine, id, "healthy", 30_000);
  return { unhealthy, restart };
}

export interface DockerEventRecord {
  /** e.g. "create", "start", "kill", "die", "health_status: unhealthy", "exec_start: sh -c …". */
  action: string;
  /** Container id. */
  id: string;
  /** Container name (from the event's attributes). */
  name: string;
  /** Exact event time; parsed from the raw text because it exceeds a double's precision. */
  timeNano: bigint;
  attributes: Record<string, string>;
}

export interface DockerEventRecorder extends AsyncDisposable {
  /** Container events in arrival order. */
  readonly events: DockerEventRecord[];
  /** Number of times the stream was reopened after dockerd went away. */
  readonly reconnects: number;
  /** Resolves with the first recorded event (past or future) matching `pred`. */
  waitFor(
    pred: (e: DockerEventRecord) => boolean,
    timeoutMs: number,
    message: string,
  ): Promise<DockerEventRecord>;
  count(pred: (e: DockerEventRecord) => boolean): number;
  close(): void;
}

interface RawEvent {
  Type?: string;
  Action?: string;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
  timeNano?: number;
}

/**
 * Records every container event of `engine`, from the moment this resolves until close().
 *
 * Returns only once the stream is live: dockerd flushes the response headers before it subscribes
 * the listener, so the recorder creates and removes a marker volume and waits to see it. If dockerd
 * restarts, the stream is reopened with `since` = the last event's time (Docker replays up to 256
 * buffered events) and duplicates are dropped; events while dockerd is down do not exist anyway.
 */
export async function recordDockerEvents(engine: DockerEngine): Promise<DockerEventRecorder> {
  const events: DockerEventRecord[] = [];
  const seen = new Set<string>();
  const listeners = new Set<() => void>();
  const markerName = `fh-marker-${randomBytes(6).toString("hex")}`;
  let markerSeen = false;
  let closed = false;
  let reconnects = 0;
  let stream: IncomingMessage | undefined;
  let lastTimeNano: bigint | undefined;
  let streamError: unknown;

  const handleLine = (line: string): void => {
    if (line.trim() === "") return;
    let raw: RawEvent;
    try {
      raw = JSON.parse(line) as RawEvent;
    } catch {
      return;
    }
    const nano = /"timeNano":(\d+)/.exec(line)?.[1];
    const timeNano = nano ? BigInt(nano) : BigInt(raw.timeNano ?? 0);
    if (raw.Type === "volume") {
      if (raw.Actor?.ID === markerName) markerSeen = true;
    } else if (raw.Type === "container") {
      const id = raw.Actor?.ID ?? "";
      const action = raw.Action ?? "";
      const key = `${timeNano}|${id}|${action}`;
      // A replay after reconnecting repeats events we already have.
      if (seen.has(key)) return;
      seen.add(key);
      const attributes = raw.Actor?.Attributes ?? {};
      events.push({ action, id, name: attributes.name ?? "", timeNano, attributes });
    }
    if (lastTimeNano === undefined || timeNano > lastTimeNano) lastTimeNano = timeNano;
    for (const l of listeners) l();
  };

  const open = async (since: string | undefined): Promise<void> => {
    // `since` goes out as a string: nanosecond precision does not survive a double.
    const options = {
      ...(since ? { since } : {}),
      filters: { type: ["container", "volume"] },
    } as unknown as Docker.GetEventsOptions;
    const s = (await engine.docker.getEvents(options)) as unknown as IncomingMessage;
    if (closed) {
      s.destroy();
      return;
    }
    stream = s;
    let buffered = "";
    s.setEncoding("utf8");
    s.on("data", (chunk: string) => {
      buffered += chunk;
      let nl = buffered.indexOf("\n");
      while (nl >= 0) {
        handleLine(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
        nl = buffered.indexOf("\n");
      }
    });
    const ended = (): void => {
      if (stream !== s) return;
      stream = undefined;
      if (buffered) handleLine(buffered);
      buffered = "";
      if (!closed) void reopen();
    };
    s.once("end", ended);
    s.once("close", ended);
    s.once("error", (err) => {
      streamError = err;
      ended();
    });
  };

  // Polls until dockerd is back (restart) and resumes from the last seen event. Gives up when the
  // recorder is closed or the engine is gone for good (stop() removes its root; a restart does not).
  const reopen = async (): Promise<void> => {
    while (!closed) {
      if (!existsSync(engine.root)) return;
      try {
        await engine.docker.ping();
        const since = lastTimeNano === undefined ? undefined : nanoToSince(lastTimeNano);
        await open(since);
        reconnects++;
        return;
      } catch (err) {
        streamError = err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  };

  const nowSince = nanoToSince(BigInt(Date.now()) * 1_000_000n);
  await open(nowSince);
  try {
    await engine.docker.createVolume({ Name: markerName });
    await waitFor(() => markerSeen, {
      timeoutMs: 10_000,
      intervalMs: 10,
      message: `event stream of ${engine.name} did not deliver the marker volume event`,
    });
    await engine.docker.getVolume(markerName).remove();
  } catch (err) {
    closed = true;
    stream?.destroy();
    throw err;
  }

  const recorder: DockerEventRecorder = {
    events,
    get reconnects() {
      return reconnects;
    },
    waitFor(pred, timeoutMs, message) {
      const found = events.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const hit = events.find(pred);
          if (!hit) return;
          listeners.delete(check);
          clearTimeout(timer);
          resolve(hit);
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          const recent = events
            .slice(-15)
            .map((e) => `${e.name || e.id.slice(0, 12)} ${e.action}`)
            .join(", ");
          const state = closed ? "closed" : stream ? "open" : "reconnecting";
          const why = streamError ? `; last stream error: ${describeError(streamError)}` : "";
          reject(
            new Error(
              `${message} (no matching docker event on ${engine.name} within ${timeoutMs} ms; ` +
                `stream ${state}${why}; last events: [${recent}])`,
            ),
          );
        }, timeoutMs);
        listeners.add(check);
      });
    },
    count(pred) {
      return events.filter(pred).length;
    },
    close() {
      closed = true;
      stream?.destroy();
      stream = undefined;
    },
    async [Symbol.asyncDispose]() {
      recorder.close();
    },
  };
  return recorder;
}

function nanoToSince(nano: bigint): string {
  const sec = nano / 1_000_000_000n;
  const frac = (nano % 1_000_000_000n).toString().padStart(9, "0");
  return `${sec}.${frac}`;
}

/** Tags the test image under another name in `engine`, and returns that name. */
export async function tagTestImage(engine: DockerEngine, name: string): Promise<string> {
  await ensureBusyboxImage(engine);
  const [repo, tag = "latest"] = name.split(":");
  await engine.docker.getImage(TEST_IMAGE).tag({ repo: repo as string, tag });
  return `${repo}:${tag}`;
}

/**
 * Copies image `name` from one engine into another, with `docker save` and `docker load`: the
 * image keeps its id, as when every host pulls it from one registry. Returns the id.
 */
export async function copyImage(
  from: DockerEngine,
  to: DockerEngine,
  name: string,
): Promise<string> {
  const tar = await from.docker.getImage(name).get();
  const progress = await to.docker.loadImage(tar);
  await new Promise<void>((resolve, reject) => {
    to.docker.modem.followProgress(progress, (err: Error | null) =>
      err ? reject(err) : resolve(),
    );
  });
  return (await to.docker.getImage(name).inspect()).Id;
}

const FORWARDED: ReadonlySet<string> = new Set(LIFECYCLE_ACTIONS);

/**
 * The id under which the agent of `host` stores a Docker event (`<host>:<cid>:<timeNano>:<action>`),
 * or undefined for an event it does not forward. Tests compare Docker's own stream with the
 * stored one through it.
 */
export function forwardedEventId(host: string, e: DockerEventRecord): string | undefined {
  const action = e.action.startsWith("health_status: ")
    ? e.action.slice("health_status: ".length)
    : FORWARDED.has(e.action)
      ? e.action
      : undefined;
  return action && `${host}:${e.id}:${e.timeNano}:${action}`;
}
