import Fastify, { type FastifyInstance } from "fastify";
import { bearerCheck } from "../../common/bearer-token.js";
import type { Logger } from "../../common/logger.js";
import { RepeatLimiter } from "../../common/repeat-limiter.js";
import type { HandlerMetrics } from "./handler-metrics.js";

/** A client gets this long to send its whole request; one that trickles bytes is cut off. */
const REQUEST_TIMEOUT_MS = 10_000;
/** An idle keep-alive connection (a scraper between scrapes) is closed after this. */
const KEEP_ALIVE_TIMEOUT_MS = 5_000;

/** Where a replica serves its metrics (FLEETHEAL_HANDLER_METRICS_*). */
export interface MetricsSettings {
  /** 0 picks a free port, which the replica logs. */
  port: number;
  host: string;
  /** When set, `/metrics` needs `Authorization: Bearer <token>`. */
  token?: string | undefined;
}

/** What the metrics app serves. */
export interface MetricsAppDeps {
  metrics: Pick<HandlerMetrics, "render" | "contentType">;
  /** When set, `/metrics` needs it as a bearer token. */
  token?: string | undefined;
  log: Logger;
}

/**
 * The replica's HTTP surface: `GET /metrics` (and its `HEAD`) and nothing else, every other
 * request a 404. Requests have no body, so any body is refused; a request that is not complete
 * within 10 s is cut off. Refused scrapes (no token, a wrong one) are logged at most once a
 * minute, with how many there were.
 */
export function buildMetricsApp(deps: MetricsAppDeps): FastifyInstance {
  const app = Fastify({
    bodyLimit: 1024,
    requestTimeout: REQUEST_TIMEOUT_MS,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    // A stop closes idle keep-alive connections at once instead of waiting for them.
    forceCloseConnections: true,
    return503OnClosing: true,
  });
  const authorized = deps.token === undefined ? undefined : bearerCheck(deps.token);
  const refusals = new RepeatLimiter(60_000);
  app.get("/metrics", async (request, reply) => {
    if (authorized && !authorized(request.headers.authorization)) {
      const held = refusals.take();
      if (held !== undefined) {
        deps.log.warn(
          { client: request.ip, ...(held > 0 ? { alsoRefused: held } : {}) },
          "metrics: refused a scrape without the bearer token",
        );
      }
      return reply
        .code(401)
        .header("www-authenticate", 'Bearer realm="fleetheal-handler"')
        .type("text/plain; charset=utf-8")
        .send('send "Authorization: Bearer <token>" (FLEETHEAL_HANDLER_METRICS_TOKEN_FILE)\n');
    }
    const body = await deps.metrics.render();
    return reply.type(deps.metrics.contentType).header("cache-control", "no-store").send(body);
  });
  return app;
}

/** The metrics server of a running replica. */
export interface MetricsServer {
  /** The address it listens on, as `http://host:port`. */
  readonly url: string;
  /** Stops listening and closes open connections; a scrape in progress is cut off. */
  stop(): Promise<void>;
}

/** Starts {@link buildMetricsApp} on the settings' host and port, and logs where. */
export async function startMetricsServer(
  settings: MetricsSettings,
  deps: Omit<MetricsAppDeps, "token">,
): Promise<MetricsServer> {
  const app = buildMetricsApp({ ...deps, token: settings.token });
  await app.listen({ port: settings.port, host: settings.host });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : settings.port;
  const host = settings.host.includes(":") ? `[${settings.host}]` : settings.host;
  const url = `http://${host}:${port}/metrics`;
  deps.log.info(
    { url, token: settings.token === undefined ? "none" : "required" },
    "handler metrics listening",
  );
  if (settings.token === undefined && !isLoopback(settings.host)) {
    deps.log.warn(
      { host: settings.host },
      "handler metrics are served beyond loopback without a token: set FLEETHEAL_HANDLER_METRICS_TOKEN_FILE",
    );
  }
  return { url, stop: () => app.close() };
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}
