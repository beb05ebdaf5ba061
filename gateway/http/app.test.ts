import { readFile } from "node:fs/promises";
import { afterEach, describe, expect, it } from "vitest";
import { VERSION } from "../../common/version.js";
import { DEFAULT_HEAL_POLICY } from "../../contracts/index.js";
import {
  INITIAL_POLICY_STATE,
  initialPolicyState,
  nextPolicyState,
  type PolicyEntry,
} from "../../policy/policy-state.js";
import { healPolicy, ledgerEntry } from "../../test/support/fixtures.js";
import {
  hostSnapshot,
  startTestGateway,
  T0,
  type TestGateway,
} from "../../test/support/gateway-fakes.js";
import { HealthReport } from "../view/health-report.js";
import { ContainerDetail, ContainerPage, HostList } from "./api-schemas.js";
import { KEEP_ALIVE_TIMEOUT_MS, REQUEST_TIMEOUT_MS } from "./app.js";

let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.app.close();
  gw = undefined;
});

async function start(options: Parameters<typeof startTestGateway>[0] = {}) {
  gw = await startTestGateway(options);
  return gw;
}

function quarantine(g: TestGateway, host: string, id: string) {
  g.view.applyLedger(
    host,
    id,
    ledgerEntry({
      host,
      containerId: id,
      restarts: [
        {
          at: "2026-11-27T19:50:00.000Z",
          incident: "2026-11-27T19:49:00.000Z",
          commandId: "cmd-00000001",
          outcome: "restarted",
        },
      ],
      consecutiveRestarts: 6,
      lastRestartAt: "2026-11-27T19:50:00.000Z",
      quarantine: { since: "2026-11-27T19:55:00.000Z", reason: "6 restarts in 1h" },
    }),
  );
}

describe("the server's timeouts", () => {
  it("bound how long a client may take to send a request, and idle keep-alives", async () => {
    const g = await start();
    expect(g.app.server.requestTimeout).toBe(REQUEST_TIMEOUT_MS);
    expect(REQUEST_TIMEOUT_MS).toBeGreaterThan(0);
    expect(g.app.server.keepAliveTimeout).toBe(KEEP_ALIVE_TIMEOUT_MS);
  });
});

describe("GET /health", () => {
  it("reports the fleet from the view, with quarantined counts", async () => {
    const g = await start();
    g.view.apply(hostSnapshot("b-host", ["healthy", "unhealthy"]), T0 - 500);
    g.view.apply(hostSnapshot("a-host", ["healthy", "starting", "none"]), T0 - 4_000);
    g.view.apply(hostSnapshot("c-host", ["unhealthy"]), T0 - 60_000);
    const b = g.view.get("b-host")?.snapshot.containers[1]?.id ?? "";
    quarantine(g, "b-host", b);
    // A quarantined container that its host no longer lists is not counted.
    quarantine(g, "b-host", "feedfeedfeed");
    const res = await g.app.inject({ method: "GET", url: "/health" });
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^application\/json/);
    const body = HealthReport.parse(res.json());
    expect(body.status).toBe("degraded");
    expect(
      body.hosts.map((h) => [
        h.id,
        h.status,
        h.containers.total,
        h.containers.unhealthy,
        h.quarantined,
      ]),
    ).toEqual([
      ["a-host", "stale", 3, 0, 0],
      ["b-host", "up", 2, 1, 1],
      ["c-host", "down", 1, 1, 0],
    ]);
    expect(body.totals).toEqual({
      hosts: { total: 3, up: 1, stale: 1, down: 1 },
      containers: { total: 5, healthy: 2, unhealthy: 1, starting: 1, none: 1 },
      quarantined: 1,
    });
  });

  it("an empty fleet is unhealthy (still 200, 503 with strict=1)", async () => {
    const g = await start();
    const res = await g.app.inject({ method: "GET", url: "/health" });
    expect(res.statusCode).toBe(200);
    expect(HealthReport.parse(res.json()).status).toBe("unhealthy");
    expect((await g.app.inject({ method: "GET", url: "/health?strict=1" })).statusCode).toBe(503);
  });

  it("strict=1 answers 200 only for a healthy fleet", async () => {
    const g = await start();
    g.view.apply(hostSnapshot("a-host", ["healthy"]), T0);
    expect((await g.app.inject({ method: "GET", url: "/health?strict=true" })).statusCode).toBe(
      200,
    );
    g.view.apply(hostSnapshot("a-host", ["unhealthy"]), T0);
    const res = await g.app.inject({ method: "GET", url: "/health?strict=1" });
    expect(res.statusCode).toBe(503);
    expect(res.json().status).toBe("degraded");
  });

  it("rejects a strict value it does not understand", async () => {
    const g = await start();
    const res = await g.app.inject({ method: "GET", url: "/health?strict=maybe" });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({ code: "FLEETHEAL_ERR_BAD_REQUEST" });
    expect(res.json().error.message).toContain("querystring.strict");
  });

  it("judges staleness by the time of the request, even when nothing changed", async () => {
    const g = await start();
    g.view.apply(hostSnapshot("a-host", ["healthy"]), T0);
    expect((await g.app.inject({ method: "GET", url: "/health" })).json().status).toBe("healthy");
    g.advance(3_000);
    expect((await g.app.inject({ method: "GET", url: "/health" })).json().status).toBe("healthy");
    g.advance(1);
    const later = HealthReport.parse(
      (await g.app.inject({ method: "GET", url: "/health" })).json(),
    );
    expect(later.hosts[0]?.status).toBe("stale");
    expect(later.status).toBe("degraded");
    g.advance(9_000);
    const down = HealthReport.parse((await g.app.inject({ method: "GET", url: "/health" })).json());
    expect(down.hosts[0]?.status).toBe("down");
    expect(down.status).toBe("unhealthy");
    expect(down.totals.containers.total).toBe(0);
  });

  it("reports an invalid stored policy, degraded while it lasts, in /health and /metrics", async () => {
    const entry = (revision: number, value: unknown): PolicyEntry => ({
      operation: "PUT",
      revision,
      value: JSON.stringify(value),
    });
    let state = initialPolicyState(entry(1, { paused: true })).state;
    const g = await start({ policy: () => state });
    g.view.apply(hostSnapshot("a-host", ["healthy"]), T0);
    const health = async () =>
      HealthReport.parse((await g.app.inject({ method: "GET", url: "/health" })).json());
    const metrics = async () => (await g.app.inject({ method: "GET", url: "/metrics" })).body;
    expect(await health()).toMatchObject({
      status: "healthy",
      policy: { status: "valid", inForce: "stored", revision: 1 },
    });
    expect(await metrics()).toContain("fleetheal_policy_invalid 0");

    state = nextPolicyState(state, entry(2, { stream: "FLEETHEAL_EVENTS", seq: 1 })).state;
    const bad = await health();
    expect(bad.status).toBe("degraded");
    expect(bad.policy).toMatchObject({
      status: "invalid",
      inForce: "stored",
      revision: 1,
      invalid: { revision: 2 },
    });
    expect(bad.policy.invalid?.error).toMatch(/Unrecognized keys: "stream", "seq"/);
    expect((await g.app.inject({ method: "GET", url: "/health?strict=1" })).statusCode).toBe(503);
    const text = await metrics();
    expect(text).toContain("fleetheal_policy_invalid 1");
    expect(text).toContain("fleetheal_policy_invalid_revision 2");
    expect(text).toContain("fleetheal_policy_revision 1");
    expect(text).toContain('fleetheal_policy_in_force{origin="stored"} 1');
    expect(text).toContain("fleetheal_fleet_healthy 0");

    state = nextPolicyState(state, entry(3, { paused: false })).state;
    expect(await health()).toMatchObject({
      status: "healthy",
      policy: { status: "valid", inForce: "stored", revision: 3 },
    });
    expect(await metrics()).toContain("fleetheal_policy_invalid 0");
  });

  it("shows a start without a valid policy as paused", async () => {
    const state = initialPolicyState({ operation: "PUT", revision: 4, value: "{}}" }).state;
    const g = await start({ policy: () => state });
    g.view.apply(hostSnapshot("a-host", ["healthy"]), T0);
    const body = HealthReport.parse((await g.app.inject({ method: "GET", url: "/health" })).json());
    expect(body.status).toBe("degraded");
    expect(body.policy).toMatchObject({ status: "invalid", inForce: "paused", revision: 0 });
    const text = (await g.app.inject({ method: "GET", url: "/metrics" })).body;
    expect(text).toContain('fleetheal_policy_in_force{origin="paused"} 1');
    expect(text).toContain('fleetheal_policy_in_force{origin="stored"} 0');
  });

  it("reflects a new snapshot at once", async () => {
    const g = await start();
    g.view.apply(hostSnapshot("a-host", ["healthy"]), T0);
    await g.app.inject({ method: "GET", url: "/health" });
    g.view.apply(hostSnapshot("a-host", ["healthy", "unhealthy"]), T0);
    const body = HealthReport.parse((await g.app.inject({ method: "GET", url: "/health" })).json());
    expect(body.totals.containers).toMatchObject({ total: 2, unhealthy: 1 });
  });
});

describe("probes", () => {
  it("/livez reports version, uptime, NATS and view state", async () => {
    const g = await start({ nats: false });
    g.advance(42_400);
    const res = await g.app.inject({ method: "GET", url: "/livez" });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      status: "ok",
      version: VERSION,
      uptimeSeconds: 42,
      nats: "disconnected",
      viewLoaded: false,
    });
  });

  it("/readyz is 503 until NATS is up and the view is loaded", async () => {
    let nats = false;
    const g = await start({ natsConnected: () => nats });
    expect((await g.app.inject({ method: "GET", url: "/readyz" })).statusCode).toBe(503);
    g.view.markLoaded();
    const notYet = await g.app.inject({ method: "GET", url: "/readyz" });
    expect(notYet.statusCode).toBe(503);
    expect(notYet.json()).toEqual({ ready: false, nats: "disconnected", viewLoaded: true });
    nats = true;
    const ready = await g.app.inject({ method: "GET", url: "/readyz" });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ ready: true, nats: "connected", viewLoaded: true });
  });
});

describe("GET /hosts", () => {
  it("lists hosts with status, agent, Docker and counts", async () => {
    const g = await start();
    g.view.apply(hostSnapshot("h2", ["healthy"]), T0);
    g.view.apply(
      hostSnapshot("h1", ["unhealthy"], { docker: { status: "down", error: "socket gone" } }),
      T0 - 5_000,
    );
    const body = HostList.parse((await g.app.inject({ method: "GET", url: "/hosts" })).json());
    expect(body.hosts.map((h) => [h.id, h.status, h.docker.status, h.containers.total])).toEqual([
      ["h1", "stale", "down", 1],
      ["h2", "up", "up", 1],
    ]);
    expect(body.hosts[0]?.docker.error).toBe("socket gone");
    const one = await g.app.inject({ method: "GET", url: "/hosts/h2" });
    expect(one.statusCode).toBe(200);
    expect(one.json()).toMatchObject({ id: "h2", agent: { version: "0.1.0" }, heartbeatMs: 1000 });
  });

  it("404 for a host that never reported, 400 for an impossible id", async () => {
    const g = await start();
    const missing = await g.app.inject({ method: "GET", url: "/hosts/nobody" });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error).toEqual({
      code: "FLEETHEAL_ERR_NOT_FOUND",
      message: "no host nobody has reported",
    });
    const bad = await g.app.inject({ method: "GET", url: "/hosts/a.b" });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.details.issues[0].field).toBe("params.host");
  });
});

describe("GET /containers", () => {
  async function fleet() {
    const g = await start();
    g.view.apply(hostSnapshot("h1", ["healthy", "unhealthy", "starting", "healthy"]), T0);
    g.view.apply(hostSnapshot("h2", ["unhealthy", "healthy"]), T0);
    return g;
  }
  const list = async (g: TestGateway, query: string) => {
    const res = await g.app.inject({ method: "GET", url: `/containers${query}` });
    expect(res.statusCode, res.body).toBe(200);
    return ContainerPage.parse(res.json());
  };

  it("lists every container in a stable order", async () => {
    const g = await fleet();
    const page = await list(g, "");
    expect(page.total).toBe(6);
    expect(page.containers.map((c) => c.name)).toEqual([
      "h1-0",
      "h1-1",
      "h1-2",
      "h1-3",
      "h2-0",
      "h2-1",
    ]);
    expect(page.next).toBeUndefined();
  });

  it.each([
    ["?health=unhealthy", ["h1-1", "h2-0"]],
    ["?host=h2", ["h2-0", "h2-1"]],
    ["?host=h1&health=healthy", ["h1-0", "h1-3"]],
    ["?label=tier=db", ["h1-1", "h1-3", "h2-1"]],
    ["?label=tier", ["h1-0", "h1-1", "h1-2", "h1-3", "h2-0", "h2-1"]],
    ["?label=nope", []],
    ["?name=H2-", ["h2-0", "h2-1"]],
    ["?state=exited", []],
    ["?quarantined=1", ["h1-2"]],
    ["?quarantined=0&host=h1", ["h1-0", "h1-1", "h1-3"]],
  ])("filters %s", async (query, names) => {
    const g = await fleet();
    quarantine(g, "h1", g.view.get("h1")?.snapshot.containers[2]?.id ?? "");
    const page = await list(g, query);
    expect(page.containers.map((c) => c.name)).toEqual(names);
    expect(page.total).toBe(names.length);
  });

  it("pages with a cursor that survives changes between pages", async () => {
    const g = await fleet();
    const first = await list(g, "?limit=4");
    expect(first.containers.map((c) => c.name)).toEqual(["h1-0", "h1-1", "h1-2", "h1-3"]);
    expect(first.next).toBeDefined();
    // A host that sorts first appears between the pages: the next page neither repeats nor skips.
    g.view.apply(hostSnapshot("a0", ["healthy"]), T0);
    const second = await list(g, `?limit=4&cursor=${first.next}`);
    expect(second.containers.map((c) => c.name)).toEqual(["h2-0", "h2-1"]);
    expect(second.next).toBeUndefined();
    expect(second.total).toBe(7);
  });

  it.each([
    ["?limit=0", "querystring.limit"],
    ["?limit=1001", "querystring.limit"],
    ["?limit=ten", "querystring.limit"],
    ["?health=sick", "querystring.health"],
    ["?cursor=%7B%7D", "querystring.cursor"],
    ["?quarantined=yes", "querystring.quarantined"],
    ["?host=a%20b", "querystring.host"],
  ])("rejects %s with a 400 naming the field", async (query, field) => {
    const g = await fleet();
    const res = await g.app.inject({ method: "GET", url: `/containers${query}` });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe("FLEETHEAL_ERR_BAD_REQUEST");
    expect(res.json().error.message).toContain(field);
  });

  it("rejects a cursor it did not issue", async () => {
    const g = await fleet();
    const res = await g.app.inject({ method: "GET", url: "/containers?cursor=bm9wZQ" });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.message).toBe("cursor is not one returned by this API");
  });
});

describe("GET /containers/:host/:id", () => {
  it("finds a container by id, id prefix or name, with its ledger", async () => {
    const g = await start();
    g.view.apply(hostSnapshot("h1", ["healthy", "unhealthy"]), T0);
    const c = g.view.get("h1")?.snapshot.containers[1];
    if (!c) throw new Error("fixture");
    quarantine(g, "h1", c.id);
    for (const ref of [c.id, c.id.slice(0, 12), c.name]) {
      const res = await g.app.inject({ method: "GET", url: `/containers/h1/${ref}` });
      expect(res.statusCode, ref).toBe(200);
      const detail = ContainerDetail.parse(res.json());
      expect(detail.container.id).toBe(c.id);
      expect(detail.container.lastHealthOutput).toBe("connection refused");
      expect(detail.healing).toMatchObject({
        quarantined: true,
        consecutiveRestarts: 6,
        quarantine: { reason: "6 restarts in 1h" },
      });
      expect(detail.healing.restarts).toHaveLength(1);
    }
  });

  it("a container fleetheal never touched has an empty history", async () => {
    const g = await start();
    g.view.apply(hostSnapshot("h1", ["healthy"]), T0);
    const res = await g.app.inject({ method: "GET", url: "/containers/h1/h1-0" });
    expect(res.json().healing).toEqual({
      quarantined: false,
      consecutiveRestarts: 0,
      restarts: [],
      budget: { used: 0, allowed: 5, windowSeconds: 3_600 },
      policy: DEFAULT_HEAL_POLICY,
      labelErrors: [],
    });
  });

  it("judges backoff and budget by the fleet policy with the container's labels on top", async () => {
    const fleet = healPolicy({ backoff: { initialSeconds: 30 } });
    const state = {
      ...INITIAL_POLICY_STATE,
      policy: fleet,
      origin: "stored" as const,
      revision: 1,
    };
    const g = await start({ policy: () => state });
    const snapshot = hostSnapshot("h1", ["unhealthy"]);
    const c = snapshot.containers[0];
    if (!c) throw new Error("fixture");
    c.labels = { ...c.labels, "autoheal.budget.restarts": "3", "autoheal.backoff.max": "soon" };
    g.view.apply(snapshot, T0);
    const restart = (agoMs: number, incident: string) => ({
      at: new Date(T0 - agoMs).toISOString(),
      incident,
      commandId: `cmd-${incident.padStart(8, "0")}`,
      outcome: "restarted" as const,
    });
    g.view.applyLedger(
      "h1",
      c.id,
      ledgerEntry({
        host: "h1",
        containerId: c.id,
        restarts: [restart(10_000, "b"), restart(7_200_000, "a")],
        consecutiveRestarts: 2,
        lastRestartAt: new Date(T0 - 10_000).toISOString(),
      }),
    );
    const detail = ContainerDetail.parse(
      (await g.app.inject({ method: "GET", url: `/containers/h1/${c.id}` })).json(),
    );
    // The second restart doubles the 30 s backoff: 60 s after the last restart.
    expect(detail.healing.backoffUntil).toBe(new Date(T0 + 50_000).toISOString());
    // Only the restart inside the one-hour window counts, against the label's budget of 3.
    expect(detail.healing.budget).toEqual({ used: 1, allowed: 3, windowSeconds: 3_600 });
    expect(detail.healing.policy.backoff.initialSeconds).toBe(30);
    expect(detail.healing.labelErrors).toEqual([
      'autoheal.backoff.max="soon": must be a duration from 0s to 24h',
    ]);
  });

  it("shows an out-of-range policy label as ignored, and the container's other labels applied", async () => {
    const g = await start();
    const snapshot = hostSnapshot("h1", ["healthy"]);
    const c = snapshot.containers[0];
    if (!c) throw new Error("fixture");
    c.labels = { ...c.labels, "autoheal.backoff.max": "2m", "autoheal.budget.restarts": "100" };
    g.view.apply(snapshot, T0);
    const detail = ContainerDetail.parse(
      (await g.app.inject({ method: "GET", url: `/containers/h1/${c.id}` })).json(),
    );
    expect(detail.healing.policy.backoff.maxSeconds).toBe(120);
    expect(detail.healing.policy.budget.restarts).toBe(5);
    expect(detail.healing.labelErrors).toEqual([
      'autoheal.budget.restarts="100": must be a whole number from 1 to 50',
    ]);
  });

  it("404 for unknown containers, 409 for an ambiguous prefix", async () => {
    const g = await start();
    g.view.apply(hostSnapshot("h1", ["healthy", "healthy"]), T0);
    const missing = await g.app.inject({ method: "GET", url: "/containers/h1/ghost" });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.message).toBe("no container ghost on h1");
    const prefix = g.view.get("h1")?.snapshot.containers[0]?.id.slice(0, 6) ?? "";
    const ambiguous = await g.app.inject({ method: "GET", url: `/containers/h1/${prefix}` });
    expect(ambiguous.statusCode).toBe(409);
    expect(ambiguous.json().error.code).toBe("FLEETHEAL_ERR_CONFLICT");
  });
});

describe("errors and documents", () => {
  it("unknown routes answer with the error model", async () => {
    const g = await start();
    const res = await g.app.inject({ method: "GET", url: "/nope?x=1" });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({
      error: { code: "FLEETHEAL_ERR_NOT_FOUND", message: "no route GET /nope" },
    });
  });

  it("/openapi.json documents every API route", async () => {
    const g = await start();
    const res = await g.app.inject({ method: "GET", url: "/openapi.json" });
    expect(res.statusCode).toBe(200);
    const doc = res.json();
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths).sort()).toEqual(
      [
        "/containers",
        "/containers/{host}/{id}",
        "/containers/{host}/{id}/healing",
        "/containers/{host}/{id}/release",
        "/containers/{host}/{id}/restart",
        "/events",
        "/events/stream",
        "/health",
        "/hosts",
        "/hosts/{host}",
        "/livez",
        "/metrics",
        "/pause",
        "/policy",
        "/readyz",
        "/resume",
      ].sort(),
    );
    expect(doc.paths["/containers"].get.parameters.map((p: { name: string }) => p.name)).toEqual(
      expect.arrayContaining(["host", "health", "state", "label", "name", "quarantined", "cursor"]),
    );
    expect(doc.components.securitySchemes.bearer).toEqual({ type: "http", scheme: "bearer" });
  });

  it("docs/API.md lists every documented route", async () => {
    const g = await start();
    const doc = (await g.app.inject({ method: "GET", url: "/openapi.json" })).json();
    const apiMd = await readFile(new URL("../../docs/API.md", import.meta.url), "utf8");
    for (const [path, methods] of Object.entries(doc.paths as Record<string, object>)) {
      const mdPath = path.replace(/\{(\w+)\}/g, ":$1");
      for (const method of Object.keys(methods)) {
        const row = new RegExp(`\\| ${method.toUpperCase()} +\\| \`${mdPath}\``);
        expect(apiMd, `${method.toUpperCase()} ${mdPath} in docs/API.md`).toMatch(row);
      }
    }
  });

  it("/docs serves the interactive API documentation", async () => {
    const g = await start();
    const res = await g.app.inject({ method: "GET", url: "/docs/" });
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toMatch(/text\/html/);
  });

  it("/ serves the dashboard with a strict content security policy", async () => {
    const g = await start();
    const res = await g.app.inject({ method: "GET", url: "/" });
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toMatch(/text\/html/);
    expect(res.headers["content-security-policy"]).toContain("script-src 'self'");
    const missing = await g.app.inject({ method: "GET", url: "/assets/..%2Fapp.ts" });
    expect(missing.statusCode).toBe(404);
  });
});

describe("GET /metrics: what agents could not publish", () => {
  it("reports each host's unpublishable events from its last snapshot, 0 for an older agent", async () => {
    const g = await start();
    const a = hostSnapshot("a-host", ["healthy"]);
    g.view.apply({ ...a, outbox: { ...a.outbox, unpublishable: 3 } }, T0);
    g.view.apply(hostSnapshot("b-host", ["healthy"]), T0);
    const text = (await g.app.inject({ method: "GET", url: "/metrics" })).body;
    expect(text).toContain('fleetheal_agent_unpublishable_events{host="a-host"} 3');
    expect(text).toContain('fleetheal_agent_unpublishable_events{host="b-host"} 0');
    g.view.remove("b-host");
    const after = (await g.app.inject({ method: "GET", url: "/metrics" })).body;
    expect(after).not.toContain('host="b-host"');
  });
});
