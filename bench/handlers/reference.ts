// The bare JetStream reference: the same payloads, publisher and window as a handler run, on
// subjects of the same length, into a stream with the events stream's storage settings, consumed
// and acked by a child process that does nothing else. Only the work differs.

import path from "node:path";
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
} from "@nats-io/jetstream";
import { SUBJECT_ROOT, SUBJECTS } from "../../contracts/index.js";
import { unhealthyEvents } from "../fleet/uniform-fleet.js";
import { withTimeout } from "../runner/async.js";
import { BENCH_REPO, forkProgram, nextMessage } from "../runner/children.js";
import { round } from "../runner/numbers.js";
import { CONFIG } from "./config.js";
import { type Context, publishAll } from "./context.js";
import type { PathRun } from "./heal-path.js";
import type { FromReferenceConsumer, ToReferenceConsumer } from "./reference-consumer.js";
import { cpuSnapshot, perEvent, serverCounters, trafficPerEvent } from "./server-counters.js";

const REFERENCE_STREAM = "BENCH_REFERENCE";
const REFERENCE_DURABLE = "bench-reference";
/** The reference's subjects are fleetheal's under this root, of the same length. */
const REFERENCE_ROOT = "benchrefs.v1";
const CONSUMER = path.join(BENCH_REPO, "bench", "handlers", "reference-consumer.ts");

function referenceSubject(subject: string): string {
  if (REFERENCE_ROOT.length !== SUBJECT_ROOT.length) {
    throw new Error(`the reference root must be as long as ${SUBJECT_ROOT}`);
  }
  return `${REFERENCE_ROOT}${subject.slice(SUBJECT_ROOT.length)}`;
}

export async function referenceRun(ctx: Context): Promise<PathRun> {
  const jsm = await jetstreamManager(ctx.nc);
  // The events stream's storage settings, so that only the work differs.
  await jsm.streams.add({
    name: REFERENCE_STREAM,
    subjects: [referenceSubject(SUBJECTS.events)],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_bytes: 1024 * 1024 * 1024,
    duplicate_window: 10 * 60 * 1_000_000_000,
  });
  await jsm.consumers.add(REFERENCE_STREAM, {
    durable_name: REFERENCE_DURABLE,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    max_ack_pending: 10_000,
  });
  const events = unhealthyEvents(ctx.fleet, Date.now(), 0, CONFIG.events);
  const child = forkProgram(CONSUMER, { execArgv: ["--import", "tsx"] });
  try {
    const ready = nextMessage<FromReferenceConsumer, "ready">(child, "ready");
    child.send({
      type: "consume",
      url: ctx.natsUrl,
      stream: REFERENCE_STREAM,
      durable: REFERENCE_DURABLE,
      count: events.length,
    } satisfies ToReferenceConsumer);
    await ready;
    const done = nextMessage<FromReferenceConsumer, "done">(child, "done");
    const pid = child.pid as number;
    const before = await cpuSnapshot(ctx, [{ pid }]);
    const traffic0 = await serverCounters(ctx);
    const t0 = Date.now();
    const publishMs = await publishAll(ctx.js, events, (m) => referenceSubject(m.subject));
    const finished = await withTimeout(done, CONFIG.runTimeoutS * 1000, () => "reference");
    const after = await cpuSnapshot(ctx, [{ pid }]);
    const traffic1 = await serverCounters(ctx);
    const seconds = (finished.at - t0) / 1000;
    return {
      events: events.length,
      seconds: round(seconds, 2),
      eventsPerSecond: Math.round(events.length / seconds),
      publishSeconds: round(publishMs / 1000, 2),
      cpuMsPerEvent: perEvent(before, after, events.length),
      traffic: trafficPerEvent(traffic0, traffic1, events.length),
    };
  } finally {
    if (child.exitCode === null) child.kill("SIGTERM");
    await jsm.streams.delete(REFERENCE_STREAM);
  }
}
