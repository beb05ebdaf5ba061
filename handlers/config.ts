import { isIP } from "node:net";
import { z } from "zod";
import {
  COMMAND_SIGNING_ENV,
  type CommandSigning,
  commandSigningFrom,
} from "../common/agent-commands.js";
import { intFromEnv, loadEnv, NATS_ENV, secretFromFile } from "../common/config.js";
import {
  DEFAULT_HOST_EVENTS_MAX_BYTES,
  DEFAULT_HOST_EVENTS_WINDOW_MS,
  MAX_HOST_EVENTS_MAX_BYTES,
  MAX_HOST_EVENTS_WINDOW_MS,
  MIN_HOST_EVENTS_MAX_BYTES,
  MIN_HOST_EVENTS_WINDOW_MS,
} from "../common/host-event-streams.js";
import { type NatsClientSettings, natsSettingsFrom } from "../common/nats-config.js";
import type { MetricsSettings } from "./metrics/metrics-app.js";
import { loadNotifyConfig, type NotifyConfig } from "./notify/config.js";

/** The variables the handler reads, by name (the notify ones: PLAIN_VARIABLES in notify/config.ts). */
export const HandlerEnv = z.object({
  ...NATS_ENV,
  FLEETHEAL_MAX_EVENT_AGE_MS: intFromEnv({ min: 1_000, max: 86_400_000, default: 300_000 }),
  FLEETHEAL_COMMAND_TIMEOUT_MS: intFromEnv({ min: 1_000, max: 3_900_000, default: 60_000 }),
  FLEETHEAL_EVENTS_HOST_MAX_BYTES: intFromEnv({
    min: MIN_HOST_EVENTS_MAX_BYTES,
    max: MAX_HOST_EVENTS_MAX_BYTES,
    default: DEFAULT_HOST_EVENTS_MAX_BYTES,
  }),
  FLEETHEAL_EVENTS_HOST_WINDOW_MS: intFromEnv({
    min: MIN_HOST_EVENTS_WINDOW_MS,
    max: MAX_HOST_EVENTS_WINDOW_MS,
    default: DEFAULT_HOST_EVENTS_WINDOW_MS,
  }),
  ...COMMAND_SIGNING_ENV,
  // Off unless a port is set: a replica opens no socket of its own by default.
  FLEETHEAL_HANDLER_METRICS_PORT: z
    .string()
    .trim()
    .regex(/^\d+$/, "must be a whole number (0 picks a free port)")
    .transform(Number)
    .pipe(z.number().max(65_535, "must be at most 65535"))
    .optional(),
  FLEETHEAL_HANDLER_METRICS_HOST: z
    .string()
    .trim()
    .refine(
      (host) =>
        isIP(host) !== 0 || /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host),
      "must be an IP address or a host name",
    )
    .default("127.0.0.1"),
  FLEETHEAL_HANDLER_METRICS_TOKEN_FILE: z.string().min(1).max(4096).optional(),
});

/** A bearer token: what a scraper may put in a header, long enough not to be guessed. */
const MetricsToken = z
  .string()
  .min(16, "must be at least 16 characters")
  .max(1024, "must be at most 1024 characters")
  .regex(/^[\x21-\x7e]+$/, "must be printable ASCII without spaces");

/** Handler process settings, validated. */
export interface HandlerConfig {
  natsUrl: string;
  /** TLS, credentials, inbox prefix and replicas (FLEETHEAL_NATS_*, FLEETHEAL_JS_REPLICAS). */
  nats?: NatsClientSettings;
  maxEventAgeMs: number;
  commandTimeoutMs: number;
  /**
   * One host's share of the events stream: at most `hostEventsMaxBytes` of its events per
   * `hostEventsWindowMs`, the size and age of the ingest stream each host publishes into
   * (common/host-event-streams.ts). Applies to ingest streams created from then on.
   */
  hostEventsMaxBytes: number;
  hostEventsWindowMs: number;
  /** The key restart commands are signed with (none: unsigned), and their lifetime. */
  commandSigning: CommandSigning;
  /** Webhook notifications (FLEETHEAL_NOTIFY_*); absent when FLEETHEAL_NOTIFY_URLS is not set. */
  notify?: NotifyConfig;
  /** The Prometheus endpoint (FLEETHEAL_HANDLER_METRICS_*); absent when no port is set. */
  metrics?: MetricsSettings;
}

export function loadHandlerConfig(env: NodeJS.ProcessEnv = process.env): HandlerConfig {
  const e = loadEnv(HandlerEnv, env);
  return {
    natsUrl: e.FLEETHEAL_NATS_URL,
    nats: natsSettingsFrom(e),
    maxEventAgeMs: e.FLEETHEAL_MAX_EVENT_AGE_MS,
    commandTimeoutMs: e.FLEETHEAL_COMMAND_TIMEOUT_MS,
    hostEventsMaxBytes: e.FLEETHEAL_EVENTS_HOST_MAX_BYTES,
    hostEventsWindowMs: e.FLEETHEAL_EVENTS_HOST_WINDOW_MS,
    commandSigning: commandSigningFrom(e),
    notify: loadNotifyConfig(env),
    ...(e.FLEETHEAL_HANDLER_METRICS_PORT === undefined
      ? {}
      : {
          metrics: {
            port: e.FLEETHEAL_HANDLER_METRICS_PORT,
            host: e.FLEETHEAL_HANDLER_METRICS_HOST,
            ...metricsToken(e.FLEETHEAL_HANDLER_METRICS_TOKEN_FILE),
          },
        }),
  };
}

/** The metrics' bearer token from its file. */
function metricsToken(file: string | undefined): { token?: string } {
  if (file === undefined) return {};
  return { token: secretFromFile("FLEETHEAL_HANDLER_METRICS_TOKEN_FILE", file, MetricsToken) };
}
