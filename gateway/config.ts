import { isIP } from "node:net";
import { z } from "zod";
import {
  COMMAND_SIGNING_ENV,
  type CommandSigning,
  commandSigningFrom,
} from "../common/agent-commands.js";
import {
  commaListFromEnv,
  intFromEnv,
  loadEnv,
  NATS_ENV,
  secretFromFile,
  splitCommaList,
} from "../common/config.js";
import { ConfigError } from "../common/errors.js";
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

/** The address ranges proxy-addr (Fastify's `trustProxy`) knows by name. */
const PROXY_RANGE_NAMES: ReadonlySet<string> = new Set(["loopback", "linklocal", "uniquelocal"]);

/** Why an item of FLEETHEAL_GATEWAY_TRUST_PROXY is not an address, a CIDR or a range name. */
function trustedProxyError(item: string): string | undefined {
  if (PROXY_RANGE_NAMES.has(item)) return undefined;
  const [address = "", prefix, extra] = item.split("/");
  const family = isIP(address);
  const bits = family === 4 ? 32 : 128;
  if (family !== 0 && extra === undefined) {
    if (prefix === undefined) return undefined;
    if (/^\d{1,3}$/.test(prefix) && Number(prefix) <= bits) return undefined;
  }
  return `${JSON.stringify(item.slice(0, 64))} is not an IP address, a CIDR block (10.0.0.0/8) or loopback, linklocal or uniquelocal`;
}

/**
 * Whose `X-Forwarded-For` to believe: `false` (no one, the default), `true` (every peer), or a
 * comma-separated list of the proxies' addresses, CIDR blocks and range names.
 */
const TrustProxy = z
  .string()
  .trim()
  .transform((value, ctx): boolean | string[] => {
    const word = value.toLowerCase();
    if (["true", "1", "yes"].includes(word)) return true;
    if (["false", "0", "no", ""].includes(word)) return false;
    const items = splitCommaList(value);
    for (const item of items) {
      const message = trustedProxyError(item);
      if (message) ctx.addIssue({ code: "custom", message });
    }
    return items;
  })
  .default(false);

/** The variables the gateway reads, by name. */
export const GatewayEnv = z.object({
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
  FLEETHEAL_GATEWAY_STREAMS_PER_CLIENT: intFromEnv({ min: 1, max: 100_000, default: 10 }),
  FLEETHEAL_GATEWAY_TRUST_PROXY: TrustProxy,
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
  /** Live streams one client address may hold at once. */
  maxStreamsPerClient: number;
  /** Whose `X-Forwarded-For` gives the client address: no one, every peer, or these proxies. */
  trustProxy: boolean | string[];
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
    maxStreamsPerClient: e.FLEETHEAL_GATEWAY_STREAMS_PER_CLIENT,
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
  return secretFromFile(`${name}_FILE`, file, Token);
}
