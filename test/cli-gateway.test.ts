// The gateway commands of the CLI on real parts: nats-server, one dockerd, and fleetheal's agent,
// handler and gateway as processes. Each CLI command runs as `node bin/fleetheal.js …`, the way
// an operator or a script runs it; Docker's own event stream is the witness of a restart.

import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_HEAL_POLICY } from "../contracts/index.js";
import { ContainerPage } from "../gateway/http/api-schemas.js";
import { HealthReport } from "../gateway/view/health-report.js";
import {
  type DockerEventRecorder,
  makeUnhealthy,
  runTestContainer,
  waitForHealth,
} from "./support/containers.js";
import type { DockerEngine } from "./support/dockerd.js";
import { type Fleet, startFleet } from "./support/fleet.js";
import { CLI, REPO } from "./support/fleetheal.js";
import { type ManagedProcess, startProcess } from "./support/process.js";
import { waitFor } from "./support/wait.js";

const HOST = "cli-host";
const ADMIN_TOKEN = randomBytes(24).toString("base64url");

let fleet: Fleet;
let engine: DockerEngine;
let recorder: DockerEventRecorder;
let url: string;
let tokenFile: string;
let dir: string;
let web: { id: string; name: string };

beforeAll(async () => {
  fleet = await startFleet({
    nats: "plain",
    hosts: [HOST],
    gateway: { adminToken: ADMIN_TOKEN },
    heartbeatMs: 1_000,
  });
  ({ engine, docker: recorder } = fleet.host(HOST));
  url = fleet.gateway.url;
  dir = await mkdtemp(join(tmpdir(), "fleetheal-cli-gw-"));
  fleet.defer(() => rm(dir, { recursive: true, force: true }));
  tokenFile = join(dir, "admin-token");
  await writeFile(tokenFile, `${ADMIN_TOKEN}\n`, { mode: 0o600 });
  web = await runTestContainer(engine, { name: "web", labels: { autoheal: "true" } });
  await waitForHealth(engine, web.id, "healthy", 20_000);
});

afterAll(async () => {
  await fleet?.[Symbol.asyncDispose]();
});

/** `fleetheal <args>` as a process, pointed at the gateway by FLEETHEAL_GATEWAY_URL. */
function spawnCli(args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawn(process.execPath, [CLI, ...args], {
    cwd: REPO,
    env: { ...process.env, FLEETHEAL_GATEWAY_URL: url, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** A one-shot command: its exit code and its output lines. */
async function fleetheal(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; lines: string[] }> {
  const child = spawnCli(args, env);
  let out = "";
  child.stdout.setEncoding("utf8").on("data", (c: string) => {
    out += c;
  });
  child.stderr.setEncoding("utf8").on("data", (c: string) => {
    out += c;
  });
  const code = await new Promise<number | null>((resolve) => child.once("close", resolve));
  return { code, lines: out.trimEnd().split("\n") };
}

/** A long-running command (`events --follow`) whose lines the test waits for. */
async function follow(args: string[]): Promise<ManagedProcess> {
  const proc = await startProcess({
    name: "fleetheal events",
    command: process.execPath,
    args: [CLI, ...args],
    cwd: REPO,
    env: { FLEETHEAL_GATEWAY_URL: url },
  });
  fleet.defer(() => proc[Symbol.asyncDispose]());
  return proc;
}

async function health(): Promise<HealthReport> {
  return HealthReport.parse(await (await fetch(`${url}/health`)).json());
}

describe("fleetheal CLI through a real gateway", () => {
  it("lists the test container with `containers --json`", async () => {
    // The agent's snapshot says healthy a moment after Docker does.
    await waitFor(async () => (await health()).totals.containers.healthy === 1, {
      timeoutMs: 20_000,
      message: "the gateway never saw the container healthy",
    });
    const list = await fleetheal(["containers", "--json", "--host", HOST]);
    expect(list.code).toBe(0);
    const page = ContainerPage.parse(JSON.parse(list.lines.join("\n")));
    expect(page.containers).toMatchObject([
      { host: HOST, id: web.id, name: "web", health: "healthy", optedIn: true, state: "running" },
    ]);

    const table = await fleetheal(["containers"]);
    expect(table.code).toBe(0);
    expect(table.lines[0]).toMatch(/^HOST\s+NAME\s+ID\s+IMAGE\s+STATE\s+HEALTH/);
    expect(table.lines[1]).toMatch(new RegExp(`^${HOST}\\s+web\\s+${web.id.slice(0, 12)}\\s`));
  });

  it("restarts it with `restart`, and `events --follow` prints the restart as it happens", async () => {
    const feed = await follow(["events", "--follow", "--container", "web", "--host", HOST]);
    await feed.waitForLine(
      (l) => l.includes("following http://"),
      20_000,
      "follow never connected",
    );
    const before = recorder.count((e) => e.id === web.id && e.action === "restart");

    const restart = await fleetheal(["restart", HOST, "web", "--token-file", tokenFile]);
    expect(restart.code, restart.lines.join("\n")).toBe(0);
    expect(restart.lines[0]).toMatch(
      new RegExp(`^restarted web on ${HOST} in \\d+ ms \\[command `),
    );
    // Docker itself says the container was restarted, once.
    await recorder.waitFor(
      (e) => e.id === web.id && e.action === "restart",
      10_000,
      "Docker never reported the restart",
    );
    expect(recorder.count((e) => e.id === web.id && e.action === "restart")).toBe(before + 1);

    // The audit records and Docker's events reach the follower live, in order.
    const restarted = await feed.waitForLine(
      (l) => /\sremediation\s+restarted\s+by-hand: /.test(l),
      20_000,
      "the restarted record never reached `events --follow`",
    );
    expect(restarted).toContain(`${HOST}  `);
    expect(restarted).toContain("[gateway:admin]");
    await feed.waitForLine(
      (l) => /\sevent\s+restart\b/.test(l),
      20_000,
      "Docker's restart event never reached `events --follow`",
    );
    const lines = feed.lines.filter((l) => !l.startsWith("fleetheal events:"));
    const restarting = lines.findIndex((l) => /\sremediation\s+restarting\s/.test(l));
    expect(restarting).toBeGreaterThanOrEqual(0);
    expect(lines.findIndex((l) => /\sremediation\s+restarted\s/.test(l))).toBeGreaterThan(
      restarting,
    );

    const stopped = await feed.stop("SIGINT");
    expect(stopped.code).toBe(0);
  });

  it("`status` exits 0 while the fleet is healthy and 1 once a container is unhealthy", async () => {
    await waitFor(async () => (await health()).status === "healthy", {
      timeoutMs: 30_000,
      message: "the fleet never became healthy after the restart",
    });
    const healthy = await fleetheal(["status"]);
    expect(healthy.code).toBe(0);
    expect(healthy.lines[0]).toBe("fleet        healthy");

    // Not opted in: nothing heals it, so the fleet stays degraded.
    const other = await runTestContainer(engine, { name: "not-healed" });
    await waitForHealth(engine, other.id, "healthy", 20_000);
    await makeUnhealthy(engine, other.id);
    await waitFor(async () => (await health()).status === "degraded", {
      timeoutMs: 30_000,
      message: "the gateway never saw the fleet degraded",
    });
    const degraded = await fleetheal(["status", "--json"]);
    expect(degraded.code).toBe(1);
    expect(HealthReport.parse(JSON.parse(degraded.lines.join("\n"))).status).toBe("degraded");
  });

  it("`describe` shows the container, the policy in effect and the restart by hand among its records", async () => {
    const shown = await fleetheal(["describe", HOST, "web", "--records", "20"]);
    expect(shown.code, shown.lines.join("\n")).toBe(0);
    expect(shown.lines[0]).toBe(`Container:     web (${web.id.slice(0, 12)})`);
    expect(shown.lines).toContain("Opted in:      yes");
    expect(shown.lines).toContain("  budget.restarts                    5");
    const records = shown.lines.slice(shown.lines.indexOf("Last records (since 1d):") + 1);
    expect(
      records.some((l) => /\sremediation\s+restarted\s+by-hand: .*\[gateway:admin\]/.test(l)),
    ).toBe(true);
    const missing = await fleetheal(["describe", HOST, "no-such-container"]);
    expect(missing.code).toBe(1);
    expect(missing.lines[0]).toMatch(/FLEETHEAL_ERR_NOT_FOUND \(HTTP 404\): no container/);
  });

  it("`policy edit` sends the edit with If-Match to the real policy store, and a change made meanwhile is a clear conflict", async () => {
    const admin = ["--token-file", tokenFile];
    // An editor that sets dryRun, then has someone else replace the policy before it returns.
    const editor = join(dir, "edit-and-race.sh");
    await writeFile(
      editor,
      [
        "#!/bin/sh",
        "set -e",
        `sed -i 's/"dryRun": false/"dryRun": true/' "$1"`,
        `[ -z "$RACE" ] || echo '{"notifyUnhealedAfterSeconds": 900}' | "${process.execPath}" "${CLI}" policy set - --force --token-file "${tokenFile}" >/dev/null`,
        "",
      ].join("\n"),
    );
    await chmod(editor, 0o755);
    const edited = await fleetheal(["policy", "edit", ...admin], { EDITOR: editor });
    expect(edited.code, edited.lines.join("\n")).toBe(0);
    const revision = Number(/^policy replaced: revision (\d+)$/.exec(edited.lines[0] ?? "")?.[1]);
    expect(edited.lines).toEqual([`policy replaced: revision ${revision}`]);
    const after = await fleetheal(["policy", "get", "--json"]);
    expect(JSON.parse(after.lines.join("\n"))).toEqual({
      policy: { ...DEFAULT_HEAL_POLICY, dryRun: true },
      revision,
    });

    const defaults = join(dir, "defaults.json");
    await writeFile(defaults, "{}");
    expect((await fleetheal(["policy", "set", defaults, "--force", ...admin])).code).toBe(0);
    const raced = await fleetheal(["policy", "edit", ...admin], { EDITOR: editor, RACE: "1" });
    expect(raced.code, raced.lines.join("\n")).toBe(1);
    expect(raced.lines[0]).toMatch(
      /^fleetheal policy: someone else changed the fleet policy: it is at revision \d+ now, not \d+; nothing was replaced$/,
    );
    expect(raced.lines[1]).toMatch(/^fleetheal policy: your version is kept in \S+\. To retry: /);
    const theirs = await fleetheal(["policy", "get", "--json"]);
    expect(JSON.parse(theirs.lines.join("\n")).policy).toMatchObject({
      dryRun: false,
      notifyUnhealedAfterSeconds: 900,
    });
    // Back to the defaults for whatever runs after.
    const kept = /kept in (\S+)\./.exec(raced.lines[1] ?? "")?.[1];
    if (kept) await rm(join(kept, ".."), { recursive: true, force: true });
    const reset = await fleetheal(["policy", "set", defaults, "--force", ...admin]);
    expect(reset.code).toBe(0);
  });

  it("`version` prints the gateway's version beside the client's", async () => {
    const v = await fleetheal(["version"]);
    expect(v.code).toBe(0);
    expect(v.lines).toEqual([
      expect.stringMatching(/^\d+\.\d+\.\d+/),
      `gateway ${v.lines[0]} at ${url}`,
    ]);
  });
});
