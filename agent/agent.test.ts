import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { signCommand } from "../common/agent-commands.js";
import {
  commandSigningKeyFromSeed,
  generateCommandSigningSeed,
} from "../common/command-signing.js";
import {
  CommandReply,
  ContainerSnapshot,
  HostSnapshot,
  type RestartCommand,
  type StopCommand,
} from "../contracts/index.js";
import { MemoryDocker, MemoryNats } from "../test/support/agent-memory-ports.js";
import { Agent } from "./agent.js";
import { memoryBaseline } from "./baseline-file.js";
import type { AgentConfig } from "./config.js";
import type { ContainerDetails } from "./docker-engine.js";
import { timeNanoFromSince } from "./docker-event.js";

const HOST = "host-a";
const A = "a1".repeat(32);
const B = "b2".repeat(32);
const C = "c3".repeat(32);
/** Docker's clock when the agent connects. */
const T = "1795809600.000000000";
/** The agent's own clock (synthetic events are stamped with it). */
const NOW = new Date("2026-11-27T20:00:00.000Z");
const NOW_NANO = BigInt(NOW.getTime()) * 1_000_000n;
/** When the previous run of the agent took its last snapshot. */
const BASELINE_AT = "2026-11-27T19:30:00.000Z";
/** A run that started before the baseline. */
const OLD_START = "2026-11-27T19:00:00.123456789Z";
/** A run that started while the agent was away. */
const NEW_START = "2026-11-27T19:45:00.987654321Z";
/** Docker's id of an image, as inspect reports it. */
const IMAGE_ID = `sha256:${"d4".repeat(32)}`;

/** The handlers' signing key, which the agent trusts. */
const SIGNER = commandSigningKeyFromSeed(generateCommandSigningSeed());

const CONFIG: AgentConfig = {
  natsUrl: "nats://127.0.0.1:4222",
  hostId: HOST,
  dataDir: ".fleetheal",
  dockerHost: undefined,
  label: "autoheal",
  watchAll: false,
  heartbeatMs: 60_000,
  snapshotDebounceMs: 100,
  defaultStopTimeoutSeconds: 10,
  outboxCapacity: 1_000,
  eventQueueCapacity: 1_000,
  reconcileIntervalMs: 600_000,
  commandKeys: [SIGNER.publicKey],
  commandClockSkewMs: 30_000,
  insecureUnsignedCommands: false,
};

const LABELS = {
  autoheal: "true",
  "autoheal.stop.timeout": "20",
  "com.docker.compose.project": "shop",
  "com.docker.compose.service": "web",
  DB_PASSWORD: "hunter2",
  "traefik.http.routers.web.rule": "Host(`internal.example`)",
};
const PUBLISHED_LABELS = {
  autoheal: "true",
  "autoheal.stop.timeout": "20",
  "com.docker.compose.project": "shop",
  "com.docker.compose.service": "web",
};

function details(
  id: string,
  name: string,
  patch: Partial<ContainerDetails> = {},
): ContainerDetails {
  return {
    id,
    name,
    image: "nginx:1.27",
    state: "running",
    health: "healthy",
    labels: LABELS,
    startedAt: OLD_START,
    restartCount: 0,
    failingStreak: 0,
    hasHealthcheck: true,
    ipAddresses: ["172.17.0.2"],
    ...patch,
  };
}

/** A snapshot the previous run of the agent left, with these containers. */
function previousSnapshot(
  containers: ContainerDetails[],
  patch: Partial<HostSnapshot> = {},
): HostSnapshot {
  return HostSnapshot.parse({
    type: "fleetheal.snapshot.v1.host",
    v: 1,
    host: HOST,
    seq: 42,
    at: BASELINE_AT,
    heartbeatMs: 60_000,
    agent: {
      version: "0.1.0",
      startedAt: "2026-11-27T18:00:00.000Z",
      label: "autoheal",
      watchAll: false,
      uptimeSeconds: 5400,
    },
    outbox: { depth: 0, capacity: 1_000, published: 12, dropped: 0, unpublishable: 0 },
    docker: { status: "up", version: "24.0.7" },
    containers: containers.map(
      ({ hasHealthcheck: _h, ipAddresses: _ip, ...rest }): ContainerSnapshot => ({
        ...rest,
        labels: PUBLISHED_LABELS,
        optedIn: true,
        healthSource: "docker",
      }),
    ),
    ...patch,
  });
}

/** A line as Docker writes it on /events for container `id`. */
function dockerLine(
  id: string,
  action: string,
  timeNano: string,
  attributes: Record<string, string> = { ...LABELS, name: "web", image: "nginx:1.27" },
): string {
  return `${JSON.stringify({
    status: action,
    id,
    from: "nginx:1.27",
    Type: "container",
    Action: action,
    Actor: { ID: id, Attributes: attributes },
    scope: "local",
    time: Number(timeNano.slice(0, 10)),
    timeNano: 0,
  }).replace('"timeNano":0', `"timeNano":${timeNano}`)}\n`;
}

/**
 * The first timeNano a replay asks for, and the two values that are right after `last`: its own
 * time or one nanosecond later (Docker's `since` is inclusive; which one the pump uses is up to
 * it, as long as no event is delivered twice, which a separate test checks).
 */
const replayStart = (since: string | undefined) => timeNanoFromSince(since ?? "0");
const justAfter = (last: string) => [last, (BigInt(last) + 1n).toString()];

/** Waits, turn by turn of the event loop (no sleeping), until `condition` holds. */
async function until(condition: () => boolean, what = "condition"): Promise<void> {
  for (let i = 0; i < 2_000; i++) {
    if (condition()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error(`gave up waiting for ${what}`);
}

/** Lets pending promise callbacks, stream events and drains run. */
async function settle(turns = 10): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve));
}

let agents: Agent[] = [];

function setup(options: { previous?: HostSnapshot; config?: Partial<AgentConfig> } = {}) {
  const docker = new MemoryDocker(T);
  const nats = new MemoryNats();
  const baseline = memoryBaseline(options.previous);
  const logged: { level: number; msg: string }[] = [];
  const agent = new Agent({
    config: { ...CONFIG, ...options.config },
    docker,
    nats,
    baseline,
    log: pino(
      { level: "warn" },
      {
        write: (line: string) =>
          void logged.push(JSON.parse(line) as { level: number; msg: string }),
      },
    ),
    now: () => NOW,
  });
  return {
    docker,
    nats,
    baseline,
    agent,
    /** What the agent logged at warn and above. */
    logged,
    /** Starts the agent and waits for its first reconcile to finish. */
    async start() {
      agents.push(agent);
      await agent.start();
      await this.reconciled(1);
    },
    /** Waits until `n` reconciles have run to the end. */
    async reconciled(n: number) {
      await until(() => agent.stats.reconciles >= n, `reconcile #${n}`);
      await settle();
    },
    /** Fires a NATS reconnect (which reconciles) and waits for that reconcile. */
    async reconnect() {
      const n = agent.stats.reconciles + 1;
      nats.fireReconnect();
      await this.reconciled(n);
    },
  };
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval"] });
});

afterEach(async () => {
  await Promise.all(agents.map((a) => a.stop(0)));
  agents = [];
  vi.useRealTimers();
});

/** A synthetic event's timeNano: the agent's clock plus a sequence number. */
const synthetic = (seq: number) => (NOW_NANO + BigInt(seq)).toString();

describe("Agent start without a previous snapshot", () => {
  it("reports a container that is already unhealthy once; a healthy one not at all", async () => {
    const h = setup();
    h.docker.add(
      details(A, "web", {
        health: "unhealthy",
        failingStreak: 3,
        lastHealthOutput: "curl: (7) Failed to connect",
      }),
      details(B, "api", { startedAt: "2026-11-27T19:10:00Z" }),
    );
    await h.start();
    expect(h.nats.messages.map((m) => [m.subject, m.msgId])).toEqual([
      [`fleetheal.v1.evt.${HOST}.${A}.unhealthy`, `${HOST}:${A}:${synthetic(0)}:unhealthy`],
    ]);
    expect(h.nats.events()).toEqual([
      {
        type: "fleetheal.evt.v1.container",
        v: 1,
        id: `${HOST}:${A}:${synthetic(0)}:unhealthy`,
        host: HOST,
        action: "unhealthy",
        timeNano: synthetic(0),
        time: NOW.toISOString(),
        source: "reconcile",
        container: {
          id: A,
          name: "web",
          image: "nginx:1.27",
          labels: PUBLISHED_LABELS,
          optedIn: true,
          startedAt: OLD_START,
        },
        unhealthySince: NOW.toISOString(),
        healthOutput: "curl: (7) Failed to connect",
      },
    ]);
    expect(h.agent.stats).toMatchObject({ synthesized: 1, forwarded: 1, reconciles: 1 });
  });

  it("opens the live stream from Docker's clock and replays nothing", async () => {
    const h = setup();
    await h.start();
    expect(h.docker.opened.map(({ since, until }) => ({ since, until }))).toEqual([
      { since: T, until: undefined },
    ]);
  });

  it("reports neither stopped nor starting containers, nor one without a healthcheck", async () => {
    const h = setup();
    h.docker.add(
      details(A, "web", { state: "exited", health: "none", exitCode: 137 }),
      details(B, "api", { health: "starting" }),
      details(C, "batch", { health: "none", hasHealthcheck: false, labels: {} }),
    );
    await h.start();
    expect(h.nats.messages).toEqual([]);
  });

  it("a second reconcile reports no transition again, and re-asserts what is still unhealthy", async () => {
    const h = setup();
    h.docker.add(details(A, "web", { health: "unhealthy" }), details(B, "api"));
    await h.start();
    expect(h.nats.messages).toHaveLength(1);
    await h.reconnect();
    expect(h.agent.stats.reconciles).toBe(2);
    expect(
      h.nats.events().map((e) => [e.container.id, e.action, e.source, e.unhealthySince]),
    ).toEqual([
      [A, "unhealthy", "reconcile", NOW.toISOString()],
      [A, "unhealthy", "resync", NOW.toISOString()],
    ]);
  });

  it("re-asserts every reconcile interval, and only opted-in running containers", async () => {
    const h = setup();
    h.docker.add(
      details(A, "web", { health: "unhealthy" }),
      details(B, "api", { health: "unhealthy", labels: {} }),
      details(C, "batch", { health: "unhealthy", state: "paused" }),
    );
    await h.start();
    expect(h.nats.messages).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(CONFIG.reconcileIntervalMs);
    await h.reconciled(2);
    expect(
      h.nats
        .events()
        .slice(3)
        .map((e) => [e.container.id, e.source]),
    ).toEqual([[A, "resync"]]);
  });
});

describe("Agent start from a previous snapshot", () => {
  it("running and healthy before, unhealthy now -> one synthetic unhealthy", async () => {
    const h = setup({ previous: previousSnapshot([details(A, "web")]) });
    h.docker.add(details(A, "web", { health: "unhealthy" }));
    await h.start();
    expect(h.nats.events().map((e) => [e.action, e.source, e.container.startedAt])).toEqual([
      ["unhealthy", "reconcile", OLD_START],
    ]);
    await h.reconnect();
    expect(h.nats.events().map((e) => [e.action, e.source])).toEqual([
      ["unhealthy", "reconcile"],
      ["unhealthy", "resync"],
    ]);
  });

  it("unhealthy before and still: re-asserted, without a since the snapshot does not know", async () => {
    const h = setup({
      previous: previousSnapshot([details(A, "web", { health: "unhealthy" })]),
    });
    h.docker.add(details(A, "web", { health: "unhealthy" }));
    await h.start();
    const [event] = h.nats.events();
    expect(event).toMatchObject({ action: "unhealthy", source: "resync" });
    expect(event).not.toHaveProperty("unhealthySince");
  });

  it("a container that no longer exists -> destroy", async () => {
    const h = setup({ previous: previousSnapshot([details(A, "web"), details(B, "api")]) });
    h.docker.add(details(A, "web"));
    await h.start();
    const events = h.nats.events();
    expect(events.map((e) => [e.container.id, e.action, e.source])).toEqual([
      [B, "destroy", "reconcile"],
    ]);
    expect(h.nats.messages[0]?.subject).toBe(`fleetheal.v1.evt.${HOST}.${B}.destroy`);
    await h.reconnect();
    expect(h.nats.messages).toHaveLength(1);
  });

  it("exited before, running now -> start, stamped with the new run", async () => {
    const h = setup({
      previous: previousSnapshot([details(A, "web", { state: "exited", health: "none" })]),
    });
    h.docker.add(details(A, "web", { startedAt: NEW_START, health: "starting" }));
    await h.start();
    expect(h.nats.events()).toMatchObject([
      { action: "start", source: "reconcile", container: { id: A, startedAt: NEW_START } },
    ]);
    await h.reconnect();
    expect(h.nats.messages).toHaveLength(1);
  });

  it("exited before, running and unhealthy now -> start, then unhealthy", async () => {
    const h = setup({
      previous: previousSnapshot([details(A, "web", { state: "exited", health: "none" })]),
    });
    h.docker.add(details(A, "web", { startedAt: NEW_START, health: "unhealthy" }));
    await h.start();
    expect(h.nats.events().map((e) => [e.action, e.timeNano])).toEqual([
      ["start", synthetic(0)],
      ["unhealthy", synthetic(1)],
    ]);
  });

  it("running before, exited now -> die with the exit code", async () => {
    const h = setup({ previous: previousSnapshot([details(A, "web")]) });
    h.docker.add(details(A, "web", { state: "exited", health: "none", exitCode: 137 }));
    await h.start();
    expect(h.nats.events()).toMatchObject([
      { action: "die", source: "reconcile", exitCode: 137, container: { id: A } },
    ]);
    await h.reconnect();
    expect(h.nats.messages).toHaveLength(1);
  });

  it("a container new since the baseline: start only if it started after the baseline", async () => {
    const h = setup({ previous: previousSnapshot([]) });
    h.docker.add(
      details(A, "web", { startedAt: NEW_START }),
      details(B, "api", { startedAt: OLD_START }),
    );
    await h.start();
    expect(h.nats.events().map((e) => [e.container.id, e.action])).toEqual([[A, "start"]]);
  });

  // Guards against a past bug (agent/agent.ts, reportMissedTransitions()/publish()): a synthetic destroy is
  // published after retainOnly() dropped the container, and `reported` keeps only running/health,
  // so the event says name "", image "", labels {} and optedIn false for a container the previous
  // snapshot showed as opted in. Subscribers that filter on optedIn miss it.
  it("a synthetic destroy says which container it was", async () => {
    const h = setup({ previous: previousSnapshot([details(A, "web"), details(B, "api")]) });
    h.docker.add(details(A, "web"));
    await h.start();
    expect(h.nats.events()).toMatchObject([
      {
        action: "destroy",
        source: "reconcile",
        container: { id: B, name: "api", image: "nginx:1.27", optedIn: true },
      },
    ]);
  });

  // Guards against a past bug (agent/agent.ts, reportContainer()): `Reported` has no startedAt, so a
  // container that was restarted while nobody listened (running before and after, a new
  // State.StartedAt) is not reported. If it was unhealthy before and is unhealthy again, its new
  // incident is never reported and never healed (Docker reports a health transition once, and
  // dockerd keeps no events across its own restart for the replay).
  it("restarted while away and unhealthy again -> start, then unhealthy", async () => {
    const h = setup({
      previous: previousSnapshot([details(A, "web", { health: "unhealthy", failingStreak: 3 })]),
    });
    h.docker.add(details(A, "web", { startedAt: NEW_START, health: "unhealthy" }));
    await h.start();
    expect(h.nats.events().map((e) => [e.action, e.source, e.container.startedAt])).toEqual([
      ["start", "reconcile", NEW_START],
      ["unhealthy", "reconcile", NEW_START],
    ]);
  });

  it("a synthetic destroy carries the image id the previous run knew", async () => {
    const h = setup({
      previous: previousSnapshot([details(A, "web"), details(B, "api", { imageId: IMAGE_ID })]),
    });
    h.docker.add(details(A, "web"));
    await h.start();
    expect(h.nats.events()).toMatchObject([
      { action: "destroy", container: { id: B, image: "nginx:1.27", imageId: IMAGE_ID } },
    ]);
  });

  it("nothing changed -> nothing reported", async () => {
    const h = setup({ previous: previousSnapshot([details(A, "web"), details(B, "api")]) });
    h.docker.add(details(A, "web"), details(B, "api"));
    await h.start();
    expect(h.nats.messages).toEqual([]);
  });

  it("replays Docker's events since the previous run's last event, before reconciling", async () => {
    const last = "1795807800000000000";
    const h = setup({
      previous: previousSnapshot([details(A, "web")], { lastEventTimeNano: last }),
    });
    // While the agent was away, A became unhealthy; Docker still has the event.
    h.docker.replayLines = [dockerLine(A, "health_status: unhealthy", "1795808000000000001")];
    h.docker.add(details(A, "web", { health: "unhealthy" }));
    await h.start();
    const [live, replay] = h.docker.opened;
    expect(live).toMatchObject({ since: T, until: undefined });
    expect(replay?.until).toBe(T);
    expect(replayStart(replay?.since)).toBeOneOf(justAfter(last));
    expect(h.docker.opened).toHaveLength(2);
    // Docker's own event, not a synthetic one: reconcile sees it was reported.
    expect(h.nats.events().map((e) => [e.action, e.source, e.timeNano])).toEqual([
      ["unhealthy", "docker", "1795808000000000001"],
    ]);
    expect(h.agent.stats.synthesized).toBe(0);
  });
});

describe("Agent forwarding Docker events", () => {
  async function live() {
    const h = setup({ previous: previousSnapshot([details(A, "web")]) });
    h.docker.add(details(A, "web"));
    await h.start();
    const stream = await h.docker.live();
    return { ...h, stream };
  }

  it("publishes each event on its subject with a stable message id", async () => {
    const h = await live();
    // The check's output is in the inspect that follows the event, not in the event.
    h.docker.containers.set(
      A,
      details(A, "web", { health: "unhealthy", lastHealthOutput: "connection refused" }),
    );
    h.stream.write(dockerLine(A, "health_status: unhealthy", "1795809601000000001"));
    await until(() => h.nats.messages.length === 1, "the event");
    const [message] = h.nats.messages;
    expect(message?.subject).toBe(`fleetheal.v1.evt.${HOST}.${A}.unhealthy`);
    expect(message?.msgId).toBe(`${HOST}:${A}:1795809601000000001:unhealthy`);
    expect(h.nats.events()).toEqual([
      {
        type: "fleetheal.evt.v1.container",
        v: 1,
        id: `${HOST}:${A}:1795809601000000001:unhealthy`,
        host: HOST,
        action: "unhealthy",
        timeNano: "1795809601000000001",
        time: "2026-11-27T20:00:01.000Z",
        source: "docker",
        container: {
          id: A,
          name: "web",
          image: "nginx:1.27",
          labels: PUBLISHED_LABELS,
          optedIn: true,
          startedAt: OLD_START,
        },
        unhealthySince: "2026-11-27T20:00:01.000Z",
        healthOutput: "connection refused",
      },
    ]);
    // Reported: the next reconcile does not report it again, only re-asserts it, since then.
    await h.reconnect();
    expect(h.nats.events().map((e) => [e.source, e.unhealthySince, e.healthOutput])).toEqual([
      ["docker", "2026-11-27T20:00:01.000Z", "connection refused"],
      ["resync", "2026-11-27T20:00:01.000Z", "connection refused"],
    ]);
  });

  it("start events carry no startedAt (the known one is the previous run's); die has the exit code", async () => {
    const h = await live();
    h.stream.write(
      dockerLine(A, "die", "1795809601000000001", { ...LABELS, name: "web", exitCode: "137" }),
    );
    h.stream.write(dockerLine(A, "start", "1795809602000000002"));
    await until(() => h.nats.messages.length === 2, "two events");
    const [die, start] = h.nats.events();
    expect(die).toMatchObject({
      action: "die",
      exitCode: 137,
      source: "docker",
      container: { startedAt: OLD_START },
    });
    expect(start).toMatchObject({ action: "start", source: "docker" });
    expect(start?.container).not.toHaveProperty("startedAt");
    expect(start?.container.labels).toEqual(PUBLISHED_LABELS);
  });

  it("carries the image id from the container's inspect", async () => {
    const h = setup();
    h.docker.add(details(A, "web", { imageId: IMAGE_ID }));
    await h.start();
    const stream = await h.docker.live();
    h.docker.containers.set(A, details(A, "web", { imageId: IMAGE_ID, health: "unhealthy" }));
    stream.write(dockerLine(A, "health_status: unhealthy", "1795809601000000001"));
    stream.write(
      dockerLine(A, "die", "1795809602000000002", { ...LABELS, name: "web", exitCode: "1" }),
    );
    await until(() => h.nats.messages.length === 2, "two events");
    expect(h.nats.events().map((e) => [e.action, e.container.imageId])).toEqual([
      ["unhealthy", IMAGE_ID],
      ["die", IMAGE_ID],
    ]);
    expect(h.nats.command().snapshot().containers[0]?.imageId).toBe(IMAGE_ID);
  });

  it("an unknown container's labels come from the event, filtered", async () => {
    const h = await live();
    h.stream.write(
      dockerLine(C, "create", "1795809601000000001", {
        ...LABELS,
        name: "new",
        image: "redis:7",
      }),
    );
    await until(() => h.nats.messages.length === 1, "the event");
    expect(h.nats.events()[0]).toMatchObject({
      action: "create",
      container: { id: C, name: "new", image: "redis:7", labels: PUBLISHED_LABELS, optedIn: true },
    });
    // Not inspected yet: the id of its image is not known, and not guessed.
    expect(h.nats.events()[0]?.container).not.toHaveProperty("imageId");
  });

  it("skips exec noise and keeps the host state in step", async () => {
    const h = await live();
    h.stream.write(dockerLine(A, "exec_start: sh -c curl -f localhost", "1795809601000000001"));
    h.docker.containers.set(A, details(A, "web", { health: "unhealthy", failingStreak: 3 }));
    h.stream.write(dockerLine(A, "health_status: unhealthy", "1795809602000000002"));
    await until(() => h.nats.messages.length === 1, "the event");
    await until(() => h.agent.state.get(A)?.health === "unhealthy", "the refreshed state");
    expect(h.agent.stats.rejectedDockerLines).toBe(1);
    expect(h.nats.events().map((e) => e.action)).toEqual(["unhealthy"]);
  });

  it("a destroy event drops the container from the state", async () => {
    const h = await live();
    h.docker.containers.delete(A);
    h.stream.write(dockerLine(A, "destroy", "1795809601000000001"));
    await until(() => h.nats.messages.length === 1, "the event");
    expect(h.agent.state.get(A)).toBeUndefined();
    expect(h.nats.command().snapshot().containers).toEqual([]);
    await h.reconnect();
    expect(h.nats.messages).toHaveLength(1);
  });
});

describe("Agent snapshots", () => {
  it("validate against HostSnapshot and carry outbox stats and the last event's time", async () => {
    const h = setup({ previous: previousSnapshot([details(A, "web")]) });
    h.docker.add(details(A, "web", { health: "unhealthy" }), details(B, "api"));
    await h.start();
    expect(h.nats.snapshots.length).toBeGreaterThan(0);
    for (const snapshot of h.nats.snapshots) expect(HostSnapshot.parse(snapshot)).toEqual(snapshot);
    const first = h.nats.snapshots.at(-1);
    expect(first).toMatchObject({
      host: HOST,
      heartbeatMs: 60_000,
      docker: { status: "up", version: "24.0.7" },
      agent: { label: "autoheal", watchAll: false, startedAt: NOW.toISOString(), uptimeSeconds: 0 },
      outbox: { depth: 0, capacity: 1_000, published: 1, dropped: 0, unpublishable: 0 },
    });
    expect(first).not.toHaveProperty("lastEventTimeNano");
    expect(first?.containers.map((c) => [c.name, c.health, c.labels])).toEqual([
      ["api", "healthy", PUBLISHED_LABELS],
      ["web", "unhealthy", PUBLISHED_LABELS],
    ]);

    const stream = await h.docker.live();
    stream.write(dockerLine(A, "health_status: healthy", "1795809601000000001"));
    await until(() => h.nats.messages.length === 2, "the event");
    await settle();
    const now = h.nats.command().snapshot();
    expect(HostSnapshot.parse(now)).toEqual(now);
    expect(now.lastEventTimeNano).toBe("1795809601000000001");
    expect(now.outbox).toEqual({
      depth: 0,
      capacity: 1_000,
      published: 2,
      dropped: 0,
      unpublishable: 0,
    });
    expect(now.seq).toBeGreaterThan(first?.seq ?? 0);
  });

  it("keeps each published snapshot as the next run's baseline, and a failed publish not", async () => {
    const h = setup();
    h.docker.add(details(A, "web"));
    await h.start();
    await until(() => h.baseline.saved !== undefined, "a saved baseline");
    expect(h.baseline.saved).toEqual(h.nats.snapshots.at(-1));
    const saved = h.baseline.saved;
    h.nats.publishSnapshot = async () => {
      throw new Error("NATS is down");
    };
    await h.reconnect();
    expect(h.baseline.saved).toBe(saved);
  });

  it("a reconnect to NATS republishes the snapshot", async () => {
    const h = setup();
    h.docker.add(details(A, "web"));
    await h.start();
    const before = h.nats.snapshots.length;
    await h.reconnect();
    expect(h.nats.snapshots.length).toBeGreaterThan(before);
  });

  it("Docker's stream ending shows Docker down, and the agent reconnects and reconciles", async () => {
    const h = setup();
    h.docker.add(details(A, "web"));
    await h.start();
    const stream = await h.docker.live();
    stream.write(dockerLine(A, "health_status: healthy", "1795809601000000001"));
    await until(() => h.nats.messages.length === 1, "the event");
    stream.end();
    await until(() => h.nats.snapshots.at(-1)?.docker.status === "down", "a down snapshot");
    expect(h.nats.snapshots.at(-1)?.docker.error).toContain("Docker event stream ended");

    h.docker.clockValue = "1795809700.000000000";
    h.docker.containers.set(A, details(A, "web", { health: "unhealthy" }));
    await vi.advanceTimersByTimeAsync(100);
    await h.docker.live(1);
    await h.reconciled(2);
    const [, live2, replay] = h.docker.opened;
    expect(live2).toMatchObject({ since: "1795809700.000000000", until: undefined });
    expect(replay?.until).toBe("1795809700.000000000");
    expect(replayStart(replay?.since)).toBeOneOf(justAfter("1795809601000000001"));
    expect(h.docker.opened).toHaveLength(3);
    expect(h.nats.snapshots.at(-1)?.docker).toEqual({ status: "up", version: "24.0.7" });
    // Docker said nothing about A turning unhealthy during the gap: the reconcile does.
    expect(h.nats.events().map((e) => [e.action, e.source])).toEqual([
      ["healthy", "docker"],
      ["unhealthy", "reconcile"],
    ]);
  });

  it("reconciles periodically and reports what Docker did not", async () => {
    const h = setup();
    h.docker.add(details(A, "web"));
    await h.start();
    h.docker.containers.set(A, details(A, "web", { health: "unhealthy" }));
    await vi.advanceTimersByTimeAsync(CONFIG.reconcileIntervalMs);
    await h.reconciled(2);
    expect(h.nats.events().map((e) => [e.action, e.source])).toEqual([["unhealthy", "reconcile"]]);
  });
});

describe("Agent commands", () => {
  const restart = (patch: Partial<RestartCommand> = {}): RestartCommand => ({
    type: "fleetheal.cmd.v1.restart",
    v: 1,
    commandId: "heal-0123456789abcdef",
    host: HOST,
    containerId: A,
    reason: "unhealthy",
    requestedBy: "handler:heal",
    issuedAt: NOW.toISOString(),
    expiresAt: new Date(NOW.getTime() + 30_000).toISOString(),
    ...patch,
  });
  const stop = (patch: Partial<StopCommand> = {}): StopCommand => ({
    type: "fleetheal.cmd.v1.stop",
    v: 1,
    commandId: "stop-0123456789abcdef",
    host: HOST,
    containerId: A,
    reason: "parked",
    requestedBy: "gateway:alice",
    issuedAt: NOW.toISOString(),
    expiresAt: new Date(NOW.getTime() + 30_000).toISOString(),
    ...patch,
  });
  /** The command as a signer sends it now: its payload and signature headers. */
  const signed = (command: RestartCommand | StopCommand, key = SIGNER, at = NOW.getTime()) => {
    const { issuedAt: _i, expiresAt: _e, ...draft } = command;
    const sent = signCommand(draft, { key, ttlMs: 30_000 }, at);
    return {
      command: sent.command as RestartCommand | StopCommand,
      request: {
        payload: sent.payload,
        signature: {
          key: sent.headers?.get("Fleetheal-Signing-Key"),
          signature: sent.headers?.get("Fleetheal-Signature"),
        },
      },
    };
  };

  it("authorises a command signed by a trusted key, and refuses and counts the others", async () => {
    const h = setup();
    await h.start();
    const ok = signed(restart());
    expect(h.nats.command().authorise(ok.command, ok.request)).toBeUndefined();
    const stranger = signed(stop(), commandSigningKeyFromSeed(generateCommandSigningSeed()));
    expect(h.nats.command().authorise(stranger.command, stranger.request)).toMatchObject({
      code: "untrusted-key",
    });
    const unsigned = {
      payload: ok.request.payload,
      signature: { key: undefined, signature: undefined },
    };
    expect(h.nats.command().authorise(ok.command, unsigned)).toMatchObject({ code: "unsigned" });
    expect(h.nats.command().authorise(ok.command, unsigned)).toMatchObject({ code: "unsigned" });
    h.nats.command().rejected("stop", "FLEETHEAL_ERR_BAD_JSON: not JSON");
    expect(h.nats.command().rejections("stop")).toEqual({
      rejected: 1,
      last: "FLEETHEAL_ERR_BAD_JSON: not JSON",
    });
    const snap = HostSnapshot.parse(h.nats.command().snapshot());
    expect(snap.agent).toMatchObject({
      commandKeys: [SIGNER.publicKey],
      acceptsUnsignedCommands: false,
      commandRefusals: {
        refused: { unsigned: 2, "untrusted-key": 1, "bad-signature": 0, expired: 0 },
        malformed: { restart: 0, stop: 1, inspect: 0, snapshot: 0 },
        last: "FLEETHEAL_ERR_BAD_JSON: not JSON",
      },
    });
    expect(h.logged).toEqual([]);
  });

  it("a command issued before the agent started is a replay", async () => {
    const h = setup();
    await h.start();
    const old = signed(restart(), SIGNER, NOW.getTime() - 1);
    const refusal = h.nats.command().authorise(old.command, old.request);
    expect(refusal?.code).toBe("issued-before-start");
  });

  it.each<[Partial<AgentConfig>, string]>([
    [{ insecureUnsignedCommands: true }, "FLEETHEAL_INSECURE_UNSIGNED_COMMANDS=true"],
    [{ commandKeys: [] }, "FLEETHEAL_COMMAND_KEYS is empty"],
  ])("warns at start when commands are not safe: %j", async (config, warning) => {
    const h = setup({ config });
    await h.start();
    expect(h.logged.map((l) => l.msg)).toEqual([expect.stringContaining(warning)]);
    expect(h.nats.command().snapshot().agent.acceptsUnsignedCommands).toBe(
      config.insecureUnsignedCommands === true,
    );
  });

  it("inspect returns a fresh ContainerSnapshot; undefined for an unknown container", async () => {
    const h = setup();
    h.docker.add(details(A, "web", { networkMode: "shop_default" }));
    await h.start();
    h.docker.containers.set(A, details(A, "web", { health: "unhealthy", failingStreak: 3 }));
    const snap = await h.nats.command().inspect(A);
    expect(snap && ContainerSnapshot.parse(snap)).toEqual(snap);
    expect(snap).toMatchObject({
      id: A,
      health: "unhealthy",
      failingStreak: 3,
      healthSource: "docker",
      optedIn: true,
      labels: PUBLISHED_LABELS,
    });
    expect(snap).not.toHaveProperty("ipAddresses");
    expect(snap).not.toHaveProperty("hasHealthcheck");
    expect(await h.nats.command().inspect(C)).toBeUndefined();
  });

  it("snapshot returns the host snapshot now", async () => {
    const h = setup();
    h.docker.add(details(A, "web"), details(B, "api", { labels: {} }));
    await h.start();
    const snap = h.nats.command().snapshot();
    expect(HostSnapshot.parse(snap)).toEqual(snap);
    expect(snap.containers.map((c) => [c.name, c.optedIn])).toEqual([
      ["api", false],
      ["web", true],
    ]);
  });

  it("execute runs restart and stop through the executor", async () => {
    const h = setup();
    h.docker.add(details(A, "web"), details(B, "api", { labels: {} }));
    await h.start();
    const restarted = await h.nats.command().execute(restart());
    expect(CommandReply.parse(restarted)).toMatchObject({
      verb: "restart",
      outcome: "restarted",
      message: "restarted (stop timeout 20s)",
    });
    const stopped = await h.nats.command().execute(stop());
    expect(CommandReply.parse(stopped)).toMatchObject({ verb: "stop", outcome: "stopped" });
    const refused = await h.nats.command().execute(stop({ commandId: "stop-b", containerId: B }));
    expect(refused).toMatchObject({ outcome: "refused", code: "not-opted-in" });
    expect(h.docker.restarts).toEqual([{ id: A, stopTimeoutSeconds: 20 }]);
    expect(h.docker.stops).toEqual([{ id: A, stopTimeoutSeconds: 20 }]);
  });
});

describe("Agent label probes", () => {
  it("containers without probe labels are never probed", async () => {
    const h = setup();
    h.docker.add(details(A, "web"), details(B, "api", { hasHealthcheck: false, health: "none" }));
    await h.start();
    await vi.advanceTimersByTimeAsync(120_000);
    await settle();
    expect(h.docker.calls.filter((c) => c.startsWith("exec"))).toEqual([]);
    expect(
      h.nats
        .command()
        .snapshot()
        .containers.every((c) => c.probe === undefined),
    ).toBe(true);
  });

  it("a failing exec probe -> one unhealthy event with source probe", async () => {
    const h = setup();
    h.docker.add(
      details(A, "web", {
        hasHealthcheck: false,
        health: "none",
        labels: {
          autoheal: "true",
          "autoheal.probe.exec": "test -f /tmp/ready",
          "autoheal.probe.interval": "1s",
          "autoheal.probe.retries": "2",
        },
      }),
    );
    h.docker.execResult = { exitCode: 1, output: "not ready" };
    await h.start();
    expect(h.nats.messages).toEqual([]);
    for (let i = 0; i < 3; i++) {
      await vi.advanceTimersByTimeAsync(1_000);
      await settle();
    }
    expect(h.nats.events()).toMatchObject([
      { action: "unhealthy", source: "probe", container: { id: A, startedAt: OLD_START } },
    ]);
    // Two failures made it unhealthy; the third is counted but is no new transition.
    expect(h.nats.command().snapshot().containers[0]).toMatchObject({
      health: "unhealthy",
      healthSource: "probe",
      failingStreak: 3,
      lastHealthOutput: "not ready",
      probe: { kind: "exec", target: "test -f /tmp/ready" },
    });
    // Each run is counted in the snapshot, whether or not it changed the container's health.
    expect(h.nats.command().snapshot().agent.counters).toEqual({
      reconciles: 1,
      probeResults: { pass: 0, fail: 3, error: 0, refused: 0 },
    });
    // The probe's report is remembered: a reconcile does not repeat it, only re-asserts it.
    await h.reconnect();
    expect(h.nats.command().snapshot().agent.counters?.reconciles).toBe(2);
    expect(h.nats.events().map((e) => [e.source, e.healthOutput])).toEqual([
      ["probe", "not ready"],
      ["resync", "not ready"],
    ]);
  });
});

describe("Agent.stop", () => {
  it("stops serving commands and reading Docker; timers no longer fire", async () => {
    const h = setup();
    h.docker.add(details(A, "web"));
    await h.start();
    const stream = await h.docker.live();
    agents = [];
    await h.agent.stop();
    expect(h.nats.closed).toBe(true);
    expect(h.docker.opened.every((o) => o.signal.aborted)).toBe(true);
    expect(stream.destroyed).toBe(true);
    const calls = h.docker.calls.length;
    const snapshots = h.nats.snapshots.length;
    await vi.advanceTimersByTimeAsync(CONFIG.reconcileIntervalMs * 3);
    await settle();
    expect(h.docker.calls.length).toBe(calls);
    expect(h.nats.snapshots.length).toBe(snapshots);
    expect(h.agent.stats.reconciles).toBe(1);
  });

  it("stops within its bound while a Docker call hangs, abandoning it", async () => {
    const h = setup();
    h.docker.add(details(A, "web"));
    await h.start();
    h.docker.inspect = () => new Promise(() => {});
    await vi.advanceTimersByTimeAsync(CONFIG.reconcileIntervalMs);
    agents = [];
    let stopped = false;
    const stopping = h.agent.stop(0, 1_000).then(() => {
      stopped = true;
    });
    await vi.advanceTimersByTimeAsync(999);
    // Still waiting: the reconcile's inspect really hangs.
    expect(stopped).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await stopping;
    expect(stopped).toBe(true);
    expect(h.nats.closed).toBe(true);
  });

  // Guards against a past bug (agent/agent.ts, stop()): the drain deadline `setTimeout(resolve,
  // drainTimeoutMs).unref()` raced against outbox.drained() is never cleared, so a timer outlives
  // stop() (for 5 s by default).
  it("leaves none of its timers running", async () => {
    const h = setup();
    h.docker.add(details(A, "web"));
    await h.start();
    expect(vi.getTimerCount()).toBeGreaterThan(0);
    agents = [];
    await h.agent.stop();
    expect(vi.getTimerCount()).toBe(0);
  });
});
