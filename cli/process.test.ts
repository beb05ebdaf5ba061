// The CLI as scripts run it: `node bin/fleetheal.js …` as a child process against the real
// gateway app on a real port, for the exit code the shell sees, the streams output goes to,
// and Ctrl-C. It runs the compiled dist/ (`npm run build`; `npm test` builds first).

import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import pkg from "../package.json" with { type: "json" };
import { containerEvent } from "../test/support/fixtures.js";
import { CLI, REPO } from "../test/support/fleetheal.js";
import {
  hostSnapshot,
  startTestGateway,
  T0,
  type TestGateway,
} from "../test/support/gateway-fakes.js";

vi.setConfig({ testTimeout: 30_000 });

let gw: TestGateway | undefined;
let url: string;

beforeAll(() => {
  if (!existsSync(`${REPO}/dist/cli/commands/index.js`)) {
    throw new Error("dist/ is missing or stale: run `npm run build` (npm test does it first)");
  }
});
afterEach(async () => {
  await gw?.app.close();
  gw = undefined;
});

async function start(): Promise<TestGateway> {
  gw = await startTestGateway();
  url = await gw.app.listen({ port: 0, host: "127.0.0.1" });
  return gw;
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function fleetheal(args: string[], env: Record<string, string> = {}) {
  const child: ChildProcess = spawn(process.execPath, [CLI, ...args], {
    cwd: REPO,
    env: { ...process.env, FLEETHEAL_GATEWAY_URL: url, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout?.setEncoding("utf8").on("data", (c: string) => {
    stdout += c;
  });
  child.stderr?.setEncoding("utf8").on("data", (c: string) => {
    stderr += c;
  });
  const exited = new Promise<Exit>((resolve) =>
    child.once("close", (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  const until = async (pred: () => boolean, what: string) => {
    const deadline = Date.now() + 15_000;
    while (!pred()) {
      if (Date.now() > deadline || child.exitCode !== null) {
        throw new Error(`${what}: not seen; stdout: ${stdout}; stderr: ${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return {
    child,
    exited,
    stdoutHas: (text: string) => until(() => stdout.includes(text), text),
    stderrHas: (text: string) => until(() => stderr.includes(text), text),
  };
}

describe("node bin/fleetheal.js", () => {
  it("status --json: exit 0 when healthy, 1 when degraded, the body on stdout", async () => {
    const g = await start();
    g.view.apply(hostSnapshot("h1", ["healthy"]), T0);
    const healthy = await fleetheal(["status", "--json"]).exited;
    expect(healthy).toMatchObject({ code: 0, stderr: "" });
    expect(JSON.parse(healthy.stdout)).toMatchObject({ status: "healthy" });

    g.view.apply(hostSnapshot("h2", ["unhealthy"]), T0);
    const degraded = await fleetheal(["status", "--json"]).exited;
    expect(degraded.code).toBe(1);
    expect(JSON.parse(degraded.stdout)).toMatchObject({ status: "degraded" });
  });

  it("exit 3 with the error on stderr when the gateway is unreachable, 2 on a usage error", async () => {
    await start();
    await gw?.app.close();
    const down = await fleetheal(["status"]).exited;
    expect(down.code).toBe(3);
    expect(down.stdout).toBe("");
    expect(down.stderr).toMatch(/^fleetheal status: FLEETHEAL_ERR_UNREACHABLE: cannot reach/);
    const usage = await fleetheal(["containers", "--limit"]).exited;
    expect(usage.code).toBe(2);
    expect(usage.stderr).toBe(
      "fleetheal containers: --limit needs a value <n>\nfleetheal containers: usage: fleetheal containers [options] (fleetheal containers --help)\n",
    );
  });

  it("events --follow --json prints JSON lines until Ctrl-C, then exits 0", async () => {
    const g = await start();
    g.view.apply(hostSnapshot("h1", ["healthy"]), T0);
    const follow = fleetheal(["events", "--follow", "--json"]);
    await follow.stderrHas("following ");
    const id = g.view.get("h1")?.snapshot.containers[0]?.id ?? "";
    g.events.push({
      kind: "event",
      seq: 41,
      subject: `fleetheal.v1.evt.h1.${id}.restart`,
      storedAt: new Date(T0).toISOString(),
      event: containerEvent({
        id: `h1:${id}:1:restart`,
        host: "h1",
        action: "restart",
        timeNano: "1",
        time: new Date(T0).toISOString(),
        container: { id, name: "h1-0" },
      }),
    });
    await follow.stdoutHas("\n");
    follow.child.kill("SIGINT");
    const exit = await follow.exited;
    expect(exit.code).toBe(0);
    expect(
      exit.stdout
        .trimEnd()
        .split("\n")
        .map((l) => JSON.parse(l).seq),
    ).toEqual([41]);
  });

  it("version prints the client's version and the gateway's; -v and --version the client's only", async () => {
    await start();
    expect(await fleetheal(["version"]).exited).toEqual({
      code: 0,
      signal: null,
      stdout: `${pkg.version}\ngateway ${pkg.version} at ${url}\n`,
      stderr: "",
    });
    for (const args of [["-v"], ["--version"], ["version", "--client"]]) {
      expect(await fleetheal(args).exited).toEqual({
        code: 0,
        signal: null,
        stdout: `${pkg.version}\n`,
        stderr: "",
      });
    }
    const json = await fleetheal(["version", "--json"]).exited;
    expect(json).toMatchObject({ code: 0, stderr: "" });
    expect(JSON.parse(json.stdout)).toEqual({
      version: pkg.version,
      node: process.versions.node,
      platform: process.platform,
      arch: process.arch,
      gateway: { url, version: pkg.version },
    });
    await gw?.app.close();
    // Unreachable: the client's version still, exit 0, and why there is no other on stderr.
    const alone = await fleetheal(["version"]).exited;
    expect(alone).toMatchObject({ code: 0, stdout: `${pkg.version}\n` });
    expect(alone.stderr).toMatch(
      /^fleetheal version: no gateway version: cannot reach the gateway at http:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/,
    );
    const aloneJson = await fleetheal(["version", "--json"]).exited;
    expect(JSON.parse(aloneJson.stdout)).toEqual({
      version: pkg.version,
      node: process.versions.node,
      platform: process.platform,
      arch: process.arch,
    });
    const usage = await fleetheal(["version", "--yaml"]).exited;
    expect(usage).toMatchObject({ code: 2, stdout: "" });
    expect(usage.stderr).toMatch(/^fleetheal version: unknown option --yaml\n/);
    const help = await fleetheal(["version", "--help"]).exited;
    expect(help).toMatchObject({ code: 0, stderr: "" });
    expect(help.stdout).toMatch(/^Usage: fleetheal version \[--json\] \[options\]\n/);
  });

  it("help <command> prints that command's help; an unknown command is a short error naming the nearest", async () => {
    const restart = await fleetheal(["help", "restart"]).exited;
    expect(restart).toMatchObject({ code: 0, stderr: "" });
    expect(restart.stdout).toMatch(/^Usage: fleetheal restart <host> <container> \[options\]\n/);
    expect((await fleetheal(["restart", "--help"]).exited).stdout).toBe(restart.stdout);
    const global = await fleetheal(["help"]).exited;
    expect(global.stdout).toMatch(/^fleetheal — /);
    const typo = await fleetheal(["contianers"]).exited;
    expect(typo).toEqual({
      code: 2,
      signal: null,
      stdout: "",
      stderr:
        'fleetheal: unknown command "contianers"; did you mean containers?\nfleetheal help lists every command; fleetheal help <command> shows one.\n',
    });
    const unknownHelp = await fleetheal(["help", "polcy"]).exited;
    expect(unknownHelp).toMatchObject({ code: 2, stdout: "" });
    expect(unknownHelp.stderr).toMatch(
      /^fleetheal: unknown command "polcy"; did you mean policy\?\n/,
    );
    const nothingNear = await fleetheal(["xyzzy"]).exited;
    expect(nothingNear.stderr.split("\n")).toHaveLength(3);
  });

  it("host-id prints the host id an agent here would use, or why it has none", async () => {
    expect((await fleetheal(["host-id"], { FLEETHEAL_HOST_ID: "web-7" }).exited).stdout).toBe(
      "web-7\n",
    );
    const bad = await fleetheal(["host-id"], { FLEETHEAL_HOST_ID: "web.7" }).exited;
    expect(bad).toMatchObject({ code: 2, stdout: "" });
    expect(bad.stderr).toContain("FLEETHEAL_HOST_ID");
  });

  it("a role with a bad FLEETHEAL_LOG_LEVEL exits 2 naming it, before starting anything", async () => {
    for (const role of ["agent", "gateway", "up"]) {
      const bad = await fleetheal([role], { FLEETHEAL_LOG_LEVEL: "debgu" }).exited;
      expect(bad, role).toMatchObject({ code: 2, stdout: "" });
      expect(bad.stderr, role).toContain(
        `fleetheal ${role}: invalid configuration:\n  FLEETHEAL_LOG_LEVEL="debgu": must be one of`,
      );
    }
  });

  it("has per-command help, and the global help lists every command", async () => {
    await start();
    const global = await fleetheal(["--help"]).exited;
    for (const name of [
      "status",
      "hosts",
      "containers",
      "events",
      "restart",
      "pause",
      "resume",
      "version",
    ]) {
      expect(global.stdout).toMatch(new RegExp(`^  ${name}\\b`, "m"));
    }
    const restart = await fleetheal(["restart", "--help"]).exited;
    expect(restart.code).toBe(0);
    expect(restart.stdout).toMatch(/^Usage: fleetheal restart <host> <container> \[options\]\n/);
    expect(restart.stdout).toContain("--idempotency-key");
    const agent = await fleetheal(["agent", "--help"]).exited;
    expect(agent.stdout).toMatch(/^Usage: fleetheal agent\n/);
    expect(agent.stdout).toContain("DOCKER_HOST");
    const release = await fleetheal(["release", "-h"]).exited;
    expect(release.code).toBe(0);
    expect(release.stdout).toMatch(/^Usage: fleetheal release <host> <container> \[options\]\n/);
  });
});
