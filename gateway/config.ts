import { readFileSync } from "node:fs";
import { z } from "zod";
import {
  COMMAND_SIGNING_ENV,
  type CommandSigning,
  commandSigningFrom,
} from "../common/agent-commands.js";
import { boolFromEnv, commaListFromEnv, intFromEnv, loadEnv, NATS_ENV } from "../common/config.js";
import { ConfigError, describeError } from "../common/errors.js";
import { type NatsClientSettings, natsSettingsFrom } from "../common/nats-config.js";

const Token = z
  .string()
  .min(16, "must be at least 16 characters")
  .max(1024, "must be at most 1024 characters")
  .regex(/^[\x21-\x7e]+$/, "must be printable ASCII without spaces");

const Origins = commaListFromEnv()
  .pipe(
    z.array(
      z.string().regex(/^https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?$/, {
        message: "each origin looks like https://ops.example.com or http://host:3000",
      }),
    ),
  )
  .default([]);

const GatewayEnv = z.object({
  ...NATS_ENV,
  FLEETHEAL_GATEWAY_PORT: intFromEnv({ min: 0, max: 65_535, default: 8080 }),
  FLEETHEAL_GATEWAY_HOST: z.string().min(1).default("0.0.0.0"),
  FLEETHEAL_STALE_AFTER_HEARTBEATS: intFromEnv({ min: 1, max: 1_000, default: 3 }),
  FLEETHEAL_DOWN_AFTER_HEARTBEATS: intFromEnv({ min: 2, max: 10_000, default: 12 }),
  FLEETHEAL_GATEWAY_ADMIN_TOKEN: Token.optional(),
  FLEETHEAL_GATEWAY_ADMIN_TOKEN_FILE: z.string().min(1).optional(),
  FLEETHEAL_GATEWAY_READ_TOKEN: Token.optional(),
  FLEETHEAL_GATEWAY_READ_TOKEN_FILE: z.string().min(1).optional(),
  FLEETHEAL_GATEWAY_CORS_ORIGINS: Origins,
  FLEETHEAL_GATEWAY_ACTIONS_PER_MINUTE: intFromEnv({ min: 1, max: 100_000, default: 30 }),
  FLEETHEAL_GATEWAY_MAX_STREAMS: intFromEnv({ min: 1, max: 100_000, default: 100 }),
  FLEETHEAL_GATEWAY_TRUST_PROXY: boolFromEnv(false),
  FLEETHEAL_COMMAND_TIMEOUT_MS: intFromEnv({ min: 1_000, max: 3_900_000, default: 60_000 }),
  ...COMMAND_SIGNING_ENV,
});

/** Gateway settings, validated. */
export interface GatewayConfig {
  natsUrl: string;
  /** TLS, credentials, inbox prefix and replicas (FLEETHEAL_NATS_*, FLEETHEAL_JS_REPLICAS). */
  nats?: NatsClientSettings;
  port: number;
  host: string;
  staleAfterHeartbeats: number;
  downAfterHeartbeats: number;
  /** Needed by every mutating route; without it they answer 403. */
  adminToken?: string;
  /** When set, every read needs it or the admin token (probes /livez and /readyz excepted). */
  readToken?: string;
  corsOrigins: string[];
  actionsPerMinute: number;
  maxStreams: number;
  trustProxy: boolean;
  /** How long a manual restart waits for the agent. */
  commandTimeoutMs: number;
  /** The key manual restarts are signed with (none: unsigned), and their lifetime. */
  commandSigning: CommandSigning;
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
  const adminToken = secret(
    "ADMIN",
    e.FLEETHEAL_GATEWAY_ADMIN_TOKEN,
    e.FLEETHEAL_GATEWAY_ADMIN_TOKEN_FILE,
  );
  const readToken = secret(
    "READ",
    e.FLEETHEAL_GATEWAY_READ_TOKEN,
    e.FLEETHEAL_GATEWAY_READ_TOKEN_FILE,
  );
  if (adminToken !== undefined && adminToken === readToken) {
    throw new ConfigError(
      "invalid configuration:\n  FLEETHEAL_GATEWAY_READ_TOKEN: must differ from the admin token",
    );
  }
  return {
    natsUrl: e.FLEETHEAL_NATS_URL,
    nats: natsSettingsFrom(e),
    port: e.FLEETHEAL_GATEWAY_PORT,
    host: e.FLEETHEAL_GATEWAY_HOST,
    staleAfterHeartbeats: e.FLEETHEAL_STALE_AFTER_HEARTBEATS,
    downAfterHeartbeats: e.FLEETHEAL_DOWN_AFTER_HEARTBEATS,
    ...(adminToken === undefined ? {} : { adminToken }),
    ...(readToken === undefined ? {} : { readToken }),
    corsOrigins: e.FLEETHEAL_GATEWAY_CORS_ORIGINS,
    actionsPerMinute: e.FLEETHEAL_GATEWAY_ACTIONS_PER_MINUTE,
    maxStreams: e.FLEETHEAL_GATEWAY_MAX_STREAMS,
    trustProxy: e.FLEETHEAL_GATEWAY_TRUST_PROXY,
    commandTimeoutMs: e.FLEETHEAL_COMMAND_TIMEOUT_MS,
    commandSigning: commandSigningFrom(e),
  };
}

/**
 * A token from its variable or from the file its `_FILE` variable names (Docker and systemd
 * secrets), never both. The file's trailing newline is not part of the token.
 */
function secret(
  kind: "ADMIN" | "READ",
  value: string | undefined,
  file: string | undefined,
): string | undefined {
  const name = `FLEETHEAL_GATEWAY_${kind}_TOKEN`;
  if (value !== undefined && file !== undefined) {
    throw new ConfigError(`invalid configuration:\n  ${name} and ${name}_FILE: set only one`);
  }
  if (file === undefined) return value;
  let content: string;
  try {
    content = readFileSync(file, "utf8").replace(/\r?\n$/, "");
  } catch (error) {
    throw new ConfigError(
      `invalid configuration:\n  ${name}_FILE=${JSON.stringify(file)}: cannot read it (${describeError(error)})`,
    );
  }
  const parsed = Token.safeParse(content);
  if (!parsed.success) {
    throw new ConfigError(
      `invalid configuration:\n  ${name}_FILE=${JSON.stringify(file)}: the token ${parsed.error.issues[0]?.message ?? "is invalid"}`,
    );
  }
  return parsed.data;
}
