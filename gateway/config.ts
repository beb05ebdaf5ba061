import { z } from "zod";
import { intFromEnv, loadEnv, NATS_URL_ENV } from "../common/config.js";

const GatewayEnv = z.object({
  ...NATS_URL_ENV,
  FLEETHEAL_GATEWAY_PORT: intFromEnv({ min: 0, max: 65_535, default: 8080 }),
  FLEETHEAL_GATEWAY_HOST: z.string().min(1).default("0.0.0.0"),
  FLEETHEAL_STALE_AFTER_HEARTBEATS: intFromEnv({ min: 1, max: 1_000, default: 3 }),
  FLEETHEAL_DOWN_AFTER_HEARTBEATS: intFromEnv({ min: 2, max: 10_000, default: 12 }),
});

/** Gateway settings, validated. */
export interface GatewayConfig {
  natsUrl: string;
  port: number;
  host: string;
  staleAfterHeartbeats: number;
  downAfterHeartbeats: number;
}

export function loadGatewayConfig(env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const e = loadEnv(
    GatewayEnv.refine(
      (v) =>
        // Compare only two valid numbers; an invalid one already has its own message.
        typeof v.FLEETHEAL_DOWN_AFTER_HEARTBEATS !== "number" ||
        typeof v.FLEETHEAL_STALE_AFTER_HEARTBEATS !== "number" ||
        v.FLEETHEAL_DOWN_AFTER_HEARTBEATS > v.FLEETHEAL_STALE_AFTER_HEARTBEATS,
      {
        message:
          "FLEETHEAL_DOWN_AFTER_HEARTBEATS must be greater than FLEETHEAL_STALE_AFTER_HEARTBEATS",
        path: ["FLEETHEAL_DOWN_AFTER_HEARTBEATS"],
      },
    ),
    env,
  );
  return {
    natsUrl: e.FLEETHEAL_NATS_URL,
    port: e.FLEETHEAL_GATEWAY_PORT,
    host: e.FLEETHEAL_GATEWAY_HOST,
    staleAfterHeartbeats: e.FLEETHEAL_STALE_AFTER_HEARTBEATS,
    downAfterHeartbeats: e.FLEETHEAL_DOWN_AFTER_HEARTBEATS,
  };
}
