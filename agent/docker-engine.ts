import { FleethealError } from "../common/errors.js";
import { type ContainerSnapshot, LIFECYCLE_ACTIONS } from "../contracts/index.js";

/** What the agent knows about one container from Docker, before its own opt-in judgement. */
export type ContainerDetails = Omit<
  ContainerSnapshot,
  "optedIn" | "probe" | "healthSource" | "labelsCut"
> & {
  /** The image or container defines a Docker HEALTHCHECK (label probes are then ignored). */
  hasHealthcheck: boolean;
  /** The container's IP addresses on its networks (none with `--network none` or `host`). */
  ipAddresses: string[];
  /**
   * Why Docker could not start it, the last time it tried (`State.Error`), while it is not
   * running: a restart whose start failed leaves this.
   */
  startError?: string;
};

/** Result of running a command inside a container. */
export interface ExecResult {
  exitCode: number;
  /** stdout and stderr, interleaved, possibly truncated. */
  output: string;
}

/**
 * The agent's view of one Docker engine. The agent's logic depends only on this interface; the
 * dockerode adapter is registered at the edge (see dockerode-engine.ts), so the logic can be
 * exercised against any engine.
 */
export interface DockerEngine {
  /**
   * Opens Docker's raw event stream (newline-delimited JSON), filtered to container lifecycle
   * and health events. `since` replays from a point in Docker's own clock, as
   * `<seconds>.<nanoseconds>`. The stream ends, without an error, when dockerd stops.
   */
  openEventStream(options: {
    since?: string;
    /** With `until`, Docker replays what it kept and then ends the stream. */
    until?: string;
    signal: AbortSignal;
  }): Promise<NodeJS.ReadableStream>;
  /** Docker's own clock now, as `<seconds>.<nanoseconds>` (the format of `since`). */
  clock(): Promise<string>;
  /** Ids of every container, running or not. */
  listContainerIds(): Promise<string[]>;
  /** One container's current state, or undefined when it does not exist (any more). */
  inspect(id: string): Promise<ContainerDetails | undefined>;
  /** `docker restart -t <stopTimeoutSeconds>`. */
  restart(id: string, stopTimeoutSeconds: number): Promise<void>;
  /** `docker stop -t <stopTimeoutSeconds>`. */
  stop(id: string, stopTimeoutSeconds: number): Promise<void>;
  /**
   * `docker pull <reference>` (a reference without tag or digest means `:latest`), with no
   * registry credentials. Docker's progress is read to its end and dropped, so a big image costs
   * no memory; the pull is given up after `timeoutMs`. Throws when the pull fails or times out.
   */
  pull(reference: string, timeoutMs: number): Promise<void>;
  /**
   * Replaces a container by a new one made from its configuration, under the same name, keeping
   * its volumes; the old one is removed (its volumes are not). If the new one cannot be made or
   * started, the old one is put back under its name, started again if it was running, and a
   * {@link RecreateError} is thrown: there is never more than one of them, nor none.
   */
  recreate(id: string, options: RecreateOptions): Promise<RecreateResult>;
  /**
   * Runs `cmd` in the container (no TTY) and waits for it, at most `timeoutMs`; a command that
   * runs longer is reported with exit code -1. Used by exec probes.
   */
  exec(id: string, cmd: string[], timeoutMs: number): Promise<ExecResult>;
  /** Docker's version string; throws when the engine cannot be reached. */
  version(): Promise<string>;
}

/** How to recreate a container (see {@link DockerEngine.recreate}). */
export interface RecreateOptions {
  /** Seconds Docker waits after SIGTERM before it kills the old container. */
  stopTimeoutSeconds: number;
  /**
   * Join this container's network namespace (`container:<networkParent>`) instead of the one the
   * old container names. Only for a container whose network mode is `container:`.
   */
  networkParent?: string;
}

/** A recreate that happened. */
export interface RecreateResult {
  newContainerId: string;
  /**
   * Set when the new container runs but the old one could not be removed: it is left stopped
   * under its `-fleetheal-old-` name, for a person to remove.
   */
  leftover?: string;
}

/** Why a recreate did not happen, and whether the old container was put back as it was. */
export class RecreateError extends FleethealError {
  override readonly name = "RecreateError";
  /** Set when nothing was tried because the container must not be recreated: why, as a code. */
  readonly refusal: string | undefined;
  constructor(
    message: string,
    /** The step that failed: check, inspect, stop, rename, create, connect or start. */
    readonly step: string,
    /** Whether the old container is back under its name (and running, if it ran). */
    readonly restored: boolean,
    options?: { cause?: unknown; refusal?: string },
  ) {
    super("FLEETHEAL_ERR_RECREATE", message, options);
    this.refusal = options?.refusal;
  }
}

/** The Docker event filter the agent asks for (health_status matches all three statuses). */
export const DOCKER_EVENT_FILTER = {
  type: ["container"],
  event: [...LIFECYCLE_ACTIONS, "health_status"],
};
