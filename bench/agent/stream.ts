// What reached the stream: the agent's stored events, checked against Docker's own record.

import type { ConsumerMessages } from "@nats-io/jetstream";
import { jetstream } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import {
  type ContainerAction,
  ContainerEvent,
  containerEventId,
  decode,
  EVENTS_STREAM,
  HostSnapshot,
  LIFECYCLE_ACTIONS,
  SUBJECTS,
} from "../../contracts/index.js";
import type { DockerEventRecord } from "../../test/support/containers.js";
import type { DockerEngine } from "../../test/support/dockerd.js";
import { HOST } from "./config.js";

/** Docker actions the agent forwards (besides `health_status: …`). */
const FORWARDED: ReadonlySet<string> = new Set(LIFECYCLE_ACTIONS);

export function messageId(
  id: string,
  timeNano: bigint | string,
  dockerAction: string,
): string | undefined {
  const action = dockerAction.startsWith("health_status: ")
    ? dockerAction.slice("health_status: ".length)
    : FORWARDED.has(dockerAction)
      ? dockerAction
      : undefined;
  return action && containerEventId(HOST, id, String(timeNano), action as ContainerAction);
}

export function expectedId(e: DockerEventRecord): string | undefined {
  return messageId(e.id, e.timeNano, e.action);
}

export interface StoredView {
  /** Stored Docker-sourced events by id: how many times, and store time minus Docker time (ms). */
  counts: Map<string, number>;
  lagMs: Map<string, number>;
  /** When JetStream stored each id (ms since the epoch). */
  storedAtMs: Map<string, number>;
  total: number;
  close(): Promise<void>;
}

/** Follows every event of the bench host in the stream with an ordered consumer, from the start. */
export async function followStream(nc: NatsConnection): Promise<StoredView> {
  const consumer = await jetstream(nc).consumers.get(EVENTS_STREAM, {
    filter_subjects: SUBJECTS.hostEvents(HOST),
  });
  const messages: ConsumerMessages = await consumer.consume();
  const view: StoredView = {
    counts: new Map(),
    lagMs: new Map(),
    storedAtMs: new Map(),
    total: 0,
    async close() {
      await messages.close();
      await done;
    },
  };
  const done = (async () => {
    for await (const m of messages) {
      view.total++;
      const decoded = decode(ContainerEvent, m.data);
      if (!decoded.ok || decoded.value.source !== "docker") continue;
      const id = decoded.value.id;
      view.counts.set(id, (view.counts.get(id) ?? 0) + 1);
      if (!view.lagMs.has(id)) {
        // Both are nanoseconds since the epoch; a double keeps them to well under a microsecond.
        view.lagMs.set(id, (m.info.timestampNanos - Number(decoded.value.timeNano)) / 1e6);
        view.storedAtMs.set(id, m.info.timestampNanos / 1e6);
      }
    }
  })();
  return view;
}

/**
 * A second plain listener on Docker's event stream that notes when each event arrives, so the
 * stored lag can be split into Docker's own delivery delay and what the agent path adds.
 */
export async function watchDockerDelivery(engine: DockerEngine) {
  const arrivedLagMs = new Map<string, number>();
  const stream = (await engine.docker.getEvents({
    filters: JSON.stringify({ type: ["container"] }),
  } as unknown as Parameters<
    typeof engine.docker.getEvents
  >[0])) as unknown as NodeJS.ReadableStream & {
    destroy(): void;
  };
  let buffered = "";
  stream.on("data", (chunk: Buffer) => {
    const now = Date.now();
    buffered += chunk.toString("utf8");
    let nl = buffered.indexOf("\n");
    while (nl >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      nl = buffered.indexOf("\n");
      const nano = /"timeNano":(\d+)/.exec(line)?.[1];
      try {
        const raw = JSON.parse(line) as { Action?: string; Actor?: { ID?: string } };
        const id = nano && raw.Actor?.ID && raw.Action && messageId(raw.Actor.ID, nano, raw.Action);
        if (id && nano) arrivedLagMs.set(id, now - Number(nano) / 1e6);
      } catch {
        // A partial or foreign line; the recorder is the witness, this is only for timing.
      }
    }
  });
  stream.on("error", () => {});
  return { arrivedLagMs, close: async () => stream.destroy() };
}

export async function readSnapshot(kv: KV): Promise<HostSnapshot | undefined> {
  const entry = await kv.get(HOST);
  const decoded = entry && entry.length > 0 ? decode(HostSnapshot, entry.value) : undefined;
  return decoded?.ok ? decoded.value : undefined;
}
