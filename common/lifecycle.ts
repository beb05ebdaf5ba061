import { ConfigError, describeError } from "./errors.js";
import type { Logger } from "./logger.js";

/** Something running that can be stopped gracefully. */
export interface Stoppable {
  stop(): Promise<void>;
}

/**
 * Starts a component and keeps the process alive until SIGTERM or SIGINT, then stops it
 * gracefully (drain NATS, close HTTP, flush logs). A second signal, or a stop that takes longer
 * than `stopTimeoutMs`, exits at once. Configuration errors exit with code 2 and a readable
 * message; other start failures with code 1.
 *
 * The signal handlers are installed before starting: a signal that arrives while the component
 * is still starting stops it as soon as it has started, instead of killing it half-way.
 */
export async function runUntilSignal(
  log: Logger,
  start: () => Promise<Stoppable>,
  stopTimeoutMs = 20_000,
): Promise<void> {
  let running: Stoppable | undefined;
  let stopping = false;
  const stop = () => {
    const timer = setTimeout(() => {
      log.error({ stopTimeoutMs }, "graceful shutdown timed out");
      exit(log, 1);
    }, stopTimeoutMs);
    timer.unref();
    (running as Stoppable).stop().then(
      () => {
        log.info("stopped");
        exit(log, 0);
      },
      (error: unknown) => {
        log.error({ err: describeError(error) }, "error while stopping");
        exit(log, 1);
      },
    );
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, "second signal: exiting now");
      exit(log, 1);
    }
    stopping = true;
    log.info({ signal }, "shutting down");
    if (running) stop();
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  try {
    running = await start();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`fleetheal: ${error.message}\n`);
      process.exit(2);
    }
    log.fatal({ err: describeError(error) }, "failed to start");
    exit(log, 1);
  }
  if (stopping) stop();
}

function exit(log: Logger, code: number): never {
  log.flush();
  process.exit(code);
}
