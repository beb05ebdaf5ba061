// The JetStream operations floor, a child program of bench/handler-throughput.ts, one per handler
// replica: what the heal path would cost if fleetheal's own code cost nothing. Per event it makes
// exactly the NATS and JetStream operations one restart decision of the heal handler and the
// dependents handler make with caps and breaker lifted, in the same order and overlap, on the same
// consumers, buckets and subjects, with bodies of the same shapes and sizes, but with no fleetheal
// code on the way: no schema validation, no policy, no decision objects, no logging. The
// handler's ratio to this floor is what fleetheal's code costs; the floor's ratio to bare
// JetStream is what the design's operations cost.

import { createHash } from "node:crypto";
import {
  type ConsumerMessages,
  type JetStreamClient,
  type JsMsg,
  jetstream,
} from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import {
  commandSubject,
  containerKey,
  EVENTS_STREAM,
  HOSTS_BUCKET,
  LEDGER_BUCKET,
  type LedgerEntry,
  MAX_COMMAND_LIFETIME_MS,
  parseRemediationSubject,
  REMEDIATION_TYPE,
  RESTART_COMMAND_TYPE,
  type RemediationPhase,
  type RemediationRecord,
  type RestartCommand,
  remediationSubject,
} from "../../contracts/index.js";
import { fromParent, toParent } from "../runner/children.js";
import { runMain } from "../runner/report.js";
import {
  FLOOR_ORDER_ENV,
  type FloorConsumer,
  type FloorOrder,
  type FromFloor,
  type ToFloor,
} from "./ops-floor-protocol.js";

/** Both consumers on one connection, as in one handler replica. */
async function main(): Promise<void> {
  const send = (m: FromFloor) => toParent(m);
  const stopOrder = fromParent<ToFloor>();
  const order = JSON.parse(process.env[FLOOR_ORDER_ENV] ?? "") as FloorOrder;
  // The handler sets the same option on its connection (handlers/main.ts).
  const nc = await connect({ servers: order.url, name: order.name, noAsyncTraces: true });
  const js = jetstream(nc);
  const kvm = new Kvm(js);
  // As openFleetJetStream opens them: the existing buckets, read with direct gets.
  const [ledger, hosts] = await Promise.all([kvm.create(LEDGER_BUCKET), kvm.create(HOSTS_BUCKET)]);
  const fail = (error: unknown) => send({ type: "failed", error: String(error) });
  const io: FloorIo = { nc, js, ledger, order };
  const heal = await floorLoop(js, order.heal, (m) => floorHeal(m, io), fail);
  const dependents = await floorLoop(js, order.dependents, (m) => floorDependents(m, hosts), fail);
  send({ type: "ready" });
  await stopOrder;
  const [healAcked, dependentsAcked] = await Promise.all([heal.stop(), dependents.stop()]);
  await nc.drain();
  send({ type: "stopped", heal: healAcked, dependents: dependentsAcked });
}

/**
 * The runtime's loop: a message is taken from the consumer only when one of `concurrency` is
 * free. Returns a stop that ends the consumer, waits for the messages in progress and says how
 * many were done and acked.
 */
async function floorLoop(
  js: JetStreamClient,
  spec: FloorConsumer,
  work: (msg: JsMsg) => Promise<void>,
  fail: (error: unknown) => void,
): Promise<{ stop: () => Promise<number> }> {
  const consumer = await js.consumers.get(EVENTS_STREAM, spec.durable);
  const messages: ConsumerMessages = await consumer.consume({
    max_messages: spec.maxMessages,
    expires: spec.expiresMs,
  });
  let acked = 0;
  const loop = (async () => {
    const inFlight = new Set<Promise<void>>();
    let freed: (() => void) | undefined;
    for await (const msg of messages) {
      while (inFlight.size >= spec.concurrency) await new Promise<void>((r) => (freed = r));
      const job: Promise<void> = work(msg)
        .then(() => {
          acked++;
        }, fail)
        .finally(() => {
          inFlight.delete(job);
          const wake = freed;
          freed = undefined;
          wake?.();
        });
      inFlight.add(job);
    }
    await Promise.all(inFlight);
  })();
  return {
    stop: async () => {
      await messages.close();
      await loop;
      return acked;
    },
  };
}

interface FloorIo {
  nc: NatsConnection;
  js: JetStreamClient;
  ledger: KV;
  order: FloorOrder;
}

/** What the floor reads of an event: the ids and times the records and the ledger carry. */
interface FloorEvent {
  id: string;
  host: string;
  time: string;
  container: { id: string; name: string; startedAt: string };
}

const floorText = new TextEncoder();
const floorUtf8 = new TextDecoder();

/**
 * One restart decision's operations, as the runtime applies heal's decisions for a first
 * restart with caps and breaker lifted: read the ledger; (no leases: every cap is 0); claim the
 * ledger with a create; `decided` and `restarting` records and the restart request leave
 * together; on the reply, the outcome into the ledger at the claimed revision, then the
 * `restarted` record; ack once every record is stored.
 */
async function floorHeal(msg: JsMsg, io: FloorIo): Promise<void> {
  const event = JSON.parse(floorUtf8.decode(msg.data)) as FloorEvent;
  const { host } = event;
  const containerId = event.container.id;
  const key = containerKey(host, containerId);
  const at = new Date().toISOString();
  // Derived from the event like heal's, so that a redelivery would send the same command.
  const commandId = `heal-${createHash("sha256").update(event.id).digest("hex").slice(0, 32)}`;
  const record = floorRecord(io, event, at, commandId);
  await io.ledger.get(key);
  const revision = await io.ledger.create(
    key,
    floorText.encode(JSON.stringify(floorLedgerEntry(event, at, commandId, "pending"))),
  );
  const stored = [
    record("decided", "unhealthy", "container is unhealthy; restarting it"),
    record("restarting", "restart-sent", "restart command sent to the agent"),
  ];
  const reply = await io.nc.request(
    commandSubject(host, "restart"),
    floorText.encode(JSON.stringify(floorCommand(event, commandId, io.order.healName))),
    { timeout: io.order.commandTimeoutMs },
  );
  const answer = JSON.parse(floorUtf8.decode(reply.data)) as {
    outcome: string;
    code: string;
    message: string;
  };
  if (answer.outcome !== "restarted") throw new Error(`${key}: agent answered ${answer.outcome}`);
  await io.ledger.update(
    key,
    floorText.encode(JSON.stringify(floorLedgerEntry(event, at, commandId, "restarted"))),
    revision,
  );
  stored.push(record("restarted", answer.code, answer.message));
  await Promise.all(stored);
  msg.ack();
}

/**
 * The dependents handler's operations on a `restarted` record: the host's snapshot read from
 * KV (not parsed: that is the handler's own work), then the ack.
 */
async function floorDependents(msg: JsMsg, hosts: KV): Promise<void> {
  const host = parseRemediationSubject(msg.subject)?.host ?? "";
  const snapshot = await hosts.get(host);
  if (snapshot?.operation !== "PUT") throw new Error(`no snapshot of ${host}`);
  msg.ack();
}

/** Publishes a remediation record shaped and identified as heal's records are. */
function floorRecord(io: FloorIo, event: FloorEvent, at: string, commandId: string) {
  const actor = `handler:${io.order.healName}`;
  const remediationId = `${io.order.healName}:${event.id}`;
  return (phase: RemediationPhase, code: string, message: string) => {
    const record = {
      type: REMEDIATION_TYPE,
      v: 1,
      id: `${remediationId}:${phase}:${code}`,
      remediationId,
      host: event.host,
      containerId: event.container.id,
      containerName: event.container.name,
      phase,
      code,
      message,
      incident: event.container.startedAt,
      triggerEventId: event.id,
      commandId,
      actor,
      at,
      dryRun: false,
    } satisfies RemediationRecord;
    return io.js.publish(
      remediationSubject(event.host, event.container.id, phase),
      floorText.encode(JSON.stringify(record)),
      { msgID: record.id },
    );
  };
}

/** A first restart's ledger entry, as heal claims it and then writes its outcome. */
function floorLedgerEntry(
  event: FloorEvent,
  at: string,
  commandId: string,
  outcome: "pending" | "restarted",
) {
  const incident = event.container.startedAt;
  return {
    v: 1,
    host: event.host,
    containerId: event.container.id,
    lastIncident: incident,
    lastCommandId: commandId,
    lastRestartAt: at,
    restarts: [{ at, incident, commandId, outcome }],
    consecutiveRestarts: 1,
    lastTroubleAt: event.time,
  } satisfies LedgerEntry;
}

/** heal's restart command, with the lifetime a handler gives it (sent unsigned: no headers). */
function floorCommand(event: FloorEvent, commandId: string, healName: string) {
  const now = Date.now();
  return {
    type: RESTART_COMMAND_TYPE,
    v: 1,
    commandId,
    host: event.host,
    containerId: event.container.id,
    reason: "unhealthy",
    requestedBy: `handler:${healName}`,
    issuedAt: new Date(now).toISOString(),
    expiresAt: new Date(now + MAX_COMMAND_LIFETIME_MS).toISOString(),
    requireUnhealthy: true,
    incident: event.container.startedAt,
  } satisfies RestartCommand;
}

runMain(main);
