// The bare JetStream reference of the agent benchmark: the same messages without the agent.

import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { round } from "../runner/numbers.js";

/**
 * Publishes `count` messages of `size` bytes with message ids and the agent's window of 64 acks
 * in flight to a scratch stream, then consumes them all with an ordered consumer.
 */
export async function jetstreamReference(
  nc: NatsConnection,
  count: number,
  size: number,
): Promise<{ messages: number; bytes: number; seconds: number; perSecond: number }> {
  const jsm = await jetstreamManager(nc);
  const stream = "FLEETHEAL_BENCH_REFERENCE";
  await jsm.streams.add({ name: stream, subjects: ["bench.reference.>"] });
  try {
    const js = jetstream(nc);
    const payload = new Uint8Array(size).fill(120);
    const start = performance.now();
    let next = 0;
    const worker = async (): Promise<void> => {
      for (;;) {
        const i = next++;
        if (i >= count) return;
        await js.publish(`bench.reference.${i % 100}`, payload, { msgID: `ref-${i}` });
      }
    };
    await Promise.all(Array.from({ length: 64 }, worker));
    const consumer = await js.consumers.get(stream);
    const messages = await consumer.consume();
    let received = 0;
    for await (const m of messages) {
      received++;
      if (m.info.pending === 0 && received >= count) break;
    }
    await messages.close();
    const seconds = (performance.now() - start) / 1000;
    return {
      messages: count,
      bytes: size,
      seconds: round(seconds, 2),
      perSecond: Math.round(count / seconds),
    };
  } finally {
    await jsm.streams.delete(stream);
  }
}
