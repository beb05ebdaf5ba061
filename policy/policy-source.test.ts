import type { KV } from "@nats-io/kv";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { DEFAULT_HEAL_POLICY, HealPolicy, POLICY_KEY } from "../contracts/index.js";
import { watchPolicy } from "./policy-source.js";
import { PAUSED_FALLBACK_POLICY } from "./policy-state.js";

interface FakeEntry {
  key: string;
  operation: "PUT" | "DEL" | "PURGE";
  value: Uint8Array;
  revision: number;
}

/** The part of a KV watch the policy source uses: an async iterator with stop(). */
class FakeWatch implements AsyncIterable<FakeEntry> {
  private readonly queue: FakeEntry[] = [];
  private waiting: ((r: IteratorResult<FakeEntry>) => void) | undefined;
  private stopped = false;

  push(entry: FakeEntry): void {
    if (this.stopped) return;
    const wake = this.waiting;
    this.waiting = undefined;
    if (wake) wake({ value: entry, done: false });
    else this.queue.push(entry);
  }

  stop(): void {
    this.stopped = true;
    this.waiting?.({ value: undefined, done: true });
    this.waiting = undefined;
  }

  [Symbol.asyncIterator](): AsyncIterator<FakeEntry> {
    return {
      next: () => {
        const entry = this.queue.shift();
        if (entry) return Promise.resolve({ value: entry, done: false });
        if (this.stopped) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => {
          this.waiting = resolve;
        });
      },
    };
  }
}

/**
 * A config bucket that behaves like NATS KV: watch() resolves once its consumer exists, and the
 * stored value arrives afterwards, as the first message.
 */
class FakeConfig {
  stored: FakeEntry | undefined;
  watcher: FakeWatch | undefined;
  private revision = 0;

  put(value: string | object, operation: FakeEntry["operation"] = "PUT"): void {
    const text = typeof value === "string" ? value : JSON.stringify(value);
    this.stored = {
      key: POLICY_KEY,
      operation,
      value: new TextEncoder().encode(text),
      revision: ++this.revision,
    };
    this.watcher?.push(this.stored);
  }

  async get(key: string) {
    return key === POLICY_KEY && this.stored?.operation === "PUT" ? this.stored : null;
  }

  async watch(opts: { key?: string }) {
    expect(opts.key).toBe(POLICY_KEY);
    const watch = new FakeWatch();
    this.watcher = watch;
    const initial = this.stored;
    if (initial) setTimeout(() => watch.push(initial), 5);
    return watch;
  }

  asKV(): KV {
    return this as unknown as KV;
  }
}

function capture() {
  const lines: { level: number; msg: string; err?: string; revision?: number }[] = [];
  const log = pino({ level: "debug" }, { write: (line: string) => lines.push(JSON.parse(line)) });
  return { log, lines };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

describe("watchPolicy", () => {
  it("uses the defaults when nothing is stored", async () => {
    const { log } = capture();
    const source = await watchPolicy(new FakeConfig().asKV(), log);
    expect(source.current()).toEqual(DEFAULT_HEAL_POLICY);
    await source.stop();
  });

  it("applies a stored policy, with defaults for what it leaves out", async () => {
    const config = new FakeConfig();
    const { log, lines } = capture();
    const source = await watchPolicy(config.asKV(), log);
    config.put({ paused: true, backoff: { maxSeconds: 120 } });
    await settle();
    expect(source.current()).toEqual(
      HealPolicy.parse({ paused: true, backoff: { initialSeconds: 10, maxSeconds: 120 } }),
    );
    expect(lines.at(-1)).toMatchObject({ msg: "fleet policy loaded", revision: 1 });
    await source.stop();
  });

  it.each([
    ["invalid JSON", "{paused: yes}"],
    [
      "unknown fields (a JetStream ack echoed into the key)",
      { stream: "FLEETHEAL_EVENTS", seq: 1 },
    ],
    ["an unknown nested field", { dryRun: false, backoff: { maxSecond: 5 } }],
    ["a wrong type", { paused: "yes" }],
    ["a value out of range", { budget: { restarts: 0 } }],
    [
      "a window that ends before it starts",
      { maintenance: [{ start: "2026-11-28T00:00:00Z", end: "2026-11-27T00:00:00Z" }] },
    ],
  ])("%s is logged as an error and the previous policy stays", async (_why, bad) => {
    const config = new FakeConfig();
    const { log, lines } = capture();
    const source = await watchPolicy(config.asKV(), log);
    config.put({ dryRun: true });
    await settle();
    config.put(bad);
    await settle();
    expect(source.current()).toEqual(HealPolicy.parse({ dryRun: true }));
    expect(source.state()).toMatchObject({
      origin: "stored",
      revision: 1,
      invalid: { revision: 2, error: expect.any(String) },
    });
    const last = lines.at(-1);
    expect(last).toMatchObject({
      level: 50,
      msg: "stored fleet policy is invalid; keeping the previous one",
      revision: 2,
    });
    expect(last?.err).toEqual(expect.any(String));
    await source.stop();
  });

  it.each(["DEL", "PURGE"] as const)("a %s of the key brings back the defaults", async (op) => {
    const config = new FakeConfig();
    const { log } = capture();
    const source = await watchPolicy(config.asKV(), log);
    config.put({ paused: true });
    await settle();
    expect(source.current().paused).toBe(true);
    config.put("", op);
    await settle();
    expect(source.current()).toEqual(DEFAULT_HEAL_POLICY);
    await source.stop();
  });

  it("stop() ends the watch; later changes are not seen", async () => {
    const config = new FakeConfig();
    const { log } = capture();
    const source = await watchPolicy(config.asKV(), log);
    await source.stop();
    config.put({ paused: true });
    await settle();
    expect(source.current()).toEqual(DEFAULT_HEAL_POLICY);
  });

  // The attack: a broken policy at start must not undo the pause it replaced.
  it("an invalid stored policy at start: paused, never the defaults, and an error", async () => {
    const config = new FakeConfig();
    config.put({ paused: true, dryRun: true });
    config.put({ stream: "FLEETHEAL_EVENTS", seq: 1 });
    const { log, lines } = capture();
    const source = await watchPolicy(config.asKV(), log);
    expect(source.current()).toBe(PAUSED_FALLBACK_POLICY);
    expect(source.state()).toMatchObject({ origin: "paused", invalid: { revision: 2 } });
    const errors = () => lines.filter((l) => l.level === 50);
    expect(errors()).toHaveLength(1);
    expect(errors()[0]?.msg).toMatch(/invalid.*healing is PAUSED/);
    // The watch replays the same bad revision: still paused, and not logged again.
    await settle();
    expect(source.current()).toBe(PAUSED_FALLBACK_POLICY);
    expect(errors()).toHaveLength(1);
    config.put({ dryRun: true });
    await settle();
    expect(source.current()).toEqual(HealPolicy.parse({ dryRun: true }));
    expect(source.state()).toMatchObject({ origin: "stored", revision: 3 });
    expect(source.state().invalid).toBeUndefined();
    await source.stop();
  });

  it("a key deleted while the stored policy is invalid brings back the defaults", async () => {
    const config = new FakeConfig();
    config.put({ pause: true });
    const { log } = capture();
    const source = await watchPolicy(config.asKV(), log);
    expect(source.current().paused).toBe(true);
    config.put("", "DEL");
    await settle();
    expect(source.current()).toEqual(DEFAULT_HEAL_POLICY);
    expect(source.state()).toMatchObject({ origin: "defaults", revision: 0 });
    await source.stop();
  });

  it("the stored value replayed by the watch is not loaded twice", async () => {
    const config = new FakeConfig();
    config.put({ dryRun: true });
    const { log, lines } = capture();
    const source = await watchPolicy(config.asKV(), log);
    await settle();
    expect(source.current().dryRun).toBe(true);
    // Logged once, by the read at start; the watch's replay of the same revision is skipped.
    expect(lines.filter((l) => l.msg === "fleet policy loaded")).toHaveLength(1);
    await source.stop();
  });

  // Was a product bug: watchPolicy returned as soon as the watch existed, before the stored
  // value had arrived, and main.ts binds the handlers right after, so a new replica healed with
  // the defaults (ignoring a fleet-wide pause, dry-run or maintenance window) until it arrived.
  it("a stored policy is in force as soon as watchPolicy resolves", async () => {
    const config = new FakeConfig();
    config.put({ paused: true, dryRun: true });
    const { log } = capture();
    const source = await watchPolicy(config.asKV(), log);
    expect(source.current().paused).toBe(true);
    expect(source.current().dryRun).toBe(true);
    await source.stop();
  });
});
