import { hostname } from "node:os";
import { describe, expect, it } from "vitest";
import { toToken } from "../contracts/index.js";
import { configError } from "../test/support/config-error.js";
import { loadAgentConfig } from "./config.js";

describe("loadAgentConfig", () => {
  it("defaults", () => {
    expect(loadAgentConfig({})).toEqual({
      natsUrl: "nats://127.0.0.1:4222",
      nats: { jsReplicas: 1 },
      hostId: toToken(hostname()),
      dockerHost: undefined,
      label: "autoheal",
      watchAll: false,
      heartbeatMs: 5000,
      snapshotDebounceMs: 100,
      defaultStopTimeoutSeconds: 10,
      outboxCapacity: 10_000,
      eventQueueCapacity: 50_000,
      reconcileIntervalMs: 60_000,
    });
  });

  it("reads every variable", () => {
    expect(
      loadAgentConfig({
        FLEETHEAL_NATS_URL: "nats://nats.internal:4222",
        FLEETHEAL_HOST_ID: "edge-07",
        DOCKER_HOST: "unix:///run/user/1000/docker.sock",
        FLEETHEAL_LABEL: "com.example.heal",
        FLEETHEAL_HEARTBEAT_MS: "2000",
        FLEETHEAL_SNAPSHOT_DEBOUNCE_MS: "0",
        FLEETHEAL_STOP_TIMEOUT: "30",
        FLEETHEAL_OUTBOX_CAPACITY: "500",
        FLEETHEAL_EVENT_QUEUE_CAPACITY: "1000",
        FLEETHEAL_RECONCILE_INTERVAL_MS: "15000",
      }),
    ).toEqual({
      natsUrl: "nats://nats.internal:4222",
      nats: { jsReplicas: 1 },
      hostId: "edge-07",
      dockerHost: "unix:///run/user/1000/docker.sock",
      label: "com.example.heal",
      watchAll: false,
      heartbeatMs: 2000,
      snapshotDebounceMs: 0,
      defaultStopTimeoutSeconds: 30,
      outboxCapacity: 500,
      eventQueueCapacity: 1000,
      reconcileIntervalMs: 15_000,
    });
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
    expect(m).toContain(`DOCKER_HOST="/var/run/docker.sock": must start with`);
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
  ])("%s=%j is rejected", (name, value) => {
    const error = configError(() => loadAgentConfig({ [name]: value }));
    expect(error.message).toContain(`${name}=${JSON.stringify(value)}: `);
  });
});
