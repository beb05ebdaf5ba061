import { hostname } from "node:os";
import type { Logger } from "../common/logger.js";
import { startOnNats } from "../common/nats-connection.js";
import { autoMonitorHandler } from "./auto-monitor.js";
import type { HandlerConfig } from "./config.js";
import { healHandler } from "./heal.js";
import { HandlerRuntime } from "./runtime.js";

/** Delay before a restart that could not reach its agent is tried again. */
const AGENT_RETRY_DELAY_MS = 2_000;

export interface RunningHandlers {
  runtime: HandlerRuntime;
  stop(): Promise<void>;
}

/** Starts one handler replica with every built-in handler bound. */
export function runHandlers(config: HandlerConfig, log: Logger): Promise<RunningHandlers> {
  const name = `fleetheal-handler-${hostname()}-${process.pid}`;
  return startOnNats({ servers: config.natsUrl, name, log }, async (nc, fjs) => {
    const runtime = new HandlerRuntime({
      nc,
      fjs,
      log,
      commandTimeoutMs: config.commandTimeoutMs,
      startBackMs: config.maxEventAgeMs,
    });
    await runtime.bind(
      healHandler({
        cooldownMs: config.healCooldownMs,
        maxEventAgeMs: config.maxEventAgeMs,
        retryDelayMs: AGENT_RETRY_DELAY_MS,
      }),
    );
    await runtime.bind(autoMonitorHandler());
    log.info("handler replica started");
    return { runtime, stop: () => runtime.stop() };
  });
}
