import { hostname } from "node:os";
import { createOperator, createUser } from "@nats-io/nkeys";
import { describe, expect, it } from "vitest";
import {
  commandSigningKeyFromSeed,
  generateCommandSigningSeed,
} from "../common/command-signing.js";
import { encodeJoinToken } from "../common/join-token.js";
import { toToken } from "../contracts/index.js";
import { configError } from "../test/support/config-error.js";
import { DOCKER_HOST_SCHEMES, loadAgentConfig } from "./config.js";

const KEY_A = commandSigningKeyFromSeed(generateCommandSigningSeed()).publicKey;
const KEY_B = commandSigningKeyFromSeed(generateCommandSigningSeed()).publicKey;

describe("loadAgentConfig", () => {
  it("defaults", () => {
    expect(loadAgentConfig({})).toEqual({
      natsUrl: "nats://127.0.0.1:4222",
      nats: { jsReplicas: 1 },
      hostId: toToken(hostname()),
      dataDir: ".fleetheal",
      dockerHost: undefined,
      label: "autoheal",
      watchAll: false,
      heartbeatMs: 5000,
      snapshotDebounceMs: 100,
      defaultStopTimeoutSeconds: 10,
      outboxCapacity: 10_000,
      eventQueueCapacity: 50_000,
      reconcileIntervalMs: 60_000,
      commandKeys: [],
      commandClockSkewMs: 30_000,
      insecureUnsignedCommands: false,
      probeAllow: { names: new Set(), ranges: [] },
      notes: [],
    });
  });

  it("reads every variable", () => {
    expect(
      loadAgentConfig({
        FLEETHEAL_NATS_URL: "nats://nats.internal:4222",
        FLEETHEAL_HOST_ID: "edge-07",
        FLEETHEAL_DATA_DIR: "/var/lib/fleetheal",
        DOCKER_HOST: "unix:///run/user/1000/docker.sock",
        FLEETHEAL_LABEL: "com.example.heal",
        FLEETHEAL_HEARTBEAT_MS: "2000",
        FLEETHEAL_SNAPSHOT_DEBOUNCE_MS: "0",
        FLEETHEAL_STOP_TIMEOUT: "30",
        FLEETHEAL_OUTBOX_CAPACITY: "500",
        FLEETHEAL_EVENT_QUEUE_CAPACITY: "1000",
        FLEETHEAL_RECONCILE_INTERVAL_MS: "15000",
        FLEETHEAL_COMMAND_KEYS: `${KEY_A}, ${KEY_B}`,
        FLEETHEAL_COMMAND_CLOCK_SKEW_MS: "5000",
        FLEETHEAL_INSECURE_UNSIGNED_COMMANDS: "true",
        FLEETHEAL_PROBE_ALLOW: "db.internal, 10.0.0.0/8",
      }),
    ).toEqual({
      natsUrl: "nats://nats.internal:4222",
      nats: { jsReplicas: 1 },
      hostId: "edge-07",
      dataDir: "/var/lib/fleetheal",
      dockerHost: "unix:///run/user/1000/docker.sock",
      label: "com.example.heal",
      watchAll: false,
      heartbeatMs: 2000,
      snapshotDebounceMs: 0,
      defaultStopTimeoutSeconds: 30,
      outboxCapacity: 500,
      eventQueueCapacity: 1000,
      reconcileIntervalMs: 15_000,
      commandKeys: [KEY_A, KEY_B],
      commandClockSkewMs: 5_000,
      insecureUnsignedCommands: true,
      probeAllow: {
        names: new Set(["db.internal"]),
        ranges: [{ family: 4, value: 0x0a000000n, prefix: 8, text: "10.0.0.0/8" }],
      },
      notes: [],
    });
  });

  it("FLEETHEAL_PROBE_ALLOW: CIDR blocks and names; every bad entry named", () => {
    const allow = loadAgentConfig({
      FLEETHEAL_PROBE_ALLOW: "127.0.0.1/32,fd00::/8,metadata",
    }).probeAllow;
    expect(allow?.ranges.map((r) => r.text)).toEqual(["127.0.0.1/32", "fd00::/8"]);
    expect([...(allow?.names ?? [])]).toEqual(["metadata"]);
    const { message } = configError(() =>
      loadAgentConfig({ FLEETHEAL_PROBE_ALLOW: "10.0.0.0/40, *.example.com, ok.example" }),
    );
    expect(message).toContain('FLEETHEAL_PROBE_ALLOW="10.0.0.0/40, *.example.com, ok.example"');
    expect(message).toContain('"10.0.0.0/40": malformed CIDR');
    expect(message).toContain('"*.example.com": neither a CIDR block');
    expect(message).not.toContain('"ok.example"');
  });

  it("an empty variable means unset", () => {
    const config = loadAgentConfig({
      FLEETHEAL_HOST_ID: "",
      FLEETHEAL_LABEL: "",
      FLEETHEAL_HEARTBEAT_MS: "",
      DOCKER_HOST: "",
    });
    expect(config.hostId).toBe(toToken(hostname()));
    expect(config.label).toBe("autoheal");
    expect(config.heartbeatMs).toBe(5000);
    expect(config.dockerHost).toBeUndefined();
  });

  it("DOCKER_HOST: every scheme the list names is accepted, and only those", () => {
    for (const scheme of DOCKER_HOST_SCHEMES) {
      const host = `${scheme}://docker.internal:2376`;
      expect(loadAgentConfig({ DOCKER_HOST: host }).dockerHost).toBe(host);
    }
    expect(configError(() => loadAgentConfig({ DOCKER_HOST: "tcps://h:2376" })).message).toContain(
      `DOCKER_HOST="tcps://h:2376": must start with ${DOCKER_HOST_SCHEMES.map((s) => `${s}://`).join(", ")}`,
    );
  });

  it("FLEETHEAL_LABEL=all watches every container", () => {
    const config = loadAgentConfig({ FLEETHEAL_LABEL: "all" });
    expect(config.watchAll).toBe(true);
  });

  it("names every bad variable and its value", () => {
    const error = configError(() =>
      loadAgentConfig({
        FLEETHEAL_HOST_ID: "a.b",
        FLEETHEAL_HEARTBEAT_MS: "-5",
        FLEETHEAL_LABEL: "bad label",
        DOCKER_HOST: "/var/run/docker.sock",
        FLEETHEAL_OUTBOX_CAPACITY: "lots",
        FLEETHEAL_STOP_TIMEOUT: "3601",
      }),
    );
    expect(error.code).toBe("FLEETHEAL_ERR_CONFIG");
    const m = error.message;
    expect(m).toContain(`FLEETHEAL_HOST_ID="a.b": may contain only letters, digits, '_' and '-'`);
    expect(m).toContain(`FLEETHEAL_HEARTBEAT_MS="-5": must be at least 250`);
    expect(m).toContain(
      `FLEETHEAL_LABEL="bad label": must be a Docker label key such as 'autoheal'`,
    );
    expect(m).toContain(
      `DOCKER_HOST="/var/run/docker.sock": must start with unix://, tcp://, http://, https://, ssh://, npipe://`,
    );
    expect(m).toContain(`FLEETHEAL_OUTBOX_CAPACITY="lots": `);
    expect(m).toContain(`FLEETHEAL_STOP_TIMEOUT="3601": must be at most 3600`);
    expect(m.split("\n")).toHaveLength(7);
  });

  it.each([
    ["FLEETHEAL_HOST_ID", "*"],
    ["FLEETHEAL_HOST_ID", "web 1"],
    ["FLEETHEAL_HOST_ID", "x".repeat(129)],
    ["FLEETHEAL_HEARTBEAT_MS", "249"],
    ["FLEETHEAL_HEARTBEAT_MS", "1.5"],
    ["FLEETHEAL_SNAPSHOT_DEBOUNCE_MS", "10001"],
    ["FLEETHEAL_OUTBOX_CAPACITY", "99"],
    ["FLEETHEAL_EVENT_QUEUE_CAPACITY", "99"],
    ["FLEETHEAL_EVENT_QUEUE_CAPACITY", "1000001"],
    ["FLEETHEAL_RECONCILE_INTERVAL_MS", "999"],
    ["FLEETHEAL_RECONCILE_INTERVAL_MS", "86400001"],
    ["FLEETHEAL_COMMAND_CLOCK_SKEW_MS", "-1"],
    ["FLEETHEAL_COMMAND_CLOCK_SKEW_MS", "300001"],
    ["FLEETHEAL_INSECURE_UNSIGNED_COMMANDS", "maybe"],
  ])("%s=%j is rejected", (name, value) => {
    const error = configError(() => loadAgentConfig({ [name]: value }));
    expect(error.message).toContain(`${name}=${JSON.stringify(value)}: `);
  });
});

describe("loadAgentConfig: FLEETHEAL_COMMAND_KEYS", () => {
  it("names the key that is not an operator public key", () => {
    const user = `U${KEY_A.slice(1)}`;
    const error = configError(() =>
      loadAgentConfig({ FLEETHEAL_COMMAND_KEYS: `${KEY_A},${user}` }),
    );
    expect(error.message).toBe(
      `invalid configuration:\n  FLEETHEAL_COMMAND_KEYS=${JSON.stringify(`${KEY_A},${user}`)}: key 2 (${JSON.stringify(`${user.slice(0, 12)}…`)}) is not an operator public key: 56 characters starting with O, as \`nk -gen operator -pubout\` prints`,
    );
  });

  it("refuses a key with a wrong checksum", () => {
    const last = KEY_A.at(-1) === "A" ? "B" : "A";
    const error = configError(() =>
      loadAgentConfig({ FLEETHEAL_COMMAND_KEYS: `${KEY_A.slice(0, -1)}${last}` }),
    );
    expect(error.message).toContain("key 1 ");
  });

  it("refuses a seed without printing it", () => {
    const seed = generateCommandSigningSeed();
    const error = configError(() =>
      loadAgentConfig({ FLEETHEAL_COMMAND_KEYS: `${KEY_A},${seed}` }),
    );
    expect(error.message).toContain("FLEETHEAL_COMMAND_KEYS=<not shown>: holds an nkey seed");
    expect(error.message).not.toContain(seed);
  });

  it("ignores empty entries and spaces", () => {
    expect(loadAgentConfig({ FLEETHEAL_COMMAND_KEYS: ` ,${KEY_A} ,, ` }).commandKeys).toEqual([
      KEY_A,
    ]);
  });
});

describe("loadAgentConfig: the autoheal container's variables", () => {
  it("AUTOHEAL_CONTAINER_LABEL is the opt-in label when FLEETHEAL_LABEL is not set", () => {
    const config = loadAgentConfig({ AUTOHEAL_CONTAINER_LABEL: "com.example.heal" });
    expect(config.label).toBe("com.example.heal");
    expect(config.watchAll).toBe(false);
    expect(config.notes).toEqual([]);
  });

  it("AUTOHEAL_CONTAINER_LABEL=all watches every container", () => {
    const config = loadAgentConfig({ AUTOHEAL_CONTAINER_LABEL: "all" });
    expect(config.label).toBe("all");
    expect(config.watchAll).toBe(true);
  });

  it("the same label under both names is accepted", () => {
    const config = loadAgentConfig({ FLEETHEAL_LABEL: "all", AUTOHEAL_CONTAINER_LABEL: "all" });
    expect(config.watchAll).toBe(true);
    expect(config.notes).toEqual([]);
  });

  it("refuses two different opt-in labels, in either direction", () => {
    const widen = configError(() =>
      loadAgentConfig({ FLEETHEAL_LABEL: "all", AUTOHEAL_CONTAINER_LABEL: "autoheal" }),
    );
    expect(widen.code).toBe("FLEETHEAL_ERR_CONFIG");
    expect(widen.message).toBe(
      'invalid configuration:\n  AUTOHEAL_CONTAINER_LABEL="autoheal": disagrees with FLEETHEAL_LABEL="all" about which containers may be restarted; set only FLEETHEAL_LABEL, or both to the same value',
    );
    const narrow = configError(() =>
      loadAgentConfig({ FLEETHEAL_LABEL: "autoheal", AUTOHEAL_CONTAINER_LABEL: "all" }),
    );
    expect(narrow.message).toContain(
      'AUTOHEAL_CONTAINER_LABEL="all": disagrees with FLEETHEAL_LABEL="autoheal"',
    );
  });

  it("an empty AUTOHEAL_CONTAINER_LABEL means unset", () => {
    const config = loadAgentConfig({ FLEETHEAL_LABEL: "x", AUTOHEAL_CONTAINER_LABEL: "" });
    expect(config.label).toBe("x");
  });

  it("AUTOHEAL_DEFAULT_STOP_TIMEOUT is the stop timeout when FLEETHEAL_STOP_TIMEOUT is not set", () => {
    const config = loadAgentConfig({ AUTOHEAL_DEFAULT_STOP_TIMEOUT: "45" });
    expect(config.defaultStopTimeoutSeconds).toBe(45);
    expect(config.notes).toEqual([]);
    expect(loadAgentConfig({ AUTOHEAL_DEFAULT_STOP_TIMEOUT: "0" }).defaultStopTimeoutSeconds).toBe(
      0,
    );
  });

  it("FLEETHEAL_STOP_TIMEOUT wins over AUTOHEAL_DEFAULT_STOP_TIMEOUT, and says so", () => {
    const config = loadAgentConfig({
      FLEETHEAL_STOP_TIMEOUT: "20",
      AUTOHEAL_DEFAULT_STOP_TIMEOUT: "45",
    });
    expect(config.defaultStopTimeoutSeconds).toBe(20);
    expect(config.notes).toEqual([
      'AUTOHEAL_DEFAULT_STOP_TIMEOUT="45" is ignored: FLEETHEAL_STOP_TIMEOUT="20" is set and takes precedence',
    ]);
    // Equal values (even written differently) are no conflict.
    const same = loadAgentConfig({
      FLEETHEAL_STOP_TIMEOUT: "20",
      AUTOHEAL_DEFAULT_STOP_TIMEOUT: " 20",
    });
    expect(same.notes).toEqual([]);
    // FLEETHEAL_STOP_TIMEOUT=10 is the default written out, and still wins.
    const explicitDefault = loadAgentConfig({
      FLEETHEAL_STOP_TIMEOUT: "10",
      AUTOHEAL_DEFAULT_STOP_TIMEOUT: "30",
    });
    expect(explicitDefault.defaultStopTimeoutSeconds).toBe(10);
    expect(explicitDefault.notes).toHaveLength(1);
  });

  it("validates the autoheal names with the same rules, under the name that was set", () => {
    const error = configError(() =>
      loadAgentConfig({
        AUTOHEAL_CONTAINER_LABEL: "my label",
        AUTOHEAL_DEFAULT_STOP_TIMEOUT: "3601",
      }),
    );
    expect(error.message.split("\n").slice(1)).toEqual([
      `  AUTOHEAL_CONTAINER_LABEL="my label": must be a Docker label key such as 'autoheal'`,
      `  AUTOHEAL_DEFAULT_STOP_TIMEOUT="3601": must be at most 3600`,
    ]);
    expect(
      configError(() => loadAgentConfig({ AUTOHEAL_DEFAULT_STOP_TIMEOUT: "10s" })).message,
    ).toContain(`AUTOHEAL_DEFAULT_STOP_TIMEOUT="10s": must be a whole number`);
    expect(
      configError(() => loadAgentConfig({ AUTOHEAL_DEFAULT_STOP_TIMEOUT: "-1" })).message,
    ).toContain(`AUTOHEAL_DEFAULT_STOP_TIMEOUT="-1": must be at least 0`);
  });

  it("a bad autoheal value is reported even when the FLEETHEAL_ variable wins", () => {
    const error = configError(() =>
      loadAgentConfig({ FLEETHEAL_STOP_TIMEOUT: "20", AUTOHEAL_DEFAULT_STOP_TIMEOUT: "soon" }),
    );
    expect(error.message).toContain(`AUTOHEAL_DEFAULT_STOP_TIMEOUT="soon": must be a whole number`);
  });

  it("notes every autoheal variable it ignores, with why", () => {
    const notes =
      loadAgentConfig({
        AUTOHEAL_INTERVAL: "5",
        AUTOHEAL_START_PERIOD: "600",
        AUTOHEAL_ONLY_MONITOR_RUNNING: "false",
        DOCKER_SOCK: "/run/docker.sock",
        CURL_TIMEOUT: "30",
        POST_RESTART_SCRIPT: "/opt/after-restart.sh",
      }).notes ?? [];
    expect(notes).toEqual([
      `AUTOHEAL_INTERVAL="5" is ignored: fleetheal does not poll: it acts on Docker's health_status events as they happen, and every FLEETHEAL_RECONCILE_INTERVAL_MS (the resync interval of level-triggered healing) a full reconcile catches any it missed and re-asserts every container still unhealthy`,
      `AUTOHEAL_START_PERIOD="600" is ignored: it delayed autoheal's first check after autoheal itself started, and fleetheal has no such delay; for a grace period after each container start, use the heal policy's startPeriodSeconds or the label autoheal.start_period (docs/MIGRATING.md)`,
      `AUTOHEAL_ONLY_MONITOR_RUNNING="false" is ignored: fleetheal never restarts a paused container, as autoheal with AUTOHEAL_ONLY_MONITOR_RUNNING=true`,
      `DOCKER_SOCK="/run/docker.sock" is ignored: the agent connects to DOCKER_HOST (unix:///var/run/docker.sock when not set); set DOCKER_HOST=unix:///run/docker.sock instead`,
      `CURL_TIMEOUT="30" is ignored: the agent sets no deadline on Docker calls, so a restart with a long stop timeout is not cut short and reported as failed; the handler waits at least the stop timeout plus 30 s for it`,
      `POST_RESTART_SCRIPT="/opt/after-restart.sh" is ignored: fleetheal runs no scripts; follow restarts on the NATS subject fleetheal.v1.act.<host>.<container id>.restarted, or with a webhook (docs/NOTIFY.md)`,
    ]);
  });

  it("does not note values that already are fleetheal's behaviour, or empty ones", () => {
    const config = loadAgentConfig({
      AUTOHEAL_INTERVAL: "",
      AUTOHEAL_START_PERIOD: "0",
      AUTOHEAL_ONLY_MONITOR_RUNNING: "True",
      DOCKER_SOCK: "/var/run/docker.sock",
      CURL_TIMEOUT: "",
    });
    expect(config.notes).toEqual([]);
    const sameHost = loadAgentConfig({
      DOCKER_HOST: "unix:///run/docker.sock",
      DOCKER_SOCK: "/run/docker.sock",
    });
    expect(sameHost.notes).toEqual([]);
  });

  it("points a TCP DOCKER_SOCK at DOCKER_HOST, with TLS through DOCKER_TLS_VERIFY", () => {
    const [note] = loadAgentConfig({ DOCKER_SOCK: "tcps://docker.internal:2376" }).notes ?? [];
    expect(note).toBe(
      `DOCKER_SOCK="tcps://docker.internal:2376" is ignored: the agent connects to DOCKER_HOST (unix:///var/run/docker.sock when not set); set DOCKER_HOST=tcp://docker.internal:2376 (with DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH for TLS) instead`,
    );
  });

  it("ignored variables are not validated: a value there can never stop the agent", () => {
    const config = loadAgentConfig({ AUTOHEAL_INTERVAL: "often", CURL_TIMEOUT: "-3" });
    expect(config.notes).toHaveLength(2);
  });
});

describe("loadAgentConfig with a join token", () => {
  const seed = new TextDecoder().decode(createUser().getSeed());
  const signer = createOperator().getPublicKey();
  const token = encodeJoinToken({
    v: 1,
    host: "web-2",
    urls: ["tls://10.0.0.5:4222"],
    ca: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    seed,
    inboxPrefix: "_INBOX_web-2",
    commandKeys: [signer],
  });

  it("takes the host, the servers, their CA, the credential and the signing keys from it", () => {
    const config = loadAgentConfig({ FLEETHEAL_JOIN_TOKEN: token });
    expect(config.hostId).toBe("web-2");
    expect(config.natsUrl).toBe("tls://10.0.0.5:4222");
    expect(config.nats?.tls?.ca).toContain("BEGIN CERTIFICATE");
    expect(config.nats?.inboxPrefix).toBe("_INBOX_web-2");
    expect(config.nats?.auth).toEqual({ method: "nkey", user: "agent-web-2" });
    expect(config.nats?.authenticator).toBeTypeOf("function");
    expect(config.commandKeys).toEqual([signer]);
    // An explicit URL wins (the servers may be reached under another name from this host).
    expect(
      loadAgentConfig({ FLEETHEAL_JOIN_TOKEN: token, FLEETHEAL_NATS_URL: "tls://nats:4222" })
        .natsUrl,
    ).toBe("tls://nats:4222");
  });

  it("refuses another host id, other credentials, both forms, or a damaged token, never printing it", () => {
    const cases: Record<string, string>[] = [
      { FLEETHEAL_JOIN_TOKEN: token, FLEETHEAL_HOST_ID: "web-3" },
      { FLEETHEAL_JOIN_TOKEN: token, FLEETHEAL_NATS_NKEY_FILE: "/x.nk" },
      { FLEETHEAL_JOIN_TOKEN: token, FLEETHEAL_JOIN_TOKEN_FILE: "/x" },
      { FLEETHEAL_JOIN_TOKEN: token.slice(0, -10) },
      { FLEETHEAL_JOIN_TOKEN_FILE: "/nonexistent/token" },
    ];
    for (const env of cases) {
      const error = configError(() => loadAgentConfig(env));
      expect(error.message).not.toContain(seed);
      expect(error.message).not.toContain(token.slice(10, 40));
    }
  });
});
