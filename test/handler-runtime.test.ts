// The handler runtime on a real nats-server: malformed messages are rejected, logged and moved
// to the dead-letter stream with the reason, and the handler keeps working.

import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type ContainerEvent,
  DEAD_LETTER_HEADERS,
  DLQ_STREAM,
  encode,
  eventSubject,
  RemediationRecord,
} from "../contracts/index.js";
import { containerEvent } from "./support/fixtures.js";
import { createHostEventStreams, type Fleet, startFleet } from "./support/fleet.js";
import type { FleetProcess } from "./support/fleetheal.js";
import { readStored } from "./support/stream.js";
import { waitFor } from "./support/wait.js";

const CID = "ab".repeat(32);
let fleet: Fleet;
let client: NatsConnection;
let handler: FleetProcess;

beforeAll(async () => {
  fleet = await startFleet({ nats: "plain" });
  handler = fleet.handlers[0] as FleetProcess;
  client = await fleet.nats.connect({ name: "runtime-test" });
  // Host "rt" has no agent to write its snapshot, after which the handler would make its stream.
  await createHostEventStreams(client, ["rt"]);
});

afterAll(async () => {
  await fleet?.[Symbol.asyncDispose]();
});

function unhealthy(optedIn: boolean): ContainerEvent {
  return containerEvent({ host: "rt", container: { id: CID, name: "rt-app", optedIn } });
}

describe("handler runtime", () => {
  it("dead-letters malformed messages with the reason and keeps handling", async () => {
    const js = jetstream(client);
    const subject = eventSubject("rt", CID, "unhealthy");
    await js.publish(subject, new TextEncoder().encode("{not json"));
    await js.publish(subject, encode({ ...unhealthy(true), host: "bad.host" }));

    const jsm = await jetstreamManager(client);
    const letters = await waitFor(
      async () => {
        const info = await jsm.streams.info(DLQ_STREAM);
        if (info.state.messages < 2) return undefined;
        const got = await Promise.all(
          [1, 2].map((seq) => jsm.streams.getMessage(DLQ_STREAM, { seq })),
        );
        return got.every((m) => m !== null) ? got.filter((m) => m !== null) : undefined;
      },
      { timeoutMs: 20_000, message: "the malformed messages never reached the dead-letter stream" },
    );
    const reasons = letters.map((m) => m.header.get(DEAD_LETTER_HEADERS.reason));
    expect(reasons.some((r) => r.startsWith("FLEETHEAL_ERR_BAD_JSON"))).toBe(true);
    expect(reasons.some((r) => r.startsWith("FLEETHEAL_ERR_SCHEMA") && r.includes("host"))).toBe(
      true,
    );
    for (const m of letters) {
      expect(m.subject).toMatch(/^fleetheal\.v1\.dlq\./);
      expect(m.header.get(DEAD_LETTER_HEADERS.subject)).toBe(subject);
    }
    expect(new TextDecoder().decode(letters[0]?.data)).toBe("{not json");
    expect(
      handler.json.filter((l) => String(l.msg).startsWith("rejected malformed message")),
    ).not.toHaveLength(0);

    // Still alive and handling: a valid event for a container that has not opted in is
    // answered with its skipped record.
    await js.publish(subject, encode(unhealthy(false)));
    const records = await waitFor(
      async () => {
        const stored = await readStored(client, `fleetheal.v1.act.rt.${CID}.>`, RemediationRecord);
        return stored.length > 0 ? stored : undefined;
      },
      { timeoutMs: 20_000, message: "the handler stopped handling after the malformed messages" },
    );
    expect(records[0]).toMatchObject({ phase: "skipped", code: "not-opted-in" });
  });
});
