import { openFleetJetStream } from "../common/jetstream-resources.js";
import type { Logger } from "../common/logger.js";
import { connectNats, drainOrClose, trackConnected } from "../common/nats-connection.js";
import { buildApp } from "./app.js";
import type { GatewayConfig } from "./config.js";
import { FleetView } from "./fleet-view.js";
import { syncViewFromKv } from "./view-sync.js";

export interface RunningGateway {
  /** The address it listens on, e.g. http://127.0.0.1:8080. */
  url: string;
  stop(): Promise<void>;
}

/** Connects to NATS, builds the fleet view and serves HTTP. */
export async function runGateway(config: GatewayConfig, log: Logger): Promise<RunningGateway> {
  const nc = await connectNats({ servers: config.natsUrl, name: "fleetheal-gateway", log });
  try {
    const fjs = await openFleetJetStream(nc);
    const view = new FleetView();
    const stopSync = await syncViewFromKv(fjs.hosts, view, log);
    const app = buildApp({
      view,
      staleness: {
        staleAfterHeartbeats: config.staleAfterHeartbeats,
        downAfterHeartbeats: config.downAfterHeartbeats,
      },
      natsConnected: trackConnected(nc),
      logger: log,
    });
    const address = await app.listen({ port: config.port, host: config.host });
    const shown = address.replace("0.0.0.0", "127.0.0.1");
    log.info({ url: shown }, "gateway listening");
    return {
      url: shown,
      async stop() {
        await app.close();
        await stopSync();
        await drainOrClose(nc, log);
      },
    };
  } catch (error) {
    await nc.close();
    throw error;
  }
}
