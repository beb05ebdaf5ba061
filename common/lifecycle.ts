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
 */
export async function runUntilSignal(
  log: Logger,
  start: () => Promise<Stoppable>,
  stopTimeoutMs = 20_000,
): Promise<void> {
  let running: Stoppable;
  try {
    running = await start();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`fleetheal: ${error.message}\n`);
      process.exit(2);
    }
    log.fatal({ err: describeError(error) }, "failed to start");
    log.flush();
    process.exit(1);
  }
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, "shutting down");
    const timer = setTimeout(() => {
      log.error({ stopTimeoutMs }, "graceful shutdown timed out");
      log.flush();
      process.exit(1);
    }, stopTimeoutMs);
    timer.unref();
    running.stop().then(
      () => {
        log.info("stopped");
        log.flush();
        process.exit(0);
      },
      (error: unknown) => {
        log.error({ err: describeError(error) }, "error while stopping");
        log.flush();
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
}
