import { describe, expect, it } from "vitest";
import { CommandReply, type RestartCommand, StopCommand } from "../contracts/index.js";
import { CommandExecutor, type CommandExecutorOptions } from "./command-executor.js";
import type {
  ContainerDetails,
  DockerEngine,
  ExecResult,
  RecreateResult,
} from "./docker-engine.js";

const CID = "4f1c2b3a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a";
const STARTED_AT = "2026-11-27T19:41:29.98123456Z";

/**
 * An in-memory Docker engine: containers in a map, restarts and stops recorded, restarts
 * optionally held open.
 */
class MemoryDocker implements DockerEngine {
  readonly containers = new Map<string, ContainerDetails>();
  readonly restarts: { id: string; stopTimeoutSeconds: number }[] = [];
  readonly stops: { id: string; stopTimeoutSeconds: number }[] = [];
  inspectError: Error | undefined;
  restartError: Error | undefined;
  stopError: Error | undefined;
  /** When set, restart() waits for the test to call the returned release function. */
  holdRestarts = false;
  private readonly held: (() => void)[] = [];

  add(details: Partial<ContainerDetails> = {}): ContainerDetails {
    const c: ContainerDetails = {
      id: CID,
      name: "web",
      image: "nginx:1.27",
      state: "running",
      health: "unhealthy",
      labels: { autoheal: "true" },
      startedAt: STARTED_AT,
      restartCount: 0,
      failingStreak: 3,
      hasHealthcheck: true,
      ipAddresses: ["172.17.0.2"],
      ...details,
    };
    this.containers.set(c.id, c);
    return c;
  }

  releaseRestarts(): void {
    for (const release of this.held.splice(0)) release();
  }

  async openEventStream(): Promise<NodeJS.ReadableStream> {
    throw new Error("not used");
  }
  async clock(): Promise<string> {
    throw new Error("not used");
  }
  async exec(): Promise<ExecResult> {
    throw new Error("not used");
  }
  async pull(): Promise<void> {
    throw new Error("not used: recreates are tested in command-executor-recreate.test.ts");
  }
  async recreate(): Promise<RecreateResult> {
    throw new Error("not used: recreates are tested in command-executor-recreate.test.ts");
  }
  async listContainerIds(): Promise<string[]> {
    return [...this.containers.keys()];
  }
  async inspect(id: string): Promise<ContainerDetails | undefined> {
    if (this.inspectError) throw this.inspectError;
    // Docker resolves unique id prefixes.
    for (const c of this.containers.values()) if (c.id.startsWith(id)) return { ...c };
    return undefined;
  }
  async restart(id: string, stopTimeoutSeconds: number): Promise<void> {
    this.restarts.push({ id, stopTimeoutSeconds });
    if (this.restartError) throw this.restartError;
    if (this.holdRestarts) await new Promise<void>((resolve) => this.held.push(resolve));
  }
  async stop(id: string, stopTimeoutSeconds: number): Promise<void> {
    this.stops.push({ id, stopTimeoutSeconds });
    if (this.stopError) throw this.stopError;
  }
  async version(): Promise<string> {
    return "20.10.24";
  }
}

function command(patch: Partial<RestartCommand> = {}): RestartCommand {
  return {
    type: "fleetheal.cmd.v1.restart",
    v: 1,
    commandId: "heal-0123456789abcdef",
    host: "host-a",
    containerId: CID,
    reason: "unhealthy",
    requestedBy: "handler:heal",
    issuedAt: "2026-11-27T19:41:35.000Z",
    expiresAt: "2026-11-27T19:42:05.000Z",
    ...patch,
  };
}

function stopCommand(patch: Partial<StopCommand> = {}): StopCommand {
  return StopCommand.parse({
    type: "fleetheal.cmd.v1.stop",
    v: 1,
    commandId: "stop-0123456789abcdef",
    host: "host-a",
    containerId: CID,
    reason: "operator asked",
    requestedBy: "gateway:alice",
    issuedAt: "2026-11-27T19:41:35.000Z",
    expiresAt: "2026-11-27T19:42:05.000Z",
    ...patch,
  });
}

function setup(
  options: Pick<
    CommandExecutorOptions,
    "currentView" | "healthOf" | "dedupWindowMs" | "dedupCapacity" | "clockSkewMs"
  > & {
    watchAll?: boolean;
    now?: () => number;
  } = {},
) {
  const docker = new MemoryDocker();
  let clock = Date.parse("2026-11-27T19:41:35.000Z");
  const executor = new CommandExecutor({
    host: "host-a",
    docker,
    optIn: { label: "autoheal", watchAll: options.watchAll ?? false },
    defaultStopTimeoutSeconds: 10,
    now: options.now ?? (() => clock),
    ...(options.currentView ? { currentView: options.currentView } : {}),
    ...(options.healthOf ? { healthOf: options.healthOf } : {}),
    ...(options.dedupWindowMs === undefined ? {} : { dedupWindowMs: options.dedupWindowMs }),
    ...(options.dedupCapacity === undefined ? {} : { dedupCapacity: options.dedupCapacity }),
    ...(options.clockSkewMs === undefined ? {} : { clockSkewMs: options.clockSkewMs }),
  });
  return {
    docker,
    executor,
    advance: (ms: number) => {
      clock += ms;
    },
  };
}

describe("CommandExecutor", () => {
  it("checks a command against the agent's current view without asking Docker", async () => {
    const asked: string[] = [];
    let view: ContainerDetails | undefined;
    const { docker, executor } = setup({
      currentView: async (id) => {
        asked.push(id);
        return view;
      },
    });
    view = docker.add();
    docker.inspectError = new Error("inspect must not be called");
    const reply = await executor.execute(command());
    expect(asked).toEqual([CID]);
    expect(reply.outcome).toBe("restarted");
    expect(docker.restarts).toEqual([{ id: CID, stopTimeoutSeconds: 10 }]);
  });

  it("asks Docker when the agent's view cannot vouch for the container", async () => {
    const { docker, executor } = setup({ currentView: async () => undefined });
    docker.add({ health: "healthy" });
    const reply = await executor.execute(command({ requireUnhealthy: true }));
    expect(reply).toMatchObject({ outcome: "skipped", code: "not-unhealthy" });
    docker.inspectError = new Error("daemon gone");
    const failed = await executor.execute(command({ commandId: "heal-second-command-01" }));
    expect(failed).toMatchObject({ outcome: "failed", code: "docker-error" });
  });

  it("takes a container whose last start failed for the incident's trouble still", async () => {
    const { docker, executor } = setup();
    docker.add({ state: "exited", health: "none", startError: "bind source path does not exist" });
    const retried = await executor.execute(command({ requireUnhealthy: true }));
    expect(retried).toMatchObject({ outcome: "restarted" });
    const stopped = setup();
    stopped.docker.add({ state: "exited", health: "none" });
    const left = await stopped.executor.execute(command({ requireUnhealthy: true }));
    expect(left).toMatchObject({ outcome: "skipped", code: "not-unhealthy" });
  });

  it("takes a label probe's verdict as the health of a container without a HEALTHCHECK", async () => {
    const probed = (details: ContainerDetails) =>
      details.hasHealthcheck ? details.health : ("unhealthy" as const);
    const withProbe = setup({ healthOf: probed });
    withProbe.docker.add({ hasHealthcheck: false, health: "none" });
    const reply = await withProbe.executor.execute(command({ requireUnhealthy: true }));
    expect(reply).toMatchObject({ outcome: "restarted" });

    const dockerOnly = setup();
    dockerOnly.docker.add({ hasHealthcheck: false, health: "none" });
    const skipped = await dockerOnly.executor.execute(command({ requireUnhealthy: true }));
    expect(skipped).toMatchObject({ outcome: "skipped", code: "not-unhealthy" });
  });

  it("restarts an opted-in container once with the default stop timeout", async () => {
    const { docker, executor } = setup();
    docker.add();
    const reply = await executor.execute(command());
    expect(CommandReply.parse(reply)).toEqual({
      type: "fleetheal.cmd.v1.reply",
      v: 1,
      verb: "restart",
      commandId: "heal-0123456789abcdef",
      host: "host-a",
      containerId: CID,
      outcome: "restarted",
      code: "restarted",
      message: "restarted (stop timeout 10s)",
      duplicate: false,
      startedAt: "2026-11-27T19:41:35.000Z",
      durationMs: 0,
    });
    expect(docker.restarts).toEqual([{ id: CID, stopTimeoutSeconds: 10 }]);
    expect(docker.stops).toEqual([]);
  });

  it("restarts by the full id when the command names a short id", async () => {
    const { docker, executor } = setup();
    docker.add();
    const reply = await executor.execute(command({ containerId: CID.slice(0, 12) }));
    expect(reply.outcome).toBe("restarted");
    expect(docker.restarts).toEqual([{ id: CID, stopTimeoutSeconds: 10 }]);
  });

  it("reports how long Docker took", async () => {
    let t = 1_000;
    const { docker, executor } = setup({ now: () => t });
    docker.add();
    docker.holdRestarts = true;
    const pending = executor.execute(command());
    await Promise.resolve();
    await Promise.resolve();
    t += 750;
    docker.releaseRestarts();
    expect((await pending).durationMs).toBe(750);
  });

  describe("stop timeout", () => {
    it("command.stopTimeoutSeconds wins over the default", async () => {
      const { docker, executor } = setup();
      docker.add();
      await executor.execute(command({ stopTimeoutSeconds: 3 }));
      expect(docker.restarts).toEqual([{ id: CID, stopTimeoutSeconds: 3 }]);
    });

    it("the command's explicit value wins over the autoheal.stop.timeout label, as docker restart -t", async () => {
      const { docker, executor } = setup();
      docker.add({ labels: { autoheal: "true", "autoheal.stop.timeout": "25" } });
      const reply = await executor.execute(command({ stopTimeoutSeconds: 3 }));
      expect(docker.restarts).toEqual([{ id: CID, stopTimeoutSeconds: 3 }]);
      expect(reply.message).toBe("restarted (stop timeout 3s)");
    });

    it("the autoheal.stop.timeout label wins over the default when the command sets none", async () => {
      const { docker, executor } = setup();
      docker.add({ labels: { autoheal: "true", "autoheal.stop.timeout": "25" } });
      const reply = await executor.execute(command());
      expect(docker.restarts).toEqual([{ id: CID, stopTimeoutSeconds: 25 }]);
      expect(reply.message).toBe("restarted (stop timeout 25s)");
    });

    it("a label of 0 is honoured", async () => {
      const { docker, executor } = setup();
      docker.add({ labels: { autoheal: "true", "autoheal.stop.timeout": "0" } });
      await executor.execute(command());
      expect(docker.restarts).toEqual([{ id: CID, stopTimeoutSeconds: 0 }]);
    });

    it.each(["abc", "-1", "99999", "2.5", "", "  "])(
      "a bad label value %j is ignored (command value used)",
      async (value) => {
        const { docker, executor } = setup();
        docker.add({ labels: { autoheal: "true", "autoheal.stop.timeout": value } });
        const reply = await executor.execute(command({ stopTimeoutSeconds: 7 }));
        expect(reply.outcome).toBe("restarted");
        expect(docker.restarts).toEqual([{ id: CID, stopTimeoutSeconds: 7 }]);
      },
    );

    it("a bad label and no command value fall back to the default", async () => {
      const { docker, executor } = setup();
      docker.add({ labels: { autoheal: "true", "autoheal.stop.timeout": "abc" } });
      await executor.execute(command());
      expect(docker.restarts).toEqual([{ id: CID, stopTimeoutSeconds: 10 }]);
    });
  });

  describe("refusals", () => {
    it("refuses a container that has not opted in", async () => {
      const { docker, executor } = setup();
      docker.add({ labels: { autoheal: "false" } });
      const reply = await executor.execute(command());
      expect(reply).toMatchObject({
        outcome: "refused",
        code: "not-opted-in",
        message: "container has not opted in (label autoheal=true)",
        duplicate: false,
      });
      expect(docker.restarts).toEqual([]);
    });

    it("refuses a container with no labels", async () => {
      const { docker, executor } = setup();
      docker.add({ labels: {} });
      expect((await executor.execute(command())).code).toBe("not-opted-in");
      expect(docker.restarts).toEqual([]);
    });

    it("refuses an unknown container", async () => {
      const { docker, executor } = setup();
      const reply = await executor.execute(command());
      expect(reply).toMatchObject({ outcome: "refused", code: "not-found" });
      expect(docker.restarts).toEqual([]);
    });

    it("refuses a command for another host without asking Docker", async () => {
      const { docker, executor } = setup();
      docker.add();
      docker.inspectError = new Error("must not be called");
      const reply = await executor.execute(command({ host: "host-b" }));
      expect(reply).toMatchObject({
        outcome: "refused",
        code: "wrong-host",
        host: "host-a",
        message: "this agent serves host host-a",
      });
      expect(docker.restarts).toEqual([]);
    });

    it("watchAll accepts unlabelled containers", async () => {
      const { docker, executor } = setup({ watchAll: true });
      docker.add({ labels: {} });
      expect((await executor.execute(command())).outcome).toBe("restarted");
      expect(docker.restarts).toHaveLength(1);
    });
  });

  describe("skips", () => {
    it.each([
      ["paused", "paused"],
      ["restarting", "already-restarting"],
    ] as const)("skips a %s container", async (state, code) => {
      const { docker, executor } = setup();
      docker.add({ state });
      const reply = await executor.execute(command());
      expect(reply).toMatchObject({ outcome: "skipped", code });
      expect(docker.restarts).toEqual([]);
    });

    it.each(["healthy", "starting", "none"] as const)(
      "requireUnhealthy skips a container that is %s now",
      async (health) => {
        const { docker, executor } = setup();
        docker.add({ health });
        const reply = await executor.execute(command({ requireUnhealthy: true }));
        expect(reply).toMatchObject({
          outcome: "skipped",
          code: "not-unhealthy",
          message: `container is ${health} now, not unhealthy`,
        });
        expect(docker.restarts).toEqual([]);
      },
    );

    it("requireUnhealthy restarts a container that is still unhealthy", async () => {
      const { docker, executor } = setup();
      docker.add({ health: "unhealthy" });
      expect((await executor.execute(command({ requireUnhealthy: true }))).outcome).toBe(
        "restarted",
      );
      expect(docker.restarts).toHaveLength(1);
    });

    it("without requireUnhealthy a healthy container is restarted (manual restart)", async () => {
      const { docker, executor } = setup();
      docker.add({ health: "healthy" });
      expect((await executor.execute(command())).outcome).toBe("restarted");
    });

    it("skips a stale incident", async () => {
      const { docker, executor } = setup();
      docker.add({ startedAt: "2026-11-27T19:45:00.123456789Z" });
      const reply = await executor.execute(command({ incident: STARTED_AT }));
      expect(reply).toMatchObject({ outcome: "skipped", code: "stale-incident" });
      expect(reply.message).toBe(
        `container was started again at 2026-11-27T19:45:00.123456789Z after the incident at ${STARTED_AT}`,
      );
      expect(docker.restarts).toEqual([]);
    });

    it("skips when the container has no StartedAt but the command names an incident", async () => {
      const { docker, executor } = setup();
      docker.add({ startedAt: undefined });
      const reply = await executor.execute(command({ incident: STARTED_AT }));
      expect(reply.code).toBe("stale-incident");
      expect(docker.restarts).toEqual([]);
    });

    it.each([STARTED_AT, "2026-11-27T19:41:29.981Z", "2026-11-27T20:41:29.981+01:00"])(
      "accepts incident %s for the same instant",
      async (incident) => {
        const { docker, executor } = setup();
        docker.add();
        expect((await executor.execute(command({ incident }))).outcome).toBe("restarted");
        expect(docker.restarts).toHaveLength(1);
      },
    );

    it("skips an incident a few nanoseconds from the container's StartedAt", async () => {
      const { docker, executor } = setup();
      docker.add();
      const reply = await executor.execute(command({ incident: "2026-11-27T19:41:29.981234567Z" }));
      expect(reply.code).toBe("stale-incident");
      expect(docker.restarts).toEqual([]);
    });
  });

  describe("at most once", () => {
    it("the same commandId twice restarts once; the repeat says duplicate", async () => {
      const { docker, executor } = setup();
      docker.add();
      const first = await executor.execute(command());
      const second = await executor.execute(command());
      expect(docker.restarts).toHaveLength(1);
      expect(first.duplicate).toBe(false);
      expect(second).toEqual({ ...first, duplicate: true });
    });

    it("the same commandId sent concurrently restarts once", async () => {
      const { docker, executor } = setup();
      docker.add();
      docker.holdRestarts = true;
      const a = executor.execute(command());
      const b = executor.execute(command());
      await Promise.resolve();
      await Promise.resolve();
      docker.releaseRestarts();
      const [ra, rb] = await Promise.all([a, b]);
      expect(docker.restarts).toHaveLength(1);
      expect(ra.duplicate).toBe(false);
      expect(rb).toEqual({ ...ra, duplicate: true });
    });

    it("concurrent different commands for one container: one restart, the other skipped", async () => {
      const { docker, executor } = setup();
      docker.add();
      docker.holdRestarts = true;
      const a = executor.execute(command({ commandId: "heal-aaaaaaaaaaaa" }));
      const b = executor.execute(command({ commandId: "gateway-bbbbbbbbbbbb" }));
      const rb = await b;
      expect(rb).toMatchObject({
        outcome: "skipped",
        code: "already-restarting",
        commandId: "gateway-bbbbbbbbbbbb",
      });
      docker.releaseRestarts();
      expect((await a).outcome).toBe("restarted");
      expect(docker.restarts).toHaveLength(1);
    });

    it("a new command after the first restart finished restarts again", async () => {
      const { docker, executor } = setup();
      docker.add();
      await executor.execute(command({ commandId: "cmd-00000001" }));
      await executor.execute(command({ commandId: "cmd-00000002" }));
      expect(docker.restarts).toHaveLength(2);
    });

    it("forgets command ids after the dedup window", async () => {
      const { docker, executor, advance } = setup();
      docker.add();
      await executor.execute(command());
      advance(10 * 60 * 1000 + 1);
      const again = await executor.execute(command());
      expect(again.duplicate).toBe(false);
      expect(docker.restarts).toHaveLength(2);
      expect(executor.replayFloorMs).toBeUndefined();
    });

    it("remembers an id until its expiresAt plus the skew, even past the dedup window", async () => {
      const { docker, executor, advance } = setup({ dedupWindowMs: 1_000, clockSkewMs: 30_000 });
      docker.add();
      // Expires 30 s after issue: remembered until 60 s after it.
      await executor.execute(command());
      advance(59_999);
      expect((await executor.execute(command())).duplicate).toBe(true);
      advance(2);
      expect((await executor.execute(command())).duplicate).toBe(false);
      expect(docker.restarts).toHaveLength(2);
    });

    it("a command sent again with a later expiry is remembered as long as that", async () => {
      const { docker, executor, advance } = setup({ dedupWindowMs: 1_000, clockSkewMs: 0 });
      docker.add();
      await executor.execute(command());
      advance(20_000);
      const resent = command({
        issuedAt: "2026-11-27T19:41:55.000Z",
        expiresAt: "2026-11-27T19:42:25.000Z",
      });
      expect((await executor.execute(resent)).duplicate).toBe(true);
      // Past the first attempt's expiry, within the second's.
      advance(25_000);
      expect((await executor.execute(resent)).duplicate).toBe(true);
      expect(docker.restarts).toHaveLength(1);
    });

    it("forgetting an unexpired id early sets the replay floor to its issue time", async () => {
      const { docker, executor, advance } = setup({ dedupCapacity: 2, dedupWindowMs: 1_000 });
      docker.add();
      const at = (s: number) => ({
        issuedAt: `2026-11-27T19:41:${s}.000Z`,
        expiresAt: `2026-11-27T19:42:${s}.000Z`,
      });
      await executor.execute(command({ commandId: "cmd-00000001", ...at(35) }));
      await executor.execute(command({ commandId: "cmd-00000002", ...at(36) }));
      await executor.execute(command({ commandId: "cmd-00000003", ...at(37) }));
      expect(executor.replayFloorMs).toBeUndefined();
      await executor.execute(command({ commandId: "cmd-00000004", ...at(38) }));
      // The memory holds at most two plus the new one: the first had to go unexpired.
      expect(executor.replayFloorMs).toBe(Date.parse("2026-11-27T19:41:35.000Z"));
      // Past every expiry, forgetting raises no floor.
      advance(120_000);
      await executor.execute(command({ commandId: "cmd-00000005", ...at(39) }));
      await executor.execute(command({ commandId: "cmd-00000006", ...at(40) }));
      await executor.execute(command({ commandId: "cmd-00000007", ...at(41) }));
      expect(executor.replayFloorMs).toBe(Date.parse("2026-11-27T19:41:35.000Z"));
    });
  });

  describe("docker errors", () => {
    it("a failing restart -> failed docker-error", async () => {
      const { docker, executor } = setup();
      docker.add();
      docker.restartError = Object.assign(new Error("container is marked for removal"), {
        code: "EDOCKER",
      });
      const reply = await executor.execute(command());
      expect(reply).toMatchObject({
        outcome: "failed",
        code: "docker-error",
        message: "restart failed: container is marked for removal (EDOCKER)",
      });
      expect(CommandReply.safeParse(reply).success).toBe(true);
    });

    it("a failing inspect -> failed docker-error", async () => {
      const { docker, executor } = setup();
      docker.add();
      docker.inspectError = new Error("connect ENOENT /var/run/docker.sock");
      const reply = await executor.execute(command());
      expect(reply).toMatchObject({
        outcome: "failed",
        code: "docker-error",
        message: "inspect failed: connect ENOENT /var/run/docker.sock",
      });
      expect(docker.restarts).toEqual([]);
    });

    it("a failed restart releases the container for the next command", async () => {
      const { docker, executor } = setup();
      docker.add();
      docker.restartError = new Error("boom");
      await executor.execute(command({ commandId: "cmd-00000001" }));
      docker.restartError = undefined;
      const reply = await executor.execute(command({ commandId: "cmd-00000002" }));
      expect(reply.outcome).toBe("restarted");
      expect(docker.restarts).toHaveLength(2);
    });
  });

  describe("stop", () => {
    it("stops an opted-in container with the default stop timeout", async () => {
      const { docker, executor } = setup();
      docker.add();
      const reply = await executor.execute(stopCommand());
      expect(CommandReply.parse(reply)).toEqual({
        type: "fleetheal.cmd.v1.reply",
        v: 1,
        verb: "stop",
        commandId: "stop-0123456789abcdef",
        host: "host-a",
        containerId: CID,
        outcome: "stopped",
        code: "stopped",
        message: "stopped (stop timeout 10s)",
        duplicate: false,
        startedAt: "2026-11-27T19:41:35.000Z",
        durationMs: 0,
      });
      expect(docker.stops).toEqual([{ id: CID, stopTimeoutSeconds: 10 }]);
      expect(docker.restarts).toEqual([]);
    });

    it("stops by the full id; the label's stop timeout wins when the command sets none", async () => {
      const { docker, executor } = setup();
      docker.add({ labels: { autoheal: "true", "autoheal.stop.timeout": "25" } });
      const reply = await executor.execute(stopCommand({ containerId: CID.slice(0, 12) }));
      expect(reply).toMatchObject({ outcome: "stopped", message: "stopped (stop timeout 25s)" });
      expect(docker.stops).toEqual([{ id: CID, stopTimeoutSeconds: 25 }]);
    });

    it("command.stopTimeoutSeconds wins over the default", async () => {
      const { docker, executor } = setup();
      docker.add();
      await executor.execute(stopCommand({ stopTimeoutSeconds: 2 }));
      expect(docker.stops).toEqual([{ id: CID, stopTimeoutSeconds: 2 }]);
    });

    it("a healthy container is stopped (no health or incident checks for stop)", async () => {
      const { docker, executor } = setup();
      docker.add({ health: "healthy", startedAt: "2026-11-27T19:45:00.123456789Z" });
      expect((await executor.execute(stopCommand())).outcome).toBe("stopped");
      expect(docker.stops).toHaveLength(1);
    });

    it("refuses a container that has not opted in", async () => {
      const { docker, executor } = setup();
      docker.add({ labels: { autoheal: "false", "autoheal.stop.timeout": "5" } });
      const reply = await executor.execute(stopCommand());
      expect(reply).toMatchObject({
        verb: "stop",
        outcome: "refused",
        code: "not-opted-in",
        message: "container has not opted in (label autoheal=true)",
        duplicate: false,
      });
      expect(CommandReply.safeParse(reply).success).toBe(true);
      expect(docker.stops).toEqual([]);
    });

    it("refuses an unknown container and another host's command", async () => {
      const { docker, executor } = setup();
      expect(await executor.execute(stopCommand())).toMatchObject({
        verb: "stop",
        outcome: "refused",
        code: "not-found",
      });
      docker.add();
      expect(
        await executor.execute(stopCommand({ commandId: "stop-other-host", host: "host-b" })),
      ).toMatchObject({ outcome: "refused", code: "wrong-host" });
      expect(docker.stops).toEqual([]);
    });

    it.each([
      ["paused", "paused"],
      ["restarting", "already-restarting"],
    ] as const)("skips a %s container", async (state, code) => {
      const { docker, executor } = setup();
      docker.add({ state });
      expect(await executor.execute(stopCommand())).toMatchObject({ outcome: "skipped", code });
      expect(docker.stops).toEqual([]);
    });

    it("the same commandId twice stops once; the repeat says duplicate", async () => {
      const { docker, executor } = setup();
      docker.add();
      const first = await executor.execute(stopCommand());
      const second = await executor.execute(stopCommand());
      expect(docker.stops).toHaveLength(1);
      expect(first.duplicate).toBe(false);
      expect(second).toEqual({ ...first, duplicate: true });
      // A new command id stops again.
      await executor.execute(stopCommand({ commandId: "stop-fedcba9876543210" }));
      expect(docker.stops).toHaveLength(2);
    });

    it("a stop while a restart of the same container runs is skipped", async () => {
      const { docker, executor } = setup();
      docker.add();
      docker.holdRestarts = true;
      const restart = executor.execute(command());
      const stop = await executor.execute(stopCommand());
      expect(stop).toMatchObject({ verb: "stop", outcome: "skipped", code: "already-restarting" });
      docker.releaseRestarts();
      expect((await restart).outcome).toBe("restarted");
      expect(docker.stops).toEqual([]);
    });

    it("a failing stop -> failed docker-error, and releases the container", async () => {
      const { docker, executor } = setup();
      docker.add();
      docker.stopError = new Error("cannot stop container");
      const reply = await executor.execute(stopCommand());
      expect(reply).toMatchObject({
        verb: "stop",
        outcome: "failed",
        code: "docker-error",
        message: "stop failed: cannot stop container",
      });
      expect(CommandReply.safeParse(reply).success).toBe(true);
      docker.stopError = undefined;
      const again = await executor.execute(stopCommand({ commandId: "stop-fedcba9876543210" }));
      expect(again.outcome).toBe("stopped");
    });
  });
});
