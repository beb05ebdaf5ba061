import { describeError } from "../common/errors.js";
import { runUntilSignal, type Stoppable } from "../common/lifecycle.js";
import { createLogger } from "../common/logger.js";
import { isClientCommand, runClientProcess } from "./commands/index.js";
import { HELP } from "./help.js";
import { roleHelp } from "./role-help.js";

// Each role's code, its configuration schema included, is loaded only when that role runs: an
// agent on every host should not carry the gateway's HTTP stack, the handlers or their settings
// in memory. What is loaded at start also sets how far V8's young generation grows, and with it
// the agent's resident memory (docs/AGENT.md, "Memory").
const COMMANDS: Record<string, () => Promise<Stoppable>> = {
  agent: async () => {
    const loaded = (await import("../agent/config.js")).loadAgentConfig();
    const config = await (await import("../agent/host-id.js")).withHostIdOfEngine(loaded);
    return (await import("../agent/main.js")).runAgent(config, createLogger("agent"));
  },
  handler: async () => {
    const config = (await import("../handlers/config.js")).loadHandlerConfig();
    return (await import("../handlers/main.js")).runHandlers(config, createLogger("handler"));
  },
  gateway: async () => {
    const config = (await import("../gateway/config.js")).loadGatewayConfig();
    return (await import("../gateway/main.js")).runGateway(config, createLogger("gateway"));
  },
  up: async () => (await import("./up.js")).startAllInOne(),
};

/**
 * `fleetheal host-id`: the host id an agent started here would use (FLEETHEAL_HOST_ID, the host a
 * join token names, in a container the Docker engine's name, else the hostname), for scripts
 * such as compose's `init`, which issues that host's credential before the agent starts.
 */
async function hostId(): Promise<void> {
  try {
    const loaded = (await import("../agent/config.js")).loadAgentConfig();
    const config = await (await import("../agent/host-id.js")).withHostIdOfEngine(loaded);
    process.stdout.write(`${config.hostId}\n`);
  } catch (error) {
    process.stderr.write(`fleetheal host-id: ${describeError(error)}\n`);
    process.exitCode = 2;
  }
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

/** `fleetheal nats-auth --hosts a,b [--out dir]`: one shot, writes files. */
async function natsAuth(args: string[]): Promise<void> {
  const { natsAuthCommand } = await import("./nats-auth.js");
  process.exitCode = await natsAuthCommand(args, {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`fleetheal nats-auth: ${line}\n`),
  });
}

/** `fleetheal nats-migrate export|import`: one shot, carries a deployment's data into FLEET. */
async function natsMigrate(args: string[]): Promise<void> {
  const { natsMigrateCommand } = await import("./nats-migrate.js");
  process.exitCode = await natsMigrateCommand(args, process.env, {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`fleetheal nats-migrate: ${line}\n`),
  });
}

/** `fleetheal version [--json]`, `-v`, `--version`: one shot, prints and exits. */
async function version(args: string[]): Promise<void> {
  const { versionCommand } = await import("./version.js");
  process.exitCode = versionCommand(args, {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`fleetheal version: ${line}\n`),
  });
}

function main(argv: string[]): void {
  const [command, ...rest] = argv;
  const wantsHelp = rest.includes("-h") || rest.includes("--help");
  if (command === "-v" || command === "--version" || (command === "version" && !wantsHelp)) {
    void version(rest);
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
  if (command === "nats-migrate" && !rest.includes("-h") && !rest.includes("--help")) {
    void natsMigrate(rest);
    return;
  }
  // status, hosts, containers, events, restart, release, pause, resume (cli/commands/): each
  // parses its own options and has its own --help.
  if (isClientCommand(command)) {
    void runClientProcess(command, rest);
    return;
  }
  // The image's HEALTHCHECK (cli/healthcheck.ts). It judges an agent or a handler by a heartbeat
  // that the role keeps from the moment it has started.
  if (command === "host-id" && !rest.includes("-h") && !rest.includes("--help")) {
    void hostId();
    return;
  }
  if (command === "healthcheck") {
    void import("./healthcheck.js").then((h) => h.runHealthcheck(rest));
    return;
  }
  const role = COMMANDS[command];
  if (role && (command === "agent" || command === "handler")) {
    COMMANDS[command] = async () =>
      (await import("./healthcheck.js")).keepHeartbeat(command, await role());
  }
  const start = COMMANDS[command];
  if (
    !start &&
    command !== "notify-test" &&
    command !== "nats-auth" &&
    command !== "nats-migrate" &&
    command !== "host-id" &&
    command !== "version"
  ) {
    process.stderr.write(`fleetheal: unknown command '${command}'\n\n${HELP}`);
    process.exitCode = 2;
    return;
  }
  if (rest.includes("-h") || rest.includes("--help")) {
    process.stdout.write(roleHelp(command, HELP));
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
