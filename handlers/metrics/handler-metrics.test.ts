import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { VERSION } from "../../common/version.js";
import { encode } from "../../contracts/index.js";
import {
  commandReply,
  containerEvent,
  healPolicy,
  remediationRecord,
} from "../../test/support/fixtures.js";
import {
  InMemoryHandlerIo,
  restartedReply,
  runnerOn,
} from "../../test/support/in-memory-handler-io.js";
import type { HandlerDefinition } from "../handler.js";
import { healHandler } from "../heal.js";
import { type Delivery, handleDelivery } from "../runtime/delivery.js";
import { HandlerMetrics } from "./handler-metrics.js";
import type { JetStreamLevels } from "./jetstream-levels.js";

const log = pino({ level: "silent" });

/** One delivery from a handler's consumer, answered into `answers`. */
function delivery(
  data: Uint8Array,
  subject: string,
  deliveryCount = 1,
): Delivery & { answers: string[] } {
  const answers: string[] = [];
  return {
    subject,
    data,
    seq: 7,
    info: { deliveryCount },
    answers,
    ack: () => answers.push("ack"),
    nak: () => answers.push("nak"),
    term: () => answers.push("term"),
    working: () => {},
  };
}

/** The value of one series in the exposition, or undefined when it is absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe("HandlerMetrics", () => {
  it("counts a heal from the unhealthy event to the agent's restart, through the real runtime", async () => {
    const metrics = new HandlerMetrics();
    const io = new InMemoryHandlerIo();
    const event = containerEvent();
    const unhealthyAt = Date.parse(event.time);
    // The agent began the restart 1.5 s after Docker reported the container unhealthy.
    io.agent = (command) =>
      restartedReply(command, { startedAt: new Date(unhealthyAt + 1_500).toISOString() });
    const runner = runnerOn(io, { observer: metrics });
    const def = healHandler({ maxEventAgeMs: 300_000, retryDelayMs: 2_000 });
    const msg = delivery(
      encode(event),
      `fleetheal.v1.evt.${event.host}.${event.container.id}.unhealthy`,
    );
    const stats = metrics.handler(def.name);
    await handleDelivery(def as HandlerDefinition<unknown>, msg, { runner, io, log, stats });
    // The same event again (a redelivery): the incident is handled, nothing is counted twice.
    await handleDelivery(
      def as HandlerDefinition<unknown>,
      { ...msg, info: { deliveryCount: 2 } },
      {
        runner,
        io,
        log,
        stats,
      },
    );
    await runner.stop();
    expect(msg.answers).toEqual(["ack", "ack"]);
    expect(io.takeRecords()).toContain("restarted:restarted");

    const text = await metrics.render();
    expect(sample(text, 'fleetheal_restarts_total{trigger="heal",outcome="restarted"}')).toBe(1);
    expect(sample(text, 'fleetheal_restarts_total{trigger="heal",outcome="failed"}')).toBe(0);
    expect(sample(text, 'fleetheal_decisions_total{handler="heal",phase="decided"}')).toBe(1);
    expect(sample(text, 'fleetheal_decisions_total{handler="heal",phase="restarted"}')).toBe(1);
    expect(sample(text, "fleetheal_heal_latency_seconds_count")).toBe(1);
    expect(sample(text, "fleetheal_heal_latency_seconds_sum")).toBe(1.5);
    expect(sample(text, 'fleetheal_heal_latency_seconds_bucket{le="1"}')).toBe(0);
    expect(sample(text, 'fleetheal_heal_latency_seconds_bucket{le="2.5"}')).toBe(1);
    expect(sample(text, 'fleetheal_handler_messages_total{handler="heal",result="handled"}')).toBe(
      2,
    );
    // The `$SRV` stats read the very same counters.
    expect(metrics.stats.get("heal")).toBe(stats);
    expect(stats.handled).toBe(2);
  });

  it.each([
    ["a resync, from the transition it re-asserts", "unhealthy", 1],
    ["a crash, never", "die", 0],
  ] as const)("takes the heal latency of %s", async (_what, action, samples) => {
    const metrics = new HandlerMetrics();
    const io = new InMemoryHandlerIo();
    const now = Date.now();
    const event = containerEvent({
      action,
      ...(action === "die"
        ? { exitCode: 1 }
        : { source: "resync", unhealthySince: new Date(now - 30_000).toISOString() }),
    });
    io.agent = (command) => restartedReply(command, { startedAt: new Date(now).toISOString() });
    const runner = runnerOn(io, {
      observer: metrics,
      policy: () => healPolicy({ restartOnExit: true }),
    });
    const def = healHandler({ maxEventAgeMs: 300_000, retryDelayMs: 2_000 });
    const stats = metrics.handler(def.name);
    const msg = delivery(
      encode(event),
      `fleetheal.v1.evt.${event.host}.${event.container.id}.${action}`,
    );
    await handleDelivery(def as HandlerDefinition<unknown>, msg, { runner, io, log, stats });
    await runner.stop();
    expect(io.takeRecords()).toContain("restarted:restarted");
    const text = await metrics.render();
    expect(sample(text, 'fleetheal_restarts_total{trigger="heal",outcome="restarted"}')).toBe(1);
    expect(sample(text, "fleetheal_heal_latency_seconds_count")).toBe(samples);
    if (samples > 0) expect(sample(text, "fleetheal_heal_latency_seconds_sum")).toBe(30);
  });

  it("exports build info, and every fixed series at zero before anything happens", async () => {
    const metrics = new HandlerMetrics();
    metrics.handler("dependents");
    const text = await metrics.render();
    expect(sample(text, `fleetheal_build_info{role="handler",version="${VERSION}"}`)).toBe(1);
    expect(sample(text, 'fleetheal_restarts_total{trigger="dependents",outcome="restarted"}')).toBe(
      0,
    );
    expect(sample(text, 'fleetheal_skips_total{code="storm-cap"}')).toBe(0);
    expect(sample(text, 'fleetheal_skips_total{code="image-breaker"}')).toBe(0);
    expect(sample(text, 'fleetheal_dead_letters_total{handler="dependents"}')).toBe(0);
    expect(
      sample(text, 'fleetheal_handler_messages_total{handler="dependents",result="conflict"}'),
    ).toBe(0);
    // Without a JetStream reading, and without being served, none of these.
    expect(text).not.toContain("fleetheal_consumer_pending");
    expect(text).not.toContain("process_cpu");
  });

  it("bounds every label: unknown codes, handlers and failures count as other", async () => {
    const metrics = new HandlerMetrics();
    metrics.handler("heal");
    metrics.handler("dependents-start");
    for (let i = 0; i < 50; i++) {
      metrics.recordStored("heal", remediationRecord({ phase: "skipped", code: `made-up-${i}` }));
      metrics.recordStored("heal", remediationRecord({ phase: "failed", code: `host-says-${i}` }));
    }
    metrics.recordStored("not-bound", remediationRecord({ phase: "decided", code: "unhealthy" }));
    metrics.recordStored(
      "heal",
      remediationRecord({ phase: "quarantined", code: "image-breaker" }),
    );
    metrics.recordStored("heal", remediationRecord({ phase: "failed", code: "docker-error" }));
    metrics.recordStored("dependents-start", remediationRecord({ phase: "restarted" }));
    // Not restarts: a failed stop, and a dry run's record.
    metrics.recordStored(
      "heal",
      remediationRecord({ phase: "failed", code: "docker-error", action: "stop" }),
    );
    metrics.recordStored("heal", remediationRecord({ phase: "restarted", dryRun: true }));
    const text = await metrics.render();
    expect(sample(text, 'fleetheal_skips_total{code="other"}')).toBe(50);
    expect(sample(text, 'fleetheal_skips_total{code="image-breaker"}')).toBe(1);
    expect(sample(text, 'fleetheal_restart_failures_total{trigger="heal",code="other"}')).toBe(50);
    expect(
      sample(text, 'fleetheal_restart_failures_total{trigger="heal",code="docker-error"}'),
    ).toBe(1);
    expect(sample(text, 'fleetheal_restarts_total{trigger="heal",outcome="failed"}')).toBe(51);
    expect(sample(text, 'fleetheal_restarts_total{trigger="dependents",outcome="restarted"}')).toBe(
      1,
    );
    expect(sample(text, 'fleetheal_decisions_total{handler="other",phase="decided"}')).toBe(1);
    expect(text).not.toContain("made-up");
    expect(text).not.toContain("host-says");
    expect(text).not.toContain("not-bound");
  });

  it("does not count a record again when JetStream drops it as a duplicate", async () => {
    const metrics = new HandlerMetrics();
    metrics.handler("heal");
    const io = new InMemoryHandlerIo();
    const runner = runnerOn(io, { observer: metrics });
    const record = remediationRecord({ phase: "restarted", code: "restarted" });
    for (let i = 0; i < 3; i++) {
      await runner.run(() => [{ kind: "remediation", record }], {
        handler: "heal",
        log,
        deliveryCount: i + 1,
        lastDelivery: false,
      });
    }
    await runner.stop();
    expect(io.records).toHaveLength(3);
    const text = await metrics.render();
    expect(sample(text, 'fleetheal_restarts_total{trigger="heal",outcome="restarted"}')).toBe(1);
    expect(sample(text, 'fleetheal_decisions_total{handler="heal",phase="restarted"}')).toBe(1);
  });

  it("samples the latency only when the agent acted, from the time it reports", async () => {
    const metrics = new HandlerMetrics();
    const at = new Date("2026-12-07T10:00:00.000Z");
    metrics.actionAnswered(at, commandReply({ startedAt: "2026-12-07T10:00:04.000Z" }));
    metrics.actionAnswered(at, commandReply({ outcome: "skipped", code: "not-unhealthy" }));
    metrics.actionAnswered(at, commandReply({ outcome: "refused", code: "not-found" }));
    // A host's clock behind Docker's: no sample rather than a false zero.
    metrics.actionAnswered(at, commandReply({ startedAt: "2026-12-07T09:59:59.000Z" }));
    const text = await metrics.render();
    expect(sample(text, "fleetheal_heal_latency_seconds_count")).toBe(1);
    expect(sample(text, "fleetheal_heal_latency_seconds_sum")).toBe(4);
  });

  it("counts dead letters by handler as they are stored", async () => {
    const metrics = new HandlerMetrics();
    const io = new InMemoryHandlerIo();
    const runner = runnerOn(io, { observer: metrics });
    const def = healHandler({ maxEventAgeMs: 300_000, retryDelayMs: 2_000 });
    const stats = metrics.handler(def.name);
    const msg = delivery(new TextEncoder().encode("{not json"), "fleetheal.v1.evt.h.c.unhealthy");
    await handleDelivery(def as HandlerDefinition<unknown>, msg, {
      runner,
      io,
      log,
      stats,
      deadLetters: metrics,
    });
    await runner.stop();
    expect(msg.answers).toEqual(["term"]);
    const text = await metrics.render();
    expect(sample(text, 'fleetheal_dead_letters_total{handler="heal"}')).toBe(1);
    expect(sample(text, 'fleetheal_handler_messages_total{handler="heal",result="rejected"}')).toBe(
      1,
    );
  });

  it("exports the JetStream levels it is given, and leaves out what it could not read", async () => {
    let reading: JetStreamLevels | undefined = {
      consumers: [{ consumer: "fleetheal-heal", pending: 3, ackPending: 2, redelivered: 1 }],
      dlqMessages: 4,
    };
    const metrics = new HandlerMetrics({ levels: async () => reading });
    let text = await metrics.render();
    expect(sample(text, 'fleetheal_consumer_pending{consumer="fleetheal-heal"}')).toBe(3);
    expect(sample(text, 'fleetheal_consumer_ack_pending{consumer="fleetheal-heal"}')).toBe(2);
    expect(sample(text, 'fleetheal_consumer_redelivered{consumer="fleetheal-heal"}')).toBe(1);
    expect(sample(text, "fleetheal_dlq_messages")).toBe(4);
    reading = undefined;
    text = await metrics.render();
    expect(text).not.toContain('fleetheal_consumer_pending{consumer="fleetheal-heal"}');
    // A gauge without labels keeps its last reading.
    expect(sample(text, "fleetheal_dlq_messages")).toBe(4);
  });
});
