// Probes of the fleet's NATS accounts that change nothing, for checking that every account works
// from every node of a cluster: an account's service imports are resolved on the server the
// client is connected to, while the stream, the mirror or the agent that answers may sit on
// another node, so each probe is a round trip across routes.

import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import {
  commandSubject,
  decode,
  encode,
  HOSTS_BUCKET,
  HostSnapshot,
} from "../../contracts/index.js";
import { snapshotRequest } from "./fixtures.js";
import { describeError } from "./wait.js";

/** A last sequence no subject reaches, so that the stream refuses the message and stores nothing. */
const NEVER_SEQUENCE = Number.MAX_SAFE_INTEGER;

/**
 * Publishes to `subject` (through the connection's account, with JetStream's ack) a message
 * that the stream must refuse: it expects a last sequence no subject has. The stream's answer,
 * `wrong last sequence: …`, proves that the publish reached the stream that captures `subject`
 * and that the answer found its way back; nothing is stored. Returns the error's text, or says
 * that something was stored.
 */
export async function refusedStreamPublish(nc: NatsConnection, subject: string): Promise<string> {
  try {
    const ack = await jetstream(nc).publish(subject, "{}", {
      expect: { lastSubjectSequence: NEVER_SEQUENCE },
      timeout: 10_000,
    });
    return `stored as ${ack.stream} #${ack.seq}`;
  } catch (error) {
    return error instanceof Error ? error.message : describeError(error);
  }
}

/** The host id in the snapshot that the agent of `host` answers to a `snapshot` command. */
export async function commandedSnapshot(nc: NatsConnection, host: string): Promise<string> {
  const request = snapshotRequest(host);
  try {
    const reply = await nc.request(commandSubject(host, "snapshot"), encode(request), {
      timeout: 10_000,
    });
    const snapshot = decode(HostSnapshot, reply.data);
    return snapshot.ok ? snapshot.value.host : `bad reply: ${snapshot.error.message}`;
  } catch (error) {
    return describeError(error);
  }
}

/** What a reader finds in one of READER's mirrors. */
export interface MirrorView {
  replicas: number;
  /** Nodes holding a current copy (the leader and its current followers). */
  currentCopies: number;
  lastSeq: number;
  messages: number;
}

/** Looks at a mirror of the connection's account (READER's, for the reader user). */
export async function mirrorView(nc: NatsConnection, stream: string): Promise<MirrorView> {
  const info = await (await jetstreamManager(nc)).streams.info(stream);
  const followers = info.cluster?.replicas?.filter((r) => r.current).length ?? 0;
  return {
    replicas: info.config.num_replicas,
    currentCopies: (info.cluster?.leader ? 1 : 0) + followers,
    lastSeq: info.state.last_seq,
    messages: info.state.messages,
  };
}

/** The host id of the snapshot that the hosts bucket (or its mirror) holds under `host`. */
export async function storedSnapshotHost(nc: NatsConnection, host: string): Promise<string> {
  const jsm = await jetstreamManager(nc);
  const message = await jsm.direct.getMessage(`KV_${HOSTS_BUCKET}`, {
    last_by_subj: `$KV.${HOSTS_BUCKET}.${host}`,
  });
  if (!message) return "absent";
  const snapshot = decode(HostSnapshot, message.data);
  return snapshot.ok ? snapshot.value.host : `bad snapshot: ${snapshot.error.message}`;
}
