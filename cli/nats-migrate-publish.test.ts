import { describe, expect, it } from "vitest";
import {
  type Outgoing,
  type PublishInOrderOptions,
  publishInOrder,
  type Send,
} from "./nats-migrate-publish.js";

/**
 * A stream as JetStream keeps one: a message is refused unless the stream's last sequence is the
 * one it expects, and one whose Nats-Msg-Id was stored before is answered as a duplicate. What
 * one connection sends is processed in order; different connections race.
 */
class FakeStream {
  readonly stored: string[] = [];
  private readonly ids = new Set<string>();
  private readonly lanes = new Map<string, Promise<unknown>>();
  inFlight = 0;
  maxInFlight = 0;
  /** Decides, per attempt, whether the request is lost before the server or its answer after. */
  fault: (subject: string, attempt: number) => "none" | "lost-request" | "lost-answer" = () =>
    "none";
  private readonly attempts = new Map<string, number>();

  constructor(initial: string[] = []) {
    this.stored.push(...initial);
  }

  readonly send: Send = (m, expect, withoutMsgId) => {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    const attempt = (this.attempts.get(m.subject) ?? 0) + 1;
    this.attempts.set(m.subject, attempt);
    const lane = this.lanes.get(m.via) ?? Promise.resolve();
    const done = lane.then(async () => {
      // Connections race: a message of another connection may be processed first.
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 2));
      try {
        const fault = this.fault(m.subject, attempt);
        if (fault === "lost-request") throw new Error("timeout");
        const id = withoutMsgId ? undefined : m.headers.find(([k]) => k === "Nats-Msg-Id")?.[1];
        if (id !== undefined && this.ids.has(id)) {
          return { seq: this.stored.length, duplicate: true };
        }
        if (expect !== this.stored.length) throw new Error("wrong last sequence");
        this.stored.push(m.subject);
        if (id !== undefined) this.ids.add(id);
        if (fault === "lost-answer") throw new Error("timeout");
        return { seq: this.stored.length, duplicate: false };
      } finally {
        this.inFlight--;
      }
    });
    this.lanes.set(
      m.via,
      done.catch(() => {}),
    );
    return done;
  };

  readonly lastSeq = async () => this.stored.length;

  readonly messageAt = async (seq: number) => {
    const subject = this.stored[seq - 1];
    return subject === undefined ? undefined : { subject, data: new Uint8Array() };
  };

  /** Options that publish into this stream after what it holds, without real pauses. */
  options(extra: Partial<PublishInOrderOptions> = {}): PublishInOrderOptions {
    return {
      send: this.send,
      lastSeq: this.lastSeq,
      messageAt: this.messageAt,
      after: this.stored.length,
      pause: async () => {},
      ...extra,
    };
  }
}

const message = (n: number, via = "handler", id?: string): Outgoing => ({
  subject: `s.${n}`,
  headers: id === undefined ? [] : [["Nats-Msg-Id", id]],
  data: new Uint8Array(),
  via,
});

describe("publishInOrder", () => {
  it("stores every message once, in order, pipelined up to the window", async () => {
    const stream = new FakeStream();
    const source = Array.from({ length: 100 }, (_, i) => message(i + 1));
    const outcome = await publishInOrder(source, stream.options({ window: 8 }));
    expect(outcome).toEqual({ stored: 100, withoutMsgId: 0 });
    expect(stream.stored).toEqual(source.map((m) => m.subject));
    expect(stream.maxInFlight).toBe(8);
  });

  it("keeps the order across connections, which race each other", async () => {
    const stream = new FakeStream();
    const source = Array.from({ length: 60 }, (_, i) =>
      message(i + 1, `agent:h${i % 3 === 0 ? 1 : 2}`),
    );
    async function* lazily() {
      yield* source;
    }
    await publishInOrder(lazily(), stream.options());
    expect(stream.stored).toEqual(source.map((m) => m.subject));
  });

  it("stores a message whose id was used before, without the id", async () => {
    const stream = new FakeStream();
    const source = [
      message(1, "handler", "a"),
      message(2, "handler", "b"),
      message(3, "handler", "a"),
      message(4),
    ];
    const outcome = await publishInOrder(source, stream.options());
    expect(stream.stored).toEqual(["s.1", "s.2", "s.3", "s.4"]);
    expect(outcome.withoutMsgId).toBe(1);
  });

  it("goes on from what the stream holds after lost requests and lost answers", async () => {
    const stream = new FakeStream();
    stream.fault = (subject, attempt) =>
      attempt > 1
        ? "none"
        : subject === "s.5"
          ? "lost-request"
          : subject === "s.9"
            ? "lost-answer"
            : "none";
    const source = Array.from({ length: 20 }, (_, i) => message(i + 1));
    const outcome = await publishInOrder(source, stream.options());
    expect(stream.stored).toEqual(source.map((m) => m.subject));
    expect(outcome.stored).toBe(20);
  });

  it("continues a stream that holds the first messages already", async () => {
    const stream = new FakeStream(["s.1", "s.2"]);
    await publishInOrder([message(3), message(4)], stream.options());
    expect(stream.stored).toEqual(["s.1", "s.2", "s.3", "s.4"]);
  });

  it("gives up after rounds without progress, and at once on a permissions violation", async () => {
    const stream = new FakeStream();
    stream.fault = () => "lost-request";
    const pauses: number[] = [];
    await expect(
      publishInOrder(
        [message(1)],
        stream.options({
          maxStalls: 3,
          pause: async (ms) => {
            pauses.push(ms);
          },
        }),
      ),
    ).rejects.toThrow("timeout");
    expect(pauses).toEqual([250, 500, 1000]);
    const refused: Send = async () => {
      throw new Error('Permissions Violation for Publish to "fleetheal.v1.evt.h.c.start"');
    };
    await expect(
      publishInOrder([message(1)], new FakeStream().options({ send: refused })),
    ).rejects.toThrow(/Permissions Violation/);
  });

  it("stops when something else writes to the stream", async () => {
    const stream = new FakeStream();
    const source = [message(1), message(2)];
    const intruding: Send = async (m, expect, withoutMsgId) => {
      if (m.subject === "s.2") stream.stored.push("intruder");
      return stream.send(m, expect, withoutMsgId);
    };
    await expect(publishInOrder(source, stream.options({ send: intruding }))).rejects.toThrow(
      /something else writes to it/,
    );
  });
});
