import { JetStreamApiError, jetstream } from "@nats-io/jetstream";
import { InvalidArgumentError, type NatsConnection } from "@nats-io/nats-core";
import { type ServiceMsg, Svcm } from "@nats-io/services";
import type { z } from "zod";
import type { Logger } from "../common/logger.js";
import { keyedMessageId } from "../common/message-ids.js";
import { VERSION } from "../common/version.js";
import {
  COMMAND_SIGNATURE_HEADERS,
  CONTAINER_COMMAND_VERBS,
  type CommandVerb,
  commandSubject,
  decode,
  encode,
  HOSTS_BUCKET,
  INSPECT_REPLY_TYPE,
  InspectRequest,
  parseCommandSubject,
  RecreateCommand,
  RestartCommand,
  SnapshotRequest,
  StopCommand,
  snapshotSubject,
} from "../contracts/index.js";
import type { AgentNats, CommandHandlers } from "./agent-ports.js";
import type { ContainerCommand } from "./command-executor.js";
import { UnpublishableError } from "./outbox.js";

/** How long one JetStream publish waits for its ack before the outbox retries it. */
const PUBLISH_ACK_TIMEOUT_MS = 5_000;

/** nats-server's `JSStreamMessageExceedsMaximumErr`: "message size exceeds maximum allowed". */
const JS_MESSAGE_TOO_LARGE = 10054;

/**
 * A publish error as the outbox must see it: an {@link UnpublishableError} when the server will
 * refuse the same bytes again, whatever the retry (over the connection's `max_payload`, which
 * nats.js checks before sending, or over the stream's message size); else the error unchanged,
 * to be retried (timeouts, no responders, a lost connection).
 */
export function publishError(error: unknown): unknown {
  if (error instanceof InvalidArgumentError && error.message.includes("max_payload")) {
    return new UnpublishableError(`larger than the NATS server's max_payload`, { cause: error });
  }
  if (error instanceof JetStreamApiError && error.code === JS_MESSAGE_TOO_LARGE) {
    return new UnpublishableError(`larger than the stream's message size limit`, {
      cause: error,
    });
  }
  return error;
}

/**
 * Binds the agent to a NATS connection: the one place where the agent touches NATS. The agent
 * uses no JetStream API: its events and its KV key are plain publishes that JetStream acks (in a
 * host account, through the service imports of common/nats-accounts.ts), so it needs no stream
 * to exist when it starts; until one does, a publish fails and the outbox retries it.
 */
export function bindAgentNats(
  nc: NatsConnection,
  host: string,
  log: Logger,
  /** The agent's own secret for its events' message ids (common/message-ids.ts). */
  msgIdSecret: Uint8Array,
): AgentNats {
  const js = jetstream(nc);
  const snapshotKey = `$KV.${HOSTS_BUCKET}.${host}`;
  return {
    async publishEvent(message) {
      try {
        await js.publish(message.subject, message.payload, {
          msgID: keyedMessageId(msgIdSecret, message.msgId),
          timeout: PUBLISH_ACK_TIMEOUT_MS,
        });
      } catch (error) {
        throw publishError(error);
      }
    },
    async publishSnapshot(snapshot) {
      const payload = encode(snapshot);
      try {
        // A KV put is a JetStream publish on the key's subject.
        await js.publish(snapshotKey, payload, { timeout: PUBLISH_ACK_TIMEOUT_MS });
        nc.publish(snapshotSubject(host), payload);
      } catch (error) {
        throw publishError(error);
      }
    },
    onReconnect(listener) {
      void (async () => {
        for await (const status of nc.status()) if (status.type === "reconnect") listener();
      })();
    },
    serveCommands: (handlers) => serveCommands(nc, host, log, handlers),
  };
}

/**
 * The agent's micro service `fleetheal-agent`, discoverable with `$SRV.PING|INFO|STATS`, with the
 * host in its metadata. Each endpoint validates its request with the contract schema and
 * answers a bad one with a 400 service error; restart, stop and recreate must also pass the agent's
 * authorisation (signature and lifetime), else a 403. It never throws.
 */
async function serveCommands(
  nc: NatsConnection,
  host: string,
  log: Logger,
  handlers: CommandHandlers,
): Promise<{ close(): Promise<void> }> {
  const service = await new Svcm(nc).add({
    // Requests refused as malformed, per verb, as each endpoint's `data`: nats.js counts only
    // handler exceptions in `num_errors`. The host snapshot carries them too.
    statsHandler: async (endpoint) => {
      const verb = parseCommandSubject(endpoint.subject)?.verb;
      const r = verb ? handlers.rejections(verb) : { rejected: 0 };
      return { rejected: r.rejected, ...(r.last ? { last_rejection: r.last } : {}) };
    },
    name: "fleetheal-agent",
    version: VERSION,
    description: "fleetheal host agent: executes commands on one Docker host",
    metadata: { host },
    // Agents of different hosts never share work: the subjects carry the host.
    queue: `fleetheal-agent-${host}`,
  });
  const endpoint = <S extends z.ZodType>(
    verb: CommandVerb,
    schema: S,
    answer: (request: z.infer<S>) => Promise<Uint8Array | { status: number; message: string }>,
  ) => {
    service.addEndpoint(verb, {
      subject: commandSubject(host, verb),
      metadata: { schema: `fleetheal.cmd.v1.${verb}` },
      handler: (error, msg) => {
        if (error) {
          log.error({ verb, err: error.message }, "command endpoint failed");
          return;
        }
        void respond(msg, { verb, schema, answer, host, log, handlers });
      },
    });
  };
  endpoint("restart", RestartCommand, async (c) => encode(await handlers.execute(c)));
  endpoint("stop", StopCommand, async (c) => encode(await handlers.execute(c)));
  endpoint("recreate", RecreateCommand, async (c) => encode(await handlers.execute(c)));
  endpoint("inspect", InspectRequest, async (request) => {
    const container = await handlers.inspect(request.containerId);
    if (!container) return { status: 404, message: "not-found: no such container on this host" };
    return encode({ type: INSPECT_REPLY_TYPE, v: 1, host, container });
  });
  endpoint("snapshot", SnapshotRequest, async () => encode(handlers.snapshot()));
  return { close: async () => void (await service.stop()) };
}

/** Verbs that change a container: signed, and authorised before they run. */
const SIGNED_VERBS: ReadonlySet<CommandVerb> = new Set(CONTAINER_COMMAND_VERBS);

async function respond<S extends z.ZodType>(
  msg: ServiceMsg,
  endpoint: {
    verb: CommandVerb;
    schema: S;
    answer: (request: z.infer<S>) => Promise<Uint8Array | { status: number; message: string }>;
    host: string;
    log: Logger;
    handlers: CommandHandlers;
  },
): Promise<void> {
  const { verb, host, log, handlers } = endpoint;
  const request = decode(endpoint.schema, msg.data);
  const reject = (reason: string) => {
    log.warn({ verb, reason }, "bad command rejected");
    handlers.rejected(verb, reason);
    msg.respondError(400, reason);
  };
  if (!request.ok) return reject(`${request.error.code}: ${request.error.message}`);
  if ((request.value as { host?: string }).host !== host) {
    return reject(`wrong-host: this agent serves host ${host}`);
  }
  if (SIGNED_VERBS.has(verb)) {
    const command = request.value as ContainerCommand;
    const signature = {
      key: msg.headers?.get(COMMAND_SIGNATURE_HEADERS.key) || undefined,
      signature: msg.headers?.get(COMMAND_SIGNATURE_HEADERS.signature) || undefined,
    };
    const refusal = handlers.authorise(command, { payload: msg.data, signature });
    if (refusal) {
      log.warn(
        {
          verb,
          code: refusal.code,
          detail: refusal.detail,
          key: signature.key?.slice(0, 64),
          commandId: command.commandId,
          containerId: command.containerId,
          requestedBy: command.requestedBy,
        },
        "command refused",
      );
      msg.respondError(403, `${refusal.code}: ${refusal.detail}`);
      return;
    }
  }
  try {
    const result = await endpoint.answer(request.value);
    if (result instanceof Uint8Array) msg.respond(result);
    else msg.respondError(result.status, result.message);
  } catch (error) {
    log.error({ verb, err: String(error) }, "command failed unexpectedly");
    msg.respondError(500, "internal: the agent could not execute the command");
  }
}
