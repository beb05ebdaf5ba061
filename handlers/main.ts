import { hostname } from "node:os";
import type { NatsConnection } from "@nats-io/nats-core";
import { NatsConnectionImpl } from "@nats-io/nats-core/internal";
import { logCommandSigning } from "../common/agent-commands.js";
import { ConfigError, describeError } from "../common/errors.js";
import { jetStreamHostStreams } from "../common/host-event-streams.js";
import type { FleetJetStream } from "../common/jetstream-resources.js";
import type { Logger } from "../common/logger.js";
import { startOnNats } from "../common/nats-connection.js";
import { ensureReaderMirrors } from "../common/reader-mirrors.js";
import { watchPolicy } from "../policy/policy-source.js";
import { autoMonitorHandler } from "./auto-monitor.js";
import type { HandlerConfig } from "./config.js";
import { dependentsHandler } from "./dependents.js";
import { dependentsRecreatedHandler } from "./dependents-recreated.js";
import { dependentsStartHandler } from "./dependents-start.js";
import { healHandler } from "./heal.js";
import { kvHostKeys, startHostEventKeeper } from "./host-event-keeper.js";
import { HandlerMetrics } from "./metrics/handler-metrics.js";
import { cachedLevels, jetStreamLevels } from "./metrics/jetstream-levels.js";
import {
  type MetricsServer,
  type MetricsSettings,
  startMetricsServer,
} from "./metrics/metrics-app.js";
import { WebhookNotifier } from "./notify/notifier.js";
import { notifyHandler } from "./notify/notify.js";
import { durableName } from "./runtime/durable-consumer.js";
import { HandlerRuntime } from "./runtime/handler-runtime.js";
import { serveHandlerStats } from "./stats-service.js";

/** Delay before a restart that could not reach its agent is tried again. */
const AGENT_RETRY_DELAY_MS = 2_000;

export interface RunningHandlers {
  runtime: HandlerRuntime;
  stop(): Promise<void>;
}

/** Starts one handler replica with every built-in handler bound. */
export function runHandlers(config: HandlerConfig, log: Logger): Promise<RunningHandlers> {
  const name = `fleetheal-handler-${hostname()}-${process.pid}`;
  const nats = { servers: config.natsUrl, name, log, settings: config.nats };
  return startOnNats(nats, async (nc, fjs) => {
    // nats.js builds two errors with stack traces for every request (a KV read or write, a
    // JetStream publish, a command), only to enrich a failure's stack; fleetheal reports
    // failures by their message and never prints a stack, and the restart path makes several
    // requests per event, so that work would be pure overhead there (docs/benchmarks/PERFORMANCE.md,
    // "Handler throughput and storm"). nats.js reads the option on every request, so it applies
    // from here on.
    if (nc instanceof NatsConnectionImpl) nc.options.noAsyncTraces = true;
    const metrics = new HandlerMetrics({
      processMetrics: config.metrics !== undefined,
      ...(config.metrics && {
        levels: cachedLevels(
          jetStreamLevels(fjs.jsm, () => [...metrics.stats.keys()].map(durableName)),
          { log },
        ),
      }),
    });
    // First, so that a port already taken stops the replica before it takes any message.
    const server = config.metrics && (await serveMetrics(config.metrics, metrics, log));
    try {
      return await startReplica({ config, log, name, nc, fjs, metrics }, server);
    } catch (error) {
      await server?.stop();
      throw error;
    }
  });
}

/** What a replica is started with. */
interface Replica {
  config: HandlerConfig;
  log: Logger;
  /** The NATS connection's name, which names the replica. */
  name: string;
  nc: NatsConnection;
  fjs: FleetJetStream;
  metrics: HandlerMetrics;
}

/** Everything of a replica but its metrics server, which is already listening if set. */
async function startReplica(
  { config, log, name, nc, fjs, metrics }: Replica,
  server: MetricsServer | undefined,
): Promise<RunningHandlers> {
  await fjs.records.ready();
  logCommandSigning(log, config.commandSigning);
  const policy = await watchPolicy(fjs.config, log);
  await keepReaderMirrors(nc, log, config.nats?.jsReplicas);
  const hostStreams = await startHostEventKeeper({
    keys: kvHostKeys(fjs.hosts),
    api: jetStreamHostStreams(fjs.jsm),
    settings: {
      hostMaxBytes: config.hostEventsMaxBytes,
      hostWindowMs: config.hostEventsWindowMs,
    },
    log,
  });
  const runtime = new HandlerRuntime({
    nc,
    fjs,
    log,
    commandTimeoutMs: config.commandTimeoutMs,
    commandSigning: config.commandSigning,
    startBackMs: config.maxEventAgeMs,
    policy: () => policy.current(),
    notifier: config.notify && new WebhookNotifier({ timeoutMs: config.notify.timeoutMs }),
    metrics,
  });
  await runtime.bind(
    healHandler({
      maxEventAgeMs: config.maxEventAgeMs,
      retryDelayMs: AGENT_RETRY_DELAY_MS,
    }),
  );
  await runtime.bind(autoMonitorHandler());
  const dependents = { retryDelayMs: AGENT_RETRY_DELAY_MS };
  await runtime.bind(dependentsHandler(dependents));
  await runtime.bind(dependentsStartHandler(dependents));
  await runtime.bind(dependentsRecreatedHandler(dependents));
  if (config.notify) {
    await runtime.bind(notifyHandler(config.notify));
    const { targets, events } = config.notify;
    log.info({ targets: targets.map((t) => t.label), events }, "notifications enabled");
    // autoheal's webhook variables that are set but not used, and why (docs/MIGRATING.md).
    for (const note of config.notify.notes) log.warn(note);
  }
  const stats = await serveHandlerStats(nc, name, runtime);
  log.info("handler replica started");
  return {
    runtime,
    async stop() {
      // Scrapes end first: they read from NATS, which the replica is about to leave.
      await server?.stop();
      await stats.stop();
      await runtime.stop();
      await policy.stop();
      await hostStreams.stop();
    },
  };
}

/** Starts the metrics server; a port it cannot take is a configuration error, named. */
async function serveMetrics(
  settings: MetricsSettings,
  metrics: HandlerMetrics,
  log: Logger,
): Promise<MetricsServer> {
  try {
    return await startMetricsServer(settings, { metrics, log });
  } catch (error) {
    throw new ConfigError(
      `invalid configuration:\n  FLEETHEAL_HANDLER_METRICS_PORT=${settings.port}: cannot listen on ${settings.host} (${describeError(error)})`,
      { cause: error },
    );
  }
}

/**
 * The readers' mirrors are the handler's to create, as the fleet's streams are: it is the role
 * that may. A failure is logged and healing goes on; the next replica to start tries again.
 */
async function keepReaderMirrors(
  nc: Parameters<typeof ensureReaderMirrors>[0],
  log: Logger,
  replicas: number | undefined,
): Promise<void> {
  try {
    const outcome = await ensureReaderMirrors(nc, log, replicas);
    if (outcome === "not-allowed") {
      log.warn(
        "this NATS user may not reach the READER account's JetStream API; readers get no mirrors until a handler that may starts (fleetheal nats-auth gives the handler that right)",
      );
    }
  } catch (error) {
    log.error({ err: describeError(error) }, "could not create the readers' mirrors");
  }
}
