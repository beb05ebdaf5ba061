// What a plain NATS subscriber sees of one host: its container events, as they arrive, and its
// latest snapshot. For tests that watch an agent from outside, as any subscriber would.

import type { NatsConnection } from "@nats-io/nats-core";
import { ContainerEvent, decode, HostSnapshot } from "../../contracts/index.js";

/** One event as received, with the subject it came on. */
export interface ReceivedEvent {
  subject: string;
  event: ContainerEvent;
}

/** What has arrived so far; filled in by the subscriptions until the connection closes. */
export interface HostWatch {
  /** Every event of the host that fits the contract, in the order received. */
  events: ReceivedEvent[];
  /** Messages on the host's event subjects that do not fit the contract (subject: why). */
  undecodable: string[];
  /** The snapshot with the highest `seq` received, if any. */
  snapshot(): HostSnapshot | undefined;
}

/** Subscribes to `host`'s events and snapshots; resolves once the server has the interest. */
export async function watchHost(client: NatsConnection, host: string): Promise<HostWatch> {
  const events: ReceivedEvent[] = [];
  const undecodable: string[] = [];
  let latest: HostSnapshot | undefined;
  client.subscribe(`fleetheal.v1.evt.${host}.>`, {
    callback: (_error, m) => {
      const decoded = decode(ContainerEvent, m.data);
      if (decoded.ok) events.push({ subject: m.subject, event: decoded.value });
      else undecodable.push(`${m.subject}: ${decoded.error.message}`);
    },
  });
  client.subscribe(`fleetheal.v1.host.${host}.snapshot`, {
    callback: (_error, m) => {
      const decoded = decode(HostSnapshot, m.data);
      if (decoded.ok && (!latest || decoded.value.seq > latest.seq)) latest = decoded.value;
    },
  });
  await client.flush();
  return { events, undecodable, snapshot: () => latest };
}
