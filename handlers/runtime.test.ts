import type { JetStreamClient } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import type { MsgHdrs, NatsConnection } from "@nats-io/nats-core";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import {
  commandSigningKeyFromSeed,
  commandVerifier,
  generateCommandSigningSeed,
} from "../common/command-signing.js";
import type { FleetJetStream } from "../common/jetstream-resources.js";
import type { Logger } from "../common/logger.js";
import { recordPublisher } from "../common/record-publisher.js";
import {
  COMMAND_SIGNATURE_HEADERS,
  DEFAULT_HEAL_POLICY,
  encode,
  type LedgerEntry,
  type RestartCommand,
} from "../contracts/index.js";
import type { Decision } from "./handler.js";
import { HandlerRuntime } from "./runtime.js";

const log = pino({ level: "silent" });
const CID = "c1".repeat(6);
const KEY = `h1.${CID}`;
const SIGNER = commandSigningKeyFromSeed(generateCommandSigningSeed());

interface Stored {
  value: Uint8Array;
  revision: number;
  operation: "PUT" | "DEL";
}

/** A KV bucket with compare-and-set, a watch that stays quiet, and a log of its calls. */
class FakeBucket {
  readonly entries = new Map<string, Stored>();
  readonly calls: string[] = [];
  private seq = 0;
  /** Runs before the next write, to simulate another replica writing first. */
  beforeWrite: (() => void) | undefined;

  put(key: string, value: Uint8Array, operation: "PUT" | "DEL" = "PUT"): number {
    const revision = ++this.seq;
    this.entries.set(key, { value, revision, operation });
    return revision;
  }

  kv(): KV {
    const write = (key: string, value: Uint8Array, expected: number | "absent") => {
      const hook = this.beforeWrite;
      this.beforeWrite = undefined;
      hook?.();
      const current = this.entries.get(key);
      const ok =
        expected === "absent"
          ? current?.operation !== "PUT"
          : (current?.revision ?? 0) === expected;
      if (!ok) throw new Error(`wrong last sequence for ${key}`);
      return this.put(key, value);
    };
    const fake = {
      status: async () => ({ ttl: 60_000 }),
      watch: async () => {
        let stop = () => {};
        const stopped = new Promise<void>((resolve) => {
          stop = resolve;
        });
        return {
          stop,
          // Nothing is ever written to the lease buckets here: the watch only waits to stop.
          async *[Symbol.asyncIterator](): AsyncGenerator<never> {
            await stopped;
            yield* [];
          },
        };
      },
      get: async (key: string) => {
        this.calls.push(`get ${key}`);
        const e = this.entries.get(key);
        return e && { key, value: e.value, revision: e.revision, operation: e.operation };
      },
      create: async (key: string, value: Uint8Array) => {
        this.calls.push(`create ${key}`);
        return write(key, value, "absent");
      },
      update: async (key: string, value: Uint8Array, revision: number) => {
        this.calls.push(`update ${key}@${revision}`);
        return write(key, value, revision);
      },
      delete: async (key: string) => {
        this.calls.push(`delete ${key}`);
        this.put(key, new Uint8Array(), "DEL");
      },
    };
    return fake as unknown as KV;
  }
}

function runtimeWith() {
  const buckets = {
    ledger: new FakeBucket(),
    breakers: new FakeBucket(),
    inflight: new FakeBucket(),
    rate: new FakeBucket(),
    hosts: new FakeBucket(),
  };
  const published: string[] = [];
  const order: string[] = [];
  const js = {
    publish: async (subject: string) => {
      published.push(subject);
      order.push(`publish ${subject.split(".").at(-1)}`);
      return { seq: published.length };
    },
  } as unknown as JetStreamClient;
  const requests: { payload: Uint8Array; headers: MsgHdrs | undefined }[] = [];
  const fjs = {
    ledger: buckets.ledger.kv(),
    breakers: buckets.breakers.kv(),
    inflight: buckets.inflight.kv(),
    rate: buckets.rate.kv(),
    hosts: buckets.hosts.kv(),
    js,
    records: recordPublisher(js, new Uint8Array(32)),
  } as unknown as FleetJetStream;
  const nc = {
    request: async (_subject: string, payload: Uint8Array, opts: { headers?: MsgHdrs }) => {
      order.push("request");
      requests.push({ payload, headers: opts.headers });
      return {
        data: encode({
          type: "fleetheal.cmd.v1.reply",
          v: 1,
          verb: "restart",
          commandId: "heal-1",
          host: "h1",
          containerId: CID,
          outcome: "restarted",
          code: "restarted",
          message: "restarted",
          duplicate: false,
          startedAt: "2026-11-28T00:00:00.000Z",
          durationMs: 1,
        }),
      };
    },
  } as unknown as NatsConnection;
  const runtime = new HandlerRuntime({
    nc,
    fjs,
    log,
    commandTimeoutMs: 1_000,
    commandSigning: { key: SIGNER, ttlMs: 20_000 },
    startBackMs: 1_000,
    policy: () => DEFAULT_HEAL_POLICY,
  });
  const internals = runtime as unknown as {
    apply(decisions: Decision[], log: Logger): Promise<void>;
  };
  return { runtime, internals, buckets, published, order, requests };
}

function ledger(patch: Partial<LedgerEntry> = {}): LedgerEntry {
  return { v: 1, host: "h1", containerId: CID, restarts: [], consecutiveRestarts: 0, ...patch };
}

const record = (phase: "decided" | "restarting" | "restarted"): Decision =>
  recordWithCode(phase, "x");

const recordWithCode = (phase: "decided" | "restarting" | "restarted", code: string): Decision => ({
  kind: "remediation",
  record: {
    type: "fleetheal.act.v1.remediation",
    v: 1,
    id: `heal:e1:${phase}:${code}`,
    remediationId: "heal:e1",
    host: "h1",
    containerId: CID,
    containerName: "web",
    phase,
    code,
    message: "x",
    actor: "handler:heal",
    at: "2026-11-28T00:00:00.000Z",
    dryRun: false,
  },
});

const countRestart: Decision = {
  kind: "update",
  store: "ledger",
  key: KEY,
  update: (current) => {
    const entry = current as LedgerEntry;
    return { ...entry, consecutiveRestarts: entry.consecutiveRestarts + 1 };
  },
};

describe("HandlerRuntime: applying decisions", () => {
  it("an update after a claim of the same key starts from the claimed value, without reading it", async () => {
    const { runtime, internals, buckets } = runtimeWith();
    await internals.apply(
      [{ kind: "claim", store: "ledger", key: KEY, expectedRevision: 0, value: ledger() }],
      log,
    );
    buckets.ledger.calls.length = 0;
    await internals.apply(
      [
        {
          kind: "claim",
          store: "ledger",
          key: KEY,
          expectedRevision: 1,
          value: ledger({ lastIncident: "i1" }),
        },
        countRestart,
      ],
      log,
    );
    expect(buckets.ledger.calls).toEqual([`update ${KEY}@1`, `update ${KEY}@2`]);
    const stored = JSON.parse(
      new TextDecoder().decode(buckets.ledger.entries.get(KEY)?.value),
    ) as LedgerEntry;
    expect(stored).toMatchObject({ lastIncident: "i1", consecutiveRestarts: 1 });
    await runtime.stop();
  });

  it("if someone wrote the key in between, the update reads it and writes on top", async () => {
    const { runtime, internals, buckets } = runtimeWith();
    const claim: Decision = {
      kind: "claim",
      store: "ledger",
      key: KEY,
      expectedRevision: 0,
      value: ledger(),
    };
    let raced = false;
    const racing: Decision = {
      ...countRestart,
      update: (current) => {
        // Another writer gets in just before this update's first write.
        if (!raced) {
          raced = true;
          buckets.ledger.beforeWrite = () =>
            buckets.ledger.put(KEY, encode(ledger({ consecutiveRestarts: 5 })));
        }
        return (countRestart as Extract<Decision, { kind: "update" }>).update(current);
      },
    };
    await internals.apply([claim, racing], log);
    expect(buckets.ledger.calls).toEqual([
      `create ${KEY}`,
      `update ${KEY}@1`,
      `get ${KEY}`,
      `update ${KEY}@2`,
    ]);
    const stored = JSON.parse(
      new TextDecoder().decode(buckets.ledger.entries.get(KEY)?.value),
    ) as LedgerEntry;
    expect(stored.consecutiveRestarts).toBe(6);
    await runtime.stop();
  });

  it("writes what goes along a lease even when the lease is refused, and skips the rest", async () => {
    const { runtime, internals, buckets, published } = runtimeWith();
    // Another replica holds the only slot.
    buckets.inflight.put("fleet.0", encode("someone"));
    await internals.apply(
      [
        {
          kind: "lease",
          holder: "heal-1",
          leases: [{ bucket: "inflight", prefix: "fleet", cap: 1, label: "one at once" }],
          alongside: [
            {
              kind: "claim",
              store: "breakers",
              key: "img",
              expectedRevision: 0,
              value: {
                v: 1,
                image: "nginx",
                failures: [],
              },
            },
          ],
          onDenied: (denial) => [recordWithCode("decided", denial.cap)],
        },
        { kind: "claim", store: "ledger", key: KEY, expectedRevision: 0, value: ledger() },
      ],
      log,
    );
    expect(buckets.breakers.calls).toEqual(["create img"]);
    expect(buckets.ledger.calls).toEqual([]);
    expect(published).toEqual([`fleetheal.v1.act.h1.${CID}.decided`]);
    await runtime.stop();
  });

  it("records and the restart that follow one another are sent together, the ack waits for all", async () => {
    const { runtime, internals, order, requests } = runtimeWith();
    const sentAfter = Date.now();
    await internals.apply(
      [
        record("decided"),
        record("restarting"),
        {
          kind: "restart",
          command: {
            type: "fleetheal.cmd.v1.restart",
            v: 1,
            commandId: "heal-1",
            host: "h1",
            containerId: CID,
            reason: "unhealthy",
            requestedBy: "handler:heal",
          },
          onReply: () => [record("restarted")],
        },
      ],
      log,
    );
    expect(order).toEqual([
      "publish decided",
      "publish restarting",
      "request",
      "publish restarted",
    ]);
    // Stamped with its lifetime and signed when sent.
    const [sent] = requests;
    if (!sent) throw new Error("no request was sent");
    const command = JSON.parse(new TextDecoder().decode(sent.payload)) as RestartCommand;
    expect(command).toMatchObject({ commandId: "heal-1", host: "h1" });
    const issued = Date.parse(command.issuedAt);
    expect(issued).toBeGreaterThanOrEqual(sentAfter);
    expect(Date.parse(command.expiresAt) - issued).toBe(20_000);
    const signature = sent.headers?.get(COMMAND_SIGNATURE_HEADERS.signature) ?? "";
    expect(sent.headers?.get(COMMAND_SIGNATURE_HEADERS.key)).toBe(SIGNER.publicKey);
    expect(
      commandVerifier([SIGNER.publicKey]).verify(SIGNER.publicKey, sent.payload, signature),
    ).toBe("ok");
    await runtime.stop();
  });
});
