import { describe, expect, it } from "vitest";
import { containerKey, parseContainerKey } from "./jetstream.js";
import { LedgerEntry, MonitoredContainer } from "./ledger.js";

const entry = {
  v: 1,
  host: "host-a",
  containerId: "4f1c2b3a9d8e",
  lastIncident: "2026-11-27T19:41:29.98123456Z",
  lastCommandId: "heal-0123456789abcdef0123456789abcdef",
  lastRestartAt: "2026-11-27T19:41:34.180Z",
  restarts: [
    {
      at: "2026-11-27T19:41:34.180Z",
      incident: "2026-11-27T19:41:29.98123456Z",
      commandId: "heal-0123456789abcdef0123456789abcdef",
      outcome: "pending",
    },
    {
      at: "2026-11-27T18:00:00.000Z",
      incident: "2026-11-27T17:00:00.5Z",
      commandId: "heal-fedcba9876543210fedcba9876543210",
      outcome: "restarted",
    },
  ],
};

describe("LedgerEntry", () => {
  it("accepts a realistic entry, defaulting the restart streak to 0", () => {
    expect(LedgerEntry.parse(entry)).toEqual({ ...entry, consecutiveRestarts: 0 });
  });

  it("accepts an entry with no history", () => {
    expect(
      LedgerEntry.safeParse({ v: 1, host: "h", containerId: "4f1c2b3a9d8e", restarts: [] }).success,
    ).toBe(true);
  });

  it.each([
    ["unknown outcome", { restarts: [{ ...entry.restarts[0], outcome: "maybe" }] }],
    ["more than 50 restarts", { restarts: Array.from({ length: 51 }, () => entry.restarts[1]) }],
    ["lastRestartAt not a date", { lastRestartAt: "soon" }],
    ["bad container id", { containerId: "web" }],
    ["missing restarts", { restarts: undefined }],
  ])("rejects %s", (_why, patch) => {
    expect(LedgerEntry.safeParse({ ...entry, ...patch }).success).toBe(false);
  });
});

describe("MonitoredContainer", () => {
  const monitored = {
    v: 1,
    host: "host-a",
    containerId: "4f1c2b3a9d8e",
    name: "web",
    image: "nginx:1.27",
    firstSeenAt: "2026-11-27T10:00:00.000Z",
    lastStartedAt: "2026-11-27T19:41:30.000Z",
    starts: 3,
  };

  it("accepts a realistic entry", () => {
    expect(MonitoredContainer.parse(monitored)).toEqual(monitored);
  });

  it("rejects zero starts", () => {
    expect(MonitoredContainer.safeParse({ ...monitored, starts: 0 }).success).toBe(false);
  });
});

describe("containerKey", () => {
  it("is <host>.<container id>", () => {
    expect(containerKey("host-a", "4f1c2b3a9d8e")).toBe("host-a.4f1c2b3a9d8e");
  });
});

describe("parseContainerKey", () => {
  it("reads back what containerKey wrote", () => {
    expect(parseContainerKey(containerKey("host-a", "4f1c2b3a9d8e"))).toEqual({
      host: "host-a",
      containerId: "4f1c2b3a9d8e",
    });
  });

  it.each(["", "host-a", ".4f1c2b3a9d8e", "host-a."])("rejects %j", (key) => {
    expect(parseContainerKey(key)).toBeUndefined();
  });
});
