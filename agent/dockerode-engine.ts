import { createRequire, Module } from "node:module";
import type Docker from "dockerode";
import { healthOutput } from "../common/health-output.js";
import {
  type ContainerState,
  ContainerState as ContainerStateSchema,
  type HealthStatus,
  ImageId,
} from "../contracts/index.js";
import { type ContainerDetails, DOCKER_EVENT_FILTER, type DockerEngine } from "./docker-engine.js";
import { sinceFromIso } from "./docker-event.js";
import { pullImage, recreateContainer } from "./dockerode-recreate.js";
import { MAX_EXEC_BYTES, readExecOutput } from "./exec-output.js";

const require = createRequire(import.meta.url);

/**
 * Loads dockerode without two files that it and docker-modem require at import, whose
 * dependencies the agent almost never needs: dockerode's BuildKit session (`@grpc/grpc-js`,
 * `@grpc/proto-loader`, `protobufjs`; used only by `buildImage` with a session) and docker-modem's
 * ssh transport (`ssh2`, with a native addon and WebAssembly memory; used only with an
 * `ssh://` DOCKER_HOST). Loading them costs an agent resident memory for nothing (how much:
 * docs/AGENT.md, "Memory"). Each file exports one function, so until that function is first
 * called a stand-in takes its place in the CommonJS module cache; the first call loads the real
 * file and hands over to it. An ssh:// host still works: it pays for ssh2 when it connects.
 *
 * `require.cache` is Node's documented module cache, and adding entries to it is supported. A file
 * that does not resolve (a later dockerode or docker-modem laid out differently) is loaded
 * eagerly: memory, not behaviour, is at stake, and agent/dockerode-engine.test.ts
 * notices the change.
 */
function loadDockerode(): typeof Docker {
  const dockerodeMain = require.resolve("dockerode");
  // Loaded already (by whoever came first in this process): its files are what they are.
  if (require.cache[dockerodeMain]) return require(dockerodeMain);
  const fromDockerode = createRequire(dockerodeMain);
  const deferred: Array<() => string> = [
    () => fromDockerode.resolve("./session"),
    () => createRequire(fromDockerode.resolve("docker-modem")).resolve("./ssh"),
  ];
  for (const resolve of deferred) {
    let filename: string;
    try {
      filename = resolve();
    } catch {
      continue;
    }
    if (!require.cache[filename]) deferUntilCalled(filename);
  }
  return require(dockerodeMain);
}

/** Puts a stand-in for the single-function module `filename` into the module cache. */
function deferUntilCalled(filename: string): void {
  let real: ((...args: unknown[]) => unknown) | undefined;
  const standIn = new Module(filename);
  standIn.filename = filename;
  standIn.loaded = true;
  standIn.exports = function deferred(this: unknown, ...args: unknown[]): unknown {
    if (!real) {
      // Out of the cache, so that require() evaluates the real file (and caches that instead).
      if (require.cache[filename] === standIn) delete require.cache[filename];
      real = require(filename) as (...args: unknown[]) => unknown;
    }
    return real.apply(this, args);
  };
  require.cache[filename] = standIn;
}

const Dockerode = loadDockerode();

/** Docker reports this StartedAt for a container that never ran. */
const ZERO_TIME = "0001-01-01T00:00:00Z";

/**
 * The real {@link DockerEngine}, backed by dockerode. Connection settings come from the standard
 * DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH variables (unix, tcp and tls), as with the
 * docker CLI. No request timeout is set on the events connection: docker-modem's timeout would
 * kill an event stream that is merely quiet.
 */
export function createDockerodeEngine(): DockerEngine {
  const docker = new Dockerode();
  return {
    async openEventStream({ since, until, signal }) {
      // `since` is a string so that nanoseconds survive; Docker's API accepts "<s>.<ns>".
      const options = {
        ...(since === undefined ? {} : { since }),
        ...(until === undefined ? {} : { until }),
        filters: JSON.stringify(DOCKER_EVENT_FILTER),
        abortSignal: signal,
      } as unknown as Docker.GetEventsOptions;
      return (await docker.getEvents(options)) as NodeJS.ReadableStream;
    },
    async clock() {
      const info = (await docker.info()) as { SystemTime?: string };
      const since = info.SystemTime ? sinceFromIso(info.SystemTime) : undefined;
      if (!since) throw new Error(`Docker reported an unreadable clock: ${info.SystemTime}`);
      return since;
    },
    async listContainerIds() {
      const list = await docker.listContainers({ all: true });
      return list.map((c) => c.Id);
    },
    async inspect(id) {
      try {
        return toDetails(await docker.getContainer(id).inspect());
      } catch (error) {
        if ((error as { statusCode?: number }).statusCode === 404) return undefined;
        throw error;
      }
    },
    async restart(id, stopTimeoutSeconds) {
      await docker.getContainer(id).restart({ t: stopTimeoutSeconds });
    },
    async stop(id, stopTimeoutSeconds) {
      try {
        await docker.getContainer(id).stop({ t: stopTimeoutSeconds });
      } catch (error) {
        // 304: already stopped, which is what was asked for.
        if ((error as { statusCode?: number }).statusCode !== 304) throw error;
      }
    },
    pull: (reference, timeoutMs) => pullImage(docker, reference, timeoutMs),
    recreate: (id, options) => recreateContainer(docker, id, options),
    async exec(id, cmd, timeoutMs) {
      const exec = await docker.getContainer(id).exec({
        Cmd: cmd,
        AttachStdout: true,
        AttachStderr: true,
        Tty: false,
      });
      const stream = await exec.start({ hijack: true, stdin: false });
      const output = await readExecOutput(stream, timeoutMs, MAX_OUTPUT);
      if (output.timedOut) return { exitCode: -1, output: output.text };
      if (output.cut) {
        return {
          exitCode: -1,
          output: `${output.text}\n(output over ${MAX_EXEC_BYTES} bytes: cut)`,
        };
      }
      // The stream can close a moment before Docker records the exit code.
      const deadline = Date.now() + 1_000;
      let info = await exec.inspect();
      while (info.Running && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 10));
        info = await exec.inspect();
      }
      return { exitCode: info.ExitCode ?? -1, output: output.text };
    },
    async version() {
      const v = await docker.version();
      return v.Version;
    },
  };
}

/** Most output kept from an exec or a health check. */
const MAX_OUTPUT = 1024;

function toDetails(info: Docker.ContainerInspectInfo): ContainerDetails {
  const state = ContainerStateSchema.safeParse(info.State.Status);
  const running = info.State.Running || info.State.Paused;
  const startedAt = info.State.StartedAt;
  const labels = info.Config.Labels ?? {};
  const health = info.State.Health;
  const lastOutput = healthOutput(health?.Log?.at(-1)?.Output);
  const project = labels["com.docker.compose.project"];
  const service = labels["com.docker.compose.service"];
  const test = info.Config.Healthcheck?.Test;
  return {
    id: info.Id,
    name: info.Name.replace(/^\//, ""),
    image: info.Config.Image,
    // An id the contract does not know is left out rather than spoiling every event.
    ...(ImageId.safeParse(info.Image).success ? { imageId: info.Image } : {}),
    state: state.success ? state.data : ("dead" satisfies ContainerState),
    // Docker keeps the last health status of a stopped container; it means nothing then.
    health: running ? toHealth(health?.Status) : "none",
    labels,
    ...(startedAt && startedAt !== ZERO_TIME ? { startedAt } : {}),
    restartCount: info.RestartCount ?? 0,
    ...(running ? {} : { exitCode: info.State.ExitCode }),
    ...(!running && info.State.Error ? { startError: info.State.Error.slice(0, 512) } : {}),
    failingStreak: running ? (health?.FailingStreak ?? 0) : 0,
    ...(lastOutput ? { lastHealthOutput: lastOutput } : {}),
    ...(project && service ? { compose: { project, service } } : {}),
    hasHealthcheck: Array.isArray(test) && test.length > 0 && test[0] !== "NONE",
    ...(info.HostConfig?.NetworkMode ? { networkMode: info.HostConfig.NetworkMode } : {}),
    ipAddresses: Object.values(info.NetworkSettings?.Networks ?? {})
      .map((n) => n.IPAddress)
      .filter((ip): ip is string => Boolean(ip)),
  };
}

function toHealth(status: string | undefined): HealthStatus {
  return status === "healthy" || status === "unhealthy" || status === "starting" ? status : "none";
}
