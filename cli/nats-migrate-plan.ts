// What `fleetheal nats-migrate` moves and how, decided without NATS: which streams, which user
// may store each message again in the accounts layout, where each handler's durable consumer
// starts again, and whether a stream that already holds messages can be continued.

import { subjectMatches } from "../common/nats-permissions.js";
import {
  BREAKERS_BUCKET,
  CONFIG_BUCKET,
  DLQ_STREAM,
  EVENTS_STREAM,
  HOSTS_BUCKET,
  isToken,
  LEDGER_BUCKET,
  MONITORED_BUCKET,
  SUBJECT_ROOT,
} from "../contracts/index.js";
import type { ExportedConsumer, HeaderPairs } from "./nats-migrate-file.js";
import { isKvRemoval } from "./nats-migrate-file.js";

/** One stream that an upgrade carries over. */
export interface MigratedStream {
  name: string;
  /** Dead letters (their message ids name old sequences). */
  deadLetters?: boolean;
  /** Only each subject's last message is imported (the hosts bucket: it refuses rollups). */
  lastValueOnly?: boolean;
  /** Nothing is ever removed from its middle, so its sequences have no gaps (not a KV bucket). */
  gapless?: boolean;
}

/**
 * Every fleetheal stream an upgrade carries over, in the order of the file. The storm guard's
 * buckets (`fleetheal_inflight`, `fleetheal_rate`) are not: they forget everything within a minute.
 */
export const MIGRATED_STREAMS: readonly MigratedStream[] = [
  { name: EVENTS_STREAM, gapless: true },
  { name: DLQ_STREAM, gapless: true, deadLetters: true },
  { name: `KV_${HOSTS_BUCKET}`, lastValueOnly: true },
  { name: `KV_${LEDGER_BUCKET}` },
  { name: `KV_${MONITORED_BUCKET}` },
  { name: `KV_${CONFIG_BUCKET}` },
  { name: `KV_${BREAKERS_BUCKET}` },
];

/** Who stores a message again: the handler, or the agent of the host it belongs to. */
export type Publisher = { role: "handler" } | { role: "agent"; host: string };

const HOSTS_KEY_PREFIX = `$KV.${HOSTS_BUCKET}.`;
const EVENT_PREFIX = `${SUBJECT_ROOT}.evt.`;

/**
 * Who may store `subject` in the accounts layout. A host's events and its snapshot key reach
 * FLEET only through that host's account (the handler may write neither); everything else is the
 * handler's. Undefined when the subject names a host that cannot have an account (not a valid
 * host id), so no user may store it.
 */
export function publisherOf(subject: string): Publisher | undefined {
  let host: string | undefined;
  if (subject.startsWith(EVENT_PREFIX)) host = subject.slice(EVENT_PREFIX.length).split(".")[0];
  else if (subject.startsWith(HOSTS_KEY_PREFIX)) host = subject.slice(HOSTS_KEY_PREFIX.length);
  else return { role: "handler" };
  return host !== undefined && isToken(host) ? { role: "agent", host } : undefined;
}

/** The connection key of a publisher, to group messages that one connection sends in a row. */
export function publisherKey(p: Publisher): string {
  return p.role === "handler" ? "handler" : `agent:${p.host}`;
}

/** Where one handler's durable consumer starts again, counted in imported events. */
export interface DurablePosition {
  consumer: ExportedConsumer;
  /** Imported events at or below its ack floor (acknowledged, or not for it): it starts after them. */
  passed: number;
  /** Imported events after its ack floor that match its filter: what it has still to handle. */
  toHandle: number;
}

/**
 * Follows the imported events in order and counts, for each durable consumer of the export,
 * the events it had acknowledged (at or below its ack floor) and those still to handle. Events
 * are renumbered from 1 in the new stream, so a durable starts at `passed + 1`: nothing it had
 * acknowledged comes again, nothing after comes late. Messages it had received but not
 * acknowledged are above the floor and come again.
 */
export class DurablePositions {
  private readonly positions: DurablePosition[];

  constructor(consumers: readonly ExportedConsumer[]) {
    this.positions = consumers.map((consumer) => ({ consumer, passed: 0, toHandle: 0 }));
  }

  /** One imported event, in stream order, with its sequence in the old stream. */
  observe(oldSeq: number, subject: string): void {
    for (const p of this.positions) {
      if (oldSeq <= p.consumer.ackFloor) p.passed++;
      else if (p.consumer.filter === "" || subjectMatches(p.consumer.filter, subject)) {
        p.toHandle++;
      }
    }
  }

  get result(): readonly DurablePosition[] {
    return this.positions;
  }
}

/** A message as the import stores it again. */
export interface PlannedMessage {
  oldSeq: number;
  subject: string;
  headers: HeaderPairs;
  data: string;
}

/**
 * The last message of each subject, in the order of those last messages: what a bucket that keeps
 * one value per key holds. A key whose last message deletes it is left out: in a new bucket, a
 * key that was never written reads as one that was deleted.
 */
export class LastValues {
  private readonly bySubject = new Map<string, PlannedMessage>();

  add(m: PlannedMessage): void {
    this.bySubject.delete(m.subject);
    this.bySubject.set(m.subject, m);
  }

  values(): PlannedMessage[] {
    return [...this.bySubject.values()].filter((m) => !isKvRemoval(m.headers));
  }
}

/** A target stream's state before the import. */
export interface TargetState {
  messages: number;
  lastSeq: number;
}

/**
 * Where the import of a stream begins, given what the target already holds: at the start when
 * it is empty; after the messages that an earlier, interrupted import of this same file stored
 * (each was stored at the sequence it had to get, so they are the plan's first `lastSeq`, and
 * `confirmed` says that the target's last message is the plan's message at that sequence);
 * refused otherwise, with why.
 */
export function resumePoint(
  stream: MigratedStream,
  planned: number,
  target: TargetState,
  confirmed: boolean,
): { from: number } | { refuse: string } {
  if (target.lastSeq === 0) return { from: 0 };
  const ours =
    confirmed &&
    target.lastSeq <= planned &&
    (!stream.gapless || target.messages === target.lastSeq);
  if (ours) return { from: target.lastSeq };
  const why =
    stream.name === EVENTS_STREAM
      ? "importing would mix them into the old history, and the handlers' durable consumers, placed by counting the imported events, would start at the wrong event"
      : "importing on top of them would mix them with the old history";
  return {
    refuse: `${stream.name} holds ${target.messages} messages that this export did not put there; ${why}. Import into empty streams: stop every role and start NATS again from empty stores (docs/DEPLOY.md, "Upgrading from a deployment with passwords")`,
  };
}
