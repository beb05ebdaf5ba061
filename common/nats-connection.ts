import {
  AuthorizationError,
  type ConnectionOptions,
  type NatsConnection,
  TimeoutError,
  UserAuthenticationExpiredError,
} from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { ConfigError, describeError } from "./errors.js";
import { type FleetJetStream, openFleetJetStream } from "./jetstream-resources.js";
import type { Logger } from "./logger.js";
import { type NatsClientSettings, PLAIN_NATS } from "./nats-config.js";
import { probeNatsTls } from "./nats-tls-probe.js";
import { withoutCredentials } from "./url-credentials.js";

/** Options for {@link connectNats}. */
export interface NatsConnectOptions {
  /** Comma-separated server URLs. */
  servers: string;
  /** Connection name, visible in the server's monitoring (`/connz`). */
  name: string;
  log: Logger;
  /** TLS, credentials, inbox prefix and replicas; plain NATS when absent. */
  settings?: NatsClientSettings | undefined;
}

/**
 * The nats.js options for the servers, name and settings: what every fleetheal connection,
 * long-running or one-shot (`fleetheal release`), uses.
 */
export function natsConnectionOptions(
  servers: string,
  name: string,
  settings: NatsClientSettings = PLAIN_NATS,
): ConnectionOptions {
  return {
    servers: servers
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s !== ""),
    name,
    ...(settings.tls === undefined ? {} : { tls: { ...settings.tls } }),
    ...(settings.authenticator === undefined ? {} : { authenticator: settings.authenticator }),
    ...(settings.inboxPrefix === undefined ? {} : { inboxPrefix: settings.inboxPrefix }),
  };
}

/**
 * Why a connection attempt can never succeed without an operator changing something: the server
 * refused the credentials, or TLS failed (certificate not trusted, client certificate missing or
 * refused, TLS on one side only). Undefined for failures that may clear up by themselves, such as
 * a server that is not up yet.
 */
export function permanentNatsFailure(error: unknown): string | undefined {
  const text = describeError(error);
  if (
    error instanceof AuthorizationError ||
    error instanceof UserAuthenticationExpiredError ||
    /authorization violation|authentication expired|authentication timeout/i.test(text)
  ) {
    return `NATS refused the credentials (${text}); check FLEETHEAL_NATS_USER and FLEETHEAL_NATS_PASSWORD(_FILE), FLEETHEAL_NATS_TOKEN(_FILE) or FLEETHEAL_NATS_CREDS`;
  }
  const code = String((error as { code?: unknown } | undefined)?.code ?? "");
  const cause = (error as { cause?: { code?: unknown; message?: unknown } } | undefined)?.cause;
  const causeCode = String(cause?.code ?? "");
  // A server that goes away mid-handshake (a restart) is not a configuration problem.
  if (
    /^(ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH)$/.test(code || causeCode)
  ) {
    return undefined;
  }
  const tlsCode = /^(ERR_TLS_|ERR_SSL_|UNABLE_TO_|SELF_SIGNED|DEPTH_ZERO|CERT_|HOSTNAME_MISMATCH)/;
  const tls = tlsCode.test(code) ? code : tlsCode.test(causeCode) ? causeCode : undefined;
  if (tls !== undefined || /certificate|\bssl\b|\btls\b|'tls'|handshake/i.test(text)) {
    return `TLS with NATS failed: ${tlsReason(tls, text)}; check FLEETHEAL_NATS_TLS_CA (the CA that signed the server's certificate) and FLEETHEAL_NATS_TLS_CERT/FLEETHEAL_NATS_TLS_KEY (a client certificate the server trusts)`;
  }
  return undefined;
}

/** What a TLS failure means, in words, followed by the error itself. */
function tlsReason(code: string | undefined, text: string): string {
  // OpenSSL's messages carry its internals: "8060…:error:0A000412:SSL routines:fn:reason:file:line…"
  const openssl = /^[0-9A-F]+:error:[0-9A-F]+:[^:]*:[^:]*:([^:]+):/.exec(text);
  const detail = openssl?.[1] ? `${openssl[1]} (${code ?? "TLS"})` : text;
  if (code === undefined) return detail;
  if (/ALERT_(BAD_CERTIFICATE|CERTIFICATE_REQUIRED|CERTIFICATE_UNKNOWN|UNKNOWN_CA)/.test(code)) {
    return `the server refused the client certificate: none was given, or it is not signed by a CA the server trusts [${detail}]`;
  }
  if (/^(UNABLE_TO_|SELF_SIGNED|DEPTH_ZERO)/.test(code)) {
    return `the server's certificate is not signed by a trusted CA (FLEETHEAL_NATS_TLS_CA, or the system CAs when it is not set) [${detail}]`;
  }
  if (/ALTNAME|HOSTNAME/.test(code)) {
    return `the server's certificate is not for the host name in FLEETHEAL_NATS_URL [${detail}]`;
  }
  if (/EXPIRED|NOT_YET_VALID/.test(code)) return `a certificate is out of its validity [${detail}]`;
  return detail;
}

const FIRST_CONNECT_RETRY_MS = { initial: 250, max: 5_000 };

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
 *
 * Until the first connection, a server that cannot be reached is waited for (and logged), so a
 * role may start before NATS. A refusal that only an operator can fix (wrong credentials, TLS
 * that fails) is a {@link ConfigError} instead, so the process exits with code 2 and says why
 * rather than retrying in silence.
 */
export async function connectNats(options: NatsConnectOptions): Promise<NatsConnection> {
  const base = natsConnectionOptions(options.servers, options.name, options.settings);
  let waitMs = FIRST_CONNECT_RETRY_MS.initial;
  for (let attempt = 1; ; attempt++) {
    try {
      const nc = await connect({
        ...base,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        pingInterval: 10_000,
        timeout: 5_000,
      });
      options.log.info(
        {
          server: nc.getServer(),
          tls: options.settings?.tls !== undefined,
          auth: options.settings?.auth?.method ?? "none",
        },
        "connected to NATS",
      );
      void logStatus(nc, options.log);
      return nc;
    } catch (error) {
      const permanent = permanentNatsFailure(await explainFailure(error, base, options.settings));
      if (permanent !== undefined) {
        options.log.error(
          { servers: withoutCredentials(options.servers), err: describeError(error) },
          permanent,
        );
        throw new ConfigError(
          `cannot connect to NATS at ${withoutCredentials(options.servers)}: ${permanent}`,
          {
            cause: error,
          },
        );
      }
      // The first failure and then every tenth, so a long wait is visible but not noisy.
      if (attempt === 1 || attempt % 10 === 0) {
        options.log.warn(
          { servers: withoutCredentials(options.servers), attempt, err: describeError(error) },
          "NATS is not reachable yet; retrying",
        );
      }
      await new Promise((resolve) => setTimeout(resolve, waitMs));
      waitMs = Math.min(waitMs * 2, FIRST_CONNECT_RETRY_MS.max);
    }
  }
}

/**
 * A refused client certificate shows up in nats.js as a plain timeout; a probe of the servers
 * finds the TLS error behind it. Other failures are returned as they are.
 */
export async function explainFailure(
  error: unknown,
  base: ConnectionOptions,
  settings: NatsClientSettings | undefined,
): Promise<unknown> {
  if (settings?.tls === undefined || !(error instanceof TimeoutError)) return error;
  const servers = Array.isArray(base.servers) ? base.servers : [base.servers ?? ""];
  const found = await Promise.all(servers.map((s) => probeNatsTls(s, settings.tls ?? {})));
  return found.find((e) => e !== undefined) ?? error;
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
        log.error(
          { err: describeError(status.error), hint: permanentNatsFailure(status.error) },
          "NATS connection error",
        );
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
 * Connects and starts a component on the connection. Stopping the returned component stops it
 * first and then drains the connection; if starting fails, the connection is closed.
 */
export async function runOnNats<T extends { stop(): Promise<void> }>(
  options: NatsConnectOptions,
  start: (nc: NatsConnection) => Promise<T>,
): Promise<T> {
  const nc = await connectNats(options);
  try {
    const component = await start(nc);
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

/** {@link runOnNats}, with fleetheal's JetStream resources opened (created if missing) first. */
export function startOnNats<T extends { stop(): Promise<void> }>(
  options: NatsConnectOptions,
  start: (nc: NatsConnection, fjs: FleetJetStream) => Promise<T>,
): Promise<T> {
  return runOnNats(options, async (nc) => {
    const fjs = await openFleetJetStream(
      nc,
      undefined,
      options.settings?.jsReplicas ?? PLAIN_NATS.jsReplicas,
      { log: options.log },
    );
    return start(nc, fjs);
  });
}
