import type { JetStreamClient } from "@nats-io/jetstream";
import { describe, expect, it } from "vitest";
import { remediationRecord } from "../test/support/fixtures.js";
import { recordPublisher } from "./record-publisher.js";

const record = remediationRecord({
  id: "release:host-a.0123456789ab:7",
  remediationId: "release:host-a.0123456789ab:7",
  host: "host-a",
  containerId: "0123456789ab",
  containerName: "api",
  phase: "released",
  code: "by-hand",
  message: "released",
  actor: "cli",
  at: "2026-12-07T00:00:00.000Z",
});

function publisher(secret: number) {
  const sent: { subject: string; msgID: string | undefined }[] = [];
  const js = {
    publish: async (subject: string, _data: Uint8Array, opts?: { msgID?: string }) => {
      sent.push({ subject, msgID: opts?.msgID });
      return { stream: "FLEETHEAL_EVENTS", seq: sent.length, duplicate: false };
    },
  } as unknown as JetStreamClient;
  return { records: recordPublisher(js, new Uint8Array(32).fill(secret)), sent };
}

describe("recordPublisher", () => {
  it("publishes on the record's subject with an id derived from the record's id and a secret", async () => {
    const { records, sent } = publisher(1);
    await records.publish(record);
    await records.publish(record);
    expect(sent[0]?.subject).toBe("fleetheal.v1.act.host-a.0123456789ab.released");
    // Deterministic, so a retried publish is still dropped as a duplicate...
    expect(sent[1]?.msgID).toBe(sent[0]?.msgID);
    // ...but not the record's own id, which anyone who knows the record can compute.
    expect(sent[0]?.msgID).not.toContain(record.id);
    expect(sent[0]?.msgID).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await publisher(2).records.msgId(record)).not.toBe(await records.msgId(record));
    expect(await records.msgId({ ...record, id: `${record.id}x` })).not.toBe(
      await records.msgId(record),
    );
  });

  it("asks for the secret on the first publish only, and again after a failure", async () => {
    const sent: string[] = [];
    const js = {
      publish: async (_s: string, _d: Uint8Array, opts?: { msgID?: string }) => {
        sent.push(opts?.msgID ?? "");
        return { stream: "FLEETHEAL_EVENTS", seq: sent.length, duplicate: false };
      },
    } as unknown as JetStreamClient;
    let asked = 0;
    const records = recordPublisher(js, async () => {
      asked++;
      if (asked === 1) throw new Error("NATS is down");
      return new Uint8Array(32).fill(7);
    });
    expect(asked).toBe(0);
    await expect(records.publish(record)).rejects.toThrow(/NATS is down/);
    await records.ready();
    await records.publish(record);
    await records.publish(record);
    expect(asked).toBe(2);
    expect(sent).toEqual([await records.msgId(record), await records.msgId(record)]);
  });
});
