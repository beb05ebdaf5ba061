import type { Logger } from "../common/logger.js";
import { startOnNats, trackConnected } from "../common/nats-connection.js";
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
export function runGateway(config: GatewayConfig, log: Logger): Promise<RunningGateway> {
  return startOnNats(
    { servers: config.natsUrl, name: "fleetheal-gateway", log },
    async (nc, fjs) => {
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
      try {
        const address = await app.listen({ port: config.port, host: config.host });
        const url = address.replace("0.0.0.0", "127.0.0.1");
        log.info({ url }, "gateway listening");
        return {
          url,
          async stop() {
            await app.close();
            await stopSync();
          },
        };
      } catch (error) {
        await stopSync();
        throw error;
      }
    },
  );
}
