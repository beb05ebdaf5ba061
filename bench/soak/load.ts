// The soak's steady load besides the live streams: containers whose health flaps and that the
// fleet heals, synthetic containers whose events are published as the agent publishes its own,
// and REST reads.
// Each runs on a fixed timer, so the rate is the same in the first minute and the last.

import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { type ContainerAction, encode, eventSubject } from "../../contracts/index.js";
import { makeUnhealthy, runTestContainer } from "../../test/support/containers.js";
import type { DockerEngine } from "../../test/support/dockerd.js";
import { containerEvent, fixtureContainerId } from "../../test/support/fixtures.js";

/** Labels that let the fleet heal the same container every few seconds for minutes. */
const HEAL_AGAIN_LABELS = {
  autoheal: "true",
  "autoheal.backoff.initial": "0",
  "autoheal.budget.restarts": "50",
  "autoheal.budget.window": "1s",
};

/** A timer that runs `tick` every `everyMs` until stopped; a tick still running is not doubled. */
function every(everyMs: number, tick: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  const timer = setInterval(() => {
    if (running) return;
    running = tick().finally(() => {
      running = undefined;
    });
  }, everyMs);
  return async () => {
    clearInterval(timer);
    await running;
  };
}

export interface FlapCounts {
  /** Times a container was made unhealthy. */
  flaps: number;
  /** Flaps that failed (the exec did not run: the container was restarting). */
  flapErrors: number;
}

/**
 * Starts `count` opted-in containers with a 1 s healthcheck on `engine`, and makes one of them
 * unhealthy every `everyMs`, in turn: Docker reports it, the agent forwards it, a handler
 * decides, the agent restarts it, and it is healthy again.
 */
export async function startFlapping(engine: DockerEngine, count: number, everyMs: number) {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const c = await runTestContainer(engine, {
      name: `soak-flap-${i}`,
      labels: HEAL_AGAIN_LABELS,
      healthIntervalMs: 1_000,
      healthTimeoutMs: 5_000,
    });
    ids.push(c.id);
  }
  const counts: FlapCounts = { flaps: 0, flapErrors: 0 };
  let next = 0;
  const stop =
    count === 0
      ? async () => {}
      : every(everyMs, async () => {
          const id = ids[next++ % ids.length] as string;
          try {
            await makeUnhealthy(engine, id);
            counts.flaps++;
          } catch {
            counts.flapErrors++;
          }
        });
  return { ids, counts, stop };
}

export interface SyntheticCounts {
  published: number;
  failed: number;
}

/** Actions the synthetic host reports: transitions that need no heal. */
const SYNTHETIC_ACTIONS: ContainerAction[] = ["start", "healthy", "die", "start"];

/**
 * Publishes `perSecond` container events of `host` (with its agent's credentials, on `nc`), over
 * `containers` synthetic container ids in turn, in ten batches a second. They are stored,
 * consumed by the handlers and pushed to every live stream like any event; none asks for a heal.
 */
export function startSyntheticEvents(
  nc: NatsConnection,
  host: string,
  perSecond: number,
  containers: number,
) {
  const js = jetstream(nc);
  const counts: SyntheticCounts = { published: 0, failed: 0 };
  if (perSecond <= 0) return { counts, stop: async () => {} };
  let n = 0;
  let owed = 0;
  const stop = every(100, async () => {
    owed += perSecond / 10;
    const batch = Math.floor(owed);
    owed -= batch;
    await Promise.all(
      Array.from({ length: batch }, async () => {
        const i = n++;
        const action = SYNTHETIC_ACTIONS[i % SYNTHETIC_ACTIONS.length] as ContainerAction;
        const id = fixtureContainerId(i % containers);
        const event = containerEvent({
          host,
          action,
          container: { id, name: `synthetic-${i % containers}`, image: "busybox" },
        });
        try {
          await js.publish(eventSubject(host, id, action), encode(event), { msgID: event.id });
          counts.published++;
        } catch {
          counts.failed++;
        }
      }),
    );
  });
  return { counts, stop };
}

export interface ReadCounts {
  ok: number;
  /** Answers other than 2xx, by status. */
  notOk: Record<string, number>;
  errors: number;
  /** Ticks skipped because as many reads as allowed were still waiting. */
  skipped: number;
}

/** The reads the dashboard and scripts make, in turn. */
function readPaths(host: string): string[] {
  return [
    "/health",
    "/hosts",
    "/containers",
    `/hosts/${host}`,
    "/events?since=30s&limit=100",
    "/metrics",
  ];
}

/** Reads in flight at most: a slow gateway lowers the rate (counted) instead of piling up. */
const MAX_READS_IN_FLIGHT = 4;

/** GETs the gateway's read routes in turn, `perSecond` of them a second. */
export function startReads(baseUrl: string, host: string, perSecond: number) {
  const counts: ReadCounts = { ok: 0, notOk: {}, errors: 0, skipped: 0 };
  if (perSecond <= 0) return { counts, stop: async () => {} };
  const paths = readPaths(host);
  const inFlight = new Set<Promise<void>>();
  let n = 0;
  const read = async (path: string) => {
    try {
      const res = await fetch(new URL(path, baseUrl), { signal: AbortSignal.timeout(10_000) });
      await res.arrayBuffer();
      if (res.ok) counts.ok++;
      else counts.notOk[res.status] = (counts.notOk[res.status] ?? 0) + 1;
    } catch {
      counts.errors++;
    }
  };
  const timer = setInterval(() => {
    if (inFlight.size >= MAX_READS_IN_FLIGHT) {
      counts.skipped++;
      return;
    }
    const p = read(paths[n++ % paths.length] as string).finally(() => inFlight.delete(p));
    inFlight.add(p);
  }, 1000 / perSecond);
  return {
    counts,
    async stop() {
      clearInterval(timer);
      await Promise.all(inFlight);
    },
  };
}
