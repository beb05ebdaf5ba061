// A uniform fleet for the handler benchmark: every host runs the same compose projects, every
// container opts in and is running and healthy until the benchmark says it turned unhealthy.
// Nothing depends on anything (no depends_on), so a restart leaves the dependents handler
// nothing to restart; images are shared across hosts, so the image breaker has hot keys.

import { createHash } from "node:crypto";
import {
  CONTAINER_EVENT_TYPE,
  ContainerEvent,
  type ContainerSnapshot,
  containerEventId,
  containerKey,
  encode,
  eventSubject,
  type HostSnapshot,
} from "../../contracts/index.js";
import { prng } from "../runner/numbers.js";
import { composeLabels, hostSnapshot } from "./snapshots.js";

export interface UniformFleetShape {
  hosts: number;
  containersPerHost: number;
  /** Distinct images across the fleet (the image breaker counts per image). */
  images: number;
  seed: number;
}

export interface FleetContainer {
  host: string;
  id: string;
  name: string;
  image: string;
  labels: Record<string, string>;
}

export interface UniformFleet {
  shape: UniformFleetShape;
  hosts: string[];
  containers: FleetContainer[];
  /** Base of every container's StartedAt: the incidents are the same in every run. */
  startedMs: number;
}

const SERVICES = ["web", "api", "worker", "cache", "queue", "auth", "search", "mail", "cron", "db"];

export function uniformFleet(shape: UniformFleetShape): UniformFleet {
  const rand = prng(shape.seed);
  const hosts: string[] = [];
  const containers: FleetContainer[] = [];
  for (let h = 0; h < shape.hosts; h++) {
    const host = `bench-${String(h).padStart(4, "0")}`;
    hosts.push(host);
    for (let c = 0; c < shape.containersPerHost; c++) {
      const project = `shop${Math.floor(c / SERVICES.length)}`;
      const service = SERVICES[c % SERVICES.length] as string;
      const imageNo = (h * shape.containersPerHost + c) % Math.max(1, shape.images);
      containers.push({
        host,
        id: createHash("sha256").update(`${host}/${c}`).digest("hex"),
        name: `${project}-${service}-1`,
        image: `registry.internal.example:5000/app-${imageNo}:1.${imageNo % 17}.${imageNo % 5}`,
        labels: {
          autoheal: "true",
          ...composeLabels(rand, { project, service, number: 1, dependsOn: "" }),
        },
      });
    }
  }
  return { shape, hosts, containers, startedMs: Date.now() - 3_600_000 };
}

/** The incident of a container: its StartedAt (runs start from an empty ledger). */
export function startedAtFor(fleet: UniformFleet, index: number): string {
  return new Date(fleet.startedMs + index).toISOString();
}

/** What the agent of `host` publishes: every container running and healthy. */
export function snapshotOf(fleet: UniformFleet, host: string): HostSnapshot {
  const now = new Date().toISOString();
  const perHost = fleet.shape.containersPerHost;
  const first = fleet.hosts.indexOf(host) * perHost;
  const containers = fleet.containers.slice(first, first + perHost).map(
    (c, i): ContainerSnapshot => ({
      id: c.id,
      name: c.name,
      image: c.image,
      state: "running",
      health: "healthy",
      optedIn: true,
      labels: c.labels,
      startedAt: startedAtFor(fleet, first + i),
      restartCount: 0,
      failingStreak: 0,
      lastHealthOutput: "ok",
      healthSource: "docker",
      networkMode: "bridge",
      compose: {
        project: c.labels["com.docker.compose.project"] as string,
        service: c.labels["com.docker.compose.service"] as string,
      },
    }),
  );
  return hostSnapshot({
    host,
    seq: 1,
    at: now,
    heartbeatMs: 5_000,
    agentStartedAt: now,
    uptimeSeconds: 3_600,
    published: 0,
    containers,
  });
}

/** An event as an agent's outbox publishes it. */
export interface OutgoingEvent {
  subject: string;
  msgId: string;
  payload: Uint8Array;
  /** The container's key in the per-container buckets. */
  key: string;
  eventId: string;
  /** The container's index in the fleet. */
  index: number;
}

/**
 * One `unhealthy` event for each of the first `count` containers in the order a thousand
 * agents publishing at once would interleave them (container 0 of every host, then container
 * 1…), with Docker times spread over `spreadMs` from `timeMs` in that order.
 */
export function unhealthyEvents(
  fleet: UniformFleet,
  timeMs: number,
  spreadMs: number,
  count = fleet.containers.length,
): OutgoingEvent[] {
  const n = Math.min(count, fleet.containers.length);
  const hosts = fleet.hosts.length;
  const out = Array.from({ length: n }, (_, j) => {
    const i = (j % hosts) * fleet.shape.containersPerHost + Math.floor(j / hosts);
    const c = fleet.containers[i] as FleetContainer;
    const at = timeMs + Math.floor((j / n) * spreadMs);
    const timeNano = `${BigInt(at) * 1_000_000n + BigInt(j % 1_000_000)}`;
    const event: ContainerEvent = {
      type: CONTAINER_EVENT_TYPE,
      v: 1,
      id: containerEventId(c.host, c.id, timeNano, "unhealthy"),
      host: c.host,
      action: "unhealthy",
      timeNano,
      time: new Date(at).toISOString(),
      container: {
        id: c.id,
        name: c.name,
        image: c.image,
        labels: c.labels,
        optedIn: true,
        startedAt: startedAtFor(fleet, i),
      },
      source: "docker",
    };
    return {
      subject: eventSubject(c.host, c.id, "unhealthy"),
      msgId: event.id,
      payload: encode(event),
      key: containerKey(c.host, c.id),
      eventId: event.id,
      index: i,
    };
  });
  ContainerEvent.parse(JSON.parse(new TextDecoder().decode(out[0]?.payload)));
  return out;
}
