// The host id when FLEETHEAL_HOST_ID is not set. On a host it is the hostname (agent/config.ts).
// In a container the hostname is the container's id, a new one with every `docker run`, while
// the host id names the host's NATS account and keys, its snapshot and its history in the fleet.
// So in a container the host id is the name of the Docker engine the agent watches (`GET /info`,
// `Name`): the hostname of the machine that runs it, the id the agent would have outside a
// container. FLEETHEAL_HOST_ID, or the host a join token names, still comes first.

import { existsSync } from "node:fs";
import Dockerode from "dockerode";
import { ConfigError, describeError } from "../common/errors.js";
import { toToken } from "../contracts/index.js";
import type { AgentConfig } from "./config.js";

/** What Docker and Podman put at the root of every container they run. */
const CONTAINER_MARKERS = ["/.dockerenv", "/run/.containerenv"];

/** How long the engine has to say its name. */
const INFO_TIMEOUT_MS = 10_000;

export interface HostIdDeps {
  /** Whether this process runs in a container. */
  inContainer: () => boolean;
  /** The name of the Docker engine at DOCKER_HOST. */
  engineName: () => Promise<string>;
}

/**
 * `config` with the host id of the machine when FLEETHEAL_HOST_ID is not set and the agent runs
 * in a container (see above); `config` itself otherwise. Fails with a ConfigError, naming the
 * fixes, when the engine cannot be asked.
 */
export async function withHostIdOfEngine(
  config: AgentConfig,
  env: NodeJS.ProcessEnv = process.env,
  deps: HostIdDeps = { inContainer: runsInContainer, engineName },
): Promise<AgentConfig> {
  // A join token names the host itself (and the server holds the agent to it).
  const named = env.FLEETHEAL_HOST_ID || env.FLEETHEAL_JOIN_TOKEN || env.FLEETHEAL_JOIN_TOKEN_FILE;
  if (named || !deps.inContainer()) return config;
  let name: string;
  try {
    name = await deps.engineName();
  } catch (error) {
    throw new ConfigError(
      `FLEETHEAL_HOST_ID is not set, and in a container the host id is the Docker engine's name, which Docker did not tell (${describeError(error)}); set FLEETHEAL_HOST_ID, or give the container the Docker socket and its group (--group-add "$(stat -c %g /var/run/docker.sock)")`,
    );
  }
  return { ...config, hostId: toToken(name) };
}

function runsInContainer(): boolean {
  return CONTAINER_MARKERS.some((file) => existsSync(file));
}

// The agent's own client construction (DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH), with a
// deadline: a socket that accepts and never answers must not hang the start.
async function engineName(): Promise<string> {
  const info = (await new Dockerode({ timeout: INFO_TIMEOUT_MS }).info()) as { Name?: unknown };
  if (typeof info.Name !== "string" || info.Name === "") {
    throw new Error("its /info has no Name");
  }
  return info.Name;
}
