import type { NatsConnection } from "@nats-io/nats-core";
import { Svcm } from "@nats-io/services";
import { VERSION } from "../common/version.js";
import {
  encode,
  HANDLER_STATS_TYPE,
  HandlerStats,
  handlerStatsSubject,
  toToken,
} from "../contracts/index.js";
import type { HandlerRuntime } from "./runtime/handler-runtime.js";

/**
 * Makes a handler replica's counters visible from outside, as the NATS micro service
 * `fleetheal-handler`. `$SRV.STATS.fleetheal-handler` reports, per handler (heal, auto-monitor,
 * dependents, notify), the messages it handled, rejected as malformed (dead-lettered), retried,
 * deferred, failed and lost to a concurrent replica; a request to
 * `fleetheal.v1.handler.<replica>.stats` answers with the same counters as a {@link HandlerStats}.
 */
export async function serveHandlerStats(
  nc: NatsConnection,
  replica: string,
  runtime: HandlerRuntime,
): Promise<{ stop(): Promise<void> }> {
  const service = await new Svcm(nc).add({
    name: "fleetheal-handler",
    version: VERSION,
    description: "fleetheal handler replica: counters per handler",
    metadata: { replica },
    statsHandler: async () => Object.fromEntries(runtime.stats),
  });
  const name = toToken(replica);
  service.addEndpoint("stats", {
    subject: handlerStatsSubject(name),
    handler: (_error, msg) => {
      const stats: HandlerStats = {
        type: HANDLER_STATS_TYPE,
        v: 1,
        replica: name,
        handlers: Object.fromEntries(runtime.stats),
      };
      msg.respond(encode(HandlerStats.parse(stats)));
    },
  });
  return { stop: async () => void (await service.stop()) };
}
