import type { NatsConnection } from "@nats-io/nats-core";
import { Svcm } from "@nats-io/services";
import type { FleetJetStream } from "../common/jetstream-resources.js";
import type { Logger } from "../common/logger.js";
import { VERSION } from "../common/version.js";
import {
  commandSubject,
  decode,
  encode,
  RestartCommand,
  snapshotSubject,
} from "../contracts/index.js";
import type { AgentNats } from "./agent-ports.js";

/** How long one JetStream publish waits for its ack before the outbox retries it. */
const PUBLISH_ACK_TIMEOUT_MS = 5_000;

/** Binds the agent to a NATS connection: the one place where the agent touches NATS. */
export function bindAgentNats(
  nc: NatsConnection,
  fjs: FleetJetStream,
  host: string,
  log: Logger,
): AgentNats {
  return {
    async publishEvent(message) {
      await fjs.js.publish(message.subject, message.payload, {
        msgID: message.msgId,
        timeout: PUBLISH_ACK_TIMEOUT_MS,
      });
    },
    async publishSnapshot(snapshot) {
      const payload = encode(snapshot);
      await fjs.hosts.put(host, payload);
      nc.publish(snapshotSubject(host), payload);
    },
    async serveCommands(execute) {
      const service = await new Svcm(nc).add({
        name: "fleetheal-agent",
        version: VERSION,
        description: "fleetheal host agent: executes commands on one Docker host",
        metadata: { host },
        // Every agent of one host would share work; agents of different hosts never meet,
        // because the subjects carry the host.
        queue: `fleetheal-agent-${host}`,
      });
      service.addEndpoint("restart", {
        subject: commandSubject(host, "restart"),
        metadata: { schema: "fleetheal.cmd.v1.restart" },
        handler: (error, msg) => {
          if (error) {
            log.error({ err: error.message }, "command endpoint failed");
            return;
          }
          const command = decode(RestartCommand, msg.data);
          if (!command.ok) {
            log.warn(
              { code: command.error.code, err: command.error.message },
              "bad restart command",
            );
            msg.respondError(400, command.error.message);
            return;
          }
          execute(command.value).then(
            (reply) => msg.respond(encode(reply)),
            (failure: unknown) => {
              log.error({ err: String(failure) }, "restart command crashed");
              msg.respondError(500, "internal error executing the command");
            },
          );
        },
      });
      return { close: async () => void (await service.stop()) };
    },
  };
}
