// A read-only fleetheal subscriber (see examples/README.md and docs/SUBSCRIBING.md).
//
// It replays the remediation records of the last REPLAY_MINUTES, then follows container events
// and remediation records live, printing one line per message:
//
//   [replay] 2025-01-15T09:58:15.002Z act web-1 api 3f4e5d6c7b8a restarted restarted: restarted ...
//   [live] 2025-01-15T10:02:41.117Z evt web-1 api 3f4e5d6c7b8a unhealthy source=docker
//
// All of it comes from one ordered consumer on the FLEETHEAL_EVENTS stream (for the `reader`,
// the READER account's mirror of it), so the replay runs into the live feed with no gap and no
// repeat. It needs nothing but read access, so it runs as the `reader` of `fleetheal nats-auth`:
//
//   node --env-file=nats-auth/reader.env --import tsx examples/subscriber.ts

import { readFileSync } from "node:fs";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import {
  type Authenticator,
  nkeyAuthenticator,
  usernamePasswordAuthenticator,
} from "@nats-io/nats-core";
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
  authenticator?: Authenticator;
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
  const authenticator = authenticatorFrom(env);
  return {
    servers: (env.FLEETHEAL_NATS_URL || "nats://127.0.0.1:4222").split(","),
    ...(authenticator === undefined ? {} : { authenticator }),
    ...(env.FLEETHEAL_NATS_INBOX_PREFIX ? { inboxPrefix: env.FLEETHEAL_NATS_INBOX_PREFIX } : {}),
    replayMinutes,
    ...(host === undefined ? {} : { host }),
  };
}

/** The credentials: an NKEY seed file (as in `reader.env`), or a user and password, or none. */
function authenticatorFrom(env: NodeJS.ProcessEnv): Authenticator | undefined {
  const { FLEETHEAL_NATS_NKEY_FILE: nkeyFile, FLEETHEAL_NATS_USER: user } = env;
  const passwordFile = env.FLEETHEAL_NATS_PASSWORD_FILE;
  const pass = passwordFile
    ? readFileSync(passwordFile, "utf8").trim()
    : env.FLEETHEAL_NATS_PASSWORD;
  if (nkeyFile && (user || pass)) {
    throw new Error("set FLEETHEAL_NATS_NKEY_FILE or FLEETHEAL_NATS_USER/PASSWORD, not both");
  }
  if (nkeyFile) {
    const seed = readFileSync(nkeyFile, "utf8").trim();
    if (!/^SU[A-Z2-7]+$/.test(seed)) {
      throw new Error(`FLEETHEAL_NATS_NKEY_FILE=${nkeyFile} must hold a user NKEY seed (SU…)`);
    }
    return nkeyAuthenticator(new TextEncoder().encode(seed));
  }
  if (!user && !pass) return undefined;
  if (!user || !pass) {
    throw new Error("FLEETHEAL_NATS_USER needs FLEETHEAL_NATS_PASSWORD(_FILE), and the reverse");
  }
  return usernamePasswordAuthenticator(user, pass);
}

type Mode = "replay" | "live";

/**
 * Decodes one message by its subject and prints it, unless it is malformed or lies about its
 * subject. The replay shows remediation records only. Returns whether it printed the message.
 */
function show(mode: Mode, subject: string, data: Uint8Array): boolean {
  // By the kind token, not by parsing the whole subject: a subject with an action this copy of
  // the contracts does not know is still an event, reported as such.
  const kind = subject.split(".")[2];
  if (kind === "act") {
    const record = decode(RemediationRecord, data);
    if (!record.ok) return skip(subject, record.error.message);
    // Permissions are granted by subject: a payload that names another host must not be believed.
    const mismatch = remediationSubjectMismatch(subject, record.value);
    if (mismatch) return skip(subject, mismatch);
    const r = record.value;
    const dryRun = r.dryRun ? " (dry run)" : "";
    return print(
      `[${mode}] ${r.at} act ${r.host} ${r.containerName} ${r.containerId.slice(0, 12)} ${r.phase} ${r.code}: ${r.message}${dryRun}`,
    );
  }
  if (kind !== "evt") return skip(subject, "neither a container event nor a remediation record");
  if (mode === "replay") return false;
  const event = decode(ContainerEvent, data);
  if (!event.ok) return skip(subject, event.error.message);
  const mismatch = eventSubjectMismatch(subject, event.value);
  if (mismatch) return skip(subject, mismatch);
  const e = event.value;
  const extra = [
    e.exitCode === undefined ? "" : ` exit=${e.exitCode}`,
    e.stopped ? " stopped" : "",
    ` source=${e.source}`,
  ].join("");
  return print(
    `[${mode}] ${e.time} evt ${e.host} ${e.container.name} ${e.container.id.slice(0, 12)} ${e.action}${extra}`,
  );
}

function print(line: string): true {
  process.stdout.write(`${line}\n`);
  return true;
}

/**
 * A message that does not match the contracts is reported and skipped, never fatal: after a
 * fleetheal upgrade it may carry an enum value this copy of the schemas does not know yet.
 */
function skip(subject: string, why: string): false {
  process.stderr.write(`skipped ${subject}: ${why}\n`);
  return false;
}

async function main(): Promise<void> {
  const settings = settingsFrom(process.env);
  const nc = await connect({
    servers: settings.servers,
    name: "fleetheal-example-subscriber",
    maxReconnectAttempts: -1,
    ...(settings.authenticator === undefined ? {} : { authenticator: settings.authenticator }),
    ...(settings.inboxPrefix === undefined ? {} : { inboxPrefix: settings.inboxPrefix }),
  });
  // Ctrl-C or SIGTERM, also during the replay: let what was received be handled, then exit.
  let stopping = false;
  const stop = () => {
    stopping = true;
    void nc.drain().finally(() => process.exit(0));
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);

  // Events and records, of one host or all: on nats-server 2.9 a filter with a wildcard before
  // the host is accepted on READER's mirror, which has no subjects of its own.
  const filter =
    settings.host === undefined ? SUBJECTS.all : `${SUBJECT_ROOT}.*.${settings.host}.>`;
  // The replay ends with the last message stored on the filter now; everything after it is live.
  const last = await (await jetstreamManager(nc)).streams.getMessage(EVENTS_STREAM, {
    last_by_subj: filter,
  });
  const end = last?.seq ?? 0;
  const since = new Date(Date.now() - settings.replayMinutes * 60_000);
  const replaying = settings.replayMinutes > 0 && last !== null && last.time >= since;
  const consumer = await jetstream(nc).consumers.get(EVENTS_STREAM, {
    filter_subjects: filter,
    ...(settings.replayMinutes > 0
      ? { opt_start_time: since.toISOString() }
      : { opt_start_seq: end + 1 }),
  });

  let replayed = 0;
  let following = false;
  const follow = () => {
    if (!following) print(`replayed ${replayed} remediation records; following ${filter}`);
    following = true;
  };
  print(`replaying remediation records since ${since.toISOString()}`);
  if (!replaying) follow();
  for await (const m of await consumer.consume()) {
    const mode = m.seq <= end ? "replay" : "live";
    // The live feed starts after the last replayed message (or after the one that replaced it,
    // when it aged out of the stream meanwhile).
    if (mode === "live") follow();
    if (show(mode, m.subject, m.data) && mode === "replay") replayed++;
    if (m.seq === end) follow();
  }
  if (!stopping) throw new Error(`the feed from ${EVENTS_STREAM} ended`);
}

main().catch((error: unknown) => {
  process.stderr.write(`subscriber: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
