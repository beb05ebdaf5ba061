// The longer explanations of docs/reference/settings.md, by variable: what `--help` has no room
// for (files written, interplay with other variables, where to read more). The short meaning and
// the default stay in cli/environment.ts, the one list the help and the page are made from;
// tools/settings-doc.test.ts fails when a note names a variable that list does not have.

/** Variable name → a paragraph of Markdown, links relative to docs/reference/. */
export const SETTING_NOTES: Readonly<Record<string, string>> = {
  FLEETHEAL_NATS_URL: "NATS server URL(s), comma-separated. JetStream must be enabled.",
  FLEETHEAL_LOG_LEVEL:
    "`fatal`, `error`, `warn`, `info`, `debug`, `trace` or `silent`. Logs are JSON lines (pino) on stdout.",
  FLEETHEAL_NATS_TLS_CA:
    "PEM file of the CA that signed the NATS server's certificate. Setting it turns TLS on. See [Securing NATS](../CONFIGURATION.md#securing-nats).",
  FLEETHEAL_NATS_TLS_CERT:
    "Client certificate (PEM) for servers that require one (`verify: true`). Needs `FLEETHEAL_NATS_TLS_KEY`.",
  FLEETHEAL_NATS_TLS_KEY: "The client certificate's private key (PEM). Set both or neither.",
  FLEETHEAL_NATS_USER:
    "User name for NATS user/password authentication. Needs `FLEETHEAL_NATS_PASSWORD` or `FLEETHEAL_NATS_PASSWORD_FILE`.",
  FLEETHEAL_NATS_PASSWORD: "The user's password. Never printed, only its length.",
  FLEETHEAL_NATS_PASSWORD_FILE:
    "Read the password from this file instead; a trailing newline is ignored.",
  FLEETHEAL_NATS_TOKEN: "Token authentication. Never printed, only its length.",
  FLEETHEAL_NATS_TOKEN_FILE:
    "Read the token from this file instead; a trailing newline is ignored.",
  FLEETHEAL_NATS_CREDS:
    "A NATS `.creds` file (user JWT and nkey seed), for decentralised (operator/account) authentication.",
  FLEETHEAL_NATS_NKEY_FILE:
    "A user NKEY seed file (`SU…`), as `fleetheal nats-auth` writes one per user (`<user>.nk`). The seed never leaves the file; its public key names the user in the server's configuration.",
  FLEETHEAL_NATS_INBOX_PREFIX:
    "Prefix of this process's reply subjects, for example `_INBOX_host-a`, so per-host permissions can allow exactly its replies. Subject tokens (`A-Z a-z 0-9 _ -`) joined by dots; no wildcards.",
  FLEETHEAL_JS_REPLICAS:
    "Replicas (1–5) of the streams and KV buckets that a role creates when they are missing; `3` on a 3-node cluster keeps healing with one node down. At most the number of JetStream servers. Existing streams and buckets are not changed.",
  FLEETHEAL_HOST_ID:
    "This host's id in subjects and KV keys: letters, digits, `_` and `-`. In a container, unset: the Docker engine's name (`docker info`), the machine's hostname.",
  FLEETHEAL_JOIN_TOKEN:
    "The join token `fleetheal hosts add` printed: the NATS addresses and CA, the host id, its credential and the keys whose signed commands it accepts. A secret, never printed. `FLEETHEAL_NATS_URL` and `FLEETHEAL_NATS_TLS_CA` still win; another host id or another credential variable beside it is an error. See [DEPLOY.md](../DEPLOY.md#a-fleet-that-grows-from-fleetheal-up).",
  FLEETHEAL_JOIN_TOKEN_FILE:
    "Read the join token from this file instead (Docker and systemd secrets).",
  FLEETHEAL_DATA_DIR:
    "Agent: Where the agent keeps what it needs across restarts: its last published snapshot (`agent-<host>.snapshot.json`, the baseline its next run reconciles against) and the secret of its events' message ids (`agent-<host>.key`), mode 0600 in a 0700 directory. Up: Where `up` keeps its state (mode 0700): the embedded nats-server's store and configuration, its accounts' keys (`credentials/`, as `fleetheal nats-auth` writes them, with the signing keys of its handler and gateway), and the admin token (`admin-token`, mode 0600). With `FLEETHEAL_NATS_URL`, the command-signing key `command-signing.nk` instead, unless `FLEETHEAL_COMMAND_SIGNING_KEY_FILE` is set.",
  FLEETHEAL_LABEL:
    "Opt-in label key: containers with `<label>=true` are healed. `all` watches every container but those labelled `autoheal=false` (any case, as autoheal's `False`).",
  AUTOHEAL_CONTAINER_LABEL:
    "The autoheal container's name for `FLEETHEAL_LABEL`, same rules, used when that is not set. Both set to different labels stop the agent. See [MIGRATING.md](../MIGRATING.md).",
  FLEETHEAL_HEARTBEAT_MS: "Snapshot heartbeat.",
  FLEETHEAL_SNAPSHOT_DEBOUNCE_MS: "Changes within this window make one snapshot.",
  FLEETHEAL_STOP_TIMEOUT:
    "Seconds between SIGTERM and SIGKILL on a restart. The label `autoheal.stop.timeout` overrides it per container.",
  AUTOHEAL_DEFAULT_STOP_TIMEOUT:
    "The autoheal container's name for `FLEETHEAL_STOP_TIMEOUT`, same rules. When both are set, `FLEETHEAL_STOP_TIMEOUT` wins (a warning at start if they differ).",
  FLEETHEAL_OUTBOX_CAPACITY:
    "Events held while NATS does not ack; when full the oldest is dropped and logged.",
  FLEETHEAL_RECONCILE_INTERVAL_MS:
    "The resync interval of level-triggered healing: every interval the agent reconciles with Docker (a full list and inspect) and re-asserts every opted-in, running container that is still unhealthy, so that the handlers decide it again. 1000–86400000 ms; keep it at 60 s or less. See [AGENT.md](../AGENT.md#level-triggered-healing).",
  FLEETHEAL_COMMAND_KEYS:
    "Operator public keys (`O…`), comma-separated, whose signatures on restart and stop the agent accepts; two while rotating. A seed (`S…`) is refused, unprinted. See [AGENT.md](../AGENT.md#signed-commands).",
  FLEETHEAL_COMMAND_CLOCK_SKEW_MS:
    "How far the agent's clock and a signer's may disagree when it judges a command's `issuedAt` and `expiresAt` (0–300000).",
  FLEETHEAL_INSECURE_UNSIGNED_COMMANDS:
    "`true`: accept restart and stop without a signature. Insecure, for development only; a warning at start, and `agent.acceptsUnsignedCommands` in the snapshot.",
  FLEETHEAL_PROBE_ALLOW:
    "CIDR blocks and host names, comma-separated, that label probes may name as their target. A probe with any other explicit host or IP (loopback included) is refused and does not run; `:port` and `:port/path` (the container's own address) always run. See [AGENT.md](../AGENT.md#label-probes-and-their-targets).",
  FLEETHEAL_MAX_EVENT_AGE_MS:
    "Older `unhealthy` events are recorded as skipped. A new handler consumer also starts this far back in the stream.",
  FLEETHEAL_COMMAND_TIMEOUT_MS:
    "Handler: How long a restart request waits for the agent before the event is redelivered. Gateway: How long a manual restart waits for the agent before answering 504.",
  FLEETHEAL_COMMAND_SIGNING_KEY_FILE:
    "Handler: Seed file (`SO…` and a newline, mode 0600) of the operator nkey that signs every restart and stop, for example from `nk -gen operator`. Gateway: The same, for manual restarts.",
  FLEETHEAL_COMMAND_TTL_MS:
    "Handler: How long a signed command is valid after it is sent (1000–300000); each attempt is signed afresh. Gateway: The same, for manual restarts.",
  FLEETHEAL_EVENTS_HOST_MAX_BYTES:
    "One host's share of the events stream per window, in bytes (at least 1048576): the size of `FLEETHEAL_EVENTS_HOST_<host>`, the stream that host's events go to before `FLEETHEAL_EVENTS` sources them. Past it, the host's new events wait in its agent's outbox until its own events of a window ago expire; no host can push more than its share of the others' history out. It applies to the hosts' streams created from then on; change an existing one with `nats stream edit FLEETHEAL_EVENTS_HOST_<host> --max-bytes …`. See [SECURITY.md](../SECURITY.md#history-per-host).",
  FLEETHEAL_EVENTS_HOST_WINDOW_MS:
    "The window of that share (60000–604800000): how long a host's events stay in its own stream, never longer than `FLEETHEAL_EVENTS` keeps them. A host adds at most its share per window to the fleet's history. Applies to the hosts' streams created from then on (`nats stream edit … --max-age …`).",
  FLEETHEAL_HANDLER_METRICS_PORT:
    "Serve Prometheus metrics on this port at `GET /metrics` ([METRICS.md](../METRICS.md#handlers)); `0` picks a free port and logs it. Each replica serves its own.",
  FLEETHEAL_HANDLER_METRICS_HOST:
    "The address the metrics listen on: an IP address or a host name (`0.0.0.0` or `::` for every interface, with a token).",
  FLEETHEAL_HANDLER_METRICS_TOKEN_FILE:
    "A file holding a bearer token (16–1024 printable ASCII characters, its trailing newline ignored): scrapes must send `Authorization: Bearer <token>`, or get 401. Read at start.",
  FLEETHEAL_GATEWAY_PORT: "HTTP port (`0` picks a free one and logs it).",
  FLEETHEAL_GATEWAY_HOST: "HTTP bind address.",
  FLEETHEAL_STALE_AFTER_HEARTBEATS: "Missed heartbeats before a host is `stale`.",
  FLEETHEAL_DOWN_AFTER_HEARTBEATS:
    "Missed heartbeats before a host is `down`; must exceed the stale count.",
  FLEETHEAL_GATEWAY_ADMIN_TOKEN:
    "Bearer token for every action (restart, release, pause, resume, `PUT /policy`); 16+ printable characters.",
  FLEETHEAL_GATEWAY_ADMIN_TOKEN_FILE:
    "Read the admin token from this file instead (Docker/systemd secrets); a trailing newline is ignored.",
  FLEETHEAL_GATEWAY_READ_TOKEN:
    "When set, every read needs it or the admin token (`/livez`, `/readyz`, the dashboard page and `/docs` stay open).",
  FLEETHEAL_GATEWAY_READ_TOKEN_FILE: "Read the read token from this file instead.",
  FLEETHEAL_GATEWAY_CORS_ORIGINS:
    "Browser origins allowed to call the API, comma-separated (`https://ops.example.com`).",
  FLEETHEAL_GATEWAY_ACTIONS_PER_MINUTE: "Actions per client address per minute; more get 429.",
  FLEETHEAL_GATEWAY_MAX_STREAMS: "Concurrent `/events/stream` clients; more get 503.",
  FLEETHEAL_GATEWAY_STREAMS_PER_CLIENT:
    "Concurrent `/events/stream` clients from one client address; more get 429.",
  FLEETHEAL_GATEWAY_TRUST_PROXY:
    "Whose `X-Forwarded-For` gives the client address (rate limits, failed logins, stream limits, audit): your proxies' addresses and CIDRs, comma-separated (`10.0.0.7,10.0.0.0/8,loopback`); `true` believes every peer, safe only if clients reach the gateway through a proxy that overwrites the header.",
  FLEETHEAL_GATEWAY_URL:
    "The gateway that `status`, `hosts`, `containers`, `events`, `restart`, `pause`, `resume` (and `release`, when set) talk to; `--gateway` overrides it. See [CLI.md](../CLI.md).",
  FLEETHEAL_GATEWAY_TOKEN:
    "Bearer token (read or admin) the CLI sends to the gateway; `FLEETHEAL_GATEWAY_TOKEN_FILE` reads it from a file, `--token-file` overrides both.",
  FLEETHEAL_NATS_PORT: "Port of the embedded nats-server (loopback only).",
  FLEETHEAL_NATS_LISTEN:
    "`<address>:<port>` where the embedded nats-server listens instead, with TLS, for the agents of other hosts (`0.0.0.0:4222`: every address). A CA and a server certificate are made in `<FLEETHEAL_DATA_DIR>/tls` on first start and kept.",
  FLEETHEAL_NATS_ADVERTISE:
    "`<name>:<port>`, comma-separated: what join tokens list and the server certificate names, when other hosts reach this one under another name.",
  FLEETHEAL_NATS_SERVER_BIN: "The nats-server binary.",
  FLEETHEAL_NOTIFY_URLS:
    "Webhook notifications, their kinds and payloads, and the autoheal container's `WEBHOOK_URL`, `WEBHOOK_JSON_KEY` and `APPRISE_URL`: see [NOTIFY.md](../NOTIFY.md).",
};
