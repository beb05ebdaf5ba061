import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { cachedLevels, type JetStreamLevels } from "./jetstream-levels.js";

const LEVELS: JetStreamLevels = {
  consumers: [{ consumer: "fleetheal-heal", pending: 1, ackPending: 0, redelivered: 0 }],
  dlqMessages: 0,
};

/** A logger that keeps its warnings. */
function recordingLog() {
  const lines: string[] = [];
  const log = pino(
    { level: "warn" },
    { write: (line: string) => void lines.push(JSON.parse(line).msg as string) },
  );
  return { log, lines };
}

describe("cachedLevels", () => {
  it("reads JetStream at most once per cache period, however many scrapes ask", async () => {
    let reads = 0;
    let t = 0;
    const levels = cachedLevels(
      async () => {
        reads++;
        return LEVELS;
      },
      { log: pino({ level: "silent" }), cacheMs: 5_000, now: () => t },
    );
    // Four gauges of one scrape, and a second scrape, all at once.
    await Promise.all([levels(), levels(), levels(), levels(), levels()]);
    expect(reads).toBe(1);
    t = 4_999;
    expect(await levels()).toEqual(LEVELS);
    expect(reads).toBe(1);
    t = 5_000;
    await levels();
    expect(reads).toBe(2);
  });

  it("gives undefined for a reading that fails or hangs, and logs it once a minute", async () => {
    let t = 0;
    const { log, lines } = recordingLog();
    const hanging = cachedLevels(() => new Promise<JetStreamLevels>(() => {}), {
      log,
      timeoutMs: 20,
      now: () => t,
    });
    expect(await hanging()).toBeUndefined();
    const failing = cachedLevels(() => Promise.reject(new Error("no responders")), {
      log,
      cacheMs: 0,
      now: () => t,
    });
    expect(await failing()).toBeUndefined();
    t = 1_000;
    expect(await failing()).toBeUndefined();
    expect(lines).toEqual([
      "metrics: could not read the consumers and dead letters from JetStream",
      "metrics: could not read the consumers and dead letters from JetStream",
    ]);
  });
});
