import type Docker from "dockerode";
import { describeError } from "../common/errors.js";
import { RecreateError, type RecreateOptions, type RecreateResult } from "./docker-engine.js";
import { NdjsonSplitter } from "./ndjson.js";
import { type InspectedContainer, type RecreateSpec, recreateSpec } from "./recreate-spec.js";

/*
 * The Docker work of a recreate and of a pull, on dockerode (agent/dockerode-engine.ts exposes
 * them as the DockerEngine's `recreate` and `pull`).
 */

/** Most characters of Docker's error kept from a pull's progress stream. */
const MAX_PULL_ERROR = 512;

/**
 * Stops the old container, parks it under another name, creates the new one under the old name
 * (recreate-spec.ts), connects its other networks, starts it and removes the old one, keeping
 * every volume. Whatever fails before the new one runs is undone (see {@link restore}).
 */
export async function recreateContainer(
  docker: Docker,
  id: string,
  options: RecreateOptions,
): Promise<RecreateResult> {
  const old = docker.getContainer(id);
  const info = (await step("inspect", () => old.inspect())) as unknown as InspectedContainer &
    Docker.ContainerInspectInfo;
  if (info.HostConfig.AutoRemove) {
    // Docker removes such a container, anonymous volumes included, the moment it stops.
    throw new RecreateError(
      "the container runs with --rm (AutoRemove): stopping it would remove it and its anonymous volumes",
      "check",
      true,
      { refusal: "auto-remove" },
    );
  }
  const wasRunning = info.State.Running;
  const image = await docker
    .getImage(info.Image)
    .inspect()
    .then((i) => i.Config as unknown as Record<string, unknown>)
    .catch(() => undefined);
  const spec = recreateSpec(info, {
    ...(options.networkParent === undefined ? {} : { networkParent: options.networkParent }),
    ...(image ? { image } : {}),
  });
  const done = { parked: false, created: undefined as string | undefined };
  try {
    await step("stop", () => stopContainer(old, options.stopTimeoutSeconds));
    await step("rename", () => old.rename({ name: spec.oldName }));
    done.parked = true;
    const created = await step("create", () => docker.createContainer(spec.create));
    done.created = created.id;
    for (const { network, endpoint } of spec.connect) {
      await step("connect", () =>
        docker
          .getNetwork(network)
          .connect({ Container: created.id, EndpointConfig: endpoint as Docker.EndpointSettings }),
      );
    }
    await step("start", () => created.start());
  } catch (error) {
    const failed = error instanceof StepError ? error : new StepError("recreate", error);
    const problems = await restore(docker, old, spec, done, wasRunning);
    const back = problems.length === 0;
    throw new RecreateError(
      `${failed.step} failed: ${describeError(failed.cause)}; ${
        back
          ? `the old container is back as ${spec.name}${wasRunning ? ", running" : ""}`
          : `putting the old container back failed: ${problems.join("; ")}`
      }`,
      failed.step,
      back,
      { cause: failed.cause },
    );
  }
  const newContainerId = done.created as string;
  try {
    await old.remove({ v: false, force: true });
    return { newContainerId };
  } catch (error) {
    // The new one runs: undoing that now would be the bigger change.
    return { newContainerId, leftover: `${spec.oldName}: ${describeError(error)}` };
  }
}

/**
 * Puts the old container back: the new one removed (without its volumes, which are the old
 * one's), the old one renamed back and started again if it ran. Returns what could not be done.
 */
async function restore(
  docker: Docker,
  old: Docker.Container,
  spec: RecreateSpec,
  done: { parked: boolean; created: string | undefined },
  wasRunning: boolean,
): Promise<string[]> {
  const problems: string[] = [];
  const attempt = async (what: string, action: () => Promise<unknown>) => {
    try {
      await action();
    } catch (error) {
      if (statusOf(error) !== 304) problems.push(`${what}: ${describeError(error)}`);
    }
  };
  if (done.created) {
    const created = done.created;
    await attempt("remove the new container", () =>
      docker.getContainer(created).remove({ v: false, force: true }),
    );
  }
  if (done.parked) await attempt("rename it back", () => old.rename({ name: spec.name }));
  if (wasRunning) await attempt("start it again", () => old.start());
  return problems;
}

async function stopContainer(container: Docker.Container, t: number): Promise<void> {
  try {
    await container.stop({ t });
  } catch (error) {
    // 304: already stopped.
    if (statusOf(error) !== 304) throw error;
  }
}

/** A failure of one step of a recreate, before any undoing. */
class StepError extends Error {
  constructor(
    readonly step: string,
    override readonly cause: unknown,
  ) {
    super(`${step} failed`);
  }
}

async function step<T>(name: string, action: () => Promise<T>): Promise<T> {
  try {
    return await action();
  } catch (error) {
    throw new StepError(name, error);
  }
}

function statusOf(error: unknown): number | undefined {
  return (error as { statusCode?: number } | undefined)?.statusCode;
}

/**
 * `docker pull`, reading the progress stream to its end a chunk at a time and keeping only the
 * last error Docker reports in it (a failed pull still answers 200, with an `error` line).
 */
export async function pullImage(docker: Docker, reference: string, timeoutMs: number) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    const stream = (await docker.pull(reference, {
      abortSignal: controller.signal,
    })) as NodeJS.ReadableStream & { destroy(error?: Error): void };
    controller.signal.addEventListener("abort", () => stream.destroy(new Error("aborted")), {
      once: true,
    });
    const splitter = new NdjsonSplitter();
    let failure: string | undefined;
    for await (const chunk of stream) {
      for (const line of splitter.push(chunk as Uint8Array)) {
        const error = pullErrorOf(line);
        if (error) failure = error;
      }
    }
    if (failure) throw new Error(failure);
  } catch (error) {
    if (controller.signal.aborted) {
      throw new Error(`pull of ${reference} did not finish within ${timeoutMs} ms`, {
        cause: error,
      });
    }
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

function pullErrorOf(line: string): string | undefined {
  try {
    const progress = JSON.parse(line) as { error?: unknown };
    return typeof progress.error === "string" ? progress.error.slice(0, MAX_PULL_ERROR) : undefined;
  } catch {
    return undefined;
  }
}
