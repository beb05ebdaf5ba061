import { afterEach, describe, expect, it } from "vitest";
import { DEFAULT_HEAL_POLICY } from "../../contracts/index.js";
import {
  hostSnapshot,
  startTestGateway,
  T0,
  type TestGateway,
} from "../../test/support/gateway-fakes.js";

const ADMIN = "admin-token-0123456789abcdef";
const READ = "read-token-0123456789abcdef";
const auth = (token: string) => ({ authorization: `Bearer ${token}` });

let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.app.close();
  gw = undefined;
});

async function start(options: Parameters<typeof startTestGateway>[0] = {}) {
  gw = await startTestGateway({ tokens: { adminToken: ADMIN }, ...options });
  gw.view.apply(hostSnapshot("h1", ["unhealthy", "healthy"]), T0);
  return gw;
}

describe("authorization", () => {
  it("actions are disabled (403) when no admin token is configured", async () => {
    const g = await start({ tokens: {} });
    const res = await g.app.inject({ method: "POST", url: "/pause", headers: auth(ADMIN) });
    expect(res.statusCode).toBe(403);
    expect(res.json().error.message).toContain("FLEETHEAL_GATEWAY_ADMIN_TOKEN");
  });

  it.each([
    ["no header", {}],
    ["a wrong token", auth("wrong-token-0123456789abcdef")],
    ["a token that is a prefix", auth(ADMIN.slice(0, -1))],
    ["another scheme", { authorization: `Basic ${ADMIN}` }],
  ])("401 with %s, and the header says how to authenticate", async (_why, headers) => {
    const g = await start();
    const res = await g.app.inject({ method: "POST", url: "/pause", headers });
    expect(res.statusCode).toBe(401);
    expect(res.headers["www-authenticate"]).toBe('Bearer realm="fleetheal"');
    expect(res.json().error.code).toBe("FLEETHEAL_ERR_UNAUTHORIZED");
    expect(res.body).not.toContain(ADMIN);
    expect(g.control.restarts).toHaveLength(0);
  });

  it("reads are open by default and need a token when one is configured", async () => {
    const open = await start();
    expect((await open.app.inject({ method: "GET", url: "/health" })).statusCode).toBe(200);
    await open.app.close();
    const g = await start({ tokens: { adminToken: ADMIN, readToken: READ } });
    for (const url of ["/health", "/hosts", "/containers", "/events", "/metrics", "/policy"]) {
      expect((await g.app.inject({ method: "GET", url })).statusCode, url).toBe(401);
      expect(
        (await g.app.inject({ method: "GET", url, headers: auth(READ) })).statusCode,
        url,
      ).toBe(200);
      expect(
        (await g.app.inject({ method: "GET", url, headers: auth(ADMIN) })).statusCode,
        url,
      ).toBe(200);
    }
    for (const url of ["/livez", "/readyz", "/", "/openapi.json", "/docs/"]) {
      expect([200, 503], url).toContain((await g.app.inject({ method: "GET", url })).statusCode);
    }
    // The read token never authorises an action.
    const res = await g.app.inject({ method: "POST", url: "/pause", headers: auth(READ) });
    expect(res.statusCode).toBe(401);
  });
});

describe("failed authentication", () => {
  it("is counted per client address and answered 429 past the limit, before the token is checked", async () => {
    const g = await start({
      tokens: { adminToken: ADMIN, readToken: READ },
      authFailuresPerMinute: 3,
    });
    const get = (headers: Record<string, string>, remoteAddress = "10.0.0.9") =>
      g.app.inject({ method: "GET", url: "/hosts", headers, remoteAddress });
    for (let i = 0; i < 3; i++) expect((await get(auth("wrong"))).statusCode).toBe(401);
    const blocked = await get(auth("wrong"));
    expect(blocked.statusCode).toBe(429);
    expect(blocked.json().error.code).toBe("FLEETHEAL_ERR_RATE_LIMITED");
    expect(blocked.headers["retry-after"]).toBe("60");
    // Even the right token waits: a guesser learns nothing more from this address.
    expect((await get(auth(READ))).statusCode).toBe(429);
    expect((await get(auth(READ), "10.0.0.10")).statusCode).toBe(200);
    // Probes and static files need no token and are never held back.
    const live = await g.app.inject({ method: "GET", url: "/livez", remoteAddress: "10.0.0.9" });
    expect(live.statusCode).toBe(200);
    g.advance(60_000);
    expect((await get(auth(READ))).statusCode).toBe(200);
  });
});

describe("POST /containers/:host/:id/restart", () => {
  it("restarts through the control port, as the admin, with the client's idempotency key", async () => {
    const g = await start();
    const res = await g.app.inject({
      method: "POST",
      url: "/containers/h1/h1-0/restart",
      headers: { ...auth(ADMIN), "idempotency-key": "click-1" },
      payload: { reason: "stuck after deploy", stopTimeoutSeconds: 3 },
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ outcome: "restarted", commandId: "manual-click-1" });
    expect(g.control.restarts).toHaveLength(1);
    const call = g.control.restarts[0];
    expect(call).toMatchObject({
      host: "h1",
      reason: "stuck after deploy",
      stopTimeoutSeconds: 3,
      idempotencyKey: "click-1",
      actor: { name: "gateway:admin", address: "127.0.0.1" },
    });
    expect(call?.container.name).toBe("h1-0");
  });

  it("works without a body", async () => {
    const g = await start();
    const res = await g.app.inject({
      method: "POST",
      url: "/containers/h1/h1-1/restart",
      headers: auth(ADMIN),
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(g.control.restarts[0]?.reason).toBe("restarted by hand from 127.0.0.1");
  });

  it.each([
    ["refused", "not-opted-in", 409, "FLEETHEAL_ERR_CONFLICT"],
    ["failed", "docker-error", 502, "FLEETHEAL_ERR_DOCKER"],
  ] as const)("an agent outcome %s maps to %i", async (outcome, code, status, errorCode) => {
    const g = await start();
    g.control.restartAnswer = () => ({
      remediationId: "manual:x",
      commandId: "manual-x",
      outcome,
      code,
      message: `agent says ${code}`,
      duplicate: false,
      durationMs: 3,
    });
    const res = await g.app.inject({
      method: "POST",
      url: "/containers/h1/h1-0/restart",
      headers: auth(ADMIN),
    });
    expect(res.statusCode).toBe(status);
    expect(res.json().error).toMatchObject({
      code: errorCode,
      message: `agent says ${code}`,
      details: { outcome, code },
    });
  });

  it.each([
    [{ reason: "" }, "body.reason"],
    [{ stopTimeoutSeconds: -1 }, "body.stopTimeoutSeconds"],
    [{ stopTimeoutSeconds: "10" }, "body.stopTimeoutSeconds"],
    [{ force: true }, "body"],
  ])("rejects the body %j", async (payload, field) => {
    const g = await start();
    const res = await g.app.inject({
      method: "POST",
      url: "/containers/h1/h1-0/restart",
      headers: auth(ADMIN),
      payload,
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.message).toContain(field);
    expect(g.control.restarts).toHaveLength(0);
  });

  it("rejects bodies that are not JSON, too large, or of another type", async () => {
    const g = await start();
    const url = "/containers/h1/h1-0/restart";
    const bad = await g.app.inject({
      method: "POST",
      url,
      headers: { ...auth(ADMIN), "content-type": "application/json" },
      payload: "{nope",
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe("FLEETHEAL_ERR_BAD_REQUEST");
    const text = await g.app.inject({
      method: "POST",
      url,
      headers: { ...auth(ADMIN), "content-type": "text/plain" },
      payload: "restart please",
    });
    expect(text.statusCode).toBe(415);
    const huge = await g.app.inject({
      method: "POST",
      url,
      headers: auth(ADMIN),
      payload: { reason: "x".repeat(300_000) },
    });
    expect(huge.statusCode).toBe(413);
    expect(huge.json().error.code).toBe("FLEETHEAL_ERR_PAYLOAD_TOO_LARGE");
  });

  it("404 for an unknown host or container", async () => {
    const g = await start();
    for (const url of ["/containers/h9/h1-0/restart", "/containers/h1/ghost/restart"]) {
      const res = await g.app.inject({ method: "POST", url, headers: auth(ADMIN) });
      expect(res.statusCode).toBe(404);
    }
  });

  it("is rate limited per client", async () => {
    const g = await start({ actionsPerMinute: 3 });
    const codes: number[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await g.app.inject({
        method: "POST",
        url: "/containers/h1/h1-0/restart",
        headers: auth(ADMIN),
      });
      codes.push(res.statusCode);
      if (res.statusCode === 429) {
        expect(res.json().error.code).toBe("FLEETHEAL_ERR_RATE_LIMITED");
        expect(res.headers["retry-after"]).toBeDefined();
      }
    }
    expect(codes).toEqual([200, 200, 200, 429, 429]);
    expect(g.control.restarts).toHaveLength(3);
    // Reads are not limited.
    expect((await g.app.inject({ method: "GET", url: "/health" })).statusCode).toBe(200);
  });
});

describe("POST /containers/:host/:id/release", () => {
  it("releases a quarantined container and 409s otherwise", async () => {
    const g = await start();
    const id = g.view.get("h1")?.snapshot.containers[0]?.id ?? "";
    g.control.quarantined.add(`h1.${id}`);
    const url = "/containers/h1/h1-0/release";
    const res = await g.app.inject({ method: "POST", url, headers: auth(ADMIN), payload: {} });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual({
      host: "h1",
      containerId: id,
      name: "h1-0",
      releasedAt: "2026-11-27T20:00:00.000Z",
    });
    const again = await g.app.inject({ method: "POST", url, headers: auth(ADMIN) });
    expect(again.statusCode).toBe(409);
    expect(again.json().error.message).toBe("h1-0 on h1 is not quarantined");
  });
});

describe("pause, resume and policy", () => {
  it("pause and resume flip the stored policy", async () => {
    const g = await start();
    const paused = await g.app.inject({ method: "POST", url: "/pause", headers: auth(ADMIN) });
    expect(paused.json()).toEqual({ paused: true, revision: 1 });
    expect((await g.control.getPolicy()).policy.paused).toBe(true);
    const resumed = await g.app.inject({
      method: "POST",
      url: "/resume",
      headers: auth(ADMIN),
      payload: { reason: "incident over" },
    });
    expect(resumed.json()).toEqual({ paused: false, revision: 2 });
  });

  it("GET /policy returns the policy with defaults and its revision as ETag", async () => {
    const g = await start();
    const res = await g.app.inject({ method: "GET", url: "/policy" });
    expect(res.statusCode).toBe(200);
    expect(res.headers.etag).toBe('"0"');
    expect(res.json()).toEqual({ policy: DEFAULT_HEAL_POLICY, revision: 0 });
  });

  it("PUT /policy validates, fills defaults and honours If-Match", async () => {
    const g = await start();
    const put = (payload: unknown, headers: Record<string, string> = {}) =>
      g.app.inject({
        method: "PUT",
        url: "/policy",
        headers: { ...auth(ADMIN), ...headers },
        payload: payload as object,
      });
    const ok = await put({ dryRun: true, budget: { restarts: 3 } }, { "if-match": '"0"' });
    expect(ok.statusCode, ok.body).toBe(200);
    expect(ok.headers.etag).toBe('"1"');
    expect(ok.json().policy).toMatchObject({
      dryRun: true,
      budget: { restarts: 3, windowSeconds: 3_600 },
      backoff: DEFAULT_HEAL_POLICY.backoff,
    });
    const stale = await put({ dryRun: false }, { "if-match": '"0"' });
    expect(stale.statusCode).toBe(412);
    expect(stale.json().error.details).toEqual({ currentRevision: 1 });

    const typo = await put({ budjet: { restarts: 3 }, backoff: { maxSecond: 5 } });
    expect(typo.statusCode).toBe(400);
    expect(typo.json().error.details.issues).toEqual(
      expect.arrayContaining([
        { field: "body.budjet", message: "unknown field" },
        { field: "body.backoff.maxSecond", message: "unknown field" },
      ]),
    );
    expect(typo.json().error.message).toContain("body.budjet: unknown field");
    const badWindow = await put({
      maintenance: [{ start: "2026-11-28T10:00:00Z", end: "2026-11-28T09:00:00Z", extra: 1 }],
    });
    expect(badWindow.statusCode).toBe(400);
    expect(badWindow.json().error.message).toContain("body.maintenance.0.end");
    const extraInWindow = await put({
      maintenance: [{ start: "2026-11-28T08:00:00Z", end: "2026-11-28T09:00:00Z", extra: 1 }],
    });
    expect(extraInWindow.statusCode).toBe(400);
    expect(extraInWindow.json().error.message).toBe("body.maintenance.0.extra: unknown field");
    const badValue = await put({ budget: { restarts: 0 } });
    expect(badValue.statusCode).toBe(400);
    expect(badValue.json().error.message).toContain("body.budget.restarts");
    const badEtag = await put({}, { "if-match": "7" });
    expect(badEtag.statusCode).toBe(400);
    expect(badEtag.json().error.message).toContain("headers.if-match");
    expect((await g.control.getPolicy()).revision).toBe(1);
  });
});

describe("CORS", () => {
  it("is closed by default", async () => {
    const g = await start();
    const res = await g.app.inject({
      method: "OPTIONS",
      url: "/health",
      headers: { origin: "https://evil.example.com", "access-control-request-method": "GET" },
    });
    expect(res.headers["access-control-allow-origin"]).toBeUndefined();
  });

  it("allows only the configured origins", async () => {
    const g = await start({ corsOrigins: ["https://ops.example.com"] });
    const get = (origin: string) =>
      g.app.inject({ method: "GET", url: "/health", headers: { origin } });
    expect((await get("https://ops.example.com")).headers["access-control-allow-origin"]).toBe(
      "https://ops.example.com",
    );
    expect((await get("https://evil.example.com")).headers["access-control-allow-origin"]).toBe(
      undefined,
    );
  });
});
