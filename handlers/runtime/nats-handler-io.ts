import type { KV } from "@nats-io/kv";
import { type NatsConnection, headers as natsHeaders } from "@nats-io/nats-core";
import { type CommandSigning, sendAgentCommand } from "../../common/agent-commands.js";
import type { FleetJetStream } from "../../common/jetstream-resources.js";
import { isWrongRevision } from "../../common/nats-errors.js";
import { DEAD_LETTER_HEADERS, deadLetterSubject } from "../../contracts/index.js";
import type { HandlerIo, LeaseBuckets, RevisionedBucket, SlotBucket } from "./handler-io.js";

/** What the NATS {@link HandlerIo} works with. */
export interface NatsHandlerIoOptions {
  nc: NatsConnection;
  fjs: FleetJetStream;
  /** How restart commands are signed, at send time. */
  commandSigning: CommandSigning;
}

/**
 * The handler runtime's {@link HandlerIo} on NATS: the stores and the storm guard's slots are
 * JetStream KV buckets, records and dead letters JetStream publishes, and restarts requests to
 * the agents' command service (common/agent-commands.ts). The one place where the runtime
 * touches NATS, apart from its consumers (handler-runtime.ts).
 */
export function natsHandlerIo({ nc, fjs, commandSigning }: NatsHandlerIoOptions): HandlerIo {
  const stores = {
    ledger: revisioned(fjs.ledger),
    monitored: revisioned(fjs.monitored),
    breakers: revisioned(fjs.breakers),
  };
  let leaseBuckets: Promise<LeaseBuckets> | undefined;
  return {
    store: (name) => stores[name],
    async hostSnapshot(host) {
      const entry = await fjs.hosts.get(host);
      return entry?.operation === "PUT" ? entry : undefined;
    },
    listHostKeys: () => fjs.hosts.keys(),
    leaseBuckets() {
      leaseBuckets ??= Promise.all([slots(fjs.inflight), slots(fjs.rate)]).then(
        ([inflight, rate]) => ({ inflight, rate }),
      );
      // A failed open is tried again by the next caller rather than remembered.
      leaseBuckets.catch(() => {
        leaseBuckets = undefined;
      });
      return leaseBuckets;
    },
    publishRecord: (record) => fjs.records.publish(record),
    async sendCommand(command, timeoutMs) {
      const result = await sendAgentCommand(nc, command, { signing: commandSigning, timeoutMs });
      if (result.ok || result.code !== "rejected") return result;
      return { ok: false, code: "bad-reply", message: `agent error: ${result.message}` };
    },
    async deadLetter(letter) {
      const h = natsHeaders();
      h.set(DEAD_LETTER_HEADERS.subject, letter.subject);
      // A header value is one line.
      h.set(DEAD_LETTER_HEADERS.reason, letter.reason.replace(/[\r\n]+/g, " ").slice(0, 1024));
      h.set(DEAD_LETTER_HEADERS.handler, letter.handler);
      h.set(DEAD_LETTER_HEADERS.deliveries, String(letter.deliveries));
      h.set(DEAD_LETTER_HEADERS.streamSeq, String(letter.streamSeq));
      await fjs.js.publish(deadLetterSubject(letter.handler), letter.data, {
        headers: h,
        msgID: `${letter.handler}:${letter.streamSeq}`,
      });
    },
  };
}

/** A KV bucket as a {@link RevisionedBucket}: a lost compare-and-set is an answer. */
function revisioned(kv: KV): RevisionedBucket {
  return {
    async get(key) {
      const entry = await kv.get(key);
      return entry?.operation === "PUT" ? entry : undefined;
    },
    async write(key, value, revision) {
      try {
        return revision === 0 ? await kv.create(key, value) : await kv.update(key, value, revision);
      } catch (error) {
        if (isWrongRevision(error)) return undefined;
        throw error;
      }
    },
    async delete(key, revision) {
      try {
        await kv.delete(key, { previousSeq: revision });
        return true;
      } catch (error) {
        if (isWrongRevision(error)) return false;
        throw error;
      }
    },
  };
}

/** A lease bucket, with the TTL it was created with. */
async function slots(kv: KV): Promise<SlotBucket> {
  const ttl = (await kv.status()).ttl;
  return {
    ...revisioned(kv),
    ttlMs: ttl > 0 ? ttl : Number.POSITIVE_INFINITY,
    watch: () => kv.watch({ key: ">" }),
  };
}
