import { describe, expect, it } from "vitest";
import {
  CommandReply,
  type RecreateCommand,
  type RestartCommand,
  type StopCommand,
} from "../contracts/index.js";
import { MemoryDocker } from "../test/support/agent-memory-ports.js";
import { CommandExecutor } from "./command-executor.js";
import { type ContainerDetails, RecreateError } from "./docker-engine.js";

const CID = "4f1c2b3a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a";
const PARENT = "aa".repeat(32);
const STARTED_AT = "2026-11-27T19:41:29.98123456Z";
const ISSUED = Date.parse("2026-11-27T19:41:35.000Z");

function container(patch: Partial<ContainerDetails> = {}): ContainerDetails {
  return {
    id: CID,
    name: "web",
    image: "registry.example:5000/web:1",
    state: "running",
    health: "unhealthy",
    labels: { autoheal: "true" },
    startedAt: STARTED_AT,
    restartCount: 0,
    failingStreak: 3,
    hasHealthcheck: true,
    ipAddresses: [],
    ...patch,
  };
}

const fields = {
  v: 1 as const,
  host: "host-a",
  containerId: CID,
  reason: "unhealthy",
  requestedBy: "handler:heal",
  issuedAt: new Date(ISSUED).toISOString(),
  expiresAt: new Date(ISSUED + 30_000).toISOString(),
};

function recreate(patch: Partial<RecreateCommand> = {}): RecreateCommand {
  return {
    type: "fleetheal.cmd.v1.recreate",
    commandId: "recreate-0123456789",
    ...fields,
    ...patch,
  };
}

function setup(details: Partial<ContainerDetails> = {}) {
  const docker = new MemoryDocker();
  docker.add(container(details));
  let clock = ISSUED;
  const executor = new CommandExecutor({
    host: "host-a",
    docker,
    optIn: { label: "autoheal", watchAll: false },
    defaultStopTimeoutSeconds: 10,
    clockSkewMs: 2_000,
    now: () => clock,
  });
  const advance = (ms: number) => {
    clock += ms;
  };
  return { docker, executor, advance };
}

describe("CommandExecutor: recreate", () => {
  it("recreates an opted-in container and names the new one, once per command id", async () => {
    const { docker, executor } = setup({
      labels: { autoheal: "true", "autoheal.stop.timeout": "4" },
    });
    const reply = CommandReply.parse(await executor.execute(recreate()));
    const newId = [...CID].reverse().join("");
    expect(reply).toMatchObject({
      verb: "recreate",
      outcome: "recreated",
      code: "recreated",
      newContainerId: newId,
      duplicate: false,
    });
    expect(reply.message).toBe(`recreated as ${newId.slice(0, 12)} (stop timeout 4s)`);
    expect(docker.recreates).toEqual([
      { id: CID, options: { stopTimeoutSeconds: 4 }, newContainerId: newId },
    ]);
    expect(docker.pulls).toEqual([]);
    const again = await executor.execute(recreate());
    expect(again).toMatchObject({ outcome: "recreated", newContainerId: newId, duplicate: true });
    expect(docker.recreates).toHaveLength(1);
  });

  it("pulls the image reference first, within what is left of the command's lifetime", async () => {
    const { docker, executor, advance } = setup();
    advance(10_000);
    const reply = await executor.execute(recreate({ pull: true }));
    expect(reply).toMatchObject({ outcome: "recreated" });
    expect(reply.message).toContain("registry.example:5000/web:1 pulled");
    // 30 s lifetime, 10 s gone; the allowed clock skew gives it no more.
    expect(docker.pulls).toEqual([{ reference: "registry.example:5000/web:1", timeoutMs: 20_000 }]);
  });

  it("changes nothing when the pull fails, and says so", async () => {
    const { docker, executor } = setup();
    docker.pullError = new Error("manifest unknown");
    const reply = await executor.execute(recreate({ pull: true }));
    expect(reply).toMatchObject({ outcome: "failed", code: "pull-failed" });
    expect(reply.message).toContain("manifest unknown");
    expect(docker.recreates).toEqual([]);
    expect(docker.containers.has(CID)).toBe(true);
  });

  it("answers a failed recreate with Docker's error, and a refused one with its code", async () => {
    const failed = setup();
    failed.docker.recreateError = new RecreateError(
      "start failed: port is already allocated; the old container is back as web, running",
      "start",
      true,
    );
    expect(await failed.executor.execute(recreate())).toMatchObject({
      outcome: "failed",
      code: "docker-error",
      message: expect.stringContaining("the old container is back as web, running"),
    });
    const refused = setup();
    refused.docker.recreateError = new RecreateError("runs with --rm", "check", true, {
      refusal: "auto-remove",
    });
    expect(await refused.executor.execute(recreate())).toMatchObject({
      outcome: "refused",
      code: "auto-remove",
    });
  });

  it("moves a network child onto a new parent, and refuses networkParent for any other container", async () => {
    const child = setup({ networkMode: "container:0123456789ab" });
    const reply = await child.executor.execute(recreate({ networkParent: PARENT }));
    expect(reply).toMatchObject({ outcome: "recreated" });
    expect(child.docker.recreates[0]?.options).toEqual({
      stopTimeoutSeconds: 10,
      networkParent: PARENT,
    });
    for (const networkMode of ["none", "bridge", "host", undefined]) {
      const other = setup(networkMode === undefined ? {} : { networkMode });
      const refused = await other.executor.execute(recreate({ networkParent: PARENT }));
      expect(refused).toMatchObject({ outcome: "refused", code: "not-network-child" });
      expect(other.docker.recreates).toEqual([]);
    }
  });

  it("re-checks opt-in, host and state as for a restart", async () => {
    expect(
      await setup({ labels: { autoheal: "false" } }).executor.execute(recreate()),
    ).toMatchObject({ outcome: "refused", code: "not-opted-in" });
    expect(await setup().executor.execute(recreate({ host: "host-b" }))).toMatchObject({
      outcome: "refused",
      code: "wrong-host",
    });
    expect(await setup().executor.execute(recreate({ containerId: "f".repeat(64) }))).toMatchObject(
      { outcome: "refused", code: "not-found" },
    );
    expect(await setup({ state: "paused" }).executor.execute(recreate())).toMatchObject({
      outcome: "skipped",
      code: "paused",
    });
    expect(await setup({ state: "restarting" }).executor.execute(recreate())).toMatchObject({
      outcome: "skipped",
      code: "already-restarting",
    });
  });

  it("never runs a second command on a container while a recreate runs", async () => {
    const { docker, executor } = setup();
    let release = () => {};
    docker.recreateGate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const first = executor.execute(recreate());
    await new Promise((resolve) => setImmediate(resolve));
    const restart: RestartCommand = {
      type: "fleetheal.cmd.v1.restart",
      commandId: "restart-during-recreate",
      ...fields,
    };
    expect(await executor.execute(restart)).toMatchObject({
      outcome: "skipped",
      code: "already-restarting",
    });
    release();
    expect(await first).toMatchObject({ outcome: "recreated" });
    expect(docker.restarts).toEqual([]);
  });
});

describe("CommandExecutor: incident and requireUnhealthy for every verb", () => {
  const stop = (patch: Partial<StopCommand>): StopCommand => ({
    type: "fleetheal.cmd.v1.stop",
    commandId: "stop-0123456789",
    ...fields,
    ...patch,
  });

  it.each([
    ["stop", (p: Partial<StopCommand>) => stop(p)],
    ["recreate", (p: Partial<RecreateCommand>) => recreate(p)],
  ] as const)("%s: refuses a stale incident and a container that recovered", async (_, make) => {
    const stale = setup();
    expect(
      await stale.executor.execute(make({ incident: "2026-11-27T19:00:00.000000000Z" })),
    ).toMatchObject({ outcome: "skipped", code: "stale-incident" });
    const recovered = setup({ health: "healthy" });
    expect(await recovered.executor.execute(make({ requireUnhealthy: true }))).toMatchObject({
      outcome: "skipped",
      code: "not-unhealthy",
    });
    for (const { docker } of [stale, recovered]) {
      expect([...docker.stops, ...docker.recreates]).toEqual([]);
    }
    const current = setup();
    const acted = await current.executor.execute(
      make({ incident: "2026-11-27T19:41:29.981234560Z", requireUnhealthy: true }),
    );
    expect(["stopped", "recreated"]).toContain(acted.outcome);
  });
});
