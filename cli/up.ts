import { resolve } from "node:path";
import { z } from "zod";
import { loadAgentConfig } from "../agent/config.js";
import { withHostIdOfEngine } from "../agent/host-id.js";
import { runAgent } from "../agent/main.js";
import { commaListFromEnv, intFromEnv, loadEnv } from "../common/config.js";
import { ConfigError, describeError } from "../common/errors.js";
import { STOP_TIMEOUT_MS, type Stoppable, settlesWithin } from "../common/lifecycle.js";
import { createLogger } from "../common/logger.js";
import { type NatsClientSettings, needsExternalNats } from "../common/nats-config.js";
import {
  agentPermissions,
  type FleetNatsUser,
  gatewayPermissions,
  handlerPermissions,
} from "../common/nats-permissions.js";
import { withoutCredentials } from "../common/url-credentials.js";
import { VERSION } from "../common/version.js";
import { loadGatewayConfig } from "../gateway/config.js";
import { runGateway } from "../gateway/main.js";
import { loadHandlerConfig } from "../handlers/config.js";
import { runHandlers } from "../handlers/main.js";
import { ensureAdminTokenFile } from "./admin-token.js";
import { credentialSigning, upCommandSigningEnv, withSigningKey } from "./command-signing-key.js";
import { DATA_DIR_ENV } from "./data-dir.js";
import { upHostsAdmin } from "./fleet-hosts.js";
import { parseHostPort, startUpServer } from "./up-server.js";

/** The variables `up` reads besides every role's. */
export const UpEnv = z.object({
  FLEETHEAL_NATS_URL: z.string().optional(),
  ...DATA_DIR_ENV,
  FLEETHEAL_NATS_PORT: intFromEnv({ min: 1, max: 65_535, default: 4222 }),
  FLEETHEAL_NATS_SERVER_BIN: z.string().default("nats-server"),
  FLEETHEAL_NATS_LISTEN: z.string().max(300).optional(),
  FLEETHEAL_NATS_ADVERTISE: commaListFromEnv().optional(),
});

/**
 * How long up's roles get to stop, together: what is still in flight then (a Docker restart
 * waiting out a container's stop timeout, a handler waiting for its reply) is abandoned, and the
 * rest of the stop timeout is the embedded server's (SIGTERM, SIGKILL after 5 s). Nothing
 * abandoned is lost: a handler acks a message only once its work is done, so JetStream delivers
 * it again, and the agent's resync finds a container whose restart was cut short.
 */
const ROLES_STOP_MS = STOP_TIMEOUT_MS - 8_000;

/** `fleetheal up`: every role in one process, for one host. */
export async function startAllInOne(): Promise<Stoppable> {
  const env = loadEnv(UpEnv);
  const log = createLogger("up");
  const dataDir = resolve(env.FLEETHEAL_DATA_DIR);
  const embedded = !env.FLEETHEAL_NATS_URL;
  // With an operator's NATS, the handler and gateway sign with a key kept in the data directory
  // (or FLEETHEAL_COMMAND_SIGNING_KEY_FILE), and the agent trusts it. The embedded server's
  // credentials have signing keys of their own, added below.
  const roleEnv = embedded
    ? process.env
    : { ...process.env, ...upCommandSigningEnv(dataDir, process.env) };
  // Validate every role's configuration before starting anything.
  let agentConfig = loadAgentConfig(roleEnv);
  let handlerConfig = loadHandlerConfig(roleEnv);
  // The embedded server is plain loopback and not clustered: TLS, credentials, an inbox prefix
  // or replicas only make sense with a NATS of the operator's own.
  if (embedded && agentConfig.nats && needsExternalNats(agentConfig.nats)) {
    throw new ConfigError(
      "invalid configuration:\n  FLEETHEAL_NATS_URL: is needed with FLEETHEAL_NATS_TLS_*, FLEETHEAL_NATS_USER, FLEETHEAL_NATS_TOKEN, FLEETHEAL_NATS_CREDS, FLEETHEAL_NATS_NKEY_FILE, FLEETHEAL_NATS_INBOX_PREFIX or FLEETHEAL_JS_REPLICAS above 1; the embedded nats-server of `fleetheal up` has its own accounts and keys, and one replica",
    );
  }
  let gatewayConfig = loadGatewayConfig(roleEnv);
  // In a container without FLEETHEAL_HOST_ID: the Docker engine's name (agent/host-id.ts).
  agentConfig = await withHostIdOfEngine(agentConfig, roleEnv);
  let tokenFile: string | undefined;
  if (!gatewayConfig.adminToken) {
    tokenFile = ensureAdminTokenFile(dataDir);
    gatewayConfig = loadGatewayConfig({
      ...roleEnv,
      FLEETHEAL_GATEWAY_ADMIN_TOKEN_FILE: tokenFile,
    });
  }
  // The embedded server runs the accounts of a deployed fleet; its credentials are kept in the
  // data directory, so a restart (or a fleet that grows later) keeps every key.
  const server = embedded
    ? await startUpServer({
        binary: env.FLEETHEAL_NATS_SERVER_BIN,
        dataDir,
        hostId: agentConfig.hostId,
        listen: {
          port: env.FLEETHEAL_NATS_PORT,
          ...(env.FLEETHEAL_NATS_LISTEN && {
            listen: parseHostPort(env.FLEETHEAL_NATS_LISTEN, "FLEETHEAL_NATS_LISTEN"),
          }),
          ...(env.FLEETHEAL_NATS_ADVERTISE && {
            advertise: env.FLEETHEAL_NATS_ADVERTISE.map((a) =>
              parseHostPort(a, "FLEETHEAL_NATS_ADVERTISE"),
            ),
          }),
        },
        log,
      })
    : undefined;
  if (server) {
    const signing = credentialSigning(server.credentials.dir);
    handlerConfig = withSigningKey(handlerConfig, signing.handler);
    gatewayConfig = withSigningKey(gatewayConfig, signing.gateway);
    const trusted = [
      handlerConfig.commandSigning.key?.publicKey,
      gatewayConfig.commandSigning.key?.publicKey,
    ].filter((k): k is string => k !== undefined);
    agentConfig = {
      ...agentConfig,
      commandKeys: [...new Set([...agentConfig.commandKeys, ...trusted])],
    };
  }
  const nats = server;
  const natsUrl = nats?.url ?? (env.FLEETHEAL_NATS_URL as string);
  /** The settings of a role: its own user on the embedded server, or what the environment said. */
  const as = (user: FleetNatsUser, own: NatsClientSettings | undefined) =>
    server ? server.settingsFor(user) : own;
  const started: { role: string; running: Stoppable }[] = [];
  // Stop in order of start: the handlers and the gateway first, while the agent still answers
  // the commands they have in flight, the agent last. One component failing to stop must not
  // keep the others (or the embedded server) running.
  const stopAll = async () => {
    const deadline = Date.now() + ROLES_STOP_MS;
    for (const { role, running } of started) {
      const stopped = await settlesWithin(running.stop(), deadline - Date.now()).catch(
        (error: unknown) => {
          log.error({ role, err: describeError(error) }, "component failed to stop cleanly");
          return true;
        },
      );
      if (!stopped) {
        const left = started.slice(started.findIndex((s) => s.role === role)).map((s) => s.role);
        log.warn({ roles: left, stopMs: ROLES_STOP_MS }, "roles did not stop in time: abandoned");
        break;
      }
    }
    await nats?.stop();
  };
  try {
    const handlerNats = as(handlerPermissions(), handlerConfig.nats);
    started.push({
      role: "handler",
      running: await runHandlers(
        { ...handlerConfig, natsUrl, ...(handlerNats && { nats: handlerNats }) },
        createLogger("handler"),
      ),
    });
    const gatewayNats = as(gatewayPermissions(), gatewayConfig.nats);
    const gateway = await runGateway(
      { ...gatewayConfig, natsUrl, ...(gatewayNats && { nats: gatewayNats }) },
      createLogger("gateway"),
      server && upHostsAdmin(dataDir, agentConfig.hostId),
    );
    started.push({ role: "gateway", running: gateway });
    const agentNats = as(agentPermissions(agentConfig.hostId), agentConfig.nats);
    started.push({
      role: "agent",
      running: await runAgent(
        { ...agentConfig, natsUrl, ...(agentNats && { nats: agentNats }) },
        createLogger("agent"),
      ),
    });
    process.stdout.write(
      `fleetheal ${VERSION} is up on host ${agentConfig.hostId}: dashboard ${gateway.url}/, health ${gateway.url}/health\n` +
        (tokenFile ? `the admin token for actions is in ${tokenFile}\n` : ""),
    );
    log.info(
      {
        gateway: gateway.url,
        nats: withoutCredentials(natsUrl),
        host: agentConfig.hostId,
        adminTokenFile: tokenFile,
      },
      "fleetheal is up",
    );
  } catch (error) {
    await stopAll().catch(() => {});
    throw error;
  }
  return { stop: stopAll, ...(nats && { abandon: () => nats.abandon() }) };
}
