import { hostname } from "node:os";
import { openFleetJetStream } from "../common/jetstream-resources.js";
import type { Logger } from "../common/logger.js";
import { connectNats, drainOrClose } from "../common/nats-connection.js";
import { autoMonitorHandler } from "./auto-monitor.js";
import type { HandlerConfig } from "./config.js";
import { healHandler } from "./heal.js";
import { HandlerRuntime } from "./runtime.js";

export interface RunningHandlers {
  runtime: HandlerRuntime;
  stop(): Promise<void>;
}

/** Starts one handler replica with every built-in handler bound. */
export async function runHandlers(config: HandlerConfig, log: Logger): Promise<RunningHandlers> {
  const nc = await connectNats({
    servers: config.natsUrl,
    name: `fleetheal-handler-${hostname()}-${process.pid}`,
    log,
  });
  try {
    const fjs = await openFleetJetStream(nc);
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
        retryDelayMs: 2_000,
      }),
    );
    await runtime.bind(autoMonitorHandler());
    log.info("handler replica started");
    return {
      runtime,
      async stop() {
        await runtime.stop();
        await drainOrClose(nc, log);
      },
    };
  } catch (error) {
    await nc.close();
    throw error;
  }
}
