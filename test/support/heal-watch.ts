// What the heal tests watch: every container event and remediation record published on the fleet
// (a plain NATS subscriber, as an external tool would follow them), and the heal ledger in KV. The
// tests wait on these records rather than on time, and count them to prove what did not happen.

import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import {
  ContainerEvent,
  containerKey,
  decode,
  LEDGER_BUCKET,
  LedgerEntry,
  RemediationRecord,
  SUBJECTS,
} from "../../contracts/index.js";
import type { DockerEventRecord, DockerEventRecorder } from "./containers.js";
import type { Fleet } from "./fleet.js";
import { waitFor } from "./wait.js";

/** Why the ledger says a container is not being healed (LedgerEntry.notHealing). */
export type NotHealing = NonNullable<LedgerEntry["notHealing"]>;

/** The fleet's events and records as they are published, and its ledger. */
export interface HealWatch {
  readonly nc: NatsConnection;
  /** Every remediation record about the container so far, in publication order. */
  records(containerId: string): RemediationRecord[];
  /** Every container event about it so far (`action` to narrow), in publication order. */
  events(containerId: string, action?: ContainerEvent["action"]): ContainerEvent[];
  /** The `unhealthy` events that the agent's resync published about it. */
  resyncs(containerId: string): ContainerEvent[];
  /** The event with this id, if it was published. */
  event(id: string): ContainerEvent | undefined;
  /** The first record (past or future) about the container that matches. */
  waitForRecord(
    containerId: string,
    pred: (r: RemediationRecord) => boolean,
    timeoutMs: number,
    message: string,
  ): Promise<RemediationRecord>;
  /** Resolves once `count` more resync events about the container have been published. */
  waitForResyncs(containerId: string, count: number, timeoutMs: number): Promise<void>;
  /** The container's ledger entry, if it has one. */
  ledger(host: string, containerId: string): Promise<LedgerEntry | undefined>;
  /** Polls the ledger until its `notHealing` matches. */
  waitForNotHealing(
    host: string,
    containerId: string,
    pred: (n: NotHealing) => boolean,
    timeoutMs: number,
    message: string,
  ): Promise<NotHealing>;
}

/** Subscribes to the fleet's events and records; the subscription ends with the fleet. */
export async function watchHeal(fleet: Fleet): Promise<HealWatch> {
  const nc = await fleet.nats.connect({ name: "heal-watch" });
  fleet.defer(() => nc.close());
  const records: RemediationRecord[] = [];
  const events: ContainerEvent[] = [];
  // A record or event published twice under one id (its Nats-Msg-Id) is stored once: JetStream
  // drops the copy, and so does the watch, which sees every publication.
  const seen = new Set<string>();
  nc.subscribe(SUBJECTS.remediations, {
    callback: (_error, m) => {
      const decoded = decode(RemediationRecord, m.data);
      if (decoded.ok && once(`r:${decoded.value.id}`)) records.push(decoded.value);
    },
  });
  nc.subscribe(SUBJECTS.events, {
    callback: (_error, m) => {
      const decoded = decode(ContainerEvent, m.data);
      if (decoded.ok && once(`e:${decoded.value.id}`)) events.push(decoded.value);
    },
  });
  const once = (key: string): boolean => !seen.has(key) && Boolean(seen.add(key));
  await nc.flush();
  const ledger = await new Kvm(nc).open(LEDGER_BUCKET);

  const watch: HealWatch = {
    nc,
    records: (id) => records.filter((r) => r.containerId === id),
    events: (id, action) =>
      events.filter((e) => e.container.id === id && (!action || e.action === action)),
    resyncs: (id) => watch.events(id, "unhealthy").filter((e) => e.source === "resync"),
    event: (id) => events.find((e) => e.id === id),
    waitForRecord: (id, pred, timeoutMs, message) =>
      waitFor(() => watch.records(id).find(pred), {
        timeoutMs,
        message: () => `${message}; records so far: ${describeRecords(watch.records(id))}`,
      }),
    async waitForResyncs(id, count, timeoutMs) {
      const target = watch.resyncs(id).length + count;
      await waitFor(() => watch.resyncs(id).length >= target, {
        timeoutMs,
        message: () =>
          `the agent published ${watch.resyncs(id).length} of ${target} resync events about ${id.slice(0, 12)}`,
      });
    },
    async ledger(host, id) {
      const stored = await ledger.get(containerKey(host, id));
      if (stored?.operation !== "PUT") return undefined;
      const decoded = decode(LedgerEntry, stored.value);
      if (!decoded.ok) throw new Error(`ledger entry of ${id}: ${decoded.error.message}`);
      return decoded.value;
    },
    async waitForNotHealing(host, id, pred, timeoutMs, message) {
      let last: LedgerEntry | undefined;
      return waitFor(
        async () => {
          last = await watch.ledger(host, id);
          return last?.notHealing && pred(last.notHealing) ? last.notHealing : undefined;
        },
        {
          timeoutMs,
          intervalMs: 200,
          message: () =>
            `${message}; the ledger's notHealing is ${JSON.stringify(last?.notHealing)}; records: ${describeRecords(watch.records(id))}`,
        },
      );
    },
  };
  return watch;
}

/** `phase/code#attempt` of each record, for failure messages. */
export function describeRecords(records: readonly RemediationRecord[]): string {
  const shown = records.map((r) => `${r.phase}/${r.code}${r.attempt ? `#${r.attempt}` : ""}`);
  return `[${shown.join(", ")}]`;
}

/** Docker's events about one container, in order: the independent witness of what was done. */
export function dockerActions(
  recorder: DockerEventRecorder,
  id: string,
  action: string,
): DockerEventRecord[] {
  return recorder.events.filter((e) => e.id === id && e.action === action);
}

/** Milliseconds since the epoch of a Docker event. */
export function eventMs(e: DockerEventRecord): number {
  return Number(e.timeNano / 1_000_000n);
}
