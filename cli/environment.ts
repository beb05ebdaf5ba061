/**
 * One environment variable as the help shows it. Several names may share one description (the
 * autoheal container's names for the same settings).
 */
export interface EnvVariable {
  readonly names: readonly string[];
  /** What it sets; `\n` starts a new line, longer lines are wrapped. */
  readonly description: string;
  /** Shown in brackets after the description: the value when it is not set, or what happens. */
  readonly default?: string;
}

/** Variables that belong together (a role's, the NATS connection's), under one header. */
export interface EnvGroup {
  /** The header in the help; the variables every NATS command reads have none. */
  readonly title?: string;
  readonly variables: readonly EnvVariable[];
}

const v = (name: string, description: string, defaultValue?: string): EnvVariable => ({
  names: [name],
  description,
  ...(defaultValue === undefined ? {} : { default: defaultValue }),
});

/**
 * Every environment variable fleetheal reads, by group: the one list that `fleetheal --help`,
 * each command's help (a command names the groups it reads) and docs/reference/settings.md
 * (tools/settings-doc.ts, with the ranges from the schemas) are made from. The roles'
 * configuration schemas stay the source of truth: cli/help.test.ts checks that the list names
 * every variable their loaders read and nothing else, and cli/environment.test.ts that every
 * default stated as a value is what the loaders use when the variable is not set.
 */
export const ENVIRONMENT = {
  nats: {
    variables: [
      v("FLEETHEAL_NATS_URL", "NATS server URL(s), comma-separated", "nats://127.0.0.1:4222"),
      v("FLEETHEAL_LOG_LEVEL", "fatal|error|warn|info|debug|trace|silent", "info"),
    ],
  },
  natsSecurity: {
    title: "NATS security (every role and nats-migrate; files are read at start)",
    variables: [
      v(
        "FLEETHEAL_NATS_TLS_CA",
        "PEM file of the CA that signed the server's certificate; turns TLS on",
        "none: TLS when the server offers it, system CAs",
      ),
      v("FLEETHEAL_NATS_TLS_CERT", "Client certificate (PEM), with FLEETHEAL_NATS_TLS_KEY", "none"),
      v("FLEETHEAL_NATS_TLS_KEY", "Its private key (PEM); set both or neither", "none"),
      v(
        "FLEETHEAL_NATS_USER",
        "User name, with FLEETHEAL_NATS_PASSWORD or FLEETHEAL_NATS_PASSWORD_FILE",
        "none",
      ),
      v("FLEETHEAL_NATS_PASSWORD", "Its password, never printed", "none"),
      v("FLEETHEAL_NATS_PASSWORD_FILE", "A file holding the password instead", "none"),
      v("FLEETHEAL_NATS_TOKEN", "Token authentication, never printed", "none"),
      v("FLEETHEAL_NATS_TOKEN_FILE", "A file holding the token instead", "none"),
      v("FLEETHEAL_NATS_CREDS", "A .creds file (JWT and nkey seed)", "none"),
      v(
        "FLEETHEAL_NATS_NKEY_FILE",
        "A user NKEY seed file (SU...), as nats-auth writes\n(user/password, token, creds and nkey: choose one)",
        "none",
      ),
      v(
        "FLEETHEAL_NATS_INBOX_PREFIX",
        "Prefix of reply subjects, e.g. _INBOX_<host>, for per-host permissions: subject tokens joined by dots",
        "_INBOX",
      ),
      v(
        "FLEETHEAL_JS_REPLICAS",
        "Replicas (1-5) of the streams and KV buckets a role creates; at most the number of JetStream servers",
        "1",
      ),
    ],
  },
  agent: {
    title: "agent",
    variables: [
      v(
        "FLEETHEAL_HOST_ID",
        "This host's id: letters, digits, '_' and '-'",
        "the hostname; in a container, the name of the Docker engine",
      ),
      v(
        "FLEETHEAL_JOIN_TOKEN",
        "The token of 'fleetheal hosts add': NATS, host id, credential and signing keys in one line",
        "none",
      ),
      v("FLEETHEAL_JOIN_TOKEN_FILE", "A file holding the join token instead", "none"),
      v(
        "FLEETHEAL_DATA_DIR",
        "Where the agent keeps its last snapshot and the secret of its events' message ids across restarts",
        "./.fleetheal",
      ),
      v(
        "DOCKER_HOST",
        "Docker endpoint: unix://, tcp://, http://, https://, ssh:// or npipe:// (with DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH for TLS)",
        "unix:///var/run/docker.sock",
      ),
      v(
        "FLEETHEAL_LABEL",
        "Opt-in label key; containers opt in with <label>=true. 'all' watches every container",
        "autoheal",
      ),
      v("FLEETHEAL_HEARTBEAT_MS", "Snapshot heartbeat", "5000"),
      v("FLEETHEAL_SNAPSHOT_DEBOUNCE_MS", "Coalesce snapshot changes within this window", "100"),
      v(
        "FLEETHEAL_STOP_TIMEOUT",
        "Seconds between SIGTERM and SIGKILL on restart/stop; the label autoheal.stop.timeout overrides it per container",
        "10",
      ),
      v("FLEETHEAL_OUTBOX_CAPACITY", "Events held until JetStream acks them", "10000"),
      v("FLEETHEAL_EVENT_QUEUE_CAPACITY", "Docker event lines queued for processing", "50000"),
      v(
        "FLEETHEAL_RECONCILE_INTERVAL_MS",
        "Resync interval of level-triggered healing: a full list-and-inspect that re-asserts every container still unhealthy",
        "60000",
      ),
      v(
        "FLEETHEAL_COMMAND_KEYS",
        "Operator public keys (O…), comma-separated, whose signatures on restart and stop are accepted",
        "none: all refused",
      ),
      v("FLEETHEAL_COMMAND_CLOCK_SKEW_MS", "Clock difference allowed with the signers", "30000"),
      v(
        "FLEETHEAL_INSECURE_UNSIGNED_COMMANDS",
        "Accept unsigned restart and stop (insecure)",
        "false",
      ),
      v(
        "FLEETHEAL_PROBE_ALLOW",
        "CIDR blocks and host names, comma-separated, that label probes may name; others are refused (:port and :port/path, the container's own address, always run)",
        "none",
      ),
      {
        names: ["AUTOHEAL_CONTAINER_LABEL", "AUTOHEAL_DEFAULT_STOP_TIMEOUT"],
        description:
          "The autoheal container's names, accepted for FLEETHEAL_LABEL and FLEETHEAL_STOP_TIMEOUT",
      },
      {
        names: [
          "AUTOHEAL_INTERVAL",
          "AUTOHEAL_START_PERIOD",
          "AUTOHEAL_ONLY_MONITOR_RUNNING",
          "DOCKER_SOCK",
          "CURL_TIMEOUT",
          "POST_RESTART_SCRIPT",
        ],
        description:
          "The autoheal container's other variables: ignored, with a warning that says what to use instead (docs/MIGRATING.md)",
      },
    ],
  },
  handler: {
    title: "handler",
    variables: [
      v("FLEETHEAL_MAX_EVENT_AGE_MS", "Older unhealthy events are not acted on", "300000"),
      v(
        "FLEETHEAL_COMMAND_TIMEOUT_MS",
        "How long a restart may take before it is retried",
        "60000",
      ),
      v(
        "FLEETHEAL_COMMAND_SIGNING_KEY_FILE",
        "Seed file (SO…, mode 0600) of the operator nkey that signs restart and stop",
        "none: unsigned; 'up' makes one",
      ),
      v("FLEETHEAL_COMMAND_TTL_MS", "How long a signed command stays valid (1000-300000)", "30000"),
      v(
        "FLEETHEAL_EVENTS_HOST_MAX_BYTES",
        "One host's share of the events stream per window, in bytes (at least 1048576): its own events past it wait",
        "8388608 (8 MiB)",
      ),
      v(
        "FLEETHEAL_EVENTS_HOST_WINDOW_MS",
        "The window of that share (60000-604800000): a host's events are kept that long in its own stream",
        "86400000 (1 day)",
      ),
      v(
        "FLEETHEAL_HANDLER_METRICS_PORT",
        "Serve Prometheus metrics on this port at /metrics (0: a free port, logged)",
        "none: off",
      ),
      v(
        "FLEETHEAL_HANDLER_METRICS_HOST",
        "The address the metrics listen on (0.0.0.0 or :: for every interface)",
        "127.0.0.1",
      ),
      v(
        "FLEETHEAL_HANDLER_METRICS_TOKEN_FILE",
        "A file holding a bearer token (16+ printable characters) that scrapes must send",
        "none: no token",
      ),
    ],
  },
  notify: {
    title: "notify (the handler's, and notify-test)",
    variables: [
      v(
        "FLEETHEAL_NOTIFY_URLS",
        "Webhook targets, comma/space-separated: <kind>+<url> (json, slack, discord, ntfy, apprise) or a plain URL (json)",
        "none: no notify",
      ),
      v(
        "FLEETHEAL_NOTIFY_EVENTS",
        "Phases to notify, or 'all'",
        "restarted,failed,quarantined,released,stopped,recreated,alerted,unhealed",
      ),
      v("FLEETHEAL_NOTIFY_TIMEOUT_MS", "Per-attempt HTTP timeout", "5000"),
      v("FLEETHEAL_NOTIFY_MAX_AGE_MS", "Older records are not notified", "3600000"),
      {
        names: ["WEBHOOK_URL", "APPRISE_URL"],
        description:
          "The autoheal container's webhooks, used when FLEETHEAL_NOTIFY_URLS is not set",
      },
      v("WEBHOOK_JSON_KEY", "text|content makes WEBHOOK_URL a slack|discord target", "content"),
    ],
  },
  notifyTest: {
    title: "notify-test",
    variables: [v("FLEETHEAL_HOST_ID", "The host the sample notification names", "the hostname")],
  },
  gateway: {
    title: "gateway",
    variables: [
      v("FLEETHEAL_GATEWAY_PORT", "HTTP port", "8080"),
      v("FLEETHEAL_GATEWAY_HOST", "HTTP bind address", "0.0.0.0"),
      v("FLEETHEAL_STALE_AFTER_HEARTBEATS", "Missed heartbeats before a host is 'stale'", "3"),
      v("FLEETHEAL_DOWN_AFTER_HEARTBEATS", "Missed heartbeats before a host is 'down'", "12"),
      v(
        "FLEETHEAL_GATEWAY_ADMIN_TOKEN",
        "Bearer token for every action (restart, release, pause, PUT /policy), 16+ characters",
        "none: actions disabled; 'up' creates one in the data dir",
      ),
      v("FLEETHEAL_GATEWAY_ADMIN_TOKEN_FILE", "A file holding the admin token instead", "none"),
      v("FLEETHEAL_GATEWAY_READ_TOKEN", "When set, reads need it (or the admin token)", "none"),
      v("FLEETHEAL_GATEWAY_READ_TOKEN_FILE", "A file holding the read token instead", "none"),
      v(
        "FLEETHEAL_GATEWAY_CORS_ORIGINS",
        "Browser origins allowed to call the API, comma-separated",
        "none: CORS closed",
      ),
      v("FLEETHEAL_GATEWAY_ACTIONS_PER_MINUTE", "Actions per client address per minute", "30"),
      v("FLEETHEAL_GATEWAY_MAX_STREAMS", "Concurrent /events/stream clients", "100"),
      v(
        "FLEETHEAL_GATEWAY_STREAMS_PER_CLIENT",
        "Concurrent /events/stream clients from one address",
        "10",
      ),
      v(
        "FLEETHEAL_GATEWAY_TRUST_PROXY",
        "Proxies whose X-Forwarded-For gives the client address: addresses and CIDRs, or true for any",
        "false",
      ),
      v(
        "FLEETHEAL_COMMAND_TIMEOUT_MS",
        "(also) How long a manual restart waits for the agent",
        "60000",
      ),
      {
        names: ["FLEETHEAL_COMMAND_SIGNING_KEY_FILE", "FLEETHEAL_COMMAND_TTL_MS"],
        description: "(also) Signing manual restarts",
      },
    ],
  },
  gatewayCommands: {
    title: "commands that talk to the gateway",
    variables: [
      v("FLEETHEAL_GATEWAY_URL", "The gateway's URL", "http://127.0.0.1:8080"),
      v(
        "FLEETHEAL_GATEWAY_TOKEN",
        "Bearer token sent to the gateway (read or admin)",
        "none; actions on a loopback gateway fall back to <FLEETHEAL_DATA_DIR>/admin-token",
      ),
      v("FLEETHEAL_GATEWAY_TOKEN_FILE", "A file holding the token instead", "none"),
      v(
        "FLEETHEAL_DATA_DIR",
        "The data directory of a fleetheal up on this machine: its admin token, and for hosts add/remove its credentials",
        "./.fleetheal",
      ),
    ],
  },
  up: {
    title: "up",
    variables: [
      v(
        "FLEETHEAL_DATA_DIR",
        "Where up keeps its state (mode 0700): the embedded server's store, its accounts' keys (credentials/, as nats-auth writes them), the admin token (admin-token), and with FLEETHEAL_NATS_URL the signing key (command-signing.nk)",
        "./.fleetheal",
      ),
      v("FLEETHEAL_NATS_PORT", "Port of the embedded nats-server", "4222"),
      v(
        "FLEETHEAL_NATS_LISTEN",
        "<address>:<port> where it listens instead, with TLS, for the agents of other hosts",
        "none: loopback only",
      ),
      v(
        "FLEETHEAL_NATS_ADVERTISE",
        "<name>:<port>,... that join tokens list",
        "the listen address",
      ),
      v("FLEETHEAL_NATS_SERVER_BIN", "The nats-server binary", "nats-server"),
    ],
  },
} as const satisfies Record<string, EnvGroup>;

/** The name of a group of {@link ENVIRONMENT}, as commands name what they read. */
export type EnvGroupName = keyof typeof ENVIRONMENT;
