import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { nkeyAuthenticator } from "@nats-io/nats-core";
import { z } from "zod";
import { isCommandPublicKey } from "../common/command-signing.js";
import { boolFromEnv, commaListFromEnv, intFromEnv, loadEnv, NATS_ENV } from "../common/config.js";
import { ConfigError, describeError } from "../common/errors.js";
import { decodeJoinToken, type JoinToken } from "../common/join-token.js";
import { type NatsClientSettings, natsSettingsFrom } from "../common/nats-config.js";
import { Token, toToken } from "../contracts/index.js";
import { AUTOHEAL_LABEL, WATCH_ALL } from "./opt-in.js";
import { NOTHING_ALLOWED, type ProbeAllowList, parseProbeAllow } from "./probes/probe-allow.js";

/** Docker label keys: what `docker run --label` accepts, without spaces or `=`. */
const LabelKey = z
  .string()
  .max(256)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._/-]*$/, "must be a Docker label key such as 'autoheal'");

/** The opt-in label key when neither FLEETHEAL_LABEL nor AUTOHEAL_CONTAINER_LABEL is set. */
const DEFAULT_LABEL = AUTOHEAL_LABEL;

/** Seconds between SIGTERM and SIGKILL: Docker's own default, and the autoheal container's. */
const DEFAULT_STOP_TIMEOUT_SECONDS = 10;

/** A stop timeout in whole seconds, without a default (see FLEETHEAL_STOP_TIMEOUT below). */
const StopTimeout = intFromEnv({
  min: 0,
  max: 3_600,
  default: DEFAULT_STOP_TIMEOUT_SECONDS,
}).unwrap();

/** Most keys an agent trusts at once: a rotation needs two. */
const MAX_COMMAND_KEYS = 16;

/** The operator public keys (`O…`) whose signatures on restart and stop the agent accepts. */
const CommandKeys = commaListFromEnv()
  .superRefine((keys, ctx) => {
    keys.forEach((key, i) => {
      if (isCommandPublicKey(key)) return;
      ctx.addIssue({
        code: "custom",
        message: `key ${i + 1} (${JSON.stringify(key.length > 12 ? `${key.slice(0, 12)}…` : key)}) is not an operator public key: 56 characters starting with O, as \`nk -gen operator -pubout\` prints`,
      });
    });
    if (keys.length > MAX_COMMAND_KEYS) {
      ctx.addIssue({ code: "custom", message: `at most ${MAX_COMMAND_KEYS} keys` });
    }
  })
  .default([]);

/**
 * The hosts label probes may name (FLEETHEAL_PROBE_ALLOW): CIDR blocks, addresses and host
 * names. Empty by default: a probe then reaches only its container's own address.
 */
const ProbeAllow = commaListFromEnv()
  .transform((items, ctx): ProbeAllowList => {
    const parsed = parseProbeAllow(items);
    if (parsed.ok) return parsed.allow;
    for (const message of parsed.errors) ctx.addIssue({ code: "custom", message });
    return z.NEVER;
  })
  .default(NOTHING_ALLOWED);

/** Where dockerode (and the docker CLI) connect when DOCKER_HOST is not set. */
const DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock";

/**
 * The DOCKER_HOST schemes the agent accepts: what docker-modem (dockerode's transport)
 * connects over. Stated once: the check and its message are made from it.
 */
export const DOCKER_HOST_SCHEMES = ["unix", "tcp", "http", "https", "ssh", "npipe"] as const;

const DOCKER_HOST_URL = new RegExp(`^(${DOCKER_HOST_SCHEMES.join("|")})://`);

/** The variables the agent reads, by name: what docs/reference/settings.md states their ranges from. */
export const AgentEnv = z.object({
  ...NATS_ENV,
  FLEETHEAL_HOST_ID: Token.optional(),
  FLEETHEAL_DATA_DIR: z.string().min(1).max(4096).default(".fleetheal"),
  DOCKER_HOST: z
    .string()
    .regex(
      DOCKER_HOST_URL,
      `must start with ${DOCKER_HOST_SCHEMES.map((scheme) => `${scheme}://`).join(", ")}`,
    )
    .optional(),
  // No defaults on these two: whether they are set decides between them and their autoheal
  // names below, and the defaults are applied after that.
  FLEETHEAL_LABEL: LabelKey.optional(),
  FLEETHEAL_STOP_TIMEOUT: StopTimeout.optional(),
  FLEETHEAL_HEARTBEAT_MS: intFromEnv({ min: 250, max: 300_000, default: 5_000 }),
  FLEETHEAL_SNAPSHOT_DEBOUNCE_MS: intFromEnv({ min: 0, max: 10_000, default: 100 }),
  FLEETHEAL_OUTBOX_CAPACITY: intFromEnv({ min: 100, max: 1_000_000, default: 10_000 }),
  FLEETHEAL_EVENT_QUEUE_CAPACITY: intFromEnv({ min: 100, max: 1_000_000, default: 50_000 }),
  // The resync interval of level-triggered healing: each reconcile re-asserts what is still
  // unhealthy (docs/AGENT.md, "Level-triggered healing"). The one setting for it.
  FLEETHEAL_RECONCILE_INTERVAL_MS: intFromEnv({ min: 1_000, max: 86_400_000, default: 60_000 }),
  FLEETHEAL_COMMAND_KEYS: CommandKeys,
  FLEETHEAL_COMMAND_CLOCK_SKEW_MS: intFromEnv({ min: 0, max: 300_000, default: 30_000 }),
  FLEETHEAL_INSECURE_UNSIGNED_COMMANDS: boolFromEnv(false),
  FLEETHEAL_PROBE_ALLOW: ProbeAllow,
  // The autoheal container's names for the same two settings, so that its environment carries
  // over (docs/MIGRATING.md). Same rules; a bad value is reported under the name that was set.
  AUTOHEAL_CONTAINER_LABEL: LabelKey.optional(),
  AUTOHEAL_DEFAULT_STOP_TIMEOUT: StopTimeout.optional(),
});
type AgentEnv = z.infer<typeof AgentEnv>;

/** Agent settings, validated. */
export interface AgentConfig {
  natsUrl: string;
  /** TLS, credentials, inbox prefix and replicas (FLEETHEAL_NATS_*, FLEETHEAL_JS_REPLICAS). */
  nats?: NatsClientSettings;
  hostId: string;
  /** Where the agent keeps its state between runs: the last snapshot it published. */
  dataDir: string;
  dockerHost: string | undefined;
  /** The opt-in label key, e.g. `autoheal` (containers opt in with `autoheal=true`). */
  label: string;
  /**
   * The label is `all`: every container is watched, as in the popular autoheal tool, but one
   * labelled `autoheal=false` (agent/opt-in.ts).
   */
  watchAll: boolean;
  heartbeatMs: number;
  snapshotDebounceMs: number;
  defaultStopTimeoutSeconds: number;
  outboxCapacity: number;
  /** Docker event lines held between reading and processing. */
  eventQueueCapacity: number;
  /**
   * The resync interval: a full list-and-inspect runs this often, besides after every gap, and
   * ends by re-asserting every opted-in container still unhealthy (level-triggered healing).
   */
  reconcileIntervalMs: number;
  /** Operator public keys (`O…`) whose signatures on restart and stop are accepted. */
  commandKeys: string[];
  /** How far this host's clock and a signer's may disagree when judging a command's times. */
  commandClockSkewMs: number;
  /** Accept restart and stop commands without a signature. Insecure: for development only. */
  insecureUnsignedCommands: boolean;
  /**
   * The hosts label probes may name besides their container's own address
   * (FLEETHEAL_PROBE_ALLOW). Absent from configurations built by hand: none then.
   */
  probeAllow?: ProbeAllowList;
  /**
   * Variables that were set but do not apply (autoheal settings fleetheal ignores, or that a
   * FLEETHEAL_* variable overrides), one sentence each, for the agent to log as it starts.
   * Absent from configurations built by hand.
   */
  notes?: string[];
}

/** Reads and validates the agent's environment; throws a ConfigError naming every bad variable. */
export function loadAgentConfig(env: NodeJS.ProcessEnv = process.env): AgentConfig {
  refuseSeedAsKey(env.FLEETHEAL_COMMAND_KEYS);
  const e = loadEnv(AgentEnv, env);
  const label = optInLabel(e);
  const notes: string[] = [];
  const stopTimeout = stopTimeoutSeconds(e, notes);
  notes.push(...ignoredAutohealNotes(env, e));
  const config: AgentConfig = {
    natsUrl: e.FLEETHEAL_NATS_URL,
    nats: natsSettingsFrom(e),
    hostId: e.FLEETHEAL_HOST_ID ?? toToken(hostname()),
    dataDir: e.FLEETHEAL_DATA_DIR,
    dockerHost: e.DOCKER_HOST,
    label,
    watchAll: label === WATCH_ALL,
    heartbeatMs: e.FLEETHEAL_HEARTBEAT_MS,
    snapshotDebounceMs: e.FLEETHEAL_SNAPSHOT_DEBOUNCE_MS,
    defaultStopTimeoutSeconds: stopTimeout,
    outboxCapacity: e.FLEETHEAL_OUTBOX_CAPACITY,
    eventQueueCapacity: e.FLEETHEAL_EVENT_QUEUE_CAPACITY,
    reconcileIntervalMs: e.FLEETHEAL_RECONCILE_INTERVAL_MS,
    commandKeys: e.FLEETHEAL_COMMAND_KEYS,
    commandClockSkewMs: e.FLEETHEAL_COMMAND_CLOCK_SKEW_MS,
    insecureUnsignedCommands: e.FLEETHEAL_INSECURE_UNSIGNED_COMMANDS,
    probeAllow: e.FLEETHEAL_PROBE_ALLOW,
    notes,
  };
  const token = readJoinToken(env);
  return token ? joined(config, token, env) : config;
}

/**
 * A seed pasted where a public key belongs must not be echoed into the error, and so into
 * logs: it is refused before validation prints the variable's value.
 */
function refuseSeedAsKey(keys: string | undefined): void {
  if (keys !== undefined && /(^|[\s,])S[A-Z2-7]{57}($|[\s,])/.test(keys)) {
    throw new ConfigError(
      "invalid configuration:\n  FLEETHEAL_COMMAND_KEYS=<not shown>: holds an nkey seed (S…), which must stay secret on the signers; give the public keys (O…) only, and make a new signing key, since this one has been exposed",
    );
  }
}

/**
 * FLEETHEAL_LABEL, else AUTOHEAL_CONTAINER_LABEL, else `autoheal`. The label decides which
 * containers fleetheal may restart, so two different answers are refused rather than one of
 * them winning: `all` on one side and a label on the other would otherwise heal containers that
 * nobody opted in, or stop healing ones that did, on the strength of a log line.
 */
function optInLabel(e: AgentEnv): string {
  const own = e.FLEETHEAL_LABEL;
  const legacy = e.AUTOHEAL_CONTAINER_LABEL;
  if (own !== undefined && legacy !== undefined && own !== legacy) {
    throw new ConfigError(
      `invalid configuration:\n  AUTOHEAL_CONTAINER_LABEL=${JSON.stringify(legacy)}: disagrees with FLEETHEAL_LABEL=${JSON.stringify(own)} about which containers may be restarted; set only FLEETHEAL_LABEL, or both to the same value`,
    );
  }
  return own ?? legacy ?? DEFAULT_LABEL;
}

/**
 * FLEETHEAL_STOP_TIMEOUT, else AUTOHEAL_DEFAULT_STOP_TIMEOUT, else 10 s. A disagreement only
 * changes how long a container gets to stop, so FLEETHEAL_STOP_TIMEOUT wins, with a note.
 */
function stopTimeoutSeconds(e: AgentEnv, notes: string[]): number {
  const own = e.FLEETHEAL_STOP_TIMEOUT;
  const legacy = e.AUTOHEAL_DEFAULT_STOP_TIMEOUT;
  if (own !== undefined && legacy !== undefined && own !== legacy) {
    notes.push(
      `AUTOHEAL_DEFAULT_STOP_TIMEOUT="${legacy}" is ignored: FLEETHEAL_STOP_TIMEOUT="${own}" is set and takes precedence`,
    );
  }
  return own ?? legacy ?? DEFAULT_STOP_TIMEOUT_SECONDS;
}

/**
 * Variables of the autoheal container that fleetheal does not take over, with why and what to
 * use instead: ignoring them without a word would let an operator believe they still apply.
 * `same` recognises values that already describe fleetheal's behaviour, which need no note.
 */
const IGNORED_AUTOHEAL: readonly {
  name: string;
  same?: (value: string, e: AgentEnv) => boolean;
  why: (value: string) => string;
}[] = [
  {
    name: "AUTOHEAL_INTERVAL",
    why: () =>
      "fleetheal does not poll: it acts on Docker's health_status events as they happen, and every FLEETHEAL_RECONCILE_INTERVAL_MS (the resync interval of level-triggered healing) a full reconcile catches any it missed and re-asserts every container still unhealthy",
  },
  {
    name: "AUTOHEAL_START_PERIOD",
    same: (value) => /^0+$/.test(value.trim()),
    why: () =>
      "it delayed autoheal's first check after autoheal itself started, and fleetheal has no such delay; for a grace period after each container start, use the heal policy's startPeriodSeconds or the label autoheal.start_period (docs/MIGRATING.md)",
  },
  {
    name: "AUTOHEAL_ONLY_MONITOR_RUNNING",
    same: (value) => value.trim().toLowerCase() === "true",
    why: () =>
      "fleetheal never restarts a paused container, as autoheal with AUTOHEAL_ONLY_MONITOR_RUNNING=true",
  },
  {
    name: "DOCKER_SOCK",
    same: (value, e) => dockerEndpoint(value) === (e.DOCKER_HOST ?? DEFAULT_DOCKER_HOST),
    why: (value) =>
      `the agent connects to DOCKER_HOST (${DEFAULT_DOCKER_HOST} when not set); set DOCKER_HOST=${dockerEndpoint(value)}${value.startsWith("tcp") ? " (with DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH for TLS)" : ""} instead`,
  },
  {
    name: "CURL_TIMEOUT",
    why: () =>
      "the agent sets no deadline on Docker calls, so a restart with a long stop timeout is not cut short and reported as failed; the handler waits at least the stop timeout plus 30 s for it",
  },
  {
    name: "POST_RESTART_SCRIPT",
    why: () =>
      "fleetheal runs no scripts; follow restarts on the NATS subject fleetheal.v1.act.<host>.<container id>.restarted, or with a webhook (docs/NOTIFY.md)",
  },
];

function ignoredAutohealNotes(env: NodeJS.ProcessEnv, e: AgentEnv): string[] {
  const notes: string[] = [];
  for (const { name, same, why } of IGNORED_AUTOHEAL) {
    const value = env[name];
    // An empty variable counts as unset, as everywhere else in fleetheal.
    if (value === undefined || value === "" || same?.(value, e)) continue;
    notes.push(`${name}=${JSON.stringify(value)} is ignored: ${why(value)}`);
  }
  return notes;
}

/**
 * DOCKER_SOCK as a DOCKER_HOST URL: autoheal takes a bare socket path or a `tcp://` address.
 * Its `tcps://` form (TLS with client certificates) is `tcp://` plus DOCKER_TLS_VERIFY here.
 */
function dockerEndpoint(sock: string): string {
  const value = sock.trim();
  if (value.startsWith("/")) return `unix://${value}`;
  if (value.startsWith("tcps://")) return `tcp://${value.slice("tcps://".length)}`;
  return value;
}

/**
 * The join token of FLEETHEAL_JOIN_TOKEN or FLEETHEAL_JOIN_TOKEN_FILE, if one is set. Read
 * outside the environment's schema, so that no error can print it: it holds the host's seed.
 */
function readJoinToken(env: NodeJS.ProcessEnv): JoinToken | undefined {
  const inline = env.FLEETHEAL_JOIN_TOKEN || undefined;
  const file = env.FLEETHEAL_JOIN_TOKEN_FILE || undefined;
  if (inline === undefined && file === undefined) return undefined;
  const problem = (name: string, why: string) =>
    new ConfigError(`invalid configuration:\n  ${name}: ${why}`);
  if (inline !== undefined && file !== undefined) {
    throw problem("FLEETHEAL_JOIN_TOKEN and FLEETHEAL_JOIN_TOKEN_FILE", "set only one");
  }
  let text = inline ?? "";
  if (file !== undefined) {
    try {
      text = readFileSync(file, "utf8");
    } catch (error) {
      throw problem(
        `FLEETHEAL_JOIN_TOKEN_FILE=${JSON.stringify(file)}`,
        `cannot read it (${describeError(error)})`,
      );
    }
  }
  try {
    return decodeJoinToken(text);
  } catch (error) {
    throw problem(
      file ? "FLEETHEAL_JOIN_TOKEN_FILE" : "FLEETHEAL_JOIN_TOKEN",
      describeError(error),
    );
  }
}

/** The variables a join token replaces; setting one of them beside it is a mistake. */
const TOKEN_CREDENTIALS = [
  "FLEETHEAL_NATS_NKEY_FILE",
  "FLEETHEAL_NATS_USER",
  "FLEETHEAL_NATS_PASSWORD",
  "FLEETHEAL_NATS_PASSWORD_FILE",
  "FLEETHEAL_NATS_TOKEN",
  "FLEETHEAL_NATS_TOKEN_FILE",
  "FLEETHEAL_NATS_CREDS",
  "FLEETHEAL_NATS_INBOX_PREFIX",
];

/**
 * The agent of the host a join token names: its NATS servers (unless FLEETHEAL_NATS_URL says
 * otherwise), their CA (unless FLEETHEAL_NATS_TLS_CA does), its credential and inbox prefix, and
 * the keys whose commands it executes (with any of FLEETHEAL_COMMAND_KEYS).
 */
function joined(config: AgentConfig, token: JoinToken, env: NodeJS.ProcessEnv): AgentConfig {
  const problems: string[] = [];
  const set = TOKEN_CREDENTIALS.filter((name) => env[name]);
  if (set.length > 0) {
    problems.push(`${set.join(", ")}: the join token carries the credential; unset them`);
  }
  if (env.FLEETHEAL_HOST_ID && env.FLEETHEAL_HOST_ID !== token.host) {
    problems.push(
      `FLEETHEAL_HOST_ID=${JSON.stringify(env.FLEETHEAL_HOST_ID)}: the join token is for host ${token.host}; unset it (the token names the host)`,
    );
  }
  if (problems.length > 0) {
    throw new ConfigError(`invalid configuration:\n${problems.map((p) => `  ${p}`).join("\n")}`);
  }
  const seed = new TextEncoder().encode(token.seed);
  return {
    ...config,
    hostId: token.host,
    natsUrl: env.FLEETHEAL_NATS_URL ? config.natsUrl : token.urls.join(","),
    nats: {
      ...config.nats,
      jsReplicas: config.nats?.jsReplicas ?? 1,
      tls: { ...config.nats?.tls, ca: config.nats?.tls?.ca ?? token.ca },
      auth: { method: "nkey", user: `agent-${token.host}` },
      authenticator: nkeyAuthenticator(seed),
      inboxPrefix: token.inboxPrefix,
    },
    commandKeys: [...new Set([...token.commandKeys, ...config.commandKeys])],
  };
}
