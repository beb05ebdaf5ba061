import { ConfigError, describeError } from "./errors.js";
import type { Logger } from "./logger.js";

/** How long a role has to stop gracefully before it exits anyway (exit code 1). */
export const STOP_TIMEOUT_MS = 20_000;

/** Something running that can be stopped gracefully. */
export interface Stoppable {
  stop(): Promise<void>;
  /**
   * Ends at once, synchronously, what must not outlive this process (a child server): called
   * when the process exits without a graceful stop (stop timeout, second signal, crash). Must
   * not throw, and must be bounded.
   */
  abandon?(): void;
}

/**
 * Starts a component and keeps the process alive until SIGTERM or SIGINT, then stops it
 * gracefully (drain NATS, close HTTP, flush logs). A second signal, or a stop that takes longer
 * than `stopTimeoutMs`, exits at once. Configuration errors exit with code 2 and a readable
 * message; other start failures with code 1.
 *
 * The signal handlers are installed before starting: a signal that arrives while the component
 * is still starting stops it as soon as it has started, instead of killing it half-way. However
 * the process exits (the paths above, or an uncaught error), the component's `abandon` runs
 * first, so that no child of it is left behind.
 */
export async function runUntilSignal(
  log: Logger,
  start: () => Promise<Stoppable>,
  stopTimeoutMs = STOP_TIMEOUT_MS,
): Promise<void> {
  let running: Stoppable | undefined;
  let stopping = false;
  // 'exit' listeners run on process.exit and after an uncaught exception, synchronously; after
  // a graceful stop there is nothing left for abandon to end.
  process.on("exit", () => abandon(log, running));
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

/**
 * Whether `work` settled within `ms`; it rejects if `work` does. What is still running then is
 * the caller's to abandon: this only stops waiting for it.
 */
export async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(0, ms));
  });
  try {
    return await Promise.race([work.then(() => true as const), late]);
  } finally {
    clearTimeout(timer);
  }
}

function abandon(log: Logger, running: Stoppable | undefined): void {
  try {
    running?.abandon?.();
  } catch (error) {
    log.error({ err: describeError(error) }, "could not end what the process started");
  }
}

function exit(log: Logger, code: number): never {
  log.flush();
  process.exit(code);
}
