// What every part of the handler benchmark works on: one nats-server with fleetheal's streams and
// buckets, the synthetic fleet and its agents.

import type { JetStreamClient } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import {
  DEFAULT_HOST_STREAM_SETTINGS,
  ensureHostEventStreams,
  jetStreamHostStreams,
} from "../../common/host-event-streams.js";
import { type FleetJetStream, openFleetJetStream } from "../../common/jetstream-resources.js";
import {
  BREAKERS_BUCKET,
  encode,
  HostSnapshot,
  INFLIGHT_BUCKET,
  LEDGER_BUCKET,
  RATE_BUCKET,
} from "../../contracts/index.js";
import { type OutgoingEvent, snapshotOf, type UniformFleet } from "../fleet/uniform-fleet.js";
import { mapLimit } from "../runner/async.js";
import type { Build } from "../runner/builds.js";
import { CONFIG } from "./config.js";
import type { SyntheticAgents } from "./synthetic-agents.js";

export interface Context {
  natsUrl: string;
  natsPid: number;
  /** nats-server's monitoring endpoint, for its message counters. */
  monitorUrl: string;
  nc: NatsConnection;
  js: JetStreamClient;
  fjs: FleetJetStream;
  observerNc: NatsConnection;
  agents: SyntheticAgents;
  fleet: UniformFleet;
  /** The build measured; and the baseline it is compared with in the same run, if asked for. */
  current: Build;
  baseline: Build | undefined;
}

/** Empties buckets (the handlers are stopped) by deleting and re-creating them. */
export async function resetBuckets(ctx: Context, names: string[]): Promise<void> {
  const byName: Record<string, KV> = {
    [LEDGER_BUCKET]: ctx.fjs.ledger,
    [BREAKERS_BUCKET]: ctx.fjs.breakers,
    [INFLIGHT_BUCKET]: ctx.fjs.inflight,
    [RATE_BUCKET]: ctx.fjs.rate,
  };
  for (const name of names) await byName[name]?.destroy();
  ctx.fjs = await openFleetJetStream(ctx.nc);
}

/** Each host's share of the events stream in these benches: room for its events, little disk. */
export const BENCH_HOST_EVENTS_MAX_BYTES = 4 * 1024 * 1024;

/** What the agents of the fleet publish, once per run, before their restarts. */
export async function writeSnapshots(fjs: FleetJetStream, fleet: UniformFleet) {
  HostSnapshot.parse(snapshotOf(fleet, fleet.hosts[0] as string));
  let bytes = 0;
  await mapLimit(fleet.hosts, 32, async (host) => {
    const data = encode(snapshotOf(fleet, host));
    bytes += data.length;
    await fjs.hosts.put(host, data);
  });
  // The handlers' keeper makes each host's events stream once it sees the key; the events are
  // published right after, so the streams are made here first (as the keeper would).
  await ensureHostEventStreams(jetStreamHostStreams(fjs.jsm), fleet.hosts, {
    ...DEFAULT_HOST_STREAM_SETTINGS,
    hostMaxBytes: BENCH_HOST_EVENTS_MAX_BYTES,
  });
  return { hosts: fleet.hosts.length, meanBytes: Math.round(bytes / fleet.hosts.length) };
}

/** Publishes every message with its id and a window of acks in flight, like the agent's outbox. */
export async function publishAll(
  js: JetStreamClient,
  messages: OutgoingEvent[],
  subjectOf: (m: OutgoingEvent) => string = (m) => m.subject,
): Promise<number> {
  const t0 = Date.now();
  await mapLimit(messages, CONFIG.publishWindow, async (m) => {
    await js.publish(subjectOf(m), m.payload, { msgID: m.msgId });
  });
  return Date.now() - t0;
}
