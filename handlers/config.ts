import { z } from "zod";
import { intFromEnv, loadEnv, NATS_URL_ENV } from "../common/config.js";

const HandlerEnv = z.object({
  ...NATS_URL_ENV,
  FLEETHEAL_HEAL_COOLDOWN_MS: intFromEnv({ min: 0, max: 86_400_000, default: 10_000 }),
  FLEETHEAL_MAX_EVENT_AGE_MS: intFromEnv({ min: 1_000, max: 86_400_000, default: 300_000 }),
  FLEETHEAL_COMMAND_TIMEOUT_MS: intFromEnv({ min: 1_000, max: 3_900_000, default: 60_000 }),
});

/** Handler process settings, validated. */
export interface HandlerConfig {
  natsUrl: string;
  healCooldownMs: number;
  maxEventAgeMs: number;
  commandTimeoutMs: number;
}

export function loadHandlerConfig(env: NodeJS.ProcessEnv = process.env): HandlerConfig {
  const e = loadEnv(HandlerEnv, env);
  return {
    natsUrl: e.FLEETHEAL_NATS_URL,
    healCooldownMs: e.FLEETHEAL_HEAL_COOLDOWN_MS,
    maxEventAgeMs: e.FLEETHEAL_MAX_EVENT_AGE_MS,
    commandTimeoutMs: e.FLEETHEAL_COMMAND_TIMEOUT_MS,
  };
}
