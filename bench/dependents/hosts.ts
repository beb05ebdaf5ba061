// The synthetic hosts of the dependents benchmark: one host snapshot of compose containers per
// shape and size, and the `restarted` record of the container whose dependents are planned.

import { createHash } from "node:crypto";
import { remediationRecord } from "../../common/remediation-record.js";
import {
  type ContainerSnapshot,
  encode,
  type HostSnapshot,
  type RemediationRecord,
} from "../../contracts/index.js";
import { composeLabels, hostSnapshot } from "../fleet/snapshots.js";
import { prng } from "../runner/numbers.js";

/**
 * - `compose`: projects of ten services (db, cache and queue; an api and a worker that depend on
 *   them; a scheduler, a web and a proxy after those; a vpn and an app in its network namespace),
 *   the record a restart of the first project's db: five dependents.
 * - `chain`: one project whose every service depends on the one before: the record a restart of
 *   the first, every other container a dependent, each after the one before.
 * - `fan`: one vpn and every other container in its network namespace: the record a restart of
 *   the vpn, every other container a dependent at once.
 * - `replicas`, the worst case labels can make: half the containers are replicas of one
 *   service, and each of the other half depends on that service, so on every replica (an edge
 *   per replica and dependent); the record a restart of one replica.
 */
export type HostShape = "compose" | "chain" | "fan" | "replicas";
export const SHAPES: readonly HostShape[] = ["compose", "chain", "fan", "replicas"];

export interface BenchHost {
  shape: HostShape;
  containers: number;
  /** The snapshot as the handler reads it from KV. */
  bytes: Uint8Array;
  snapshot: HostSnapshot;
  /** The restarted container. */
  rootId: string;
  record: RemediationRecord;
  /**
   * How many dependents the plan must hold: each build is checked against it. Undefined where
   * the caps on edges decide (`replicas`): every build must then plan some.
   */
  dependents: number | undefined;
}

const HOST = "bench-deps";
/** The root's run that was restarted, its new run, and when every other container started. */
const OLD_RUN = "2026-12-07T10:00:00.000000001Z";
const NEW_RUN = "2026-12-07T11:00:00.000000001Z";
const DEP_RUN = "2026-12-07T10:30:00.000000001Z";

const COMPOSE_SERVICES: Record<string, string> = {
  db: "",
  cache: "",
  queue: "",
  api: "db:service_healthy:false,cache:service_started:false,queue:service_started:false",
  worker: "db:service_healthy:false,queue:service_started:false",
  scheduler: "worker:service_started:false",
  web: "api:service_started:false",
  proxy: "web:service_started:false",
  vpn: "",
  app: "",
};

export function benchHost(shape: HostShape, size: number, seed: number): BenchHost {
  const rand = prng(seed + size);
  const idOf = (name: string) => createHash("sha256").update(`${shape}/${name}`).digest("hex");
  const container = (
    project: string,
    service: string,
    dependsOn: string,
    networkMode = "bridge",
    number = 1,
  ): ContainerSnapshot => {
    const name = `${project}-${service}-${number}`;
    return {
      id: idOf(name),
      name,
      image: `registry.internal.example:5000/${service}:1.4.2`,
      state: "running",
      health: "healthy",
      optedIn: true,
      labels: {
        autoheal: "true",
        ...composeLabels(rand, { project, service, number, dependsOn }),
      },
      startedAt: DEP_RUN,
      restartCount: 0,
      failingStreak: 0,
      healthSource: "docker",
      networkMode,
      compose: { project, service },
    };
  };
  const containers: ContainerSnapshot[] = [];
  let dependents: number | undefined;
  let rootIndex = 0;
  if (shape === "compose") {
    const services = Object.keys(COMPOSE_SERVICES);
    for (let p = 0; containers.length < size; p++) {
      const project = `shop${p}`;
      for (const service of services.slice(0, size - containers.length)) {
        const net = service === "app" ? `container:${idOf(`${project}-vpn-1`)}` : "bridge";
        containers.push(container(project, service, COMPOSE_SERVICES[service] as string, net));
      }
    }
    dependents = 5;
  } else if (shape === "chain") {
    const service = (i: number) => `s${String(i).padStart(5, "0")}`;
    for (let i = 0; i < size; i++) {
      containers.push(
        container("chain", service(i), i === 0 ? "" : `${service(i - 1)}:service_started:false`),
      );
    }
    dependents = size - 1;
  } else if (shape === "replicas") {
    const replicas = Math.floor(size / 2);
    for (let i = 0; i < size - replicas; i++) {
      const client = `client${String(i).padStart(5, "0")}`;
      containers.push(container("swarm", client, "db:service_started:false"));
    }
    for (let n = 1; n <= replicas; n++) containers.push(container("swarm", "db", "", "bridge", n));
    // The last replica made, first in the snapshot: within every client's first edges.
    rootIndex = size - 1;
    dependents = undefined;
  } else {
    containers.push(container("fan", "vpn", ""));
    const vpn = `container:${idOf("fan-vpn-1")}`;
    for (let i = 1; i < size; i++) {
      containers.push(container("fan", `app${String(i).padStart(5, "0")}`, "", vpn));
    }
    dependents = size - 1;
  }
  const root = containers[rootIndex] as ContainerSnapshot;
  root.startedAt = NEW_RUN;
  // Snapshot order is Docker's, not the graph's: newest first, as `docker ps` lists them.
  containers.reverse();
  const snapshot = hostSnapshot({
    host: HOST,
    seq: 1,
    at: "2026-12-07T11:00:01.000Z",
    heartbeatMs: 5_000,
    agentStartedAt: "2026-12-07T09:00:00.000Z",
    uptimeSeconds: 7_201,
    published: size,
    containers,
  });
  const remediationId = `heal:${HOST}:${root.id}:1:unhealthy`;
  const record = remediationRecord({
    id: `${remediationId}:restarted`,
    remediationId,
    host: HOST,
    containerId: root.id,
    containerName: root.name,
    phase: "restarted",
    code: "restarted",
    message: "restarted (stop timeout 10s)",
    incident: OLD_RUN,
    commandId: "heal-0123456789abcdef",
    actor: "handler:heal",
    at: new Date("2026-12-07T11:00:00.500Z"),
  });
  return {
    shape,
    containers: size,
    bytes: encode(snapshot),
    snapshot,
    rootId: root.id,
    record,
    dependents,
  };
}
