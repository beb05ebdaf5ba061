import { type ContainerSnapshot, LIFECYCLE_ACTIONS } from "../contracts/index.js";

/** What the agent knows about one container from Docker, before its own opt-in judgement. */
export type ContainerDetails = Omit<ContainerSnapshot, "optedIn" | "probe" | "healthSource"> & {
  /** The image or container defines a Docker HEALTHCHECK (label probes are then ignored). */
  hasHealthcheck: boolean;
  /** The container's IP addresses on its networks (none with `--network none` or `host`). */
  ipAddresses: string[];
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
   * Runs `cmd` in the container (no TTY) and waits for it, at most `timeoutMs`; a command that
   * runs longer is reported with exit code -1. Used by exec probes.
   */
  exec(id: string, cmd: string[], timeoutMs: number): Promise<ExecResult>;
  /** Docker's version string; throws when the engine cannot be reached. */
  version(): Promise<string>;
}

/** The Docker event filter the agent asks for (health_status matches all three statuses). */
export const DOCKER_EVENT_FILTER = {
  type: ["container"],
  event: [...LIFECYCLE_ACTIONS, "health_status"],
};
