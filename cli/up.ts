// `fleetheal up`, in a module of its own so that the single-role commands never load it (nor,
// through it, the other roles' code and settings).

import { resolve } from "node:path";
import { z } from "zod";
import { loadAgentConfig } from "../agent/config.js";
import { runAgent } from "../agent/main.js";
import { intFromEnv, loadEnv } from "../common/config.js";
import { ConfigError, describeError } from "../common/errors.js";
import type { Stoppable } from "../common/lifecycle.js";
import { createLogger } from "../common/logger.js";
import { needsExternalNats } from "../common/nats-config.js";
import { VERSION } from "../common/version.js";
import { loadGatewayConfig } from "../gateway/config.js";
import { runGateway } from "../gateway/main.js";
import { loadHandlerConfig } from "../handlers/config.js";
import { runHandlers } from "../handlers/main.js";
import { ensureAdminTokenFile } from "./admin-token.js";
import { upCommandSigningEnv } from "./command-signing-key.js";
import { startEmbeddedNats } from "./embedded-nats.js";

const UpEnv = z.object({
  FLEETHEAL_NATS_URL: z.string().optional(),
  FLEETHEAL_DATA_DIR: z.string().default(".fleetheal"),
  FLEETHEAL_NATS_PORT: intFromEnv({ min: 1, max: 65_535, default: 4222 }),
  FLEETHEAL_NATS_SERVER_BIN: z.string().default("nats-server"),
});

/** `fleetheal up`: every role in one process, for one host. */
export async function startAllInOne(): Promise<Stoppable> {
  const env = loadEnv(UpEnv);
  const log = createLogger("up");
  // Its handler and gateway sign commands, and its agent trusts their key.
  const roleEnv = {
    ...process.env,
    ...upCommandSigningEnv(resolve(env.FLEETHEAL_DATA_DIR), process.env),
  };
  // Validate every role's configuration before starting anything.
  const agentConfig = loadAgentConfig(roleEnv);
  const handlerConfig = loadHandlerConfig(roleEnv);
  // The embedded server is plain loopback and not clustered: TLS, credentials, an inbox prefix
  // or replicas only make sense with a NATS of the operator's own.
  if (!env.FLEETHEAL_NATS_URL && agentConfig.nats && needsExternalNats(agentConfig.nats)) {
    throw new ConfigError(
      "invalid configuration:\n  FLEETHEAL_NATS_URL: is needed with FLEETHEAL_NATS_TLS_*, FLEETHEAL_NATS_USER, FLEETHEAL_NATS_TOKEN, FLEETHEAL_NATS_CREDS, FLEETHEAL_NATS_INBOX_PREFIX or FLEETHEAL_JS_REPLICAS above 1; the embedded nats-server of `fleetheal up` is plain loopback with one replica",
    );
  }
  let gatewayConfig = loadGatewayConfig(roleEnv);
  let tokenFile: string | undefined;
  if (!gatewayConfig.adminToken) {
    tokenFile = ensureAdminTokenFile(resolve(env.FLEETHEAL_DATA_DIR));
    gatewayConfig = loadGatewayConfig({
      ...roleEnv,
      FLEETHEAL_GATEWAY_ADMIN_TOKEN_FILE: tokenFile,
    });
  }
  const nats = env.FLEETHEAL_NATS_URL
    ? undefined
    : await startEmbeddedNats({
        binary: env.FLEETHEAL_NATS_SERVER_BIN,
        dataDir: resolve(env.FLEETHEAL_DATA_DIR),
        port: env.FLEETHEAL_NATS_PORT,
        log,
      });
  const natsUrl = nats?.url ?? (env.FLEETHEAL_NATS_URL as string);
  const started: Stoppable[] = [];
  // Stop in reverse order of start; one component failing to stop must not keep the others
  // (or the embedded server) running.
  const stopAll = async () => {
    for (const component of started.reverse()) {
      await component.stop().catch((error: unknown) => {
        log.error({ err: describeError(error) }, "component failed to stop cleanly");
      });
    }
    await nats?.stop();
  };
  try {
    started.push(await runHandlers({ ...handlerConfig, natsUrl }, createLogger("handler")));
    const gateway = await runGateway({ ...gatewayConfig, natsUrl }, createLogger("gateway"));
    started.push(gateway);
    started.push(await runAgent({ ...agentConfig, natsUrl }, createLogger("agent")));
    process.stdout.write(
      `fleetheal ${VERSION} is up on host ${agentConfig.hostId}: dashboard ${gateway.url}/, health ${gateway.url}/health\n` +
        (tokenFile ? `the admin token for actions is in ${tokenFile}\n` : ""),
    );
    log.info(
      { gateway: gateway.url, nats: natsUrl, host: agentConfig.hostId, adminTokenFile: tokenFile },
      "fleetheal is up",
    );
  } catch (error) {
    await stopAll().catch(() => {});
    throw error;
  }
  return { stop: stopAll };
}
