// Exactly once under duress: 2 hosts, 10 opted-in containers, 5 incidents each (50 in all), two
// heal replicas. In some batches of incidents the replica that sends the batch's first restart
// command is SIGKILLed while that restart is in flight (its unacked messages come back after the
// consumer's ack_wait) and a new replica takes its place; in every batch
// each unhealthy event is published again as a true duplicate (no Nats-Msg-Id, or a new one), and
// the previous incident's events come back once more, late: the moment the next incident of the
// same container has been decided, as a redelivery could.
// Docker's own event stream counts the restarts; the ledger must agree with it.

import { type ConsumerInfo, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection, Subscription } from "@nats-io/nats-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openFleetJetStream } from "../common/jetstream-resources.js";
import {
  ContainerEvent,
  containerKey,
  decode,
  EVENTS_STREAM,
  encode,
  eventSubject,
  INFLIGHT_BUCKET,
  LedgerEntry,
  parseRemediationSubject,
  RemediationRecord,
  RestartCommand,
  SUBJECTS,
} from "../contracts/index.js";
import { makeUnhealthy, runTestContainer, waitForHealth } from "./support/containers.js";
import { type Fleet, type FleetHost, startFleet } from "./support/fleet.js";
import type { FleetProcess } from "./support/fleetheal.js";
import { readStored } from "./support/stream.js";
import { waitFor } from "./support/wait.js";

/**
 * Containers per host. Few containers and many incidents each, with a slow health check: on 2
 * cores, many containers checked often make the checks time out, which adds incidents nobody
 * asked for.
 */
const PER_HOST = [5, 5];
/** Health check interval (and timeout) of the test containers. */
const HEALTH_INTERVAL_MS = 3_000;
/** Incidents per container: 50 in all. */
const INCIDENTS = 5;
/** The batches in which a replica is SIGKILLed (each costs an ack_wait); the others only get
 * duplicates. */
const KILL_IN = new Set([0, 3]);
/** The heal consumer's ack_wait (handlers/runtime/durable-consumer.ts): a dead replica's messages return after it. */
const ACK_WAIT_MS = 30_000;
const HEAL_DURABLE = "fleetheal-heal";

type Host = FleetHost;

interface Target {
  host: Host;
  id: string;
  name: string;
  /** Docker's State.StartedAt of the run that each incident made unhealthy, in order. */
  incidents: string[];
}

let fleet: Fleet;
/** Replicas this test SIGKILLed. */
const killed = new Set<FleetProcess>();
let hosts: Host[];
let targets: Target[];
let external: NatsConnection;
let ledger: KV;
/** `decided` records seen by a plain subscriber, per `<container>|<incident>`. */
const decided = new Map<string, number>();
/** Per container and incident: its distinct unhealthy events, to be sent again late. */
const incidentEvents = new Map<string, ContainerEvent[][]>();
/** `<container>|<incident index>` whose previous incident has been sent again late. */
const lateSent = new Set<string>();
const latePublishes: Promise<unknown>[] = [];
/** How often each restart command id was sent to an agent (seen by a plain subscriber). */
const commandRequests = new Map<string, number>();
/** Set while a batch waits for its first restart command, whose sender is then killed. */
let onFirstCommand: ((reply: string, command: RestartCommand) => void) | undefined;

interface Kill {
  victim: FleetProcess;
  command: RestartCommand;
  /** When the victim was dead (ms since the epoch). */
  at: number;
}
function startReplica(): Promise<FleetProcess> {
  return fleet.startHandler();
}

function restartsOf(t: Target): number {
  return t.host.docker.count((e) => e.id === t.id && e.action === "restart");
}

function totalRestarts(): number {
  return targets.reduce((n, t) => n + restartsOf(t), 0);
}

function describeRestarts(): string {
  return targets.map((t) => `${t.name}=${restartsOf(t)}`).join(" ");
}

/** What Docker reported about `t` since `sinceMs` (health changes, kills, restarts), for errors. */
function timeline(t: Target, sinceMs: number): string {
  const since = BigInt(sinceMs) * 1_000_000n;
  return t.host.docker.events
    .filter((e) => e.id === t.id && e.timeNano >= since && !e.action.startsWith("exec_"))
    .map((e) => `+${Number(e.timeNano - since) / 1e6}ms ${e.action}`)
    .join(", ");
}

async function startedAt(t: Target): Promise<string> {
  const info = await t.host.engine.docker.getContainer(t.id).inspect();
  return info.State.StartedAt;
}

/**
 * Waits until the heal replicas are done with every message of the stream: nothing pending,
 * nothing unacked, nothing waiting to be redelivered. A dead replica's messages stay unacked until
 * the ack_wait runs out, so this can take that long.
 */
async function healConsumerSettled(timeoutMs: number): Promise<ConsumerInfo> {
  const jsm = await jetstreamManager(external);
  let last: ConsumerInfo | undefined;
  return waitFor(
    async () => {
      last = await jsm.consumers.info(EVENTS_STREAM, HEAL_DURABLE);
      return last.num_pending === 0 && last.num_ack_pending === 0 && last.num_redelivered === 0
        ? last
        : undefined;
    },
    {
      timeoutMs,
      intervalMs: 250,
      message: () =>
        `heal consumer never settled: pending=${last?.num_pending} ack_pending=${last?.num_ack_pending} redelivered=${last?.num_redelivered}`,
    },
  );
}

/**
 * How many deliveries of the heal consumer so far were redeliveries, once it has settled: every
 * delivery takes a consumer sequence number, and by then every event in the stream has been
 * delivered at least once.
 */
async function redeliveriesSoFar(): Promise<number> {
  const info = await healConsumerSettled(ACK_WAIT_MS * 2);
  const jsm = await jetstreamManager(external);
  const stream = await jsm.streams.info(EVENTS_STREAM, { subjects_filter: SUBJECTS.events });
  const events = Object.values(stream.state.subjects ?? {}).reduce((n, c) => n + c, 0);
  return info.delivered.consumer_seq - events;
}

/** The stored unhealthy events of `t`'s incident `n` (the run that started at incidents[n]). */
async function storedUnhealthy(t: Target, n: number): Promise<ContainerEvent[]> {
  const stored = await readStored(
    external,
    eventSubject(t.host.id, t.id, "unhealthy"),
    ContainerEvent,
  );
  return stored.filter((e) => e.container.startedAt === t.incidents[n]);
}

/**
 * Publishes `event` again, twice: once without a Nats-Msg-Id and once with a new one, so that
 * JetStream's dedup window keeps both and the stream holds true duplicates, which the handlers
 * must recognise as the incident they belong to.
 */
async function republish(event: ContainerEvent, tag: string): Promise<void> {
  const js = jetstream(external);
  const subject = eventSubject(event.host, event.container.id, "unhealthy");
  await js.publish(subject, encode(event));
  await js.publish(subject, encode(event), { msgID: `test-duplicate:${tag}:${event.id}` });
}

/** Duplicates every distinct unhealthy event of incident `n`; returns how many were published. */
async function duplicateIncident(n: number): Promise<number> {
  let published = 0;
  for (const t of targets) {
    const distinct = [...new Map((await storedUnhealthy(t, n)).map((e) => [e.id, e])).values()];
    for (const event of distinct) await republish(event, `now-${n}`);
    published += 2 * distinct.length;
    const byIncident = incidentEvents.get(t.id) ?? [];
    byIncident[n] = distinct;
    incidentEvents.set(t.id, byIncident);
  }
  return published;
}

/**
 * Sends the previous incident's events again the moment a plain subscriber sees the next
 * incident of the same container decided.
 */
function onRemediation(subject: string, data: Uint8Array): void {
  const parts = parseRemediationSubject(subject);
  if (parts?.phase !== "decided") return;
  const decoded = decode(RemediationRecord, data);
  if (!decoded.ok) return;
  const record = decoded.value;
  const key = `${record.containerId}|${record.incident}`;
  decided.set(key, (decided.get(key) ?? 0) + 1);
  const t = targets.find((x) => x.id === record.containerId);
  const k = t && record.incident ? t.incidents.indexOf(record.incident) : -1;
  if (!t || k < 1 || lateSent.has(`${t.id}|${k}`)) return;
  lateSent.add(`${t.id}|${k}`);
  for (const event of incidentEvents.get(t.id)?.[k - 1] ?? []) {
    latePublishes.push(republish(event, `late-${k}`));
  }
}

function onCommand(data: Uint8Array, reply: string | undefined): void {
  const decoded = decode(RestartCommand, data);
  if (!decoded.ok) return;
  const command = decoded.value;
  commandRequests.set(command.commandId, (commandRequests.get(command.commandId) ?? 0) + 1);
  if (reply && onFirstCommand) {
    const kill = onFirstCommand;
    onFirstCommand = undefined;
    kill(reply, command);
  }
}

/**
 * The heal replica whose connection sent a request with this reply subject: nats.js answers
 * requests through one `_INBOX.<id>.*` subscription per connection, and a replica's connection
 * is named after its pid.
 */
async function replicaByReplySubject(reply: string): Promise<FleetProcess> {
  const res = await fetch(`${fleet.nats.server.monitorUrl}/connz?subs=1`);
  const connz = (await res.json()) as {
    connections?: { name?: string; subscriptions_list?: string[] }[];
  };
  const owner = connz.connections?.find((c) =>
    c.subscriptions_list?.some(
      (sub) => (sub.endsWith(".*") || sub.endsWith(".>")) && reply.startsWith(sub.slice(0, -1)),
    ),
  );
  const pid = Number(/-(\d+)$/.exec(owner?.name ?? "")?.[1]);
  const replica = fleet.handlers.find((h) => h.pid === pid && !killed.has(h));
  if (!replica) {
    throw new Error(`no live heal replica owns reply subject ${reply} (connection ${owner?.name})`);
  }
  return replica;
}

/**
 * Arms a SIGKILL for the replica that sends the next restart command, the moment it is sent:
 * the restart is then in flight (Docker takes far longer to restart a container than this takes
 * to kill), and the replica dies holding its message unacked.
 */
function killNextCommandSender(timeoutMs: number): Promise<Kill> {
  const armed = new Promise<Kill>((resolve, reject) => {
    const timer = setTimeout(() => {
      onFirstCommand = undefined;
      reject(new Error(`no restart command was sent within ${timeoutMs} ms; nobody was killed`));
    }, timeoutMs);
    onFirstCommand = (reply, command) => {
      clearTimeout(timer);
      replicaByReplySubject(reply)
        .then(async (victim) => {
          await victim.kill();
          killed.add(victim);
          resolve({ victim, command, at: Date.now() });
        })
        .catch(reject);
    };
  });
  // Awaited later by the test; until then a failure must not count as unhandled.
  armed.catch(() => {});
  return armed;
}

beforeAll(async () => {
  const t0 = Date.now();
  fleet = await startFleet({
    nats: "plain",
    hosts: PER_HOST.map((_, index) => `host-${String.fromCharCode(97 + index)}`),
    handlers: 2,
    // Every incident is to be healed at once, so the storm guard's caps are set out of reach
    // (its leases are still taken and given back on every restart) and its image breaker is
    // off. Stored before any replica starts, so that each one has it from its first message.
    policy: {
      storm: {
        maxConcurrentPerHost: 1000,
        maxConcurrentFleet: 1000,
        maxPerMinutePerHost: 10_000,
        maxPerMinuteFleet: 10_000,
        // All containers run one image; its circuit breaker would hold back later batches.
        imageBreaker: { failures: 0, windowSeconds: 60 },
      },
    },
  });
  hosts = [...fleet.hosts.values()];
  external = await fleet.nats.connect({ name: "exactly-once-test" });
  const sub: Subscription = external.subscribe(SUBJECTS.remediations, {
    callback: (_error, m) => onRemediation(m.subject, m.data),
  });
  fleet.defer(() => sub.unsubscribe());
  const commands: Subscription = external.subscribe("fleetheal.v1.cmd.*.restart", {
    callback: (_error, m) => onCommand(m.data, m.reply),
  });
  fleet.defer(() => commands.unsubscribe());
  ledger = (await openFleetJetStream(external)).ledger;

  targets = (
    await Promise.all(
      hosts.map(async (host, h) => {
        const started: Target[] = [];
        for (let i = 1; i <= (PER_HOST[h] ?? 0); i++) {
          const c = await runTestContainer(host.engine, {
            name: `once-${host.id}-${i}`,
            healthIntervalMs: HEALTH_INTERVAL_MS,
            // No backoff and a budget that is never spent: every incident is healed at once.
            labels: {
              autoheal: "true",
              "autoheal.backoff.initial": "0",
              // The largest budget a label may ask for (the ledger keeps 50 restarts).
              "autoheal.budget.restarts": "50",
            },
          });
          started.push({ host, id: c.id, name: c.name, incidents: [] });
        }
        return started;
      }),
    )
  ).flat();
  await Promise.all(targets.map((t) => waitForHealth(t.host.engine, t.id, "healthy", 30_000)));
  console.info(`setup: ${targets.length} healthy containers after ${Date.now() - t0} ms`);
});

afterAll(async () => {
  await fleet?.[Symbol.asyncDispose]();
});

describe("heal exactly once", () => {
  it(`turns ${PER_HOST.reduce((a, b) => a + b)} containers x ${INCIDENTS} incidents into exactly that many restarts, with replicas SIGKILLed mid-batch and duplicated events`, async () => {
    const tStart = Date.now();
    let redeliveredBefore = await redeliveriesSoFar();
    expect(totalRestarts(), `restarts before the first incident: ${describeRestarts()}`).toBe(0);

    for (let n = 0; n < INCIDENTS; n++) {
      const batch = `incident ${n + 1}`;
      const t0 = Date.now();
      for (const t of targets) t.incidents.push(await startedAt(t));
      const kill = KILL_IN.has(n) ? killNextCommandSender(30_000) : undefined;

      // The batch: every container turns unhealthy at about the same time.
      await Promise.all(targets.map((t) => makeUnhealthy(t.host.engine, t.id)));

      // Every incident of the batch is in the stream by now or soon; duplicate all of them.
      let missing: string[] = [];
      await waitFor(
        async () => {
          missing = [];
          for (const t of targets) {
            if ((await storedUnhealthy(t, n)).length > 0) continue;
            const stored = await readStored(
              external,
              eventSubject(t.host.id, t.id, "unhealthy"),
              ContainerEvent,
            );
            missing.push(
              `${t.name} (run started ${t.incidents[n]}; stored unhealthy events name runs ` +
                `[${stored.map((e) => `${e.time} -> ${e.container.startedAt}`).join(", ")}]; ` +
                `docker: ${timeline(t, t0)})`,
            );
          }
          return missing.length === 0;
        },
        {
          timeoutMs: 20_000,
          intervalMs: 200,
          message: () =>
            `${batch}: no stored unhealthy event names the incident's run for ${missing.join("; ")}`,
        },
      );
      const duplicates = await duplicateIncident(n);
      const killedBy = kill ? await kill : undefined;
      // A new replica takes the dead one's place.
      if (killedBy) await startReplica();

      // Docker is the witness: each container restarted once more. Incidents held by the dead
      // replica are healed only after its messages' ack_wait has run out.
      await waitFor(() => targets.every((t) => restartsOf(t) >= n + 1), {
        timeoutMs: ACK_WAIT_MS + 30_000,
        intervalMs: 100,
        message: () => `${batch}: not every container was restarted: ${describeRestarts()}`,
      });
      const allRestarted = Date.now() - t0;
      await Promise.all(targets.map((t) => waitForHealth(t.host.engine, t.id, "healthy", 30_000)));
      const late = latePublishes.length * 2;
      await Promise.all(latePublishes.splice(0));
      const redelivered = await redeliveriesSoFar();
      const slowest = Math.max(
        ...targets.map((t) => {
          const own = t.host.docker.events.filter((e) => e.id === t.id);
          const unhealthy = own.filter((e) => e.action === "health_status: unhealthy")[n];
          const restart = own.filter((e) => e.action === "restart")[n];
          return unhealthy && restart ? Number(restart.timeNano - unhealthy.timeNano) / 1e6 : 0;
        }),
      );
      let note = "no kill";
      if (killedBy) {
        const t = targets.find((x) => x.id === killedBy.command.containerId);
        const restart = t?.host.docker.events.filter(
          (e) => e.id === t.id && e.action === "restart",
        )[n];
        const after = restart ? Number(restart.timeNano / 1_000_000n) - killedBy.at : Number.NaN;
        note = `${killedBy.victim.name} SIGKILLed with the restart of ${t?.name} in flight (Docker finished it ${after} ms after the kill)`;
      }
      console.info(
        `${batch}: ${note}; ${duplicates} duplicates and ${late} late duplicates published; ` +
          `all restarted after ${allRestarted} ms (slowest unhealthy->restart ${Math.round(slowest)} ms); ` +
          `settled after ${Date.now() - t0} ms with ${redelivered - redeliveredBefore} redeliveries; ` +
          `storm-guard slots still held: ${await inflightSlots()}`,
      );
      if (killedBy) {
        const killedCommand = killedBy.command;
        expect(
          redelivered - redeliveredBefore,
          `${batch}: the SIGKILL should have forced redeliveries`,
        ).toBeGreaterThan(0);
        // The dead replica's restart was sent again (by its redelivered message, or a duplicate
        // event), with the same command id, and Docker still restarted the container once.
        expect(
          commandRequests.get(killedCommand.commandId),
          `${batch}: requests of the killed replica's command ${killedCommand.commandId}`,
        ).toBeGreaterThanOrEqual(2);
      }
      redeliveredBefore = redelivered;
      for (const t of targets) {
        expect(
          restartsOf(t),
          `${batch}: docker restarts of ${t.name}; its events since the batch began: ${timeline(t, t0)}`,
        ).toBe(n + 1);
      }
    }

    const incidents = targets.length * INCIDENTS;
    expect(totalRestarts()).toBe(incidents);
    console.info(
      `${incidents} incidents, ${totalRestarts()} restarts in ${Date.now() - tStart} ms`,
    );

    // The ledger agrees: one restarted entry per incident, each for its own incident.
    const wrong: string[] = [];
    for (const t of targets) {
      const stored = await ledger.get(containerKey(t.host.id, t.id));
      if (stored?.operation !== "PUT") {
        wrong.push(`${t.name}: no ledger entry`);
        continue;
      }
      const decoded = decode(LedgerEntry, stored.value);
      if (!decoded.ok) throw new Error(`ledger entry of ${t.name}: ${decoded.error.message}`);
      const restarted = decoded.value.restarts.filter((r) => r.outcome === "restarted");
      const got = restarted.map((r) => r.incident).sort();
      if (JSON.stringify(got) === JSON.stringify([...t.incidents].sort())) continue;
      const history = decoded.value.restarts
        .map((r) => `${t.incidents.indexOf(r.incident) + 1}:${r.outcome}`)
        .join(",");
      const decisions = t.incidents.map((i) => decided.get(`${t.id}|${i}`) ?? 0).join(",");
      wrong.push(
        `${t.name}: ${restarted.length} restarted entries for ${INCIDENTS} incidents ` +
          `(history newest first, as incident:outcome: ${history}; ` +
          `decided records per incident: ${decisions})`,
      );
    }
    expect(wrong, "ledger restart histories that do not match the incidents").toEqual([]);
  }, 240_000);
});

/** Storm-guard slots (restarts in progress) held in KV right now. */
async function inflightSlots(): Promise<number> {
  const inflight = await new Kvm(external).open(INFLIGHT_BUCKET);
  let held = 0;
  for await (const _key of await inflight.keys()) held++;
  return held;
}

describe("heal exactly once with resyncs running", () => {
  it("decides and executes each (incident, attempt) once while the agents re-assert every second", async () => {
    const RESYNC_MS = 1_000;
    const PER_HOST_HERE = 8;
    // Every agent re-asserts unhealthy containers every second, and three replicas decide.
    for (const host of hosts) {
      await fleet.restart(host.agent, {
        env: { FLEETHEAL_RECONCILE_INTERVAL_MS: String(RESYNC_MS) },
      });
    }
    while (fleet.handlers.filter((h) => !killed.has(h)).length < 3) await startReplica();
    // Few restarts at once: the others wait for a slot over several resyncs, and each resync
    // of a container whose restart is in flight or done must come to nothing.
    await fleet.putPolicy({
      storm: {
        maxConcurrentPerHost: 2,
        maxConcurrentFleet: 3,
        maxPerMinutePerHost: 10_000,
        maxPerMinuteFleet: 10_000,
        imageBreaker: { failures: 0, windowSeconds: 60 },
      },
    });
    const records: RemediationRecord[] = [];
    /** Every unhealthy event about the containers, and who saw it (`source`). */
    const unhealthy: ContainerEvent[] = [];
    const subs = [
      external.subscribe(SUBJECTS.remediations, {
        callback: (_error, m) => {
          const decoded = decode(RemediationRecord, m.data);
          // A copy under the same id (the JetStream message id) is not stored again.
          if (decoded.ok && !records.some((r) => r.id === decoded.value.id)) {
            records.push(decoded.value);
          }
        },
      }),
      external.subscribe(SUBJECTS.events, {
        callback: (_error, m) => {
          const decoded = decode(ContainerEvent, m.data);
          if (decoded.ok && decoded.value.action === "unhealthy") unhealthy.push(decoded.value);
        },
      }),
    ];
    fleet.defer(() => {
      for (const s of subs) s.unsubscribe();
    });

    const here: Target[] = await Promise.all(
      hosts.flatMap((host) =>
        Array.from({ length: PER_HOST_HERE }, async (_, i) => {
          const c = await runTestContainer(host.engine, {
            name: `resync-${host.id}-${i}`,
            healthIntervalMs: HEALTH_INTERVAL_MS,
            healthTimeoutMs: 60_000,
            labels: { autoheal: "true", "autoheal.backoff.initial": "0" },
          });
          const target: Target = { host, id: c.id, name: c.name, incidents: [] };
          return target;
        }),
      ),
    );
    await Promise.all(here.map((t) => waitForHealth(t.host.engine, t.id, "healthy", 60_000)));
    for (const t of here) t.incidents.push(await startedAt(t));

    const t0 = Date.now();
    await Promise.all(here.map((t) => makeUnhealthy(t.host.engine, t.id)));
    await waitFor(() => here.every((t) => restartsOf(t) >= 1), {
      timeoutMs: 90_000,
      intervalMs: 100,
      message: () =>
        `not every container was restarted: ${here.map((t) => `${t.name}=${restartsOf(t)}`).join(" ")}`,
    });
    await Promise.all(here.map((t) => waitForHealth(t.host.engine, t.id, "healthy", 30_000)));
    await healConsumerSettled(ACK_WAIT_MS * 2);

    const ours = new Set(here.map((t) => t.id));
    const reasserted = unhealthy.filter((e) => ours.has(e.container.id) && e.source === "resync");
    console.info(
      `resyncs: ${here.length} containers restarted once each; ${reasserted.length} resync events meanwhile`,
    );
    // The resyncs ran while restarts were waiting or in flight.
    expect(reasserted.length).toBeGreaterThan(0);
    const wrong: string[] = [];
    for (const t of here) {
      const own = records.filter((r) => r.containerId === t.id);
      const decided = own.filter((r) => r.phase === "decided");
      const perAttempt = new Map<string, number>();
      for (const r of decided) {
        const key = `${r.incident}#${r.attempt ?? 1}`;
        perAttempt.set(key, (perAttempt.get(key) ?? 0) + 1);
      }
      const restartedRecords = own.filter((r) => r.phase === "restarted");
      const restarted = restartedRecords.length;
      const docker = restartsOf(t);
      const twice = [...perAttempt].filter(([, n]) => n > 1);
      if (decided.length === 1 && restarted === 1 && docker === 1 && twice.length === 0) continue;
      wrong.push(
        `${t.name}: ${decided.length} decided (${[...perAttempt].map(([k, n]) => `${k}=${n}`).join(", ")}), ${restarted} restarted records (triggers ${restartedRecords.map((r) => `${r.triggerEventId} from ${unhealthy.find((e) => e.id === r.triggerEventId)?.source}`).join(", ")}), ${docker} docker restarts; docker: ${timeline(t, t0)}`,
      );
    }
    expect(wrong, "containers not healed exactly once").toEqual([]);
    for (const t of here) {
      expect(records.find((r) => r.containerId === t.id && r.phase === "decided")?.incident).toBe(
        t.incidents[0],
      );
    }
  }, 180_000);
});
