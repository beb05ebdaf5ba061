import { hostname } from "node:os";
import { z } from "zod";
import { intFromEnv, loadEnv, NATS_ENV } from "../common/config.js";
import { type NatsClientSettings, natsSettingsFrom } from "../common/nats-config.js";
import { Token, toToken } from "../contracts/index.js";

/** Docker label keys: what `docker run --label` accepts, without spaces or `=`. */
const LabelKey = z
  .string()
  .max(256)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._/-]*$/, "must be a Docker label key such as 'autoheal'");

const AgentEnv = z.object({
  ...NATS_ENV,
  FLEETHEAL_HOST_ID: Token.optional(),
  DOCKER_HOST: z
    .string()
    .regex(/^(unix|tcp|http|https|ssh|npipe):\/\//, "must start with unix://, tcp:// or https://")
    .optional(),
  FLEETHEAL_LABEL: LabelKey.default("autoheal"),
  FLEETHEAL_HEARTBEAT_MS: intFromEnv({ min: 250, max: 300_000, default: 5_000 }),
  FLEETHEAL_SNAPSHOT_DEBOUNCE_MS: intFromEnv({ min: 0, max: 10_000, default: 100 }),
  FLEETHEAL_STOP_TIMEOUT: intFromEnv({ min: 0, max: 3_600, default: 10 }),
  FLEETHEAL_OUTBOX_CAPACITY: intFromEnv({ min: 100, max: 1_000_000, default: 10_000 }),
  FLEETHEAL_EVENT_QUEUE_CAPACITY: intFromEnv({ min: 100, max: 1_000_000, default: 50_000 }),
  FLEETHEAL_RECONCILE_INTERVAL_MS: intFromEnv({ min: 1_000, max: 86_400_000, default: 60_000 }),
});

/** Agent settings, validated. */
export interface AgentConfig {
  natsUrl: string;
  /** TLS, credentials, inbox prefix and replicas (FLEETHEAL_NATS_*, FLEETHEAL_JS_REPLICAS). */
  nats?: NatsClientSettings;
  hostId: string;
  dockerHost: string | undefined;
  /** The opt-in label key, e.g. `autoheal` (containers opt in with `autoheal=true`). */
  label: string;
  /** `FLEETHEAL_LABEL=all`: every container is watched, as in the popular autoheal tool. */
  watchAll: boolean;
  heartbeatMs: number;
  snapshotDebounceMs: number;
  defaultStopTimeoutSeconds: number;
  outboxCapacity: number;
  /** Docker event lines held between reading and processing. */
  eventQueueCapacity: number;
  /** A full list-and-inspect runs this often, besides after every gap. */
  reconcileIntervalMs: number;
}

/** Reads and validates the agent's environment; throws a ConfigError naming every bad variable. */
export function loadAgentConfig(env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const e = loadEnv(AgentEnv, env);
  return {
    natsUrl: e.FLEETHEAL_NATS_URL,
    nats: natsSettingsFrom(e),
    hostId: e.FLEETHEAL_HOST_ID ?? toToken(hostname()),
    dockerHost: e.DOCKER_HOST,
    label: e.FLEETHEAL_LABEL,
    watchAll: e.FLEETHEAL_LABEL === "all",
    heartbeatMs: e.FLEETHEAL_HEARTBEAT_MS,
    snapshotDebounceMs: e.FLEETHEAL_SNAPSHOT_DEBOUNCE_MS,
    defaultStopTimeoutSeconds: e.FLEETHEAL_STOP_TIMEOUT,
    outboxCapacity: e.FLEETHEAL_OUTBOX_CAPACITY,
    eventQueueCapacity: e.FLEETHEAL_EVENT_QUEUE_CAPACITY,
    reconcileIntervalMs: e.FLEETHEAL_RECONCILE_INTERVAL_MS,
  };
}
