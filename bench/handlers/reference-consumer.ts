// The bare JetStream reference's consumer, a child program of bench/handler-throughput.ts (in a
// process of its own, as the handler is): consume and ack every message, nothing else.

import { jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { fromParent, toParent } from "../runner/children.js";
import { runMain } from "../runner/report.js";

/** What the benchmark tells the consumer. */
export type ToReferenceConsumer = {
  type: "consume";
  url: string;
  stream: string;
  durable: string;
  count: number;
};
/** What the consumer tells the benchmark: it listens; it has acked `count` messages. */
export type FromReferenceConsumer = { type: "ready" } | { type: "done"; at: number; acked: number };

async function main(): Promise<void> {
  const send = (m: FromReferenceConsumer) => toParent(m);
  const order = await fromParent<ToReferenceConsumer>();
  const nc = await connect({ servers: order.url, name: "bench-reference-consumer" });
  const js = jetstream(nc);
  const consumer = await js.consumers.get(order.stream, order.durable);
  const messages = await consumer.consume();
  send({ type: "ready" });
  let acked = 0;
  for await (const m of messages) {
    m.ack();
    if (++acked === order.count) break;
  }
  await nc.flush();
  send({ type: "done", at: Date.now(), acked });
  await messages.close();
  await nc.close();
}

runMain(main);
