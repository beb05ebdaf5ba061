// The one-host production stack as an operator runs it: the real compose.yaml and infra/Dockerfile,
// built and started with Debian's docker-compose (v1) against private dockerd engines, with no .env.
// Its init writes the NATS accounts and NKEYs with `fleetheal nats-auth`, and each service gets
// only its own credentials. The stack must come up healthy (every role's HEALTHCHECK included),
// refuse a NATS connection without credentials, serve /health on the published port, heal an
// opted-in container beside it exactly once (Docker's own event stream is the witness), keep
// every key on a second `up`, and leave nothing behind after `down -v`.
//
// No image can be pulled here, so the images that compose.yaml and the Dockerfile name by default
// (node:26-bookworm-slim, nats:2.10-alpine) are made from this machine's own node, npm and
// nats-server (support/base-images.ts). The fleetheal image is built once per run, by
// `docker-compose build` from this compose.yaml, and shared with image.test.ts
// (support/fleetheal-image.ts); image.test.ts checks what it holds. The stack's engine runs in a
// network namespace of its own (support/dockerd.ts, `netns`): compose's network (a user-defined
// bridge, with Docker's embedded DNS and a published port through docker-proxy) then does not
// depend on the host's firewall, which a system dockerd sets to FORWARD DROP. The test reaches
// the published port, and NATS's address on that network, through the engine's relay.

import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { toToken } from "../contracts/index.js";
import { ContainerDetail } from "../gateway/http/api-schemas.js";
import { HealthReport } from "../gateway/view/health-report.js";
import { ensureNatsImage } from "./support/base-images.js";
import { ensureBusyboxImage } from "./support/busybox-image.js";
import { findExecutable, run } from "./support/children.js";
import {
  type DockerEventRecorder,
  healedOnce,
  recordDockerEvents,
  runScript,
  runTestContainer,
} from "./support/containers.js";
import { type DockerEngine, type ReachedAddress, startDockerEngine } from "./support/dockerd.js";
import { REPO } from "./support/fleetheal.js";
import {
  defaultImages,
  ensureFleethealImage,
  IMAGE_BUILD_TIMEOUT_MS,
} from "./support/fleetheal-image.js";
import { describeError, waitFor } from "./support/wait.js";

const PROJECT = `fhcompose${randomBytes(3).toString("hex")}`;
const PROJECT_LABEL = `com.docker.compose.project=${PROJECT}`;
/**
 * The host id on compose.yaml's defaults: the engine's name, as `fleetheal host-id` in init asks
 * Docker for it (known once the engine runs).
 */
let HOST_ID = "";
/** nats, agent, two handlers and the gateway. */
const STACK = { nats: 1, agent: 1, handler: 2, gateway: 1 };
/** The one-shot service that writes the credentials; it has exited once the stack runs. */
const INIT = "init";
/**
 * What each service's credentials volume holds (name and mode of each file), and where the
 * service mounts it (read-only): nats-auth's files for the host id, each role only its own.
 */
const CREDENTIALS = () => ({
  nats: { at: "/etc/nats/fleetheal", files: { "fleetheal-auth.conf": 600, "nats.conf": 644 } },
  agent: {
    at: "/etc/fleetheal/nats-auth",
    files: { [`agent-${HOST_ID}.nk`]: 600, "agent.env": 644 },
  },
  handler: {
    at: "/etc/fleetheal/nats-auth",
    files: { "handler.env": 644, "handler.nk": 600, "handler.signing.nk": 600 },
  },
  gateway: {
    at: "/etc/fleetheal/nats-auth",
    files: { "gateway.env": 644, "gateway.nk": 600, "gateway.signing.nk": 600 },
  },
});
/** An NKEY seed, as nats-auth writes them: user (SU…) or operator (SO…). */
const SEED = /\bS[UO][A-Z2-7]{56}\b/;

let engine: DockerEngine;
let recorder: DockerEventRecorder;
let workDir: string;
let composeBin: string;
let composeEnv: NodeJS.ProcessEnv;
/** The gateway's published port, compose.yaml's default 8080, as the test reaches it. */
let gateway: ReachedAddress;
let stackStarted = false;
const timings: string[] = [];

/** Runs docker-compose against the private engine; rejects with its output on failure. */
function compose(
  args: string[],
  timeoutMs: number,
  opts: { envFile?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<string> {
  const envFile = opts.envFile ?? join(workDir, "empty.env");
  const full = ["--env-file", envFile, "-p", PROJECT, "-f", join(REPO, "compose.yaml"), ...args];
  return new Promise((resolve, reject) => {
    execFile(
      composeBin,
      full,
      { env: opts.env ?? composeEnv, cwd: REPO, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error) {
          const tail = `${stdout}\n${stderr}`.trim().split("\n").slice(-60).join("\n");
          reject(new Error(`docker-compose ${args.join(" ")} failed: ${error.message}\n${tail}`));
          return;
        }
        resolve(`${stdout}${stderr}`);
      },
    );
  });
}

async function timed<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  try {
    return await fn();
  } finally {
    timings.push(`${what} ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
}

async function stackContainers() {
  return engine.docker.listContainers({ all: true, filters: { label: [PROJECT_LABEL] } });
}

/** `name mode uid` of each file in one of the stack's volumes, and the contents of `cat`. */
async function inVolume(volume: string, cat: readonly string[] = []): Promise<string> {
  return runScript(
    engine,
    images.fleetheal,
    [
      "cd /v",
      "for f in *; do stat -c '%n %a %u' \"$f\"; done",
      ...cat.map((f) => `cat '${f}'`),
    ].join("; "),
    [`${PROJECT}_${volume}:/v:ro`],
  );
}

async function getHealth(): Promise<HealthReport> {
  // While the stack starts, a request through docker-proxy to the published port has hung
  // without an answer for longer than any deadline here: each try gets 2 s.
  const res = await fetch(`http://${gateway.host}:${gateway.port}/health`, {
    signal: AbortSignal.timeout(2_000),
  });
  return HealthReport.parse(await res.json());
}

let images: Awaited<ReturnType<typeof defaultImages>>;

beforeAll(async () => {
  composeBin = await findExecutable(
    "docker-compose",
    "install it with `apt-get install docker-compose` (bash infra/install.sh --test does)",
  );
  images = await defaultImages();
  workDir = await mkdtemp(join(tmpdir(), "fleetheal-compose-"));
  // An empty env file instead of the checkout's .env, if a developer has one: the stack must
  // work on compose.yaml's defaults alone.
  await writeFile(join(workDir, "empty.env"), "");
  engine = await timed("engine", () => startDockerEngine("compose", { netns: true }));
  HOST_ID = toToken(((await engine.docker.info()) as { Name: string }).Name);
  await timed("base images", () =>
    Promise.all([ensureNatsImage(engine, images.nats), ensureBusyboxImage(engine)]),
  );
  recorder = await recordDockerEvents(engine);
  gateway = await engine.reach("127.0.0.1", 8080);
  // Only what compose needs, so that a FLEETHEAL_* variable of the developer's shell cannot
  // change the stack: the engine, and the socket the agent mounts (with its group).
  composeEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    DOCKER_HOST: engine.dockerHost,
    DOCKER_SOCKET: engine.socketPath,
    DOCKER_GID: String((await stat(engine.socketPath)).gid),
  };
});

afterAll(async () => {
  recorder?.close();
  if (engine && stackStarted) {
    // After a failure half-way (the engine's namespace, with the bridge and docker-proxy, goes
    // with the engine, but compose's own clean-up is the one an operator gets).
    await compose(["down", "-v", "--remove-orphans", "-t", "2"], 90_000).catch(() => {});
    for (const c of await stackContainers().catch(() => [])) {
      await engine.docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => {});
    }
    const networks = await engine.docker
      .listNetworks({ filters: { label: [PROJECT_LABEL] } })
      .catch(() => []);
    for (const net of networks) {
      await engine.docker
        .getNetwork(net.Id)
        .remove()
        .catch(() => {});
    }
  }
  await gateway?.[Symbol.asyncDispose]();
  await engine?.[Symbol.asyncDispose]();
  if (workDir) await rm(workDir, { recursive: true, force: true });
  if (timings.length > 0) process.stdout.write(`compose test timings: ${timings.join(", ")}\n`);
});

// Each step needs the one before it: after a failure the rest would only add timeouts to it.
let failedStep: string | undefined;
beforeEach((ctx) => {
  if (failedStep) ctx.skip(`an earlier step failed: ${failedStep}`);
});
afterEach((ctx) => {
  if (ctx.task.result?.state === "fail") failedStep ??= ctx.task.name;
});

describe("compose.yaml with docker-compose v1", () => {
  it(".env.example documents every variable compose.yaml reads, with its default", async () => {
    const composeFile = await readFile(join(REPO, "compose.yaml"), "utf8");
    const defaults = new Map(
      [...composeFile.matchAll(/\$\{([A-Z0-9_]+):-([^}]*)\}/g)].map((m) => [m[1], m[2]]),
    );
    // Every substitution has a default: no variable is required.
    expect([...composeFile.matchAll(/\$\{([A-Z0-9_]+)\}/g)]).toEqual([]);
    const exampleText = await readFile(join(REPO, ".env.example"), "utf8");
    const documented = new Map(
      [...exampleText.matchAll(/^([A-Z0-9_]+)=(.*)$/gm)].map((m) => [m[1], m[2]]),
    );
    documented.delete("COMPOSE_PROJECT_NAME");
    expect(Object.fromEntries(documented)).toEqual(Object.fromEntries(defaults));
    // And compose reads the example exactly as it reads no .env at all (with nothing from the
    // environment either: the test's own settings would hide a difference).
    const env = { PATH: process.env.PATH, HOME: process.env.HOME };
    const example = join(REPO, ".env.example");
    const withExample = await compose(["config"], 60_000, { envFile: example, env });
    expect(await compose(["config"], 60_000, { env })).toBe(withExample);
  });

  it(
    "builds the fleetheal image with compose.yaml's build section (once per run, shared)",
    async () => {
      // support/fleetheal-image.ts builds it with `docker-compose build` from this compose.yaml,
      // or loads the one an earlier test file built from the same inputs; image.test.ts checks
      // what it holds.
      await timed("image", () => ensureFleethealImage(engine));
      const version = await runScript(
        engine,
        images.fleetheal,
        "node /app/bin/fleetheal.js --version",
      );
      expect(version.trim()).toBe(
        JSON.parse(await readFile(join(REPO, "package.json"), "utf8")).version,
      );
    },
    IMAGE_BUILD_TIMEOUT_MS + 60_000,
  );

  it("starts NATS, the agent, two handlers and the gateway as unprivileged services, with /health on the published port", async () => {
    stackStarted = true;
    await timed("up", () => compose(["up", "-d", "--no-build"], 180_000));
    const containers = await stackContainers();
    const byService: Record<string, number> = {};
    for (const c of containers) {
      const service = c.Labels["com.docker.compose.service"] ?? "?";
      byService[service] = (byService[service] ?? 0) + 1;
    }
    expect(byService).toEqual({ ...STACK, [INIT]: 1 });
    // Non-root roles; the agent reaches the socket through its group only. Each service mounts
    // its own credentials, read-only.
    for (const c of containers) {
      const info = await engine.docker.getContainer(c.Id).inspect();
      const service = c.Labels["com.docker.compose.service"] as string;
      if (service === INIT) {
        expect(info.State.ExitCode, "init's exit code").toBe(0);
        continue;
      }
      const credentials = CREDENTIALS()[service as keyof ReturnType<typeof CREDENTIALS>];
      expect(
        info.Mounts.filter((m) => m.Name?.startsWith(`${PROJECT}_auth`)).map((m) => ({
          volume: m.Name,
          at: m.Destination,
          rw: m.RW,
        })),
        service,
      ).toEqual([{ volume: `${PROJECT}_auth-${service}`, at: credentials.at, rw: false }]);
      if (service === "nats") continue;
      expect(info.Config.User, service).toBe("1000:1000");
      if (service === "agent") expect(info.HostConfig.GroupAdd).toEqual([composeEnv.DOCKER_GID]);
    }
    // Each volume holds exactly its service's files, for uid 1000 only; the accounts include
    // names public keys and holds no seed.
    for (const [service, credentials] of Object.entries(CREDENTIALS())) {
      const listing = await inVolume(`auth-${service}`);
      expect(listing.trim().split("\n").sort(), service).toEqual(
        Object.entries(credentials.files)
          .map(([file, mode]) => `${file} ${mode} 1000`)
          .sort(),
      );
    }
    const include = await inVolume("auth-nats", ["fleetheal-auth.conf", "nats.conf"]);
    expect(include).toContain(`"HOST_${HOST_ID}"`);
    expect(include).toMatch(/include \.\/fleetheal-auth\.conf/);
    expect(include).not.toMatch(SEED);

    // NATS itself: no connection without one of the NKEYs (its port is not published, so this
    // goes to its address on the compose network).
    const nats = containers.find((c) => c.Labels["com.docker.compose.service"] === "nats");
    const natsInfo = await engine.docker.getContainer(nats?.Id as string).inspect();
    const address = Object.values(natsInfo.NetworkSettings.Networks)[0]?.IPAddress as string;
    {
      await using natsPort = await engine.reach(address, 4222);
      await expect(
        connect({
          servers: `${natsPort.host}:${natsPort.port}`,
          maxReconnectAttempts: 0,
          timeout: 5_000,
        }),
      ).rejects.toThrow(/authorization/i);
    }

    const report = await timed("/health answers", () =>
      waitFor(
        async () => {
          const r = await getHealth();
          return r.hosts.some((h) => h.id === HOST_ID && h.status === "up") ? r : undefined;
        },
        { timeoutMs: 90_000, intervalMs: 250, message: `/health never listed ${HOST_ID} as up` },
      ),
    );
    expect(report.hosts).toEqual([
      expect.objectContaining({ id: HOST_ID, status: "up", docker: "up" }),
    ]);
  }, 240_000);

  it("heals an opted-in container beside the stack exactly once, and /health counts it", async () => {
    const app = await runTestContainer(engine, {
      name: `${PROJECT}-app`,
      labels: { autoheal: "true" },
      // The default 500 ms interval comes with a 1 s timeout, which a machine busy with the
      // stack's own start (and whatever else runs) misses now and then: a real incident.
      healthIntervalMs: 3_000,
    });
    const { unhealthy, restart } = await healedOnce(engine, recorder, app.id, "the stack", 60_000);
    timings.push(`heal ${(Number(restart.timeNano - unhealthy.timeNano) / 1e6).toFixed(0)} ms`);

    // Every container (the stack's five, their own HEALTHCHECKs included, and the app) healthy
    // in the gateway's view: the first healthcheck of a fleetheal role runs 30 s after its start.
    const total = Object.values(STACK).reduce((a, b) => a + b, 0) + 1;
    // And init, which has exited (no healthcheck: `none`).
    const all = total + 1;
    const healthy = await timed("all healthy in /health", () =>
      waitFor(
        async () => {
          const r = await getHealth();
          const host = r.hosts.find((h) => h.id === HOST_ID);
          return host?.containers.healthy === total ? r : undefined;
        },
        {
          timeoutMs: 120_000,
          intervalMs: 500,
          message: `/health never counted all ${total} containers healthy`,
        },
      ).catch(async (error: unknown) => {
        // What Docker's own healthchecks said last, for each container.
        const states = await Promise.all(
          (await engine.docker.listContainers({ all: true })).map(async (c) => {
            const info = await engine.docker.getContainer(c.Id).inspect();
            const log = info.State.Health?.Log?.at(-1)?.Output?.trim() ?? "";
            return `${c.Names[0]}: ${info.State.Health?.Status ?? "no healthcheck"} ${log}`;
          }),
        );
        const last = await getHealth().catch((e: unknown) => describeError(e));
        throw new Error(
          `${describeError(error)}; /health: ${JSON.stringify(last)}; docker: ${states.join(" | ")}`,
        );
      }),
    );
    expect(healthy.status).toBe("healthy");
    expect(healthy.hosts).toEqual([
      {
        id: HOST_ID,
        status: "up",
        lastSeen: expect.any(String),
        docker: "up",
        containers: { total: all, healthy: total, unhealthy: 0, starting: 0, none: 1 },
        quarantined: 0,
      },
    ]);
    expect(healthy.totals.hosts).toEqual({ total: 1, up: 1, stale: 0, down: 0 });

    // Once per incident: one decision in the ledger and one restart in Docker's own stream for
    // each time the app turned unhealthy, which the test did once (its own healthcheck can add
    // one on a loaded machine). By now the stream has had the whole wait above to show a second
    // restart from the other handler replica.
    const incidents = () =>
      recorder.count((e) => e.id === app.id && e.action === "health_status: unhealthy");
    const restarts = () => recorder.count((e) => e.id === app.id && e.action === "restart");
    let healing: ContainerDetail["healing"] | undefined;
    await waitFor(
      async () => {
        const res = await fetch(
          `http://${gateway.host}:${gateway.port}/containers/${HOST_ID}/${app.id}`,
          {
            signal: AbortSignal.timeout(5_000),
          },
        );
        healing = ContainerDetail.parse(await res.json()).healing;
        const n = incidents();
        return (
          restarts() === n &&
          healing.restarts.length === n &&
          healing.restarts.every((r) => r.outcome === "restarted")
        );
      },
      { timeoutMs: 30_000, intervalMs: 250, message: "restarts do not match incidents" },
    ).catch(async (error: unknown) => {
      const timeline = recorder.events
        .filter((e) => e.id === app.id && !e.action.startsWith("exec_"))
        .map((e) => `${e.action} @${e.timeNano}`);
      const logs = await compose(
        ["logs", "--no-color", "--tail", "60", "agent", "handler"],
        60_000,
      ).catch((e: unknown) => describeError(e));
      throw new Error(
        `${describeError(error)}: ${incidents()} incidents, ${restarts()} restarts by Docker's count; ` +
          `ledger: ${JSON.stringify(healing)}\napp's Docker events: ${timeline.join(", ")}\n${logs}`,
      );
    });
    timings.push(`${incidents()} incident(s), ${restarts()} restart(s)`);
    await engine.docker.getContainer(app.id).remove({ force: true });
    // The agent keeps its restart baseline in its data volume (FLEETHEAL_DATA_DIR).
    expect(await inVolume("agent-data")).toContain(`agent-${HOST_ID}.snapshot.json 600 1000`);
  }, 240_000);

  it("keeps every key on a second up, and recreates no service", async () => {
    const read = async () =>
      Promise.all(
        Object.entries(CREDENTIALS()).map(([service, { files }]) =>
          inVolume(`auth-${service}`, Object.keys(files)),
        ),
      );
    const running = async () =>
      (await stackContainers())
        .filter((c) => c.State === "running")
        .map((c) => c.Id)
        .sort();
    const initState = async () => {
      const init = (await stackContainers()).find(
        (c) => c.Labels["com.docker.compose.service"] === INIT,
      );
      return (await engine.docker.getContainer(init?.Id as string).inspect()).State;
    };
    const [keys, ids, first] = [await read(), await running(), await initState()];
    await timed("second up", () => compose(["up", "-d", "--no-build"], 180_000));
    // init ran nats-auth again, which kept every key.
    const second = await initState();
    expect(second.StartedAt > first.StartedAt, "init ran again").toBe(true);
    expect(second.ExitCode).toBe(0);
    expect(await read()).toEqual(keys);
    expect(await running()).toEqual(ids);
    await waitFor(
      async () => (await getHealth()).hosts.some((h) => h.id === HOST_ID && h.status === "up"),
      { timeoutMs: 30_000, intervalMs: 250, message: `/health lost ${HOST_ID} after a second up` },
    );
  }, 240_000);

  it("down -v removes every container, the network, the volume and the published port", async () => {
    const networks = await engine.docker.listNetworks({ filters: { label: [PROJECT_LABEL] } });
    expect(networks).toHaveLength(1);
    // The network's bridge, in the engine's network namespace.
    const bridge = async () =>
      (
        await run(
          "ip",
          [
            "-n",
            engine.netns as string,
            "link",
            "show",
            `br-${(networks[0] as { Id: string }).Id.slice(0, 12)}`,
          ],
          { allowFailure: true },
        )
      ).code === 0;
    expect(await bridge()).toBe(true);

    await timed("down", () => compose(["down", "-v", "-t", "5"], 120_000));
    expect(await stackContainers()).toEqual([]);
    expect(await engine.docker.listNetworks({ filters: { label: [PROJECT_LABEL] } })).toEqual([]);
    const { Volumes } = await engine.docker.listVolumes({ filters: { label: [PROJECT_LABEL] } });
    expect(Volumes ?? []).toEqual([]);
    expect(await engine.docker.listContainers({ all: true })).toEqual([]);
    expect(await bridge()).toBe(false);
    expect(await engine.canConnect("127.0.0.1", 8080)).toBe(false);
    stackStarted = false;
  }, 120_000);
});
