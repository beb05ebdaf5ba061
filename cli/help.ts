import { existsSync } from "node:fs";
import { join } from "node:path";
import { packageDir } from "../common/package-dir.js";

/**
 * Where the docs/… that the help and the messages name are: relative to where fleetheal is
 * installed, not to the working directory. Absent where docs/ is not shipped (the image).
 */
function documentation(): string {
  const docs = join(packageDir(), "docs");
  return existsSync(docs)
    ? `\nDocumentation: ${docs}/ holds every docs/… file named here and in messages.\n`
    : "";
}

/** The text of `fleetheal --help`; kept next to the code that parses the same variables. */
export const HELP = `fleetheal — event-driven healing of Docker containers across a fleet of hosts

Usage: fleetheal <command>

Commands:
  up        All-in-one for one host: an embedded nats-server (unless FLEETHEAL_NATS_URL is
            set; it is plain loopback, so the NATS security variables need FLEETHEAL_NATS_URL),
            the agent, a handler and the gateway. Ctrl-C or SIGTERM stops everything.
  agent     The per-host agent: forwards Docker events, keeps the host snapshot, runs label
            probes, executes commands for containers labelled <FLEETHEAL_LABEL>=true.
  handler   One handler replica (heal, auto-monitor, dependents, and notify when
            FLEETHEAL_NOTIFY_URLS is set). Run as many as you like. The heal
            policy (backoff, budget, quarantine, pause…) is in KV; see docs/POLICY.md.
  gateway   The HTTP gateway: the dashboard at /, GET /health (the whole fleet), the REST API
            (hosts, containers, events, live SSE, restart, release, pause, policy), /metrics,
            and the API reference at /docs (docs/API.md).
  release <host> <container>
            Releases a quarantined container (by id, id prefix or name) so it is healed
            again, and records who did it: through the gateway when --gateway or
            FLEETHEAL_GATEWAY_URL is given, otherwise directly over NATS. Exit code 0 when
            released, 1 when not quarantined, 2 on bad arguments or NATS configuration
            (including refused credentials or TLS).
  status    The fleet's health (GET /health); exit code 1 when degraded or unhealthy.
  hosts     Every host: status, last seen, Docker, agent, containers by health, credential.
  hosts add <host-id> | hosts remove <host-id>
            Adds a host to the fleet that fleetheal up runs (prints its join token, for
            FLEETHEAL_JOIN_TOKEN on that host), or removes one (revokes its credential),
            next to up, through its gateway, or with --nats-auth for your own NATS.
  containers [--host h] [--health h] [--state s] [--label k=v] [--name text]
            [--quarantined] [--opted-in] [--limit n] [--all]
            Containers across the fleet, filtered and paged like GET /containers.
  events [--host h] [--container c] [--kind k] [--since 10m] [--follow]
            Event and remediation history; --follow prints them live (SSE), resuming
            with Last-Event-ID when the connection drops.
  restart <host> <container>  Restarts a container by hand through its agent (admin token).
  pause [--reason text]  Pauses healing fleet-wide (admin token).
  resume    Resumes healing (admin token).
            status, hosts, containers, events, restart, pause, resume (and release with
            a gateway) talk to the gateway over HTTP. Common options: --gateway <url>,
            --token-file <file>, --json (the API's JSON). Exit codes: 0 ok, 1 negative
            answer, 2 usage or configuration, 3 gateway unreachable or HTTP error,
            4 authentication refused. Details: fleetheal <command> --help, docs/CLI.md.
  nats-auth --hosts <a,b,c> [--remove <d,e>] [--out <dir>] [--force]
            [--tls-names <a,b> [--ca-dir <dir>]]
            Writes a nats-server include file (fleetheal-auth.conf): an account per host,
            FLEET for handler and gateway, READER for read-only users; per user an NKEY
            seed <user>.nk (mode 0600) and a <user>.env; command-signing keys. Run again
            to add or --remove hosts: other keys are kept, so reload nats-server
            [--out ./nats-auth]. --tls-names writes a server certificate signed by the CA
            of --ca-dir (up's <data dir>/tls, for a move to a cluster). See docs/SECURITY.md.
  nats-migrate export --out <file> | import --in <file> [--keys <dir>]
            Moves a deployment made with passwords (its data in NATS's global account $G)
            into the accounts of nats-auth: export with the old handler's environment, then
            import with the new handler's (its agents' keys beside its seed, or in --keys).
            Exit codes: 0 done and every count checked, 1 failed or refused, 2 usage or
            configuration. See docs/DEPLOY.md, "Upgrading from a deployment with passwords".
  notify-test  Sends a sample notification to every FLEETHEAL_NOTIFY_URLS target and prints
            OK or FAILED per target; exit code 0 only if all succeeded (docs/NOTIFY.md).
  host-id   Prints the host id an agent started here would use: FLEETHEAL_HOST_ID, the host
            of FLEETHEAL_JOIN_TOKEN, in a container the Docker engine's name, else the
            hostname (compose's init issues that host's credential with it).
  healthcheck [agent|handler|gateway|up]
            The container image's HEALTHCHECK: exit code 0 when the role running in this
            container (PID 1's, unless named) is healthy, 1 with the reason when not.
  version [--json]
            Prints the version; --json prints it with Node.js's version and the platform
            as one JSON object: {"version","node","platform","arch"}.

Options:
  -h, --help      Show this help (also: fleetheal <command> --help)
  -v, --version   Print the version (fleetheal version)
${documentation()}
Environment (defaults in brackets; docs/CONFIGURATION.md and docs/AGENT.md say more):
  FLEETHEAL_NATS_URL          NATS server URL(s), comma-separated [nats://127.0.0.1:4222]
  FLEETHEAL_LOG_LEVEL         fatal|error|warn|info|debug|trace|silent [info]
 NATS security (every role and 'release'; files are read at start):
  FLEETHEAL_NATS_TLS_CA       PEM file of the CA that signed the server's certificate; turns
                              TLS on [none: TLS when the server offers it, system CAs]
  FLEETHEAL_NATS_TLS_CERT     Client certificate (PEM), with FLEETHEAL_NATS_TLS_KEY [none]
  FLEETHEAL_NATS_TLS_KEY      Its private key (PEM); set both or neither [none]
  FLEETHEAL_NATS_USER         User name, with FLEETHEAL_NATS_PASSWORD or *_FILE [none]
  FLEETHEAL_NATS_PASSWORD     Its password, never printed; or *_FILE to read it from a file
  FLEETHEAL_NATS_TOKEN        Token authentication, never printed; or *_FILE [none]
  FLEETHEAL_NATS_CREDS        A .creds file (JWT and nkey seed) [none]
  FLEETHEAL_NATS_NKEY_FILE    A user NKEY seed file (SU...), as nats-auth writes [none]
                              (user/password, token, creds and nkey: choose one)
  FLEETHEAL_NATS_INBOX_PREFIX Prefix of reply subjects, e.g. _INBOX_<host>, for per-host
                              permissions: subject tokens joined by dots [_INBOX]
  FLEETHEAL_JS_REPLICAS       Replicas (1-5) of the streams and KV buckets a role creates;
                              at most the number of JetStream servers [1]
 agent:
  FLEETHEAL_HOST_ID           This host's id: letters, digits, '_' and '-' [the hostname; in a
                              container, the name of the Docker engine]
  FLEETHEAL_JOIN_TOKEN        The token of 'fleetheal hosts add': NATS, host id, credential
                              and signing keys in one line; or *_FILE [none]
  FLEETHEAL_DATA_DIR          Where the agent keeps its last snapshot and the secret of its
                              events' message ids across restarts [./.fleetheal]
  DOCKER_HOST                 Docker endpoint: unix://, tcp:// (with DOCKER_TLS_VERIFY=1 and
                              DOCKER_CERT_PATH for TLS) [unix:///var/run/docker.sock]
  FLEETHEAL_LABEL             Opt-in label key; containers opt in with <label>=true.
                              'all' watches every container [autoheal]
  FLEETHEAL_HEARTBEAT_MS      Snapshot heartbeat [5000]
  FLEETHEAL_SNAPSHOT_DEBOUNCE_MS  Coalesce snapshot changes within this window [100]
  FLEETHEAL_STOP_TIMEOUT      Seconds between SIGTERM and SIGKILL on restart/stop; the label
                              autoheal.stop.timeout overrides it per container [10]
  FLEETHEAL_OUTBOX_CAPACITY   Events held until JetStream acks them [10000]
  FLEETHEAL_EVENT_QUEUE_CAPACITY  Docker event lines queued for processing [50000]
  FLEETHEAL_RECONCILE_INTERVAL_MS Periodic full list-and-inspect [60000]
  FLEETHEAL_COMMAND_KEYS      Operator public keys (O…), comma-separated, whose signatures on
                              restart and stop are accepted [none: all refused]
  FLEETHEAL_COMMAND_CLOCK_SKEW_MS  Clock difference allowed with the signers [30000]
  FLEETHEAL_INSECURE_UNSIGNED_COMMANDS  Accept unsigned restart and stop (insecure) [false]
  AUTOHEAL_CONTAINER_LABEL, AUTOHEAL_DEFAULT_STOP_TIMEOUT  The autoheal container's names,
                              accepted for FLEETHEAL_LABEL and FLEETHEAL_STOP_TIMEOUT; its other
                              variables are ignored with a warning (docs/MIGRATING.md)
 handler:
  FLEETHEAL_MAX_EVENT_AGE_MS  Older unhealthy events are not acted on [300000]
  FLEETHEAL_COMMAND_TIMEOUT_MS  How long a restart may take before it is retried [60000]
  FLEETHEAL_COMMAND_SIGNING_KEY_FILE  Seed file (SO…, mode 0600) of the operator nkey that
                              signs restart and stop [none: unsigned; 'up' makes one]
  FLEETHEAL_COMMAND_TTL_MS    How long a signed command stays valid (1000-300000) [30000]
  FLEETHEAL_NOTIFY_URLS       Webhook targets, comma/space-separated: <kind>+<url> (json, slack,
                              discord, ntfy, apprise) or a plain URL (json) [none: no notify]
  FLEETHEAL_NOTIFY_EVENTS     Phases to notify, or 'all' [restarted,failed,quarantined,released]
  FLEETHEAL_NOTIFY_TIMEOUT_MS Per-attempt HTTP timeout [5000]
  FLEETHEAL_NOTIFY_MAX_AGE_MS Older records are not notified [3600000]
  WEBHOOK_URL, APPRISE_URL    The autoheal container's webhooks, used when FLEETHEAL_NOTIFY_URLS
                              is not set; WEBHOOK_JSON_KEY text|content makes WEBHOOK_URL a
                              slack|discord target [content]
 gateway:
  FLEETHEAL_GATEWAY_PORT      HTTP port [8080]
  FLEETHEAL_GATEWAY_HOST      HTTP bind address [0.0.0.0]
  FLEETHEAL_STALE_AFTER_HEARTBEATS  Missed heartbeats before a host is 'stale' [3]
  FLEETHEAL_DOWN_AFTER_HEARTBEATS   Missed heartbeats before a host is 'down' [12]
  FLEETHEAL_GATEWAY_ADMIN_TOKEN     Bearer token for every action (restart, release, pause,
                              PUT /policy), 16+ characters; or *_FILE to read it from a file
                              [none: actions disabled; 'up' creates one in the data dir]
  FLEETHEAL_GATEWAY_READ_TOKEN      When set, reads need it (or the admin token); or *_FILE [none]
  FLEETHEAL_GATEWAY_CORS_ORIGINS    Browser origins allowed to call the API, comma-separated
                              [none: CORS closed]
  FLEETHEAL_GATEWAY_ACTIONS_PER_MINUTE  Actions per client address per minute [30]
  FLEETHEAL_GATEWAY_MAX_STREAMS     Concurrent /events/stream clients [100]
  FLEETHEAL_GATEWAY_TRUST_PROXY     Trust X-Forwarded-For from a reverse proxy [false]
  FLEETHEAL_COMMAND_TIMEOUT_MS      (also) How long a manual restart waits for the agent [60000]
  FLEETHEAL_COMMAND_SIGNING_KEY_FILE, FLEETHEAL_COMMAND_TTL_MS  (also) Signing manual restarts
 gateway commands (status, hosts, containers, events, restart, release, pause, resume):
  FLEETHEAL_GATEWAY_URL       The gateway's URL [http://127.0.0.1:8080]
  FLEETHEAL_GATEWAY_TOKEN     Bearer token sent to the gateway (read or admin); or *_FILE
                              [none; actions fall back to <FLEETHEAL_DATA_DIR>/admin-token]
 up:
  FLEETHEAL_DATA_DIR          Where up keeps its state (mode 0700): the embedded server's
                              store, its accounts' keys (credentials/, as nats-auth writes
                              them), the admin token (admin-token), and with
                              FLEETHEAL_NATS_URL the signing key (command-signing.nk)
                              [./.fleetheal]
  FLEETHEAL_NATS_PORT         Port of the embedded nats-server [4222]
  FLEETHEAL_NATS_LISTEN       <address>:<port> where it listens instead, with TLS, for the
                              agents of other hosts [none: loopback only]
  FLEETHEAL_NATS_ADVERTISE    <name>:<port>,... that join tokens list [the listen address]
  FLEETHEAL_NATS_SERVER_BIN   The nats-server binary [nats-server]
`;
