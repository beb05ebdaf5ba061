import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { encode } from "../../contracts/index.js";
import { InMemoryHandlerIo, runnerOn } from "../../test/support/in-memory-handler-io.js";
import type { Decision } from "../decisions.js";
import type { HandlerDefinition } from "../handler.js";
import { type Delivery, emptyHandlerStats, handleDelivery } from "./delivery.js";

const log = pino({ level: "silent" });

/** A delivery that remembers how it was answered. */
class FakeDelivery implements Delivery {
  readonly answers: string[] = [];
  readonly info: { deliveryCount: number };

  constructor(
    readonly data: Uint8Array,
    deliveryCount = 1,
    readonly subject = "test.ok",
    readonly seq = 42,
  ) {
    this.info = { deliveryCount };
  }

  ack() {
    this.answers.push("ack");
  }
  nak(delayMs?: number) {
    this.answers.push(`nak ${delayMs}`);
  }
  term() {
    this.answers.push("term");
  }
  working() {}
}

const Message = z.object({ n: z.number() });

function handler(
  decide: (message: z.infer<typeof Message>) => Decision[],
): HandlerDefinition<z.infer<typeof Message>> {
  return {
    name: "test",
    subject: "test.>",
    schema: Message,
    subjectMismatch: (subject) => (subject === "test.ok" ? undefined : `not ${subject}`),
    concurrency: 1,
    maxDeliver: 3,
    handle: (message) => decide(message),
  };
}

async function deliver(def: HandlerDefinition<{ n: number }>, msg: FakeDelivery) {
  const io = new InMemoryHandlerIo();
  const runner = runnerOn(io);
  const stats = emptyHandlerStats();
  await handleDelivery(def as HandlerDefinition<unknown>, msg, { runner, io, log, stats });
  await runner.stop();
  return { io, stats };
}

const retry: Decision = { kind: "retry", reason: "backoff", delayMs: 7_000 };
const fail = (): Decision[] => {
  throw new Error("boom");
};

describe("handleDelivery", () => {
  it("acknowledges a message once its decisions are applied", async () => {
    const msg = new FakeDelivery(encode({ n: 1 }));
    const { stats } = await deliver(
      handler(() => [{ kind: "log", level: "info", msg: "hi" }]),
      msg,
    );
    expect(msg.answers).toEqual(["ack"]);
    expect(stats).toMatchObject({ handled: 1, rejected: 0 });
  });

  it.each([
    ["not JSON", new TextEncoder().encode("{nope"), "test.ok", "FLEETHEAL_ERR_BAD_JSON"],
    ["off its schema", encode({ n: "one" }), "test.ok", "FLEETHEAL_ERR_SCHEMA"],
    ["on a subject not its own", encode({ n: 1 }), "test.other", "FLEETHEAL_ERR_SUBJECT"],
  ])("dead-letters a message %s at once, with why", async (_why, data, subject, code) => {
    const msg = new FakeDelivery(data, 1, subject);
    let decided = false;
    const { io, stats } = await deliver(
      handler(() => {
        decided = true;
        return [];
      }),
      msg,
    );
    expect(decided).toBe(false);
    expect(msg.answers).toEqual(["term"]);
    expect(stats.rejected).toBe(1);
    expect(io.deadLetters).toEqual([
      expect.objectContaining({ handler: "test", subject, data, deliveries: 1, streamSeq: 42 }),
    ]);
    expect(io.deadLetters[0]?.reason).toMatch(new RegExp(`^${code}: `));
  });

  it("a retry decision is a deferral: the message comes back after its delay", async () => {
    const msg = new FakeDelivery(encode({ n: 1 }), 2);
    const { stats } = await deliver(
      handler(() => [retry]),
      msg,
    );
    expect(msg.answers).toEqual(["nak 7000"]);
    expect(stats.deferred).toBe(1);
  });

  it("a failure comes back with backoff: 1 s doubling", async () => {
    const msg = new FakeDelivery(encode({ n: 1 }), 2);
    const { stats } = await deliver(handler(fail), msg);
    expect(msg.answers).toEqual(["nak 2000"]);
    expect(stats.retried).toBe(1);
  });

  it.each([
    ["a retry", () => [retry], "backoff"],
    ["a failure", fail, "boom"],
  ])("%s on the last delivery goes to the dead-letter stream", async (_what, decide, reason) => {
    const msg = new FakeDelivery(encode({ n: 1 }), 3);
    const { io, stats } = await deliver(handler(decide), msg);
    expect(msg.answers).toEqual(["term"]);
    expect(stats.failed).toBe(1);
    expect(io.deadLetters.map((d) => [d.reason, d.deliveries])).toEqual([[reason, 3]]);
  });

  it("a dead letter that cannot be stored leaves the message to come back", async () => {
    const msg = new FakeDelivery(encode({ n: "bad" }), 1);
    const io = new InMemoryHandlerIo();
    io.deadLetter = async () => {
      throw new Error("no JetStream");
    };
    const runner = runnerOn(io);
    const def = handler(() => []) as HandlerDefinition<unknown>;
    await handleDelivery(def, msg, { runner, io, log, stats: emptyHandlerStats() });
    expect(msg.answers).toEqual(["nak 1000"]);
  });
});
