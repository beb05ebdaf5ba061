// What every synthetic host of the benchmarks publishes, as an agent on a docker compose host
// would: the compose labels of its containers, and its host snapshot.

import {
  type ContainerSnapshot,
  HOST_SNAPSHOT_TYPE,
  type HostSnapshot,
} from "../../contracts/index.js";
import { hex } from "../runner/numbers.js";

/** A compose service's container, as the labels docker compose puts on it say. */
export interface ComposeService {
  project: string;
  service: string;
  /** Its replica number, from 1. */
  number: number;
  /** `com.docker.compose.depends_on`: empty, or `<service>:<condition>:<restart>,…`. */
  dependsOn: string;
}

/** The labels docker compose puts on a container; the hashes are drawn from `rand`. */
export function composeLabels(rand: () => number, c: ComposeService): Record<string, string> {
  return {
    "com.docker.compose.config-hash": hex(rand, 64),
    "com.docker.compose.container-number": String(c.number),
    "com.docker.compose.depends_on": c.dependsOn,
    "com.docker.compose.image": `sha256:${hex(rand, 64)}`,
    "com.docker.compose.oneoff": "False",
    "com.docker.compose.project": c.project,
    "com.docker.compose.project.config_files": `/srv/${c.project}/compose.yaml`,
    "com.docker.compose.project.working_dir": `/srv/${c.project}`,
    "com.docker.compose.service": c.service,
    "com.docker.compose.version": "2.29.2",
  };
}

/** What differs from one synthetic host's snapshot to the next. */
export interface SnapshotFields {
  host: string;
  seq: number;
  at: string;
  heartbeatMs: number;
  agentStartedAt: string;
  uptimeSeconds: number;
  /** Events the agent's outbox has published. */
  published: number;
  lastEventTimeNano?: string;
  containers: ContainerSnapshot[];
}

/** A host snapshot of an agent opting in by `autoheal`, on Docker 24.0.9. */
export function hostSnapshot(f: SnapshotFields): HostSnapshot {
  return {
    type: HOST_SNAPSHOT_TYPE,
    v: 1,
    host: f.host,
    seq: f.seq,
    at: f.at,
    heartbeatMs: f.heartbeatMs,
    agent: {
      version: "0.1.0",
      startedAt: f.agentStartedAt,
      label: "autoheal",
      watchAll: false,
      uptimeSeconds: f.uptimeSeconds,
    },
    outbox: { depth: 0, capacity: 10_000, published: f.published, dropped: 0 },
    ...(f.lastEventTimeNano === undefined ? {} : { lastEventTimeNano: f.lastEventTimeNano }),
    docker: { status: "up", version: "24.0.9" },
    containers: f.containers,
  };
}
