import { type Logger, pino } from "pino";

export type { Logger } from "pino";

const LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

/**
 * Structured JSON logs on stdout, one line per record. The level comes from
 * FLEETHEAL_LOG_LEVEL (default `info`); an unknown level falls back to `info` with a warning
 * rather than refusing to start, because logging must never be the reason a healer is down.
 */
export function createLogger(component: string, env: NodeJS.ProcessEnv = process.env): Logger {
  const wanted = env.FLEETHEAL_LOG_LEVEL ?? "info";
  const level = (LEVELS as readonly string[]).includes(wanted) ? wanted : "info";
  const logger = pino({
    level,
    base: { component, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    redact: {
      paths: ["token", "*.token", "password", "*.password", "authorization", "*.authorization"],
      censor: "[redacted]",
    },
  });
  if (level !== wanted) logger.warn({ wanted }, "unknown FLEETHEAL_LOG_LEVEL, using info");
  return logger;
}
