import { resolve } from "node:path";
import { z } from "zod";
import { loadAgentConfig } from "../agent/config.js";
import { intFromEnv, loadEnv } from "../common/config.js";
import { ConfigError, describeError } from "../common/errors.js";
import { runUntilSignal, type Stoppable } from "../common/lifecycle.js";
import { createLogger } from "../common/logger.js";
import { needsExternalNats } from "../common/nats-config.js";
import { VERSION } from "../common/version.js";
import { loadGatewayConfig } from "../gateway/config.js";
import { loadHandlerConfig } from "../handlers/config.js";
import { ensureAdminTokenFile } from "./admin-token.js";
import { startEmbeddedNats } from "./embedded-nats.js";
import { HELP } from "./help.js";

const UpEnv = z.object({
  FLEETHEAL_NATS_URL: z.string().optional(),
  FLEETHEAL_DATA_DIR: z.string().default(".fleetheal"),
  FLEETHEAL_NATS_PORT: intFromEnv({ min: 1, max: 65_535, default: 4222 }),
  FLEETHEAL_NATS_SERVER_BIN: z.string().default("nats-server"),
});

// Each role's code is loaded only when that role runs: an agent on every host should not carry
// the gateway's HTTP stack or the handlers in memory.
const runAgent: typeof import("../agent/main.js").runAgent = async (...args) =>
  (await import("../agent/main.js")).runAgent(...args);
const runHandlers: typeof import("../handlers/main.js").runHandlers = async (...args) =>
  (await import("../handlers/main.js")).runHandlers(...args);
const runGateway: typeof import("../gateway/main.js").runGateway = async (...args) =>
  (await import("../gateway/main.js")).runGateway(...args);

const COMMANDS: Record<string, () => Promise<Stoppable>> = {
  agent: () => runAgent(loadAgentConfig(), createLogger("agent")),
  handler: () => runHandlers(loadHandlerConfig(), createLogger("handler")),
  gateway: () => runGateway(loadGatewayConfig(), createLogger("gateway")),
  up: startAllInOne,
};

/** `fleetheal up`: every role in one process, for one host. */
async function startAllInOne(): Promise<Stoppable> {
  const env = loadEnv(UpEnv);
  const log = createLogger("up");
  // Validate every role's configuration before starting anything.
  const agentConfig = loadAgentConfig();
  const handlerConfig = loadHandlerConfig();
  // The embedded server is plain loopback and not clustered: TLS, credentials, an inbox prefix
  // or replicas only make sense with a NATS of the operator's own.
  if (!env.FLEETHEAL_NATS_URL && agentConfig.nats && needsExternalNats(agentConfig.nats)) {
    throw new ConfigError(
      "invalid configuration:\n  FLEETHEAL_NATS_URL: is needed with FLEETHEAL_NATS_TLS_*, FLEETHEAL_NATS_USER, FLEETHEAL_NATS_TOKEN, FLEETHEAL_NATS_CREDS, FLEETHEAL_NATS_INBOX_PREFIX or FLEETHEAL_JS_REPLICAS above 1; the embedded nats-server of `fleetheal up` is plain loopback with one replica",
    );
  }
  let gatewayConfig = loadGatewayConfig();
  let tokenFile: string | undefined;
  if (!gatewayConfig.adminToken) {
    tokenFile = ensureAdminTokenFile(resolve(env.FLEETHEAL_DATA_DIR));
    gatewayConfig = loadGatewayConfig({
      ...process.env,
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

/** `fleetheal notify-test`: one shot; the exit code says whether every target took the sample. */
async function notifyTest(): Promise<void> {
  const out = (text: string) => process.stdout.write(text);
  const err = (text: string) => process.stderr.write(text);
  const { notifyTestCommand } = await import("../handlers/notify/test-send.js");
  const code = await notifyTestCommand(process.env, out, err).catch((error: unknown) => {
    err(`fleetheal notify-test: ${describeError(error)}\n`);
    return 1;
  });
  // Idle keep-alive connections to the targets would hold the process for seconds.
  process.exit(code);
}

/** `fleetheal release <host> <container>`: one shot, like notify-test. */
async function release(args: string[]): Promise<void> {
  const { releaseCommand } = await import("./release.js");
  const code = await releaseCommand(args, process.env, {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`fleetheal release: ${line}\n`),
  });
  process.exit(code);
}

/** `fleetheal nats-auth --hosts a,b [--out dir]`: one shot, writes files. */
async function natsAuth(args: string[]): Promise<void> {
  const { natsAuthCommand } = await import("./nats-auth.js");
  process.exitCode = natsAuthCommand(args, {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`fleetheal nats-auth: ${line}\n`),
  });
}

function main(argv: string[]): void {
  const [command, ...rest] = argv;
  if (command === "-v" || command === "--version") {
    process.stdout.write(`${VERSION}\n`);
    return;
  }
  if (!command || command === "-h" || command === "--help" || command === "help") {
    process.stdout.write(HELP);
    return;
  }
  if (command === "nats-auth" && !rest.includes("-h") && !rest.includes("--help")) {
    void natsAuth(rest);
    return;
  }
  if (command === "release" && !rest.includes("-h") && !rest.includes("--help")) {
    void release(rest);
    return;
  }
  const start = COMMANDS[command];
  if (!start && command !== "notify-test" && command !== "nats-auth") {
    process.stderr.write(`fleetheal: unknown command '${command}'\n\n${HELP}`);
    process.exitCode = 2;
    return;
  }
  if (rest.includes("-h") || rest.includes("--help")) {
    process.stdout.write(HELP);
    return;
  }
  if (rest.length > 0) {
    process.stderr.write(`fleetheal ${command}: unexpected arguments: ${rest.join(" ")}\n`);
    process.exitCode = 2;
    return;
  }
  if (!start) {
    void notifyTest();
    return;
  }
  void runUntilSignal(createLogger("fleetheal"), start);
}

main(process.argv.slice(2));
