import { describe, expect, it } from "vitest";
import { RestartCommand, RestartReply } from "./restart-command.js";

const command = {
  type: "fleetheal.cmd.v1.restart",
  v: 1,
  commandId: "heal-0123456789abcdef0123456789abcdef",
  host: "host-a",
  containerId: "4f1c2b3a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a",
  reason: "unhealthy",
  requestedBy: "handler:heal",
  incident: "2026-11-27T19:41:29.98123456Z",
  stopTimeoutSeconds: 10,
};

const reply = {
  type: "fleetheal.cmd.v1.restart.reply",
  v: 1,
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

describe("RestartCommand", () => {
  it("accepts a realistic command", () => {
    expect(RestartCommand.parse(command)).toEqual(command);
  });

  it("accepts a command without incident and stop timeout", () => {
    const { incident: _i, stopTimeoutSeconds: _s, ...minimal } = command;
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
  ])("rejects %s", (_why, patch) => {
    expect(RestartCommand.safeParse({ ...command, ...patch }).success).toBe(false);
  });
});

describe("RestartReply", () => {
  it("accepts a realistic reply", () => {
    expect(RestartReply.parse(reply)).toEqual(reply);
  });

  it.each(["restarted", "refused", "skipped", "failed"])("accepts outcome %s", (outcome) => {
    expect(RestartReply.safeParse({ ...reply, outcome }).success).toBe(true);
  });

  it.each([
    ["unknown outcome", { outcome: "pending" }],
    ["negative duration", { durationMs: -1 }],
    ["missing duplicate", { duplicate: undefined }],
    ["code too long", { code: "x".repeat(65) }],
    ["type of the command", { type: "fleetheal.cmd.v1.restart" }],
  ])("rejects %s", (_why, patch) => {
    expect(RestartReply.safeParse({ ...reply, ...patch }).success).toBe(false);
  });
});
