import Docker from "dockerode";
import {
  type ContainerState,
  ContainerState as ContainerStateSchema,
  type HealthStatus,
} from "../contracts/index.js";
import { type ContainerDetails, DOCKER_EVENT_FILTER, type DockerEngine } from "./docker-engine.js";

/** Docker reports this StartedAt for a container that never ran. */
const ZERO_TIME = "0001-01-01T00:00:00Z";

/**
 * The real {@link DockerEngine}, backed by dockerode. Connection settings come from the standard
 * DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH variables (unix, tcp and tls), as with the
 * docker CLI. No request timeout is set on the events connection: docker-modem's timeout would
 * kill an event stream that is merely quiet.
 */
export function createDockerodeEngine(): DockerEngine {
  const docker = new Docker();
  return {
    async openEventStream({ since, signal }) {
      // `since` is a string so that nanoseconds survive; Docker's API accepts "<s>.<ns>".
      const options = {
        ...(since === undefined ? {} : { since }),
        filters: JSON.stringify(DOCKER_EVENT_FILTER),
        abortSignal: signal,
      } as unknown as Docker.GetEventsOptions;
      return (await docker.getEvents(options)) as NodeJS.ReadableStream;
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
    async version() {
      const v = await docker.version();
      return v.Version;
    },
  };
}

function toDetails(info: Docker.ContainerInspectInfo): ContainerDetails {
  const state = ContainerStateSchema.safeParse(info.State.Status);
  const running = info.State.Running || info.State.Paused;
  const startedAt = info.State.StartedAt;
  return {
    id: info.Id,
    name: info.Name.replace(/^\//, ""),
    image: info.Config.Image,
    state: state.success ? state.data : ("dead" satisfies ContainerState),
    // Docker keeps the last health status of a stopped container; it means nothing then.
    health: running ? toHealth(info.State.Health?.Status) : "none",
    labels: info.Config.Labels ?? {},
    ...(startedAt && startedAt !== ZERO_TIME ? { startedAt } : {}),
    restartCount: info.RestartCount ?? 0,
  };
}

function toHealth(status: string | undefined): HealthStatus {
  return status === "healthy" || status === "unhealthy" || status === "starting" ? status : "none";
}
