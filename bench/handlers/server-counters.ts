// What a path costs, read from the processes and from nats-server: CPU per event, the server's
// message counters, what each stream stored, and where the handlers' consumers stand.

import type { FleetJetStream } from "../../common/jetstream-resources.js";
import { EVENTS_STREAM, HOSTS_BUCKET } from "../../contracts/index.js";
import { round } from "../runner/numbers.js";
import { cpuMs, selfCpuMs } from "../runner/proc.js";
import type { Context } from "./context.js";

/** fleetheal's streams and the KV streams of its buckets, by their names without the prefix. */
const STREAM_PREFIXES = [`KV_${HOSTS_BUCKET.split("_")[0]}_`, `${EVENTS_STREAM.split("_")[0]}_`];

function shortStreamName(name: string): string {
  const prefix = STREAM_PREFIXES.find((p) => name.startsWith(p));
  return prefix ? name.slice(prefix.length) : name;
}

export interface ConsumerState {
  pending: number;
  ackPending: number;
  deliveries: number;
  redelivered: number;
}

export async function consumerState(fjs: FleetJetStream, durable: string): Promise<ConsumerState> {
  const info = await fjs.jsm.consumers.info(EVENTS_STREAM, durable);
  return {
    pending: info.num_pending,
    ackPending: info.num_ack_pending,
    deliveries: info.delivered.consumer_seq,
    redelivered: info.num_redelivered,
  };
}

export interface CpuSnapshot {
  handlers: number;
  natsServer: number;
  bench: number;
}

export async function cpuSnapshot(ctx: Context, handlers: { pid: number }[]): Promise<CpuSnapshot> {
  const hs = await Promise.all(handlers.map((h) => cpuMs(h.pid)));
  return {
    handlers: hs.reduce((a, b) => a + b, 0),
    natsServer: await cpuMs(ctx.natsPid),
    bench: selfCpuMs(),
  };
}

export function perEvent(a: CpuSnapshot, b: CpuSnapshot, n: number) {
  return {
    handlers: round((b.handlers - a.handlers) / n, 3),
    natsServer: round((b.natsServer - a.natsServer) / n, 3),
    bench: round((b.bench - a.bench) / n, 3),
  };
}

export interface ServerCounters {
  inMsgs: number;
  outMsgs: number;
  inBytes: number;
  outBytes: number;
  /** Last sequence of every stream (KV buckets included). */
  lastSeq: Record<string, number>;
}

/** Messages per event in and out of nats-server (`/varz`), and stored per event by stream. */
export interface Traffic {
  inMsgs: number;
  outMsgs: number;
  inBytes: number;
  outBytes: number;
  /** By stream, `FLEETHEAL_`/`KV_fleetheal_` left off; streams that stored nothing omitted. */
  stored: Record<string, number>;
  storedTotal: number;
}

/**
 * The server's own message counters: whatever a path does in NATS (publish, request, reply,
 * KV read, ack, pull) shows in them, so two paths that do the same operations per event show
 * the same figures here whatever their code.
 */
export async function serverCounters(ctx: Context): Promise<ServerCounters> {
  const res = await fetch(`${ctx.monitorUrl}/varz`, { signal: AbortSignal.timeout(5_000) });
  if (!res.ok) throw new Error(`nats-server /varz answered ${res.status}`);
  const varz = (await res.json()) as Record<
    "in_msgs" | "out_msgs" | "in_bytes" | "out_bytes",
    number
  >;
  const lastSeq: Record<string, number> = {};
  for await (const s of ctx.fjs.jsm.streams.list()) lastSeq[s.config.name] = s.state.last_seq;
  return {
    inMsgs: varz.in_msgs,
    outMsgs: varz.out_msgs,
    inBytes: varz.in_bytes,
    outBytes: varz.out_bytes,
    lastSeq,
  };
}

export function trafficPerEvent(a: ServerCounters, b: ServerCounters, n: number): Traffic {
  const stored: Record<string, number> = {};
  let total = 0;
  for (const [name, seq] of Object.entries(b.lastSeq)) {
    const added = seq - (a.lastSeq[name] ?? 0);
    if (added === 0) continue;
    total += added;
    stored[shortStreamName(name)] = round(added / n, 2);
  }
  return {
    inMsgs: round((b.inMsgs - a.inMsgs) / n, 2),
    outMsgs: round((b.outMsgs - a.outMsgs) / n, 2),
    inBytes: Math.round((b.inBytes - a.inBytes) / n),
    outBytes: Math.round((b.outBytes - a.outBytes) / n),
    stored,
    storedTotal: round(total / n, 2),
  };
}
