// The image of infra/Dockerfile as the one-container drop-in for the autoheal container: one
// `docker run … fleetheal:local up` with the Docker socket, the socket's group, a data volume and
// a published port, as the README shows it. It must run every role and its own nats-server,
// heal an opted-in container on the engine whose socket it mounts (Docker's own event stream is
// the witness), serve /health on the published port under the host's own id (the engine's name,
// not the container's id), turn healthy by its own HEALTHCHECK, keep its keys in the volume for
// the next container, and end cleanly on `docker stop`.
//
// The image is built once per run and shared with compose.test.ts (support/fleetheal-image.ts).
// The engine runs in a network namespace of its own (support/dockerd.ts, `netns`): the published
// port goes through the default bridge, which then does not depend on the host's firewall.

import { stat } from "node:fs/promises";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { toToken } from "../contracts/index.js";
import { HealthReport } from "../gateway/view/health-report.js";
import { ensureBusyboxImage } from "./support/busybox-image.js";
import {
  containerLogs,
  type DockerEventRecorder,
  healedOnce,
  recordDockerEvents,
  runScript,
  runTestContainer,
} from "./support/containers.js";
import { type DockerEngine, type ReachedAddress, startDockerEngine } from "./support/dockerd.js";
import { ensureFleethealImage, IMAGE_BUILD_TIMEOUT_MS } from "./support/fleetheal-image.js";
import { describeError, waitFor } from "./support/wait.js";

/** The data volume, as the README names it. */
const VOLUME = "fleetheal-data";
const DATA_DIR = "/data";

let engine: DockerEngine;
let recorder: DockerEventRecorder;
let image: string;
/** The published port 8080, as the test reaches it. */
let gateway: ReachedAddress;
/** The host id `up` must take: the engine's name. */
let hostId: string;
let socketGid: string;
const facts: string[] = [];

beforeAll(async () => {
  engine = await startDockerEngine("image", { netns: true });
  [image] = await Promise.all([ensureFleethealImage(engine), ensureBusyboxImage(engine)]);
  recorder = await recordDockerEvents(engine);
  gateway = await engine.reach("127.0.0.1", 8080);
  hostId = toToken((await engine.docker.info()).Name as string);
  socketGid = String((await stat(engine.socketPath)).gid);
}, IMAGE_BUILD_TIMEOUT_MS + 120_000);

afterAll(async () => {
  recorder?.close();
  await gateway?.[Symbol.asyncDispose]();
  await engine?.[Symbol.asyncDispose]();
  if (facts.length > 0) process.stdout.write(`image test: ${facts.join(", ")}\n`);
});

// Each step needs the one before it: after a failure the rest would only add timeouts to it.
let failed = false;
beforeEach((ctx) => {
  if (failed) ctx.skip();
  ctx.onTestFailed(() => {
    failed = true;
  });
});

/**
 * `docker run -d --name <name> -p 8080:8080 -v /var/run/docker.sock:/var/run/docker.sock
 * --group-add <socket's gid> -v fleetheal-data:/data --restart unless-stopped
 * fleetheal:local up`, with this engine's socket as /var/run/docker.sock.
 */
async function runUp(name: string): Promise<string> {
  const container = await engine.docker.createContainer({
    name,
    Image: image,
    Cmd: ["up"],
    HostConfig: {
      Binds: [`${engine.socketPath}:/var/run/docker.sock`, `${VOLUME}:${DATA_DIR}`],
      GroupAdd: [socketGid],
      PortBindings: { "8080/tcp": [{ HostPort: "8080" }] },
      RestartPolicy: { Name: "unless-stopped" },
    },
  });
  await container.start();
  return container.id;
}

async function getHealth(): Promise<HealthReport> {
  const res = await fetch(`http://${gateway.host}:${gateway.port}/health`, {
    signal: AbortSignal.timeout(2_000),
  });
  return HealthReport.parse(await res.json());
}

/** Waits for `up` in container `id` to say it is up, then for /health to list the host as up. */
async function waitForUp(id: string): Promise<void> {
  await waitFor(
    async () => (await containerLogs(engine, id)).includes(`is up on host ${hostId}: `),
    { timeoutMs: 90_000, intervalMs: 250, message: `up never said it is up on host ${hostId}` },
  ).catch(async (error: unknown) => {
    throw new Error(`${describeError(error)}\n${await containerLogs(engine, id)}`);
  });
  await waitFor(
    async () => (await getHealth()).hosts.some((h) => h.id === hostId && h.status === "up"),
    { timeoutMs: 30_000, intervalMs: 250, message: `/health never listed ${hostId} as up` },
  );
}

/** `docker stop` with a grace period well above what `up` needs; returns how long it took. */
async function dockerStop(id: string): Promise<number> {
  const t0 = Date.now();
  await engine.docker.getContainer(id).stop({ t: 30 });
  return Date.now() - t0;
}

/** The files in the data volume and a hash of the keys it holds. */
async function volumeState(): Promise<{ files: string[]; keys: string }> {
  const out = await runScript(
    engine,
    image,
    `cd /v && ls -A && echo --- && cat credentials/*.nk | sha256sum`,
    [`${VOLUME}:/v:ro`],
  );
  const [files = "", keys = ""] = out.split("---\n");
  return { files: files.trim().split("\n").sort(), keys: keys.trim() };
}

describe("the image as `up`, one container", () => {
  it("has nats-server, and no npm, dev dependency, native module or source", async () => {
    const info = await engine.docker.getImage(image).inspect();
    const history = await engine.docker.getImage(image).history();
    // The first layer is the runtime base (Node.js, a shell, nats-server); the rest is fleetheal.
    const base = history.at(-1)?.Size ?? 0;
    facts.push(
      `image ${(info.Size / 1e6).toFixed(1)} MB (runtime base with nats-server ${(base / 1e6).toFixed(1)} MB, fleetheal ${((info.Size - base) / 1e6).toFixed(1)} MB)`,
    );
    // Compiled code, the dashboard and the production dependencies: some 24 MB.
    expect(info.Size - base).toBeLessThan(40e6);
    expect(info.Config.User).toBe("1000:1000");
    expect(info.Config.Entrypoint).toEqual(["node", "/app/bin/fleetheal.js"]);
    expect(info.Config.Env).toContain(`FLEETHEAL_DATA_DIR=${DATA_DIR}`);
    expect(info.Config.ExposedPorts).toEqual({ "8080/tcp": {} });
    expect(info.Config.Healthcheck?.Test).toEqual([
      "CMD",
      "node",
      "/app/bin/fleetheal.js",
      "healthcheck",
    ]);
    const check = await runScript(
      engine,
      image,
      [
        "nats-server --version",
        "for p in npm npx corepack yarn tsc; do command -v $p && echo found:$p; done",
        "find /app -name '*.ts' -not -path '/app/node_modules/*'",
        "for d in typescript vitest @biomejs/biome tsx; do test -e /app/node_modules/$d && echo dev:$d; done",
        "for d in /root/.npm /home/node/.npm /app/.npm /usr/local/lib/node_modules; do test -e $d && echo left:$d; done",
        // Native modules, built or not: no role loads one (ssh2 falls back to JavaScript).
        "find /app \\( -name '*.node' -o -name binding.gyp -o -name cpu-features -o -name nan \\) -print",
        `stat -c '%U %a' ${DATA_DIR}`,
      ].join("; "),
    );
    expect(check.trim().split("\n")).toEqual([
      expect.stringMatching(/^nats-server: v2\./),
      "node 700",
    ]);
  });

  let first: string;
  let app: { id: string };

  it("docker run … up: every role and its nats-server, /health on the published port, under the host's id", async () => {
    first = await runUp("fleetheal");
    await waitForUp(first);
    const logs = await containerLogs(engine, first);
    // The host id is the engine's name (which the test engines share with the machine), not the
    // container's id.
    expect(logs).toContain(`the admin token for actions is in ${DATA_DIR}/admin-token`);
    expect(hostId).not.toBe(first.slice(0, 12));
    const report = await getHealth();
    expect(report.hosts).toEqual([
      expect.objectContaining({ id: hostId, status: "up", docker: "up" }),
    ]);
  }, 120_000);

  it("heals an opted-in container on the engine whose socket it mounts, once per incident", async () => {
    app = await runTestContainer(engine, {
      name: "app",
      labels: { autoheal: "true" },
      healthIntervalMs: 3_000,
    });
    await healedOnce(engine, recorder, app.id, "up in the image", 60_000);
    const incidents = () =>
      recorder.count((e) => e.id === app.id && e.action === "health_status: unhealthy");
    const restarts = () => recorder.count((e) => e.id === app.id && e.action === "restart");
    // A second restart for the same incident would show within a few seconds.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect(restarts()).toBe(incidents());
  }, 150_000);

  it("turns healthy by its own HEALTHCHECK: /livez and Docker through the mounted socket", async () => {
    await recorder.waitFor(
      (e) => e.id === first && e.action === "health_status: healthy",
      120_000,
      "the up container never turned healthy",
    );
    const health = (await engine.docker.getContainer(first).inspect()).State.Health;
    expect(health?.Log?.at(-1)?.Output).toMatch(
      /^healthy: http:\/\/127\.0\.0\.1:8080\/livez ok \(NATS connected\); Docker answers at unix:\/\/\/var\/run\/docker\.sock/,
    );
  }, 150_000);

  it("ends cleanly on docker stop, and a new container on the same volume keeps the host id and every key", async () => {
    const took = await dockerStop(first);
    facts.push(`docker stop ${(took / 1000).toFixed(1)} s`);
    const stopped = (await engine.docker.getContainer(first).inspect()).State;
    // Exit code 0: `up` stopped every role and its nats-server on SIGTERM, before the grace
    // period's SIGKILL (137).
    expect({
      running: stopped.Running,
      exitCode: stopped.ExitCode,
      oom: stopped.OOMKilled,
    }).toEqual({ running: false, exitCode: 0, oom: false });
    expect(took).toBeLessThan(25_000);
    expect(await engine.canConnect("127.0.0.1", 8080)).toBe(false);
    const before = await volumeState();
    // The embedded server's store, its accounts and keys, and the admin token.
    expect(before.files).toEqual(expect.arrayContaining(["admin-token", "credentials", "nats"]));

    await engine.docker.getContainer(first).remove();
    const second = await runUp("fleetheal");
    // A new container id, the same host.
    await waitForUp(second);
    expect((await getHealth()).hosts.map((h) => h.id)).toEqual([hostId]);
    expect((await dockerStop(second)) < 25_000).toBe(true);
    expect((await engine.docker.getContainer(second).inspect()).State.ExitCode).toBe(0);
    expect((await volumeState()).keys).toBe(before.keys);
  }, 200_000);
});
