import { logCommandSigning } from "../common/agent-commands.js";
import type { Logger } from "../common/logger.js";
import { startOnNats, trackConnected } from "../common/nats-connection.js";
import { watchPolicy } from "../policy/policy-source.js";
import type { GatewayConfig } from "./config.js";
import { buildApp } from "./http/app.js";
import { GatewayMetrics } from "./http/metrics.js";
import { countOpenBreakers, followBreakers } from "./nats/breakers-sync.js";
import { NatsHistoryCounts } from "./nats/history-counts.js";
import { NatsEventLog } from "./nats/nats-event-log.js";
import { NatsFleetControl } from "./nats/nats-fleet-control.js";
import type { FleetHostsAdmin } from "./nats/ports.js";
import { syncViewFromKv } from "./nats/view-sync.js";
import { FleetView } from "./view/fleet-view.js";
import { HealthCache } from "./view/health-cache.js";

export interface RunningGateway {
  /** The address it listens on, e.g. http://127.0.0.1:8080. */
  url: string;
  stop(): Promise<void>;
}

/**
 * Connects to NATS, builds the fleet view and serves HTTP. All NATS wiring is here. `hosts` is
 * given by `fleetheal up`, which runs the fleet's NATS server and issues the hosts' credentials.
 */
export function runGateway(
  config: GatewayConfig,
  log: Logger,
  hosts?: FleetHostsAdmin,
): Promise<RunningGateway> {
  return startOnNats(
    { servers: config.natsUrl, name: "fleetheal-gateway", log, settings: config.nats },
    async (nc, fjs) => {
      logCommandSigning(log, config.commandSigning);
      const staleness = {
        staleAfterHeartbeats: config.staleAfterHeartbeats,
        downAfterHeartbeats: config.downAfterHeartbeats,
      };
      const view = new FleetView();
      // The same view of the policy as the handlers (an invalid stored one is rejected), which
      // /health and /metrics report.
      await fjs.records.ready();
      const policy = await watchPolicy(fjs.config, log);
      const health = new HealthCache(view, staleness, policy.state);
      const metrics = new GatewayMetrics(health, Date.now, view);
      const stopSync = await syncViewFromKv(fjs, view, log, (source) =>
        metrics.rejectedMessage(source),
      ).catch(async (error: unknown) => {
        await policy.stop();
        throw error;
      });
      const breakers = await followBreakers(fjs.breakers, log, () =>
        metrics.rejectedMessage("breaker"),
      ).catch(async (error: unknown) => {
        await stopSync();
        await policy.stop();
        throw error;
      });
      metrics.watchBreakers(() =>
        countOpenBreakers(
          breakers.entries.values(),
          Date.now(),
          policy.state().policy,
          view.list().length > 1,
        ),
      );
      const events = new NatsEventLog({
        js: fjs.js,
        jsm: fjs.jsm,
        log,
        onRejected: () => metrics.rejectedMessage("event"),
      });
      const stopMetricsFeed = events.subscribe({}, (record) => metrics.observe(record, Date.now()));
      const cleanup = async () => {
        stopMetricsFeed();
        await events.stop();
        await breakers.stop();
        await stopSync();
        await policy.stop();
      };
      try {
        await events.start();
        const app = await buildApp({
          view,
          staleness,
          natsConnected: trackConnected(nc),
          control: new NatsFleetControl({
            nc,
            fjs,
            commandTimeoutMs: config.commandTimeoutMs,
            commandSigning: config.commandSigning,
            log,
            restarts: metrics,
          }),
          policy: policy.state,
          ...(hosts ? { hosts } : {}),
          events,
          feed: events,
          history: new NatsHistoryCounts({ js: fjs.js, jsm: fjs.jsm, log }),
          health,
          metrics,
          tokens: {
            ...(config.adminToken ? { adminToken: config.adminToken } : {}),
            ...(config.readToken ? { readToken: config.readToken } : {}),
          },
          corsOrigins: config.corsOrigins,
          actionsPerMinute: config.actionsPerMinute,
          maxStreams: config.maxStreams,
          maxStreamsPerClient: config.maxStreamsPerClient,
          trustProxy: config.trustProxy,
          logger: log,
        });
        const address = await app.listen({ port: config.port, host: config.host });
        const url = address.replace("0.0.0.0", "127.0.0.1");
        log.info(
          {
            url,
            actions: config.adminToken ? "enabled" : "disabled (no admin token)",
            reads: config.readToken ? "token required" : "open",
          },
          "gateway listening",
        );
        return {
          url,
          async stop() {
            await app.close();
            await cleanup();
          },
        };
      } catch (error) {
        await cleanup();
        throw error;
      }
    },
  );
}
