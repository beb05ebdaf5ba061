import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  hostSnapshot,
  startTestGateway,
  T0,
  type TestGateway,
} from "../../test/support/gateway-fakes.js";
import { HealthReport } from "../view/health-report.js";
import { ApiErrorBody } from "./api-schemas.js";

/*
 * Property-based fuzzing of the HTTP boundary: whatever a client sends in a query string, a path
 * or a body, the gateway answers with a success or a 4xx in the API's error model, never a 5xx.
 */

const ADMIN = "fuzz-admin-token-0123456789";
let gw: TestGateway;

beforeAll(async () => {
  // The fuzzer is one client sending hundreds of bad tokens: no limit may answer for the routes.
  gw = await startTestGateway({
    tokens: { adminToken: ADMIN },
    actionsPerMinute: 1_000_000,
    authFailuresPerMinute: 1_000_000,
  });
  gw.view.apply(hostSnapshot("h1", ["healthy", "unhealthy", "starting"]), T0);
  gw.view.apply(hostSnapshot("h2", ["none"]), T0 - 60_000);
});
afterAll(async () => {
  await gw.app.close();
});

const QUERY_KEYS = [
  "strict",
  "host",
  "health",
  "state",
  "label",
  "name",
  "quarantined",
  "optedIn",
  "limit",
  "cursor",
  "container",
  "kind",
  "since",
  "after",
];

const nasty = fc.oneof(
  fc.string(),
  fc.string({ unit: "grapheme", maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.constantFrom("", "0", "-1", "1e309", "NaN", "true", "null", "[]", "{}", "%", "%00", "../.."),
  fc.integer().map(String),
  fc.double().map(String),
  fc.string({ minLength: 2_000, maxLength: 5_000 }),
);

const queryString = fc
  .array(fc.tuple(fc.oneof(fc.constantFrom(...QUERY_KEYS), fc.string()), nasty), {
    maxLength: 6,
  })
  .map((pairs) =>
    pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join("&"),
  );

const segment = fc.oneof(
  fc.constantFrom("h1", "h2", "h1-0", "h1-1"),
  nasty.filter((s) => s.length > 0).map(encodeURIComponent),
);

function expectClientSafe(res: { statusCode: number; body: string }, request: string) {
  const what = request.length > 300 ? `${request.slice(0, 300)}…` : request;
  expect(res.statusCode, `${what} -> ${res.statusCode} ${res.body.slice(0, 300)}`).toBeLessThan(
    500,
  );
  if (res.statusCode >= 400) {
    const parsed = ApiErrorBody.safeParse(JSON.parse(res.body));
    expect(parsed.success, `${what}: error body ${res.body.slice(0, 300)}`).toBe(true);
  }
}

// Up to a thousand requests per property: well under a second alone, but a CI machine running
// dockerd engines beside it took more than the default 5 s once.
describe("fuzzing the HTTP API", { timeout: 60_000 }, () => {
  it("query strings on every GET route", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(
          "/health",
          "/containers",
          "/hosts",
          "/hosts/h1",
          "/events",
          "/policy",
          "/containers/h1/h1-0",
        ),
        queryString,
        async (route, query) => {
          const res = await gw.app.inject({ method: "GET", url: `${route}?${query}` });
          // `/health?strict=1` answers 503 for a fleet that is not healthy: by design.
          if (route === "/health" && res.statusCode === 503) {
            expect(HealthReport.safeParse(res.json()).success).toBe(true);
            return;
          }
          expectClientSafe(res, `GET ${route}?${query}`);
        },
      ),
      { numRuns: 1_000 },
    );
  });

  it("path parameters", async () => {
    await fc.assert(
      fc.asyncProperty(
        segment,
        segment,
        fc.constantFrom("", "/restart", "/release"),
        async (host, id, action) => {
          const method = action ? "POST" : "GET";
          const res = await gw.app.inject({
            method,
            url: `/containers/${host}/${id}${action}`,
            headers: { authorization: `Bearer ${ADMIN}` },
          });
          expectClientSafe(res, `${method} /containers/${host}/${id}${action}`);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("JSON bodies of every mutating route", async () => {
    const body = fc.oneof(
      fc.jsonValue(),
      fc.record(
        {
          reason: fc.oneof(nasty, fc.jsonValue()),
          stopTimeoutSeconds: fc.oneof(fc.integer(), fc.double(), nasty),
          paused: fc.jsonValue(),
          budget: fc.jsonValue(),
          maintenance: fc.jsonValue(),
          storm: fc.jsonValue(),
        },
        { requiredKeys: [] },
      ),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(
          ["POST", "/containers/h1/h1-0/restart"],
          ["POST", "/containers/h1/h1-1/release"],
          ["POST", "/pause"],
          ["POST", "/resume"],
          ["PUT", "/policy"],
        ),
        body,
        async ([method, url], payload) => {
          const res = await gw.app.inject({
            method: method as "POST" | "PUT",
            url,
            headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
            payload: JSON.stringify(payload),
          });
          expectClientSafe(res, `${method} ${url} ${JSON.stringify(payload)?.slice(0, 200)}`);
        },
      ),
      { numRuns: 1_000 },
    );
  });

  it("bodies that are not JSON, and odd headers", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ unit: "binary", maxLength: 200 }),
        fc.constantFrom(
          "application/json",
          "text/plain",
          "application/x-www-form-urlencoded",
          "",
          "application/json; charset=latin1",
        ),
        nasty,
        async (payload, type, header) => {
          const res = await gw.app.inject({
            method: "PUT",
            url: "/policy",
            headers: {
              authorization: `Bearer ${ADMIN}`,
              ...(type ? { "content-type": type } : {}),
              "if-match": header.replace(/[^\x20-\x7e]/g, ""),
            },
            payload,
          });
          expectClientSafe(res, `PUT /policy (${type}) ${JSON.stringify(payload).slice(0, 200)}`);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("authorization headers", async () => {
    await fc.assert(
      fc.asyncProperty(nasty, async (value) => {
        const res = await gw.app.inject({
          method: "POST",
          url: "/pause",
          headers: { authorization: value.replace(/[^\x20-\x7e]/g, "") },
        });
        expect(res.statusCode).toBe(401);
        expectClientSafe(res, `authorization ${JSON.stringify(value).slice(0, 100)}`);
      }),
      { numRuns: 200 },
    );
  });
});
