// A read-only fleetheal subscriber (see examples/README.md and docs/SUBSCRIBING.md).
//
// It replays the remediation records of the last REPLAY_MINUTES from the FLEETHEAL_EVENTS stream,
// then follows container events and remediation records live, printing one line per message:
//
//   [replay] 2025-01-15T09:58:15.002Z act web-1 api 3f4e5d6c7b8a restarted restarted: restarted ...
//   [live] 2025-01-15T10:02:41.117Z evt web-1 api 3f4e5d6c7b8a unhealthy source=docker
//
// It needs nothing but read access, so it runs as the `reader` user of `fleetheal nats-auth`:
//
//   node --env-file=nats-auth/reader.env --import tsx examples/subscriber.ts

import { readFileSync } from "node:fs";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { Msg, NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import {
  ContainerEvent,
  decode,
  EVENTS_STREAM,
  eventSubjectMismatch,
  isToken,
  RemediationRecord,
  remediationSubjectMismatch,
  SUBJECT_ROOT,
  SUBJECTS,
} from "../contracts/index.js";

/** What the example is configured with, from the environment. */
interface Settings {
  servers: string[];
  user?: string;
  pass?: string;
  inboxPrefix?: string;
  replayMinutes: number;
  host?: string;
}

/**
 * Reads the settings. The NATS variables are those of fleetheal's own roles, so the `reader.env`
 * file that `fleetheal nats-auth` writes works as it is.
 */
function settingsFrom(env: NodeJS.ProcessEnv): Settings {
  const replayMinutes = Number(env.REPLAY_MINUTES || "60");
  if (!Number.isFinite(replayMinutes) || replayMinutes < 0) {
    throw new Error(
      `REPLAY_MINUTES must be a number of minutes (0 or more), not ${env.REPLAY_MINUTES}`,
    );
  }
  const host = env.FILTER_HOST || undefined;
  if (host !== undefined && !isToken(host)) {
    throw new Error(`FILTER_HOST must be a host id (letters, digits, '_' and '-'), not ${host}`);
  }
  const passwordFile = env.FLEETHEAL_NATS_PASSWORD_FILE;
  const pass = passwordFile
    ? readFileSync(passwordFile, "utf8").trim()
    : env.FLEETHEAL_NATS_PASSWORD;
  return {
    servers: (env.FLEETHEAL_NATS_URL ?? "nats://127.0.0.1:4222").split(","),
    ...(env.FLEETHEAL_NATS_USER ? { user: env.FLEETHEAL_NATS_USER } : {}),
    ...(pass ? { pass } : {}),
    ...(env.FLEETHEAL_NATS_INBOX_PREFIX ? { inboxPrefix: env.FLEETHEAL_NATS_INBOX_PREFIX } : {}),
    replayMinutes,
    ...(host === undefined ? {} : { host }),
  };
}

/**
 * Remembers the ids of recent messages. Every event and record has a unique `id` (also its
 * `Nats-Msg-Id`): a live subscriber sees a publisher's retry twice (JetStream drops the copy, core
 * NATS delivers it), and a record can arrive both in the replay and live. Bounded, because a
 * repeat comes within seconds, not hours.
 */
class RecentIds {
  private readonly ids = new Set<string>();
  constructor(private readonly max = 10_000) {}

  /** Records `id`; false when it was seen already. */
  add(id: string): boolean {
    if (this.ids.has(id)) return false;
    this.ids.add(id);
    if (this.ids.size > this.max) {
      const oldest = this.ids.values().next().value;
      if (oldest !== undefined) this.ids.delete(oldest);
    }
    return true;
  }
}

type Mode = "replay" | "live";

const EVENT_PREFIX = `${SUBJECT_ROOT}.evt.`;

/**
 * Decodes one message by its subject and prints it, unless it is a repeat or malformed. Returns
 * whether it printed it.
 */
function show(mode: Mode, subject: string, data: Uint8Array, seen: RecentIds): boolean {
  // By the kind token, not by parsing the whole subject: a subject with an action this copy of
  // the contracts does not know is still an event, reported as such.
  if (subject.startsWith(EVENT_PREFIX)) {
    const event = decode(ContainerEvent, data);
    if (!event.ok) {
      skip(subject, event.error.message);
      return false;
    }
    // Permissions are granted by subject: a payload that names another host must not be believed.
    const mismatch = eventSubjectMismatch(subject, event.value);
    if (mismatch) {
      skip(subject, mismatch);
      return false;
    }
    const e = event.value;
    if (!seen.add(e.id)) return false;
    const extra = [
      e.exitCode === undefined ? "" : ` exit=${e.exitCode}`,
      e.stopped ? " stopped" : "",
      ` source=${e.source}`,
    ].join("");
    print(
      `[${mode}] ${e.time} evt ${e.host} ${e.container.name} ${e.container.id.slice(0, 12)} ${e.action}${extra}`,
    );
    return true;
  }
  const record = decode(RemediationRecord, data);
  if (!record.ok) {
    skip(subject, record.error.message);
    return false;
  }
  const mismatch = remediationSubjectMismatch(subject, record.value);
  if (mismatch) {
    skip(subject, mismatch);
    return false;
  }
  const r = record.value;
  if (!seen.add(r.id)) return false;
  const dryRun = r.dryRun ? " (dry run)" : "";
  print(
    `[${mode}] ${r.at} act ${r.host} ${r.containerName} ${r.containerId.slice(0, 12)} ${r.phase} ${r.code}: ${r.message}${dryRun}`,
  );
  return true;
}

function print(line: string): void {
  process.stdout.write(`${line}\n`);
}

/**
 * A message that does not match the contracts is reported and skipped, never fatal: after a
 * fleetheal upgrade it may carry an enum value this copy of the schemas does not know yet.
 */
function skip(subject: string, why: string): void {
  process.stderr.write(`skipped ${subject}: ${why}\n`);
}

/**
 * Prints the stored messages on `filter` from `since` up to the last one stored when the replay
 * starts, with an ordered consumer (ephemeral, so a read-only user may create it). Returns how
 * many it printed (malformed ones are reported instead).
 */
async function replay(
  nc: NatsConnection,
  filter: string,
  since: Date,
  seen: RecentIds,
): Promise<number> {
  const jsm = await jetstreamManager(nc);
  // Where to stop: the consumer's pending count cannot say, because nats-server 2.9 overcounts it
  // for a wildcard filter that starts mid-stream.
  const last = await jsm.streams.getMessage(EVENTS_STREAM, { last_by_subj: filter });
  if (!last || last.time < since) return 0;
  const consumer = await jetstream(nc).consumers.get(EVENTS_STREAM, {
    filter_subjects: filter,
    opt_start_time: since.toISOString(),
    // A reader may not delete consumers; the server removes this one a minute after the replay.
    inactive_threshold: 60_000,
  });
  let count = 0;
  let cursor = 0;
  while (cursor < last.seq) {
    const batch = await consumer.fetch({ max_messages: 256, expires: 5_000 });
    let received = 0;
    for await (const m of batch) {
      received++;
      cursor = m.seq;
      if (m.seq <= last.seq && show("replay", m.subject, m.data, seen)) count++;
      if (m.seq >= last.seq) break;
    }
    // Nothing came: the last record aged out of the stream meanwhile.
    if (received === 0) break;
  }
  return count;
}

async function main(): Promise<void> {
  const settings = settingsFrom(process.env);
  const nc = await connect({
    servers: settings.servers,
    name: "fleetheal-example-subscriber",
    maxReconnectAttempts: -1,
    ...(settings.user === undefined ? {} : { user: settings.user }),
    ...(settings.pass === undefined ? {} : { pass: settings.pass }),
    ...(settings.inboxPrefix === undefined ? {} : { inboxPrefix: settings.inboxPrefix }),
  });
  // Ctrl-C or SIGTERM, also during the replay: let what was received be handled, then exit.
  const stop = () => {
    void nc.drain().finally(() => process.exit(0));
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);

  const host = settings.host;
  const live =
    host === undefined
      ? [SUBJECTS.events, SUBJECTS.remediations]
      : [SUBJECTS.hostEvents(host), `${SUBJECT_ROOT}.act.${host}.>`];
  const history = host === undefined ? SUBJECTS.remediations : `${SUBJECT_ROOT}.act.${host}.>`;

  // Subscribe first and hold live messages back while the replay runs: whatever is published in
  // between is then either replayed or held, never lost, and shown once (by id).
  const seen = new RecentIds();
  let held: Msg[] | undefined = [];
  for (const subject of live) {
    nc.subscribe(subject, {
      callback: (error, m) => {
        // The server refused the subscription (permissions): nothing will come, so stop.
        if (error) {
          process.stderr.write(`subscriber: subscription to ${subject} failed: ${error.message}\n`);
          process.exitCode = 1;
          void nc.close();
          return;
        }
        if (held) held.push(m);
        else show("live", m.subject, m.data, seen);
      },
    });
  }
  // The server has the subscriptions once it answers the flush.
  await nc.flush();

  const since = new Date(Date.now() - settings.replayMinutes * 60_000);
  print(`replaying ${history} since ${since.toISOString()}`);
  const replayed = settings.replayMinutes > 0 ? await replay(nc, history, since, seen) : 0;
  print(`replayed ${replayed} remediation records; following ${live.join(" ")}`);
  const backlog = held;
  held = undefined;
  for (const m of backlog) show("live", m.subject, m.data, seen);

  const closed = await nc.closed();
  if (closed) throw closed;
}

main().catch((error: unknown) => {
  process.stderr.write(`subscriber: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
