// The gateway commands run in-process against the REAL gateway app (gateway/http/app.ts on in-memory
// fleet ports, test/support/gateway-fakes.ts) listening on a real port: requests go through
// fetch, HTTP, Fastify's validation and auth, and answers through the CLI's schema checks.

import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { HealthReport } from "../gateway/view/health-report.js";
import { initialPolicyState, nextPolicyState } from "../policy/policy-state.js";
import { type CliRun, runCli } from "../test/support/cli-run.js";
import { ledgerEntry } from "../test/support/fixtures.js";
import {
  hostSnapshot,
  startTestGateway,
  T0,
  type TestGateway,
} from "../test/support/gateway-fakes.js";
import { type CommandName, loadCommand, runCommandNamed } from "./commands/index.js";
import { commandHelp } from "./help.js";
import { clockTime } from "./table.js";

const COMMANDS = [
  "status",
  "hosts",
  "containers",
  "events",
  "restart",
  "release",
  "healing",
  "pause",
  "resume",
] as const;
const ADMIN = "admin-token-0123456789abcdef";
const READ = "read-token-0123456789abcdef";

let gw: TestGateway | undefined;
let url: string;
let dir: string;

// The machine is shared with benchmarks: module loading alone can take seconds.
vi.setConfig({ testTimeout: 20_000 });

beforeAll(async () => {
  // Loaded once here, so that the first test's deadline is not spent compiling modules.
  await Promise.all(COMMANDS.map((name) => loadCommand(name)));
  dir = await mkdtemp(join(tmpdir(), "fleetheal-cli-"));
  await mkdir(join(dir, "up", ".fleetheal"), { recursive: true });
  await writeFile(join(dir, "up", ".fleetheal", "admin-token"), `${ADMIN}\n`, { mode: 0o600 });
  await writeFile(join(dir, "wrong-token"), "wrong-token-0123456789abcdef\n");
}, 60_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await gw?.app.close();
  gw = undefined;
});

async function start(options: Parameters<typeof startTestGateway>[0] = {}): Promise<TestGateway> {
  gw = await startTestGateway({ tokens: { adminToken: ADMIN }, ...options });
  url = await gw.app.listen({ port: 0, host: "127.0.0.1" });
  return gw;
}

/** Requests the commands sent, to check that a usage error sends none. */
let requests = 0;
const countingFetch: typeof fetch = (input, init) => {
  requests++;
  return fetch(input, init);
};

/** Runs `fleetheal <name> <argv>` in this process, with the gateway's URL in the environment. */
function cli(
  name: CommandName,
  argv: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; now?: number } = {},
): Promise<CliRun> {
  return runCli(name, argv, {
    gatewayUrl: url,
    cwd: options.cwd ?? dir,
    now: options.now ?? T0,
    fetch: countingFetch,
    ...(options.env === undefined ? {} : { env: options.env }),
  });
}

const id = (g: TestGateway, host: string, i: number) =>
  g.view.get(host)?.snapshot.containers[i]?.id ?? "";

describe("fleetheal status", () => {
  it("exits 0 for a healthy fleet and prints the summary and one row per host", async () => {
    const g = await start();
    g.view.apply(hostSnapshot("web-1", ["healthy", "none"]), T0 - 2_000);
    const r = await cli("status", []);
    expect(r).toMatchObject({ code: 0, err: [] });
    expect(r.out).toEqual([
      "fleet        healthy",
      "hosts        1 (1 up)",
      "containers   2 (1 healthy, 1 without health check)",
      "quarantined  0",
      "",
      "HOST   STATUS  DOCKER  LAST SEEN  CONTAINERS  HEALTHY  UNHEALTHY  STARTING  NO CHECK  QUARANTINED",
      "web-1  up      up      2s ago              2        1          0         0         1            0",
    ]);
  });

  it("names an invalid stored policy and what stays in force, and exits 1", async () => {
    const valid = initialPolicyState({ operation: "PUT", revision: 3, value: "{}" }).state;
    const invalid = nextPolicyState(valid, {
      operation: "PUT",
      revision: 4,
      value: '{"stream":"FLEETHEAL_EVENTS","seq":1}',
    }).state;
    const g = await start({ policy: () => invalid });
    g.view.apply(hostSnapshot("web-1", ["healthy"]), T0);
    const r = await cli("status", []);
    expect(r.code).toBe(1);
    expect(r.out[0]).toBe("fleet        degraded");
    expect(r.out[4]).toMatch(
      /^policy {7}revision 4 is invalid; revision 3 stays in force: .*Unrecognized keys: "stream", "seq"/,
    );
  });

  it("exits 1 when the fleet is degraded or unhealthy; --json is /health's body", async () => {
    const g = await start();
    expect((await cli("status", [])).out).toContain("no hosts have reported yet");
    expect((await cli("status", [])).code).toBe(1);
    g.view.apply(hostSnapshot("web-1", ["healthy", "unhealthy"]), T0);
    const r = await cli("status", ["--json"]);
    expect(r.code).toBe(1);
    const body = HealthReport.parse(JSON.parse(r.out.join("\n")));
    expect(body.status).toBe("degraded");
    expect(JSON.parse(r.out.join("\n"))).toEqual(
      (await g.app.inject({ method: "GET", url: "/health" })).json(),
    );
    const sick = id(g, "web-1", 1);
    g.view.applyLedger(
      "web-1",
      sick,
      ledgerEntry({
        host: "web-1",
        containerId: sick,
        notHealing: {
          reason: "stuck",
          code: "docker-error",
          message: "boom",
          since: "2026-11-27T19:59:00.000Z",
        },
      }),
    );
    expect((await cli("status", [])).out[4]).toBe(
      "not healed   1 (1 stuck): fleetheal containers --health unhealthy",
    );
  });

  it("sends the read token, and exits 4 with the API's error and a hint without one", async () => {
    const g = await start({ tokens: { adminToken: ADMIN, readToken: READ } });
    g.view.apply(hostSnapshot("web-1", ["healthy"]), T0);
    const denied = await cli("status", []);
    expect(denied.code).toBe(4);
    expect(denied.err[0]).toMatch(
      /^FLEETHEAL_ERR_UNAUTHORIZED \(HTTP 401\): this route needs the read or admin token.*pass --token-file/,
    );
    expect(denied.out).toEqual([]);
    expect((await cli("status", [], { env: { FLEETHEAL_GATEWAY_TOKEN: READ } })).code).toBe(0);
    const wrong = await cli("status", ["--token-file", join(dir, "wrong-token")]);
    expect(wrong.code).toBe(4);
    expect(wrong.err.join("\n")).not.toContain("wrong-token-0123456789abcdef");
  });
});

describe("fleetheal hosts", () => {
  it("lists every host with its agent, Docker and outbox", async () => {
    const g = await start();
    g.view.apply(hostSnapshot("b-host", ["healthy", "unhealthy"]), T0 - 2_000);
    g.view.apply(
      hostSnapshot("a-host", ["healthy"], {
        docker: { status: "down", error: "connect ENOENT" },
        outbox: { depth: 7, capacity: 10_000, published: 90, dropped: 2 },
      }),
      T0 - 60_000,
    );
    const r = await cli("hosts", []);
    expect(r.code).toBe(0);
    expect(r.out).toEqual([
      "HOST    STATUS  LAST SEEN  DOCKER       AGENT  UPTIME  CONTAINERS  HEALTHY  UNHEALTHY  QUARANTINED               OUTBOX",
      "a-host  down    1m ago     down         0.1.0  59m              1        1          0            0  7/10000 (2 dropped)",
      "b-host  up      2s ago     up 20.10.24  0.1.0  59m              2        1          1            0              0/10000",
    ]);
    const json = await cli("hosts", ["--json"]);
    expect(JSON.parse(json.out.join("\n")).hosts.map((h: { id: string }) => h.id)).toEqual([
      "a-host",
      "b-host",
    ]);
  });
});

describe("fleetheal containers", () => {
  async function fleet(): Promise<TestGateway> {
    const g = await start();
    g.view.apply(hostSnapshot("h1", ["healthy", "unhealthy", "none"]), T0);
    g.view.apply(hostSnapshot("h2", ["healthy", "starting"]), T0);
    g.view.applyLedger(
      "h1",
      id(g, "h1", 1),
      ledgerEntry({
        host: "h1",
        containerId: id(g, "h1", 1),
        consecutiveRestarts: 4,
        lastRestartAt: "2026-11-27T19:50:00.000Z",
        quarantine: { since: "2026-11-27T19:55:00.000Z", reason: "budget" },
        notHealing: {
          reason: "held",
          code: "quarantined",
          message: "quarantined: the restart budget is spent",
          since: "2026-11-27T19:55:00.000Z",
          until: "2026-11-27T20:30:00.000Z",
        },
      }),
    );
    return g;
  }

  const names = (r: CliRun) => r.out.slice(1).map((l) => l.split(/\s+/)[1]);

  it("prints a table, with the filters of the API", async () => {
    const g = await fleet();
    const all = await cli("containers", []);
    expect(all.code).toBe(0);
    expect(all.out[0]).toBe(
      "HOST  NAME  ID            IMAGE    STATE    HEALTH     OPTED IN  QUARANTINED  HEALING                           RESTARTS  LAST RESTART  STARTED",
    );
    expect(all.out[2]).toBe(
      `h1    h1-1  ${id(g, "h1", 1).slice(0, 12)}  busybox  running  unhealthy  yes       yes          held: quarantined until ${clockTime("2026-11-27T20:30:00.000Z", T0)}         0  10m ago       -`,
    );
    expect(all.out[1]).toContain("  no           -  ");
    expect(names(all)).toEqual(["h1-0", "h1-1", "h1-2", "h2-0", "h2-1"]);
    expect(names(await cli("containers", ["--host", "h2"]))).toEqual(["h2-0", "h2-1"]);
    expect(names(await cli("containers", ["--health", "unhealthy"]))).toEqual(["h1-1"]);
    expect(names(await cli("containers", ["--state", "running", "--label", "tier=db"]))).toEqual([
      "h1-1",
      "h2-1",
    ]);
    expect(names(await cli("containers", ["--name", "H2-"]))).toEqual(["h2-0", "h2-1"]);
    expect(names(await cli("containers", ["--quarantined"]))).toEqual(["h1-1"]);
    expect(names(await cli("containers", ["--quarantined=false", "--host", "h1"]))).toEqual([
      "h1-0",
      "h1-2",
    ]);
    expect((await cli("containers", ["--opted-in=false"])).out).toEqual(["no containers match"]);
  });

  it("shows one page with a note, or follows every page with --all", async () => {
    await fleet();
    const first = await cli("containers", ["--limit", "2"]);
    expect(names(first)).toEqual(["h1-0", "h1-1"]);
    expect(first.err).toEqual(["2 of 5 containers shown: --all for every page"]);
    const all = await cli("containers", ["--limit", "2", "--all"]);
    expect(names(all)).toEqual(["h1-0", "h1-1", "h1-2", "h2-0", "h2-1"]);
    expect(all.err).toEqual([]);

    const page = JSON.parse((await cli("containers", ["--limit", "2", "--json"])).out.join("\n"));
    expect(page).toMatchObject({ total: 5, next: expect.any(String) });
    const next = JSON.parse(
      (await cli("containers", ["--limit", "2", "--cursor", page.next, "--json"])).out.join("\n"),
    );
    expect(next.containers.map((c: { name: string }) => c.name)).toEqual(["h1-2", "h2-0"]);
    const doc = JSON.parse(
      (await cli("containers", ["-a", "--limit", "2", "--json"])).out.join("\n"),
    );
    expect(doc.next).toBeUndefined();
    expect(doc.total).toBe(5);
    expect(doc.containers).toHaveLength(5);
  });

  it.each([
    [["--limit", "0"], '--limit: expected a whole number from 1 to 1000, got "0"'],
    [["--limit", "abc"], '--limit: expected a whole number, got "abc"'],
    [["--health", "sick"], '--health: expected healthy, unhealthy, starting, none, got "sick"'],
    [["--opted-in=maybe"], "--opted-in is a flag"],
    [["--host", "bad host"], "--host: host ids contain only letters"],
    [["--label", "=x"], "--label: label filters look like key or key=value"],
    [["extra"], "unexpected argument: extra"],
  ])("%j is a usage error (exit 2) naming the option, nothing is sent", async (argv, message) => {
    await fleet();
    const before = requests;
    const r = await cli("containers", argv);
    expect(r.code).toBe(2);
    expect(r.err[0]).toContain(message);
    expect(r.err[1]).toBe("usage: fleetheal containers [options] (fleetheal containers --help)");
    expect(requests).toBe(before);
  });
});

describe("fleetheal restart", () => {
  async function withHost(options: Parameters<typeof startTestGateway>[0] = {}) {
    const g = await start(options);
    g.view.apply(hostSnapshot("h1", ["unhealthy", "healthy"]), T0);
    return g;
  }

  it("restarts through the gateway with the admin token and the options it was given", async () => {
    const g = await withHost();
    const r = await cli(
      "restart",
      ["h1", "h1-0", "--reason", "stuck", "--stop-timeout", "5", "--idempotency-key", "k1"],
      { env: { FLEETHEAL_GATEWAY_TOKEN: ADMIN } },
    );
    expect(r).toEqual({
      code: 0,
      out: ["restarted h1-0 on h1 in 12 ms [command manual-k1]"],
      err: [],
    });
    expect(g.control.restarts).toMatchObject([
      {
        host: "h1",
        container: { name: "h1-0" },
        reason: "stuck",
        stopTimeoutSeconds: 5,
        idempotencyKey: "k1",
        actor: { name: "gateway:admin" },
      },
    ]);
  });

  it("uses the token `fleetheal up` wrote in the working directory", async () => {
    const g = await withHost();
    const r = await cli("restart", ["h1", id(g, "h1", 1).slice(0, 8), "--json"], {
      cwd: join(dir, "up"),
    });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out.join("\n"))).toMatchObject({ outcome: "restarted", duplicate: false });
  });

  it("exits 1 when the agent skips or refuses it, or Docker fails", async () => {
    const g = await withHost();
    const env = { FLEETHEAL_GATEWAY_TOKEN: ADMIN };
    const answer = g.control.restartAnswer;
    g.control.restartAnswer = (req) => ({
      ...(answer(req) as object as ReturnType<typeof answer> & object),
      outcome: "skipped",
      code: "already-restarting",
      message: "h1-0 is already restarting",
    });
    const skipped = await cli("restart", ["h1", "h1-0"], { env });
    expect(skipped.code).toBe(1);
    expect(skipped.out).toEqual([
      "skipped h1-0 on h1: already-restarting: h1-0 is already restarting [command manual-x]",
    ]);
    for (const [outcome, code] of [
      ["refused", "FLEETHEAL_ERR_CONFLICT (HTTP 409)"],
      ["failed", "FLEETHEAL_ERR_DOCKER (HTTP 502)"],
    ] as const) {
      g.control.restartAnswer = (req) => ({
        ...(answer(req) as object as ReturnType<typeof answer> & object),
        outcome,
        code: outcome,
        message: `the agent said ${outcome}`,
      });
      const r = await cli("restart", ["h1", "h1-0"], { env });
      expect(r.code, outcome).toBe(1);
      expect(r.out).toEqual([]);
      expect(r.err).toEqual([`${code}: the agent said ${outcome}`]);
    }
  });

  it("exits 4 when the token is refused or actions are disabled, 1 for an unknown container", async () => {
    await withHost();
    const wrong = await cli("restart", ["h1", "h1-0", "--token-file", join(dir, "wrong-token")]);
    expect(wrong.code).toBe(4);
    expect(wrong.err[0]).toMatch(/^FLEETHEAL_ERR_UNAUTHORIZED \(HTTP 401\): the bearer token/);
    const missing = await cli("restart", ["h1", "nope"], {
      env: { FLEETHEAL_GATEWAY_TOKEN: ADMIN },
    });
    // "No such container" is an answer, as docker's: 1, not 3 (the gateway unreachable).
    expect(missing.code).toBe(1);
    expect(missing.err[0]).toMatch(
      /^FLEETHEAL_ERR_NOT_FOUND \(HTTP 404\): no container nope on h1/,
    );
    await gw?.app.close();
    await withHost({ tokens: {} });
    const disabled = await cli("restart", ["h1", "h1-0"], {
      env: { FLEETHEAL_GATEWAY_TOKEN: ADMIN },
    });
    expect(disabled.code).toBe(4);
    expect(disabled.err[0]).toMatch(/^FLEETHEAL_ERR_FORBIDDEN \(HTTP 403\): actions are disabled/);
  });

  it("exits 2 without a token or with bad arguments, before sending anything", async () => {
    const g = await withHost();
    const none = await cli("restart", ["h1", "h1-0"]);
    expect(none.code).toBe(2);
    expect(none.err[0]).toMatch(/needs the gateway's admin token: pass --token-file/);
    expect((await cli("restart", ["h1"])).err[0]).toBe("missing arguments");
    const env = { FLEETHEAL_GATEWAY_TOKEN: ADMIN };
    expect((await cli("restart", ["h1", "h1-0", "--stop-timeout", "1.5"], { env })).code).toBe(2);
    const badHost = await cli("restart", ["web 1", "h1-0"], { env });
    expect(badHost.code).toBe(2);
    expect(badHost.err[0]).toBe("<host>: host ids contain only letters, digits, '_' and '-'");
    expect((await cli("release", ["h1", "a/b"], { env })).err[0]).toMatch(/^<container>: /);
    expect(g.control.restarts).toEqual([]);
  });
});

describe("fleetheal pause, resume and release", () => {
  it("pauses and resumes healing", async () => {
    const g = await start();
    const env = { FLEETHEAL_GATEWAY_TOKEN: ADMIN };
    expect(await cli("pause", ["--reason", "deploy"], { env })).toEqual({
      code: 0,
      out: ["healing is paused fleet-wide (policy revision 1)"],
      err: [],
    });
    expect((await g.control.getPolicy()).policy.paused).toBe(true);
    const resumed = await cli("resume", ["--json"], { env });
    expect(JSON.parse(resumed.out.join("\n"))).toEqual({ paused: false, revision: 2 });
  });

  it("releases through the gateway when one is named: 0 released, 1 not quarantined", async () => {
    const g = await start();
    g.view.apply(hostSnapshot("h1", ["healthy"]), T0);
    const cid = id(g, "h1", 0);
    g.control.quarantined.add(`h1.${cid}`);
    const env = { FLEETHEAL_GATEWAY_TOKEN: ADMIN };
    expect(await cli("release", ["h1", "h1-0", "--reason", "fixed"], { env })).toEqual({
      code: 0,
      out: [`released h1-0 (${cid.slice(0, 12)}) on h1`],
      err: [],
    });
    expect(g.control.releases[0]).toMatchObject({
      reason: "fixed",
      actor: { name: "gateway:admin" },
    });
    const again = await cli("release", ["h1", "h1-0"], { env });
    expect(again.code).toBe(1);
    expect(again.err).toEqual(["FLEETHEAL_ERR_CONFLICT (HTTP 409): h1-0 on h1 is not quarantined"]);
  });

  it("goes through the gateway even when none is named (the default one), never to NATS", async () => {
    const asked: string[] = [];
    const unreachable: typeof fetch = async (input) => {
      asked.push(input instanceof Request ? input.url : String(input));
      throw new TypeError("fetch failed");
    };
    const env = { FLEETHEAL_NATS_URL: "nats://127.0.0.1:9", FLEETHEAL_GATEWAY_TOKEN: ADMIN };
    const run = await runCli("release", ["h1", "web"], {
      gatewayUrl: "",
      cwd: dir,
      now: T0,
      fetch: unreachable,
      env,
    });
    expect(asked).toEqual(["http://127.0.0.1:8080/containers/h1/web/release"]);
    expect(run.code).toBe(3);
    expect(run.err[0]).toMatch(/^FLEETHEAL_ERR_UNREACHABLE: /);
    const nats = await cli("release", ["h1", "web", "--nats"], { env });
    expect(nats.code).toBe(2);
    expect(nats.err[0]).toMatch(/--nats/);
  });
});

describe("fleetheal healing", () => {
  it("switches off and on by host/name, idempotently, and says who and since when", async () => {
    const g = await start();
    g.view.apply(hostSnapshot("h1", ["unhealthy"]), T0);
    const env = { FLEETHEAL_GATEWAY_TOKEN: ADMIN };
    const off = await cli("healing", ["off", "h1/h1-0", "--reason", "debugging"], { env });
    expect(off).toEqual({
      code: 0,
      out: [
        "healing is off for h1-0 on h1, since 2026-11-27T20:00:00.000Z by gateway:admin: debugging",
      ],
      err: [],
    });
    expect((await g.control.getPolicy()).policy.disabled).toMatchObject([
      { host: "h1", name: "h1-0", by: "gateway:admin", reason: "debugging" },
    ]);
    const again = await cli("healing", ["off", `h1/${id(g, "h1", 0).slice(0, 6)}`], { env });
    expect(again.code).toBe(0);
    expect(again.out[0]).toContain("(already so: nothing changed)");
    expect(g.control.switchRecords.map((r) => r.phase)).toEqual(["disabled"]);
    const on = await cli("healing", ["on", "h1/h1-0", "--json"], { env });
    expect(on.code).toBe(0);
    expect(JSON.parse(on.out.join("\n"))).toMatchObject({ enabled: true, changed: true });
    expect(g.control.switchRecords.map((r) => r.phase)).toEqual(["disabled", "enabled"]);
  });

  it("checks its arguments before sending anything", async () => {
    await start();
    const before = requests;
    for (const argv of [["maybe", "h1/x"], ["off", "h1"], ["off", "h 1/x"], ["off"]]) {
      const r = await cli("healing", argv, { env: { FLEETHEAL_GATEWAY_TOKEN: ADMIN } });
      expect(r.code, argv.join(" ")).toBe(2);
    }
    expect(requests).toBe(before);
    const unknown = await cli("healing", ["off", "h1/nosuch"], {
      env: { FLEETHEAL_GATEWAY_TOKEN: ADMIN },
    });
    expect(unknown.code).toBe(1);
  });
});

describe("a gateway that cannot answer", () => {
  let other: Server;
  let otherUrl: string;
  const answers: Record<string, [number, string, string]> = {
    "/health": [200, "application/json", '{"status":"fine"}'],
    "/hosts": [502, "text/html", "<html><body>Bad Gateway</body></html>"],
    "/containers": [200, "text/html", "<html>hello</html>"],
    "/pause": [401, "text/plain", "go away"],
  };
  beforeAll(async () => {
    other = createServer((req, res) => {
      const [status, type, body] = answers[req.url?.split("?")[0] ?? ""] ?? [404, "text/plain", ""];
      res.writeHead(status, { "content-type": type }).end(body);
    });
    await new Promise<void>((resolve) => other.listen(0, "127.0.0.1", resolve));
    otherUrl = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => other.close(() => resolve())));

  it("is an error with a stable code and exit 3 (4 for a refusal), never a crash", async () => {
    const env = { FLEETHEAL_GATEWAY_URL: otherUrl, FLEETHEAL_GATEWAY_TOKEN: ADMIN };
    const bad = await cli("status", [], { env });
    expect(bad.code).toBe(3);
    expect(bad.err[0]).toMatch(
      /^FLEETHEAL_ERR_BAD_RESPONSE \(HTTP 200\): GET \/health answered 200 with a body that is not the API's .*: status: Invalid option/,
    );
    const proxy = await cli("hosts", [], { env });
    expect(proxy).toMatchObject({ code: 3, out: [] });
    expect(proxy.err[0]).toBe(
      "FLEETHEAL_ERR_HTTP (HTTP 502): GET /hosts answered HTTP 502 Bad Gateway, not in the API's error format: <html><body>Bad Gateway</body></html>",
    );
    expect((await cli("containers", [], { env })).err[0]).toMatch(
      /^FLEETHEAL_ERR_BAD_RESPONSE .*not JSON: <html>hello<\/html>/,
    );
    expect((await cli("pause", [], { env })).code).toBe(4);
  });

  it("is exit 130 when interrupted while waiting for an answer", async () => {
    const silent = createServer(() => {
      // Never answers, like a gateway stuck behind a proxy.
      abort.abort();
    });
    const abort = new AbortController();
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const err: string[] = [];
    const code = await runCommandNamed("status", [], {
      io: { out: () => {}, err: (l) => err.push(l) },
      env: { FLEETHEAL_GATEWAY_URL: `http://127.0.0.1:${(silent.address() as AddressInfo).port}` },
      cwd: dir,
      now: () => T0,
      signal: abort.signal,
    });
    silent.closeAllConnections();
    await new Promise((resolve) => silent.close(resolve));
    expect({ code, err }).toEqual({ code: 130, err: ["interrupted"] });
  });

  it("is exit 3 when nothing listens", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const r = await cli("status", ["--gateway", `http://127.0.0.1:${port}`]);
    expect(r.code).toBe(3);
    expect(r.err[0]).toMatch(
      new RegExp(
        `^FLEETHEAL_ERR_UNREACHABLE: cannot reach the gateway at http://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`,
      ),
    );
  });
});

describe("help", () => {
  it.each(COMMANDS)("fleetheal %s --help describes that command and every option", async (name) => {
    const command = await loadCommand(name);
    const r = await cli(name, ["--help"], { env: { FLEETHEAL_GATEWAY_URL: "not even a url" } });
    expect(r.code).toBe(0);
    expect(r.out.join("\n")).toBe(commandHelp(command).trimEnd());
    expect(r.out[0]).toBe(`Usage: ${command.usage}`);
    expect(command.usage).toMatch(new RegExp(`^fleetheal ${name} .*\\[options\\]$`));
    for (const option of Object.keys(command.options)) {
      expect(r.out.join("\n")).toContain(`--${option}`);
    }
    expect(r.out.join("\n")).toContain("4  authentication refused");
    const wrong = await cli(name, ["--no-such-option"]);
    expect(wrong.code).toBe(2);
    expect(wrong.err).toEqual([
      "unknown option --no-such-option",
      `usage: ${command.usage} (fleetheal ${name} --help)`,
    ]);
  });
});
