import { describe, expect, it } from "vitest";
import {
  COMMAND_REFUSAL_CODES,
  COMMAND_SIGNATURE_HEADERS,
  MAX_COMMAND_LIFETIME_MS,
} from "./command-auth.js";
import {
  COMMAND_REPLY_TYPE,
  CommandOutcome,
  CommandReply,
  INSPECT_REPLY_TYPE,
  INSPECT_REQUEST_TYPE,
  InspectReply,
  InspectRequest,
  RESTART_COMMAND_TYPE,
  RestartCommand,
  SNAPSHOT_REQUEST_TYPE,
  SnapshotRequest,
  STOP_COMMAND_TYPE,
  StopCommand,
} from "./commands.js";

const CID = "4f1c2b3a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a";

const command = {
  type: "fleetheal.cmd.v1.restart",
  v: 1,
  commandId: "heal-0123456789abcdef0123456789abcdef",
  host: "host-a",
  containerId: CID,
  reason: "unhealthy",
  requestedBy: "handler:heal",
  incident: "2026-11-27T19:41:29.98123456Z",
  requireUnhealthy: true,
  stopTimeoutSeconds: 10,
  issuedAt: "2026-11-27T19:41:34.100Z",
  expiresAt: "2026-11-27T19:42:04.100Z",
};

const stop = {
  type: "fleetheal.cmd.v1.stop",
  v: 1,
  commandId: "gateway-stop-0123456789",
  host: "host-a",
  containerId: CID,
  reason: "crash loop; parked by an operator",
  requestedBy: "gateway:alice",
  stopTimeoutSeconds: 30,
  issuedAt: "2026-11-27T19:41:34.100Z",
  expiresAt: "2026-11-27T19:42:04.100Z",
};

const reply = {
  type: "fleetheal.cmd.v1.reply",
  v: 1,
  verb: "restart",
  commandId: command.commandId,
  host: "host-a",
  containerId: command.containerId,
  outcome: "restarted",
  code: "restarted",
  message: "restarted (stop timeout 10s)",
  duplicate: false,
  startedAt: "2026-11-27T19:41:34.200Z",
  durationMs: 812,
};

const container = {
  id: CID,
  name: "web",
  image: "nginx:1.27",
  state: "running",
  health: "unhealthy",
  optedIn: true,
  labels: { autoheal: "true" },
  startedAt: "2026-11-27T19:41:29.98123456Z",
  restartCount: 0,
  failingStreak: 3,
  healthSource: "docker",
};

describe("type constants", () => {
  it("name each payload", () => {
    expect([
      RESTART_COMMAND_TYPE,
      STOP_COMMAND_TYPE,
      COMMAND_REPLY_TYPE,
      INSPECT_REQUEST_TYPE,
      INSPECT_REPLY_TYPE,
      SNAPSHOT_REQUEST_TYPE,
    ]).toEqual([
      "fleetheal.cmd.v1.restart",
      "fleetheal.cmd.v1.stop",
      "fleetheal.cmd.v1.reply",
      "fleetheal.cmd.v1.inspect",
      "fleetheal.cmd.v1.inspect.reply",
      "fleetheal.cmd.v1.snapshot",
    ]);
  });
});

describe("signed commands", () => {
  it("name their headers and refusal codes, which are public API", () => {
    expect(COMMAND_SIGNATURE_HEADERS).toEqual({
      key: "Fleetheal-Signing-Key",
      signature: "Fleetheal-Signature",
    });
    expect(COMMAND_REFUSAL_CODES).toEqual([
      "unsigned",
      "untrusted-key",
      "bad-signature",
      "issued-in-future",
      "expired",
      "bad-lifetime",
      "issued-before-start",
      "no-trusted-keys",
      "replay-window",
    ]);
    expect(MAX_COMMAND_LIFETIME_MS).toBe(300_000);
  });
});

describe("RestartCommand", () => {
  it("accepts a realistic command", () => {
    expect(RestartCommand.parse(command)).toEqual(command);
  });

  it("accepts a command without incident, requireUnhealthy and stop timeout", () => {
    const { incident: _i, requireUnhealthy: _r, stopTimeoutSeconds: _s, ...minimal } = command;
    expect(RestartCommand.safeParse(minimal).success).toBe(true);
  });

  it.each([
    ["short command id", { commandId: "abc" }],
    ["command id with space", { commandId: "heal 0123456789" }],
    ["command id with wildcard", { commandId: "heal-0123456789*" }],
    ["name instead of container id", { containerId: "web" }],
    ["stop timeout above 3600", { stopTimeoutSeconds: 3601 }],
    ["negative stop timeout", { stopTimeoutSeconds: -1 }],
    ["incident not a date", { incident: "run-1" }],
    ["empty requestedBy", { requestedBy: "" }],
    ["wildcard host", { host: "*" }],
    ["type of a stop", { type: "fleetheal.cmd.v1.stop" }],
    ["no issuedAt", { issuedAt: undefined }],
    ["no expiresAt", { expiresAt: undefined }],
    ["issuedAt not a date", { issuedAt: "now" }],
    ["expiresAt with an offset", { expiresAt: "2026-11-27T20:42:04.100+01:00" }],
  ])("rejects %s", (_why, patch) => {
    expect(RestartCommand.safeParse({ ...command, ...patch }).success).toBe(false);
  });
});

describe("StopCommand", () => {
  it("accepts a realistic command", () => {
    expect(StopCommand.parse(stop)).toEqual(stop);
  });

  it("accepts a command without stop timeout", () => {
    const { stopTimeoutSeconds: _s, ...minimal } = stop;
    expect(StopCommand.parse(minimal)).toEqual(minimal);
  });

  it("carries the incident and requireUnhealthy, as a restart does (heal's stop action)", () => {
    const guarded = { ...stop, incident: "2026-11-27T19:41:29.98123456Z", requireUnhealthy: true };
    expect(StopCommand.parse(guarded)).toEqual(guarded);
    expect(StopCommand.parse({ ...stop, unknown: 1 })).toEqual(stop);
  });

  it.each([
    ["type of a restart", { type: "fleetheal.cmd.v1.restart" }],
    ["version 2", { v: 2 }],
    ["short command id", { commandId: "abc" }],
    ["command id with >", { commandId: "stop->0123456789" }],
    ["name instead of container id", { containerId: "web" }],
    ["dotted host", { host: "host.example" }],
    ["reason too long", { reason: "x".repeat(513) }],
    ["empty requestedBy", { requestedBy: "" }],
    ["fractional stop timeout", { stopTimeoutSeconds: 2.5 }],
    ["stop timeout above 3600", { stopTimeoutSeconds: 3601 }],
    ["no issuedAt", { issuedAt: undefined }],
    ["no expiresAt", { expiresAt: undefined }],
  ])("rejects %s", (_why, patch) => {
    expect(StopCommand.safeParse({ ...stop, ...patch }).success).toBe(false);
  });
});

describe("CommandOutcome", () => {
  it("lists every outcome", () => {
    expect(CommandOutcome.options).toEqual([
      "restarted",
      "stopped",
      "recreated",
      "refused",
      "skipped",
      "failed",
    ]);
  });
});

describe("CommandReply", () => {
  it("accepts a realistic reply", () => {
    expect(CommandReply.parse(reply)).toEqual(reply);
  });

  it("accepts a stop reply", () => {
    const stopped = {
      ...reply,
      verb: "stop",
      commandId: stop.commandId,
      outcome: "stopped",
      code: "stopped",
      message: "stopped (stop timeout 30s)",
    };
    expect(CommandReply.parse(stopped)).toEqual(stopped);
  });

  it.each(["restarted", "stopped", "refused", "skipped", "failed"])(
    "accepts outcome %s",
    (outcome) => {
      expect(CommandReply.safeParse({ ...reply, outcome }).success).toBe(true);
    },
  );

  it.each([
    ["unknown outcome", { outcome: "pending" }],
    ["negative duration", { durationMs: -1 }],
    ["missing duplicate", { duplicate: undefined }],
    ["code too long", { code: "x".repeat(65) }],
    ["message too long", { message: "x".repeat(2049) }],
    ["type of the command", { type: "fleetheal.cmd.v1.restart" }],
    ["the old reply type", { type: "fleetheal.cmd.v1.restart.reply" }],
    ["missing verb", { verb: undefined }],
    ["a verb that changes nothing", { verb: "inspect" }],
    ["startedAt not a date", { startedAt: "now" }],
  ])("rejects %s", (_why, patch) => {
    expect(CommandReply.safeParse({ ...reply, ...patch }).success).toBe(false);
  });
});

describe("InspectRequest", () => {
  const request = { type: "fleetheal.cmd.v1.inspect", v: 1, host: "host-a", containerId: CID };

  it("accepts a request, with a short id too", () => {
    expect(InspectRequest.parse(request)).toEqual(request);
    expect(InspectRequest.safeParse({ ...request, containerId: CID.slice(0, 12) }).success).toBe(
      true,
    );
  });

  it.each([
    ["type of the reply", { type: "fleetheal.cmd.v1.inspect.reply" }],
    ["name instead of container id", { containerId: "web" }],
    ["missing container id", { containerId: undefined }],
    ["wildcard host", { host: ">" }],
    ["version 2", { v: 2 }],
  ])("rejects %s", (_why, patch) => {
    expect(InspectRequest.safeParse({ ...request, ...patch }).success).toBe(false);
  });
});

describe("InspectReply", () => {
  const inspectReply = { type: "fleetheal.cmd.v1.inspect.reply", v: 1, host: "host-a", container };

  it("accepts a reply carrying one container snapshot", () => {
    expect(InspectReply.parse(inspectReply)).toEqual(inspectReply);
  });

  it("accepts a probed container with compose details", () => {
    const probed = {
      ...container,
      health: "healthy",
      healthSource: "probe",
      failingStreak: 0,
      lastHealthOutput: "HTTP 200",
      probe: { kind: "http", target: ":8080/healthz" },
      networkMode: "shop_default",
      compose: { project: "shop", service: "web" },
    };
    expect(InspectReply.parse({ ...inspectReply, container: probed }).container).toEqual(probed);
  });

  it.each([
    ["no container", { container: undefined }],
    ["a container without healthSource", { container: { ...container, healthSource: undefined } }],
    [
      "a container without failingStreak",
      { container: { ...container, failingStreak: undefined } },
    ],
    ["the request type", { type: "fleetheal.cmd.v1.inspect" }],
  ])("rejects %s", (_why, patch) => {
    expect(InspectReply.safeParse({ ...inspectReply, ...patch }).success).toBe(false);
  });
});

describe("SnapshotRequest", () => {
  const request = { type: "fleetheal.cmd.v1.snapshot", v: 1, host: "host-a" };

  it("accepts a request", () => {
    expect(SnapshotRequest.parse(request)).toEqual(request);
  });

  it.each([
    ["type of another verb", { type: "fleetheal.cmd.v1.inspect" }],
    ["missing host", { host: undefined }],
    ["dotted host", { host: "a.b" }],
    ["version 0", { v: 0 }],
  ])("rejects %s", (_why, patch) => {
    expect(SnapshotRequest.safeParse({ ...request, ...patch }).success).toBe(false);
  });
});
