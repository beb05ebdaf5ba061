import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { HandlerMetrics } from "./handler-metrics.js";
import { buildMetricsApp, startMetricsServer } from "./metrics-app.js";

const log = pino({ level: "silent" });
const TOKEN = "s3cret-metrics-token-0123456789";

describe("buildMetricsApp", () => {
  it("serves the Prometheus exposition on GET /metrics, and nothing else", async () => {
    const app = buildMetricsApp({ metrics: new HandlerMetrics(), log });
    const ok = await app.inject({ method: "GET", url: "/metrics" });
    expect(ok.statusCode).toBe(200);
    expect(ok.headers["content-type"]).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(ok.body).toContain('fleetheal_build_info{role="handler"');
    for (const [method, url] of [
      ["GET", "/"],
      ["GET", "/health"],
      ["POST", "/metrics"],
      ["DELETE", "/metrics"],
    ] as const) {
      expect((await app.inject({ method, url })).statusCode, `${method} ${url}`).toBe(404);
    }
    await app.close();
  });

  it("asks for the bearer token when one is set", async () => {
    const app = buildMetricsApp({ metrics: new HandlerMetrics(), log, token: TOKEN });
    const scrape = (authorization?: string) =>
      app.inject({
        method: "GET",
        url: "/metrics",
        ...(authorization ? { headers: { authorization } } : {}),
      });
    const missing = await scrape();
    expect(missing.statusCode).toBe(401);
    expect(missing.headers["www-authenticate"]).toMatch(/^Bearer/);
    expect(missing.body).not.toContain("fleetheal_");
    expect((await scrape(`Bearer ${TOKEN}x`)).statusCode).toBe(401);
    expect((await scrape(`Basic ${TOKEN}`)).statusCode).toBe(401);
    expect((await scrape(TOKEN)).statusCode).toBe(401);
    const ok = await scrape(`Bearer ${TOKEN}`);
    expect(ok.statusCode).toBe(200);
    expect(ok.body).toContain("fleetheal_restarts_total");
    await app.close();
  });
});

describe("startMetricsServer", () => {
  it("listens on a free port for port 0, answers over HTTP, and stops", async () => {
    const server = await startMetricsServer(
      { port: 0, host: "127.0.0.1" },
      { metrics: new HandlerMetrics(), log },
    );
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    expect(server.url).not.toContain(":0/");
    const response = await fetch(server.url);
    expect(response.status).toBe(200);
    expect(await response.text()).toContain("fleetheal_build_info");
    await server.stop();
    await expect(fetch(server.url)).rejects.toThrow();
  });
});
