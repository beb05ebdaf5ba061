import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { NotifyError, type NotifySend, RETRY_DELAYS_MS, WebhookNotifier } from "./notifier.js";
import { type NotifyTarget, parseTargets } from "./targets.js";

const SECRET = "S3CR3T-hook-t0k3n";
const PASSWORD = "pa55-w0rd-S3CR3T";

function target(raw: string): NotifyTarget {
  const parsed = parseTargets(raw).targets[0];
  if (!parsed) throw new Error(`no target in ${raw}`);
  return parsed;
}

const SLACK = target(`slack+https://bot:${PASSWORD}@hooks.example/services/${SECRET}?t=${SECRET}`);

function send(key = "rec-1:1", t = SLACK): NotifySend {
  return {
    key,
    target: t,
    payload: { headers: { "Content-Type": "application/json" }, body: '{"text":"hi"}' },
  };
}

/** A pino logger writing into an array, at the most verbose level. */
function capture() {
  const lines: string[] = [];
  const log = pino({ level: "trace" }, { write: (line: string) => void lines.push(line) });
  return { log, lines, records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

type Step = number | Error | "hang";

/** A fetch that answers with the given statuses (or throws, or hangs until aborted), in order. */
function fakeFetch(steps: Step[]) {
  const calls: { url: string; init: RequestInit }[] = [];
  const fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    calls.push({ url: String(input), init: init ?? {} });
    const step = steps.shift() ?? 200;
    if (step === "hang") {
      return new Promise((_, reject) => {
        init?.signal?.addEventListener("abort", () => reject(init.signal?.reason));
      });
    }
    if (step instanceof Error) throw step;
    return new Response(step >= 200 && step !== 204 ? "ok" : null, { status: step });
  };
  return { fetch: fetch as typeof globalThis.fetch, calls };
}

function notifier(steps: Step[], timeoutMs = 1_000) {
  const { fetch, calls } = fakeFetch(steps);
  const sleeps: number[] = [];
  let clock = 0;
  const n = new WebhookNotifier({
    timeoutMs,
    fetch,
    sleep: async (ms) => {
      sleeps.push(ms);
      clock += ms;
    },
    now: () => clock,
  });
  return { n, calls, sleeps };
}

describe("WebhookNotifier", () => {
  it("POSTs the payload with the target's credentials as a header", async () => {
    const { n, calls } = notifier([200]);
    const { log } = capture();
    await expect(n.deliver(send(), log)).resolves.toEqual({
      outcome: "sent",
      status: 200,
      attempts: 1,
      durationMs: 0,
    });
    expect(calls).toHaveLength(1);
    const call = calls[0] as { url: string; init: RequestInit };
    expect(call.url).toBe(`https://hooks.example/services/${SECRET}?t=${SECRET}`);
    expect(call.init.method).toBe("POST");
    expect(call.init.body).toBe('{"text":"hi"}');
    expect(call.init.headers).toMatchObject({
      "Content-Type": "application/json",
      Authorization: `Basic ${Buffer.from(`bot:${PASSWORD}`).toString("base64")}`,
      "User-Agent": expect.stringMatching(/^fleetheal\//),
    });
    expect(call.init.signal).toBeInstanceOf(AbortSignal);
  });

  it("retries with exponential backoff: 0.5 s, 1 s, 2 s", async () => {
    const { n, calls, sleeps } = notifier([500, 502, 503, 200]);
    const result = await n.deliver(send(), capture().log);
    expect(result).toEqual({ outcome: "sent", status: 200, attempts: 4, durationMs: 3_500 });
    expect(sleeps).toEqual([500, 1_000, 2_000]);
    expect(RETRY_DELAYS_MS).toEqual([500, 1_000, 2_000]);
    expect(calls).toHaveLength(4);
  });

  it("fails the delivery after the last quick retry, and tries again on the next", async () => {
    const { n, calls, sleeps } = notifier([500, 500, 429, 408, 200]);
    const error = await n.deliver(send(), capture().log).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotifyError);
    expect(error).toMatchObject({ attempts: 4, reason: "HTTP 408", code: "FLEETHEAL_ERR_NOTIFY" });
    expect((error as Error).message).toBe(
      "notification to #1 slack https://hooks.example/… failed after 4 attempts: HTTP 408",
    );
    expect(sleeps).toEqual([500, 1_000, 2_000]);
    // The redelivery: a failed key is not remembered as sent.
    await expect(n.deliver(send(), capture().log)).resolves.toMatchObject({ outcome: "sent" });
    expect(calls).toHaveLength(5);
  });

  it("times out each attempt", async () => {
    const { n, calls } = notifier(["hang", "hang", "hang", "hang"], 20);
    await expect(n.deliver(send(), capture().log)).rejects.toMatchObject({
      reason: "timed out after 20 ms",
    });
    expect(calls).toHaveLength(4);
  });

  it("does not retry client errors a retry cannot fix", async () => {
    const { n, calls, sleeps } = notifier([404]);
    const { log, records } = capture();
    await expect(n.deliver(send(), log)).resolves.toEqual({
      outcome: "rejected",
      status: 404,
      attempts: 1,
      durationMs: 0,
    });
    expect(calls).toHaveLength(1);
    expect(sleeps).toEqual([]);
    expect(records().find((r) => r.level === 50)?.msg).toMatch(/rejected by the target/);
    // Dropped means done: the redelivery does not send it again.
    await expect(n.deliver(send(), log)).resolves.toEqual({ outcome: "duplicate" });
  });

  it("sends each key once: a redelivered record skips the targets that already got it", async () => {
    const { n, calls } = notifier([200, 200]);
    const { log } = capture();
    await n.deliver(send("rec-1:1"), log);
    await expect(n.deliver(send("rec-1:1"), log)).resolves.toEqual({ outcome: "duplicate" });
    await n.deliver(send("rec-1:2"), log);
    expect(calls).toHaveLength(2);
  });

  it("joins a send of the same key that is still in flight", async () => {
    let release: (status: number) => void = () => {};
    const calls: string[] = [];
    const n = new WebhookNotifier({
      timeoutMs: 1_000,
      fetch: (async (url: string) => {
        calls.push(url);
        const status = await new Promise<number>((resolve) => {
          release = resolve;
        });
        return new Response(null, { status });
      }) as unknown as typeof fetch,
    });
    const { log } = capture();
    const first = n.deliver(send(), log);
    const second = n.deliver(send(), log);
    await new Promise((resolve) => setImmediate(resolve));
    release(200);
    await expect(first).resolves.toMatchObject({ outcome: "sent" });
    await expect(second).resolves.toEqual({ outcome: "duplicate" });
    expect(calls).toHaveLength(1);
  });

  it("forgets the oldest keys beyond its capacity", async () => {
    const { fetch, calls } = fakeFetch([]);
    const n = new WebhookNotifier({ timeoutMs: 1_000, fetch, dedupCapacity: 2 });
    const { log } = capture();
    for (const key of ["a", "b", "c", "a"]) await n.deliver(send(key), log);
    expect(calls).toHaveLength(4);
    await n.deliver(send("a"), log);
    expect(calls).toHaveLength(4);
  });

  it("never writes the URL, its token or its credentials to the log or the error", async () => {
    const leaky = new TypeError("fetch failed", {
      cause: new Error(`connect failed for ${SLACK.url} (auth ${SLACK.authorization})`),
    });
    const { n } = notifier([500, leaky, new Error(`bad URL /services/${SECRET}`), 503]);
    const { log, lines, records } = capture();
    const error = (await n.deliver(send(), log).then(
      () => new Error("expected a failure"),
      (e: unknown) => e,
    )) as Error;
    const everything = [...lines, error.message, String(error.stack)].join("\n");
    expect(everything).not.toContain(SECRET);
    expect(everything).not.toContain(PASSWORD);
    expect(everything).not.toContain(SLACK.authorization as string);
    expect(everything).not.toContain("hooks.example/services");
    const warnings = records().filter((r) => r.msg === "notification attempt failed; retrying");
    expect(warnings.map((w) => [w.target, w.attempt, w.retryInMs])).toEqual([
      ["#1 slack https://hooks.example/…", 1, 500],
      ["#1 slack https://hooks.example/…", 2, 1_000],
      ["#1 slack https://hooks.example/…", 3, 2_000],
    ]);
    expect(warnings[1]?.err).toBe("fetch failed: connect failed for … (auth …)");
  });
});
