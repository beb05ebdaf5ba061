import { type DestinationStream, type Logger, type LoggerOptions, pino } from "pino";
import { z } from "zod";
import { loadEnv } from "./config.js";

export type { Logger } from "pino";

const LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

/** The variable every role reads for its log level. */
export const LOG_ENV = {
  FLEETHEAL_LOG_LEVEL: z
    .enum(LEVELS, { message: `must be one of ${LEVELS.join(", ")}` })
    .default("info"),
};

/**
 * Structured JSON logs on stdout, one line per record. The level comes from
 * FLEETHEAL_LOG_LEVEL (default `info`, also when empty). A bad level is a ConfigError (exit 2,
 * naming the variable) like every other bad setting: a typo such as `debgu` would otherwise hide
 * the very logs the operator asked for. `destination` is stdout unless given (tests).
 */
export function createLogger(
  component: string,
  env: NodeJS.ProcessEnv = process.env,
  destination?: DestinationStream,
): Logger {
  const { FLEETHEAL_LOG_LEVEL: level } = loadEnv(z.object(LOG_ENV), env);
  const options: LoggerOptions = {
    level,
    base: { component, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    redact: {
      paths: ["token", "*.token", "password", "*.password", "authorization", "*.authorization"],
      censor: "[redacted]",
    },
  };
  return destination === undefined ? pino(options) : pino(options, destination);
}
