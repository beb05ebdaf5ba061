import { runUntilSignal } from "../common/lifecycle.js";
import { createLogger, type Logger } from "../common/logger.js";
import type { Command, CommandContext } from "./command.js";
import { isCommandName, loadAllCommands, loadCommand, nearestCommands } from "./commands/index.js";
import { EXIT } from "./exit-codes.js";
import { commandArgs, reportError, runCommand } from "./run-command.js";

/**
 * `fleetheal <command> …` as this process: the global help, `-v`/`--version`, or the command,
 * which is loaded only now. A role runs until Ctrl-C or SIGTERM; a one-shot command prints, and
 * the process exits with its code once everything written has been flushed.
 */
export async function runCli(argv: readonly string[]): Promise<void> {
  const [first, ...rest] = argv;
  if (first === undefined || first === "-h" || first === "--help") {
    process.stdout.write((await import("./help.js")).globalHelp(await loadAllCommands()));
    return;
  }
  if (first === "help") {
    await help(rest);
    return;
  }
  // `-v` is a quick local question: the gateway is asked by `fleetheal version` only.
  if (first === "-v" || first === "--version") {
    const version = await loadCommand("version");
    if (version.kind === "one-shot") await runOneShot(version, ["--client", ...rest]);
    return;
  }
  if (!isCommandName(first)) {
    unknownCommand(first);
    return;
  }
  const command = await loadCommand(first);
  if (command.kind === "service") await runService(command, rest);
  else await runOneShot(command, rest);
}

/** `fleetheal help [<command>]`: the global help, or that command's own. */
async function help(args: readonly string[]): Promise<void> {
  const [name, ...extra] = args;
  if (name === undefined) {
    process.stdout.write((await import("./help.js")).globalHelp(await loadAllCommands()));
    return;
  }
  if (!isCommandName(name)) {
    unknownCommand(name);
    return;
  }
  if (extra.length > 0) {
    process.stderr.write(`fleetheal help: one command at a time (fleetheal help ${name})\n`);
    process.exitCode = EXIT.USAGE;
    return;
  }
  process.stdout.write((await import("./help.js")).commandHelp(await loadCommand(name)));
}

/** A short error naming the nearest commands, not the whole help (a typo is the usual cause). */
function unknownCommand(name: string): void {
  const near = nearestCommands(name);
  process.stderr.write(
    `fleetheal: unknown command ${JSON.stringify(name)}${near.length > 0 ? `; did you mean ${near.join(" or ")}?` : ""}\nfleetheal help lists every command; fleetheal help <command> shows one.\n`,
  );
  process.exitCode = EXIT.USAGE;
}

/** Lines to stdout; to stderr as `fleetheal <name>: <line>` unless the command writes its own. */
function processIo(command: Command) {
  return {
    out: (line: string) => {
      if (!process.stdout.destroyed) process.stdout.write(`${line}\n`);
    },
    err: (line: string) =>
      process.stderr.write(
        command.kind === "one-shot" && command.stderr === "as-written"
          ? `${line}\n`
          : `fleetheal ${command.name}: ${line}\n`,
      ),
  };
}

function processContext(command: Command, signal: AbortSignal): CommandContext {
  return { io: processIo(command), env: process.env, cwd: process.cwd(), now: Date.now, signal };
}

async function runService(command: Command & { kind: "service" }, argv: readonly string[]) {
  const io = processIo(command);
  const args = await commandArgs(command, argv, io.err, io.out);
  if ("exitCode" in args) {
    process.exitCode = args.exitCode;
    return;
  }
  const ctx = processContext(command, new AbortController().signal);
  // The log level is the first setting a role reads: a bad one exits 2 like any other.
  let log: Logger;
  try {
    log = createLogger("fleetheal", ctx.env);
  } catch (error) {
    process.exitCode = reportError(error, io.err);
    return;
  }
  await runUntilSignal(log, () => command.start(args, ctx));
}

async function runOneShot(command: Command & { kind: "one-shot" }, argv: readonly string[]) {
  const abort = new AbortController();
  if (command.stopsOnSignal) {
    const stop = () => abort.abort();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  }
  // `fleetheal events -f | head -1`: a closed pipe ends the command, it is not a crash.
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code !== "EPIPE") throw error;
    abort.abort();
  });
  const code = await runCommand(command, argv, processContext(command, abort.signal));
  await Promise.all([flush(process.stdout), flush(process.stderr)]);
  // Idle keep-alive connections (fetch's, or NATS for `nats-migrate`) would hold the process on.
  process.exit(code);
}

function flush(stream: NodeJS.WriteStream): Promise<void> {
  if (stream.destroyed || !stream.writable) return Promise.resolve();
  return new Promise((resolve) => stream.write("", () => resolve()));
}
