// One heal incident of bench/heal-reaction.ts, on real parts: a container whose healthcheck
// tests a file on the host, broken by deleting that file, and Docker's own events timing the
// reaction; and what a plain NATS subscriber sees of the event and the restart command.

import { mkdir, unlink } from "node:fs/promises";
import path from "node:path";
import type { NatsConnection } from "@nats-io/nats-core";
import {
  COMMAND_SIGNATURE_HEADERS,
  commandSubject,
  parseEventSubject,
  SUBJECTS,
} from "../../contracts/index.js";
import { TEST_IMAGE } from "../../test/support/busybox-image.js";
import type { DockerEventRecorder } from "../../test/support/containers.js";
import type { DockerEngine } from "../../test/support/dockerd.js";
import { round } from "../runner/numbers.js";

const NS_PER_MS = 1_000_000n;

export interface BenchContainer<P extends string = string> {
  path: P;
  id: string;
  name: string;
  /** Host file the healthcheck tests (bind-mounted at /h). */
  healthFile: string;
  /** Docker's time of its latest start: it is healthy again once a healthy event follows. */
  lastStartNano: bigint;
}

export interface Incident<P extends string = string> {
  path: P;
  container: string;
  /** Docker's unhealthy → Docker's kill. */
  reactionMs: number;
  /** fleetheal only: unhealthy → the event seen on NATS → the restart command seen on NATS. */
  eventOnNatsMs?: number;
  commandOnNatsMs?: number;
}

const nowNano = (): bigint => BigInt(Date.now()) * NS_PER_MS;

/**
 * A busybox container whose healthcheck tests a file on the host. It recreates the file at every
 * start, so a restart repairs it, as a restart repairs a wedged service.
 */
export async function createContainer<P extends string>(
  engine: DockerEngine,
  dir: string,
  pathName: P,
  index: number,
  options: { labels: Record<string, string>; healthIntervalMs: number; stopTimeoutSeconds: number },
): Promise<BenchContainer<P>> {
  const name = `${pathName}-${index}`;
  const hostDir = path.join(dir, name);
  await mkdir(hostDir, { recursive: true });
  const container = await engine.docker.createContainer({
    name,
    Image: TEST_IMAGE,
    Cmd: [
      "sh",
      "-c",
      // PID 1 ignores SIGTERM unless trapped; `sleep & wait` lets the trap run at once.
      "trap 'exit 0' TERM\ntouch /h/healthy\nwhile :; do sleep 1 & wait $!; done",
    ],
    Labels: options.labels,
    StopTimeout: options.stopTimeoutSeconds,
    Healthcheck: {
      Test: ["CMD", "test", "-f", "/h/healthy"],
      Interval: options.healthIntervalMs * 1_000_000,
      Timeout: 2_000 * 1_000_000,
      Retries: 1,
      StartPeriod: 0,
    },
    HostConfig: { NetworkMode: "none", Binds: [`${hostDir}:/h`] },
  });
  const lastStartNano = nowNano();
  await container.start();
  return {
    path: pathName,
    id: container.id,
    name,
    healthFile: path.join(hostDir, "healthy"),
    lastStartNano,
  };
}

/** When (ms, this machine's clock) each container's unhealthy events and restart commands crossed NATS. */
export interface NatsSightings {
  events: Map<string, number[]>;
  commands: Map<string, number[]>;
  /** Restart commands seen with and without a signature. */
  signed: number;
  unsigned: number;
}

export function watchNats(nc: NatsConnection, host: string): NatsSightings {
  const sightings: NatsSightings = {
    events: new Map(),
    commands: new Map(),
    signed: 0,
    unsigned: 0,
  };
  const note = (map: Map<string, number[]>, containerId: string): void => {
    const list = map.get(containerId) ?? [];
    list.push(Date.now());
    map.set(containerId, list);
  };
  nc.subscribe(SUBJECTS.eventsWithAction("unhealthy"), {
    callback: (_e, m) => note(sightings.events, parseEventSubject(m.subject)?.containerId ?? ""),
  });
  nc.subscribe(commandSubject(host, "restart"), {
    callback: (_e, m) => {
      const command = JSON.parse(new TextDecoder().decode(m.data)) as { containerId: string };
      note(sightings.commands, command.containerId);
      if (m.headers?.get(COMMAND_SIGNATURE_HEADERS.signature)) sightings.signed++;
      else sightings.unsigned++;
    },
  });
  return sightings;
}

/** The first sighting at or after `after`, relative to it. */
function firstAfter(list: number[] | undefined, after: number): number | undefined {
  const at = list?.find((t) => t >= Math.floor(after));
  return at === undefined ? undefined : round(at - after);
}

export async function waitHealthy(
  recorder: DockerEventRecorder,
  c: BenchContainer,
  sinceNano: bigint,
): Promise<void> {
  await recorder.waitFor(
    (e) => e.id === c.id && e.action === "health_status: healthy" && e.timeNano >= sinceNano,
    30_000,
    `${c.name} did not become healthy`,
  );
}

/** One incident: break the container, then wait for Docker's unhealthy, kill and start. */
export async function runIncident<P extends string>(
  recorder: DockerEventRecorder,
  c: BenchContainer<P>,
  nats: NatsSightings | undefined,
): Promise<Incident<P>> {
  // Incidents rotate over the containers, so this one's restart finished a while ago.
  await waitHealthy(recorder, c, c.lastStartNano);
  const triggerNano = nowNano();
  await unlink(c.healthFile);
  const unhealthy = await recorder.waitFor(
    (e) => e.id === c.id && e.action === "health_status: unhealthy" && e.timeNano >= triggerNano,
    30_000,
    `${c.name} did not turn unhealthy`,
  );
  const kill = await recorder.waitFor(
    (e) => e.id === c.id && e.action === "kill" && e.timeNano >= unhealthy.timeNano,
    30_000,
    `${c.name} (${c.path}) was not restarted within 30 s of turning unhealthy`,
  );
  const start = await recorder.waitFor(
    (e) => e.id === c.id && e.action === "start" && e.timeNano >= kill.timeNano,
    30_000,
    `${c.name} did not start again after its restart`,
  );
  c.lastStartNano = start.timeNano;
  const unhealthyMs = Number(unhealthy.timeNano / 1000n) / 1000;
  const incident: Incident<P> = {
    path: c.path,
    container: c.name,
    reactionMs: Number(kill.timeNano - unhealthy.timeNano) / 1e6,
  };
  if (nats) {
    const evt = firstAfter(nats.events.get(c.id), unhealthyMs);
    const cmd = firstAfter(nats.commands.get(c.id), unhealthyMs);
    if (evt !== undefined) incident.eventOnNatsMs = evt;
    if (cmd !== undefined) incident.commandOnNatsMs = cmd;
  }
  return incident;
}
