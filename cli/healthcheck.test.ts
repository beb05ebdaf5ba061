import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  checkHealth,
  HEARTBEAT_STALE_MS,
  healthcheckCommand,
  heartbeatFile,
  keepHeartbeat,
  roleOfCommandLine,
} from "./healthcheck.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "fleetheal-healthcheck-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const T = 1_800_000_000_000;
const beat = (role: "agent" | "handler", at: number, pid = 4242) =>
  writeFileSync(heartbeatFile(role, dir), JSON.stringify({ pid, at }));

describe("roleOfCommandLine", () => {
  it("finds the role after the program, however it was started", () => {
    expect(roleOfCommandLine(["node", "/app/bin/fleetheal.js", "agent", ""])).toBe("agent");
    expect(roleOfCommandLine(["/sbin/docker-init", "--", "fleetheal", "handler"])).toBe("handler");
    expect(roleOfCommandLine(["node", "/app/bin/fleetheal.js", "status"])).toBeUndefined();
    expect(roleOfCommandLine(["/sbin/init"])).toBeUndefined();
  });
});

describe("agent and handler heartbeat", () => {
  it("is healthy while the running role keeps it fresh, and gone once it stops", async () => {
    const stop = vi.fn(async () => {});
    const running = keepHeartbeat("handler", { stop }, { dir, now: () => T });
    const ok = await checkHealth("handler", { env: {}, dir, now: () => T + 1_000 });
    expect(ok).toEqual({ healthy: true, message: expect.stringContaining("alive") });
    await running.stop();
    expect(stop).toHaveBeenCalledOnce();
    expect(existsSync(heartbeatFile("handler", dir))).toBe(false);
  });

  it("fails before the role has started, when it died, and when its loop is stuck", async () => {
    const deps = { env: {}, dir, now: () => T, isAlive: () => true };
    expect(await checkHealth("handler", deps)).toMatchObject({
      healthy: false,
      message: expect.stringContaining("has not started"),
    });
    beat("handler", T - HEARTBEAT_STALE_MS - 1);
    expect(await checkHealth("handler", deps)).toMatchObject({
      healthy: false,
      message: expect.stringContaining("stuck"),
    });
    beat("handler", T);
    expect(await checkHealth("handler", { ...deps, isAlive: () => false })).toMatchObject({
      healthy: false,
      message: expect.stringContaining("no longer running"),
    });
  });

  it("agent: also needs Docker, and names DOCKER_GID when the socket is refused", async () => {
    beat("agent", T);
    const deps = { env: {}, dir, now: () => T, isAlive: () => true };
    const ok = await checkHealth("agent", { ...deps, pingDocker: async () => {} });
    expect(ok).toMatchObject({ healthy: true, message: expect.stringContaining("Docker answers") });
    const refused = await checkHealth("agent", {
      ...deps,
      pingDocker: async () => {
        throw new Error("connect EACCES /var/run/docker.sock");
      },
    });
    expect(refused).toMatchObject({
      healthy: false,
      message: expect.stringContaining("DOCKER_GID"),
    });
  });
});

describe("gateway", () => {
  it("asks /livez where the gateway listens", async () => {
    const getJson = vi.fn(async () => ({ status: 200, body: { status: "ok", nats: "connected" } }));
    const env = { FLEETHEAL_GATEWAY_PORT: "9090" };
    expect(await checkHealth("gateway", { env, getJson })).toMatchObject({ healthy: true });
    expect(getJson).toHaveBeenCalledWith("http://127.0.0.1:9090/livez");
    const down = vi.fn(async () => {
      throw new Error("connect ECONNREFUSED 127.0.0.1:9090");
    });
    expect(await checkHealth("up", { env, getJson: down })).toMatchObject({ healthy: false });
  });

  it("up: /livez and Docker, which it heals through, with the fix for a refused socket", async () => {
    const getJson = async () => ({ status: 200, body: { status: "ok", nats: "connected" } });
    const ok = await checkHealth("up", { env: {}, getJson, pingDocker: async () => {} });
    expect(ok).toEqual({
      healthy: true,
      message:
        "http://127.0.0.1:8080/livez ok (NATS connected); Docker answers at unix:///var/run/docker.sock",
    });
    const refused = await checkHealth("up", {
      env: {},
      getJson,
      pingDocker: async () => {
        throw new Error("connect EACCES /var/run/docker.sock");
      },
    });
    expect(refused).toMatchObject({
      healthy: false,
      message: expect.stringContaining("--group-add"),
    });
  });

  it("refuses a random port, which it could not find", async () => {
    const result = await checkHealth("gateway", { env: { FLEETHEAL_GATEWAY_PORT: "0" } });
    expect(result).toMatchObject({ healthy: false, message: expect.stringContaining("fixed") });
  });
});

describe("healthcheckCommand", () => {
  it("exits 0 or 1 with one line, and 1 for an unknown role", async () => {
    const out: string[] = [];
    const err: string[] = [];
    const io = { out: (t: string) => out.push(t), err: (t: string) => err.push(t) };
    beat("handler", T);
    const deps = { env: {}, dir, now: () => T, isAlive: () => true };
    expect(await healthcheckCommand("handler", io, deps)).toBe(0);
    expect(out.at(-1)).toMatch(/^healthy: handler/);
    expect(await healthcheckCommand("agent", io, deps)).toBe(1);
    expect(err.at(-1)).toMatch(/^unhealthy: no heartbeat/);
    expect(await healthcheckCommand("nats", io, deps)).toBe(1);
    expect(err.at(-1)).toContain("unknown role 'nats'");
  });
});
