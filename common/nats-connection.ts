import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { type FleetJetStream, openFleetJetStream } from "./jetstream-resources.js";
import type { Logger } from "./logger.js";

/** Options for {@link connectNats}. */
export interface NatsConnectOptions {
  /** Comma-separated server URLs. */
  servers: string;
  /** Connection name, visible in the server's monitoring (`/connz`). */
  name: string;
  log: Logger;
}

/** Tracks whether a connection is currently up; nats.js only reports changes. */
export function trackConnected(nc: NatsConnection): () => boolean {
  let connected = !nc.isClosed();
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === "disconnect") connected = false;
      else if (status.type === "reconnect") connected = true;
    }
    connected = false;
  })();
  return () => connected && !nc.isClosed();
}

/**
 * Connects to NATS and keeps reconnecting forever: a healer that gives up reconnecting is a
 * healer that silently stops healing. Status changes are logged, because a disconnect is the
 * first thing an operator wants to see when healing stalls.
 */
export async function connectNats(options: NatsConnectOptions): Promise<NatsConnection> {
  const nc = await connect({
    servers: options.servers.split(",").map((s) => s.trim()),
    name: options.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    waitOnFirstConnect: true,
    pingInterval: 10_000,
  });
  options.log.info({ server: nc.getServer() }, "connected to NATS");
  void logStatus(nc, options.log);
  return nc;
}

async function logStatus(nc: NatsConnection, log: Logger): Promise<void> {
  for await (const status of nc.status()) {
    switch (status.type) {
      case "disconnect":
        log.warn({ server: status.server }, "disconnected from NATS");
        break;
      case "reconnect":
        log.info({ server: status.server }, "reconnected to NATS");
        break;
      case "error":
        log.error({ err: status.error }, "NATS connection error");
        break;
      default:
        log.debug({ status: status.type }, "NATS status");
    }
  }
}

/**
 * Drains a connection (finish in-flight work, flush) and falls back to closing it when draining
 * is impossible, for example because the server is already gone.
 */
export async function drainOrClose(nc: NatsConnection, log: Logger): Promise<void> {
  if (nc.isClosed()) return;
  try {
    await nc.drain();
  } catch (error) {
    log.warn({ err: (error as Error).message }, "NATS drain failed; closing");
    await nc.close().catch(() => {});
  }
}

/**
 * Connects, opens fleetheal's JetStream resources and starts a component on them. Stopping the
 * returned component stops it first and then drains the connection; if starting fails, the
 * connection is closed.
 */
export async function startOnNats<T extends { stop(): Promise<void> }>(
  options: NatsConnectOptions,
  start: (nc: NatsConnection, fjs: FleetJetStream) => Promise<T>,
): Promise<T> {
  const nc = await connectNats(options);
  try {
    const component = await start(nc, await openFleetJetStream(nc));
    const stopComponent = component.stop.bind(component);
    return {
      ...component,
      async stop() {
        await stopComponent();
        await drainOrClose(nc, options.log);
      },
    };
  } catch (error) {
    await nc.close();
    throw error;
  }
}
