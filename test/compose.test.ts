// The one-host production stack as an operator runs it: the real compose.yaml and infra/Dockerfile,
// built and started with Debian's docker-compose (v1) against a private dockerd, with no .env.
// Its init writes the NATS accounts and NKEYs with `fleetheal nats-auth`, and each service gets
// only its own credentials. The stack must come up healthy (every role's HEALTHCHECK included),
// refuse a NATS connection without credentials, serve /health on the published port, heal an
// opted-in container beside it exactly once (Docker's own event stream is the witness), keep
// every key on a second `up`, and leave nothing behind after `down -v`.
//
// No image can be pulled here, so the images that compose.yaml and the Dockerfile name by default
// (node:26-bookworm-slim, nats:2.10-alpine) are made in the private engine from this machine's
// own node, npm and nats-server (support/base-images.ts). The engine runs with --bridge=none like
// every test engine: compose's own network (a user-defined bridge, with Docker's embedded DNS and
// a published port through docker-proxy) works on it all the same, so the stack runs unchanged.

import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ContainerDetail } from "../gateway/api-schemas.js";
import { HealthReport } from "../gateway/health-report.js";
import { ensureNatsImage, ensureNodeBaseImage } from "./support/base-images.js";
import { ensureBusyboxImage } from "./support/busybox-image.js";
import { findExecutable } from "./support/children.js";
import {
  type DockerEventRecorder,
  makeUnhealthy,
  recordDockerEvents,
  runTestContainer,
  waitForHealth,
} from "./support/containers.js";
import { type DockerEngine, startDockerEngine } from "./support/dockerd.js";
import { REPO } from "./support/fleetheal.js";
import { describeError, waitFor } from "./support/wait.js";

const PROJECT = `fhcompose${randomBytes(3).toString("hex")}`;
const PROJECT_LABEL = `com.docker.compose.project=${PROJECT}`;
/** compose.yaml's default FLEETHEAL_HOST_ID. */
const HOST_ID = "compose-host";
/**
 * npm ci and tsc inside the build took 65 to 110 s here, on 2 cores shared with other tests and
 * benchmarks; the deadline leaves room for a machine far busier than that.
 */
const BUILD_TIMEOUT_MS = 480_000;
/** nats, agent, two handlers and the gateway. */
const STACK = { nats: 1, agent: 1, handler: 2, gateway: 1 };
/** The one-shot service that writes the credentials; it has exited once the stack runs. */
const INIT = "init";
/**
 * What each service's credentials volume holds (name and mode of each file), and where the
 * service mounts it (read-only): nats-auth's files for the host id, each role only its own.
 */
const CREDENTIALS = {
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
} as const;
/** An NKEY seed, as nats-auth writes them: user (SU…) or operator (SO…). */
const SEED = /\bS[UO][A-Z2-7]{56}\b/;

let engine: DockerEngine;
let recorder: DockerEventRecorder;
let workDir: string;
let composeBin: string;
let composeEnv: NodeJS.ProcessEnv;
let gatewayPort: number;
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

/** A port nothing listens on, for the gateway's published port (docker-proxy binds 0.0.0.0). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "0.0.0.0", resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

async function portIsFree(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once("error", () => resolve(false));
    server.listen(port, "0.0.0.0", () => server.close(() => resolve(true)));
  });
}

/** The image names the Dockerfile's FROM and compose.yaml use when nothing overrides them. */
async function defaultImages(): Promise<{ node: string; nats: string; fleetheal: string }> {
  const dockerfile = await readFile(join(REPO, "infra", "Dockerfile"), "utf8");
  const composeFile = await readFile(join(REPO, "compose.yaml"), "utf8");
  const node = /^ARG NODE_IMAGE=(\S+)$/m.exec(dockerfile)?.[1];
  const nodeInCompose = /\$\{FLEETHEAL_NODE_IMAGE:-([^}]+)\}/.exec(composeFile)?.[1];
  const nats = /\$\{FLEETHEAL_NATS_IMAGE:-([^}]+)\}/.exec(composeFile)?.[1];
  const fleetheal = /\$\{FLEETHEAL_IMAGE:-([^}]+)\}/.exec(composeFile)?.[1];
  if (!node || !nats || !fleetheal || nodeInCompose !== node) {
    throw new Error(
      `cannot read the default images (Dockerfile NODE_IMAGE=${node}, compose FLEETHEAL_NODE_IMAGE=${nodeInCompose}, FLEETHEAL_NATS_IMAGE=${nats}, FLEETHEAL_IMAGE=${fleetheal})`,
    );
  }
  return { node, nats, fleetheal };
}

/**
 * Runs a shell script in `image` (network none, with `binds` mounted) and returns its output;
 * throws unless exit 0.
 */
async function runInImage(image: string, script: string, binds: string[] = []): Promise<string> {
  const container = await engine.docker.createContainer({
    Image: image,
    Entrypoint: ["sh", "-c"],
    Cmd: [script],
    HostConfig: { NetworkMode: "none", Binds: binds },
  });
  try {
    await container.start();
    const { StatusCode } = (await container.wait()) as { StatusCode: number };
    const logs = await container.logs({ stdout: true, stderr: true });
    // Without a TTY the log is framed: 8 header bytes before each chunk.
    let text = "";
    for (let at = 0; at + 8 <= logs.length; ) {
      const size = logs.readUInt32BE(at + 4);
      text += logs.subarray(at + 8, at + 8 + size).toString("utf8");
      at += 8 + size;
    }
    if (StatusCode !== 0) throw new Error(`'${script}' in ${image} exited ${StatusCode}: ${text}`);
    return text;
  } finally {
    await container.remove({ force: true });
  }
}

async function stackContainers() {
  return engine.docker.listContainers({ all: true, filters: { label: [PROJECT_LABEL] } });
}

/** `name mode uid` of each file in one of the stack's volumes, and the contents of `cat`. */
async function inVolume(volume: string, cat: readonly string[] = []): Promise<string> {
  return runInImage(
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
  const res = await fetch(`http://127.0.0.1:${gatewayPort}/health`, {
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
  engine = await timed("engine", () => startDockerEngine("compose"));
  await timed("base images", () =>
    Promise.all([
      ensureNodeBaseImage(engine, images.node),
      ensureNatsImage(engine, images.nats),
      ensureBusyboxImage(engine),
    ]),
  );
  recorder = await recordDockerEvents(engine);
  gatewayPort = await freePort();
  // Only what compose needs, so that a FLEETHEAL_* variable of the developer's shell cannot
  // change the stack: the engine, the socket the agent mounts (with its group) and the port.
  composeEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    DOCKER_HOST: engine.dockerHost,
    DOCKER_SOCKET: engine.socketPath,
    DOCKER_GID: String((await stat(engine.socketPath)).gid),
    FLEETHEAL_GATEWAY_PORT: String(gatewayPort),
  };
});

afterAll(async () => {
  recorder?.close();
  if (engine && stackStarted) {
    // After a failure half-way: the bridge and docker-proxy belong to the host, not the engine.
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
    "builds one small image from infra/Dockerfile, without sources, dev dependencies or npm cache",
    async () => {
      // The three fleetheal services share one build and one tag: building it for one of them
      // builds it for all (v1 would otherwise build it three times over).
      await timed("build", () =>
        compose(["build", "--force-rm", "agent"], BUILD_TIMEOUT_MS - 10_000),
      );
      const image = await engine.docker.getImage(images.fleetheal).inspect();
      const base = await engine.docker.getImage(images.node).inspect();
      const addedMb = (image.Size - base.Size) / 1e6;
      timings.push(`image ${(image.Size / 1e6).toFixed(0)} MB (base + ${addedMb.toFixed(0)} MB)`);
      // Production dependencies and the compiled code: some 45 MB.
      expect(addedMb).toBeLessThan(80);
      expect(image.Config.User).toBe("1000:1000");
      expect(image.Config.Entrypoint).toEqual(["node", "/app/bin/fleetheal.js"]);
      expect(image.Config.Healthcheck?.Test).toEqual([
        "CMD",
        "node",
        "/app/bin/fleetheal.js",
        "healthcheck",
      ]);
      const check = await runInImage(
        images.fleetheal,
        [
          "find /app -name '*.ts' -not -path '/app/node_modules/*'",
          "for d in typescript vitest @biomejs/biome tsx; do test -e /app/node_modules/$d && echo dev:$d; done",
          "for d in /root/.npm /home/node/.npm /app/.npm; do test -e $d && echo cache:$d; done",
          "node /app/bin/fleetheal.js --version",
        ].join("; "),
      );
      expect(check.trim()).toBe(
        JSON.parse(await readFile(join(REPO, "package.json"), "utf8")).version,
      );
    },
    BUILD_TIMEOUT_MS,
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
      const credentials = CREDENTIALS[service as keyof typeof CREDENTIALS];
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
    for (const [service, credentials] of Object.entries(CREDENTIALS)) {
      const listing = await inVolume(`auth-${service}`);
      expect(listing.trim().split("\n").sort(), service).toEqual(
        Object.entries(credentials.files)
          .map(([file, mode]) => `${file} ${mode} 1000`)
          .sort(),
      );
    }
    const include = await inVolume("auth-nats", ["fleetheal-auth.conf", "nats.conf"]);
    expect(include).toMatch(/"HOST_compose-host"/);
    expect(include).toMatch(/include \.\/fleetheal-auth\.conf/);
    expect(include).not.toMatch(SEED);

    // NATS itself: no connection without one of the NKEYs (its port is not published, so this
    // goes to its address on the compose network).
    const nats = containers.find((c) => c.Labels["com.docker.compose.service"] === "nats");
    const natsInfo = await engine.docker.getContainer(nats?.Id as string).inspect();
    const address = Object.values(natsInfo.NetworkSettings.Networks)[0]?.IPAddress;
    await expect(
      connect({ servers: `${address}:4222`, maxReconnectAttempts: 0, timeout: 5_000 }),
    ).rejects.toThrow(/authorization/i);

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
    await waitForHealth(engine, app.id, "healthy", 30_000);
    await makeUnhealthy(engine, app.id);
    const unhealthy = await recorder.waitFor(
      (e) => e.id === app.id && e.action === "health_status: unhealthy",
      30_000,
      "the app never turned unhealthy",
    );
    await timed("heal", () =>
      recorder.waitFor(
        (e) => e.id === app.id && e.action === "restart" && e.timeNano > unhealthy.timeNano,
        60_000,
        "the stack did not restart the unhealthy app",
      ),
    );
    await waitForHealth(engine, app.id, "healthy", 30_000);

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
        const res = await fetch(`http://127.0.0.1:${gatewayPort}/containers/${HOST_ID}/${app.id}`, {
          signal: AbortSignal.timeout(5_000),
        });
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
        Object.entries(CREDENTIALS).map(([service, { files }]) =>
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
    const bridge = `/sys/class/net/br-${(networks[0] as { Id: string }).Id.slice(0, 12)}`;
    expect(existsSync(bridge)).toBe(true);

    await timed("down", () => compose(["down", "-v", "-t", "5"], 120_000));
    expect(await stackContainers()).toEqual([]);
    expect(await engine.docker.listNetworks({ filters: { label: [PROJECT_LABEL] } })).toEqual([]);
    const { Volumes } = await engine.docker.listVolumes({ filters: { label: [PROJECT_LABEL] } });
    expect(Volumes ?? []).toEqual([]);
    expect(await engine.docker.listContainers({ all: true })).toEqual([]);
    expect(existsSync(bridge)).toBe(false);
    expect(await portIsFree(gatewayPort)).toBe(true);
    stackStarted = false;
  }, 120_000);
});
