import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { type AddressInfo, createServer, type Server } from "node:net";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ExecResult } from "../docker-engine.js";
import type { ProbeAccess } from "./probe-access.js";
import { NOTHING_ALLOWED, type ProbeAllowList, parseProbeAllow } from "./probe-allow.js";
import { MAX_PROBE_OUTPUT, NO_ADDRESS_ERROR, runProbe } from "./probe-runner.js";
import { type ProbeSpec, parseProbeLabels } from "./probe-spec.js";

function allowList(value: string): ProbeAllowList {
  const r = parseProbeAllow(value.split(","));
  if (!r.ok) throw new Error(`bad test allow list: ${r.errors.join("; ")}`);
  return r.allow;
}

function spec(labels: Record<string, string>): ProbeSpec {
  const full = Object.fromEntries(
    Object.entries(labels).map(([k, v]) => [`autoheal.probe.${k}`, v]),
  );
  const r = parseProbeLabels(full);
  if (!r?.ok) throw new Error(`bad test labels: ${JSON.stringify(r)}`);
  return r.spec;
}

/** Loopback allowed, as an operator would with FLEETHEAL_PROBE_ALLOW=127.0.0.0/8. */
const LOOPBACK: ProbeAccess = { allow: allowList("127.0.0.0/8") };

const noDocker = {
  exec: () => Promise.reject(new Error("exec must not be called")),
};
const onHost = { containerId: "c1", ipAddresses: [], networkMode: "host" };
const isolated = { containerId: "c1", ipAddresses: [], networkMode: "none" };

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

async function listen<S extends Server | HttpServer>(server: S): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        if ("closeAllConnections" in server) server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return (server.address() as AddressInfo).port;
}

/** A port nothing listens on (bound, then released). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe("runProbe: tcp", () => {
  it("passes when the connect succeeds", async () => {
    const server = createServer((socket) => socket.destroy());
    const port = await listen(server);
    expect(
      await runProbe(spec({ tcp: `127.0.0.1:${port}` }), isolated, {
        docker: noDocker,
        access: LOOPBACK,
      }),
    ).toEqual({
      ok: true,
      output: `connected to 127.0.0.1:${port}`,
    });
  });

  it("probes 127.0.0.1 for a container on the host network when only a port is given", async () => {
    const port = await listen(createServer((s) => s.destroy()));
    expect(
      await runProbe(spec({ tcp: `:${port}` }), onHost, { docker: noDocker, access: LOOPBACK }),
    ).toMatchObject({
      ok: true,
      output: `connected to 127.0.0.1:${port}`,
    });
    expect(
      await runProbe(spec({ tcp: String(port) }), onHost, { docker: noDocker, access: LOOPBACK }),
    ).toMatchObject({
      ok: true,
    });
  });

  it("probes the container's first own address when only a port is given", async () => {
    const port = await listen(createServer((s) => s.destroy()));
    const target = { containerId: "c1", ipAddresses: ["127.0.0.1", "127.0.0.2"] };
    expect(
      await runProbe(spec({ tcp: `:${port}` }), target, { docker: noDocker, access: LOOPBACK }),
    ).toMatchObject({
      ok: true,
      output: `connected to 127.0.0.1:${port}`,
    });
  });

  it("fails when the connection is refused", async () => {
    const port = await freePort();
    const r = await runProbe(spec({ tcp: `127.0.0.1:${port}` }), isolated, {
      docker: noDocker,
      access: LOOPBACK,
    });
    expect(r.ok).toBe(false);
    expect(r.output).toContain("ECONNREFUSED");
    // The container answered no: a failure, not a probe that could not run.
    expect(r.error).toBeUndefined();
  });

  it("fails without connecting anywhere when there is no address to probe", async () => {
    expect(
      await runProbe(spec({ tcp: ":80" }), isolated, { docker: noDocker, access: LOOPBACK }),
    ).toEqual({ ok: false, output: NO_ADDRESS_ERROR, error: true });
    expect(
      await runProbe(
        spec({ http: ":80/x" }),
        { containerId: "c", ipAddresses: [], networkMode: "container:abc" },
        { docker: noDocker, access: LOOPBACK },
      ),
    ).toEqual({ ok: false, output: NO_ADDRESS_ERROR, error: true });
  });

  it("fails at once when aborted", async () => {
    const port = await listen(createServer((s) => s.destroy()));
    const r = await runProbe(spec({ tcp: `127.0.0.1:${port}` }), isolated, {
      docker: noDocker,
      access: LOOPBACK,
      signal: AbortSignal.abort(),
    });
    expect(r).toEqual({ ok: false, output: "aborted" });
  });
});

describe("runProbe: http", () => {
  const requests: string[] = [];
  async function startServer(): Promise<number> {
    requests.length = 0;
    const server = createHttpServer((req, res) => {
      requests.push(req.url ?? "");
      switch (req.url?.split("?")[0]) {
        case "/ok":
          res.end("fine");
          return;
        case "/redirect":
          res.writeHead(302, { location: "/elsewhere" }).end();
          return;
        case "/no-content":
          res.writeHead(204).end();
          return;
        case "/fail":
          res.writeHead(503).end("down");
          return;
        case "/slow":
          return; // never answers
        default:
          res.writeHead(404).end();
      }
    });
    return listen(server);
  }

  it.each([
    ["/ok", true, "HTTP 200"],
    ["/no-content", true, "HTTP 204"],
    ["/redirect", true, "HTTP 302"],
    ["/fail", false, "HTTP 503"],
    ["/missing", false, "HTTP 404"],
  ])("GET %s: ok=%s (%s)", async (path, ok, output) => {
    const port = await startServer();
    const r = await runProbe(spec({ http: `http://127.0.0.1:${port}${path}` }), isolated, {
      docker: noDocker,
      access: LOOPBACK,
    });
    expect(r).toEqual({ ok, output });
    // Redirects are not followed.
    expect(requests).toEqual([path]);
  });

  it("builds the URL from the port and path when the host is omitted", async () => {
    const port = await startServer();
    expect(
      await runProbe(spec({ http: `:${port}/ok` }), onHost, { docker: noDocker, access: LOOPBACK }),
    ).toEqual({
      ok: true,
      output: "HTTP 200",
    });
    const target = { containerId: "c", ipAddresses: ["127.0.0.1"], networkMode: "bridge" };
    expect(
      await runProbe(spec({ http: `:${port}/fail?x=1` }), target, {
        docker: noDocker,
        access: LOOPBACK,
      }),
    ).toEqual({
      ok: false,
      output: "HTTP 503",
    });
    expect(requests).toEqual(["/ok", "/fail?x=1"]);
  });

  it("fails after the timeout when the server does not answer", async () => {
    const port = await startServer();
    const url = `http://127.0.0.1:${port}/slow`;
    const started = Date.now();
    const r = await runProbe(spec({ http: url, timeout: "200ms" }), isolated, {
      docker: noDocker,
      access: LOOPBACK,
    });
    expect(r).toEqual({ ok: false, output: `GET ${url} timed out after 200ms` });
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("fails with the reason when the connection is refused", async () => {
    const port = await freePort();
    const r = await runProbe(spec({ http: `http://127.0.0.1:${port}/` }), isolated, {
      docker: noDocker,
      access: LOOPBACK,
    });
    expect(r.ok).toBe(false);
    expect(r.output).toContain("ECONNREFUSED");
  });

  it("fails with 'aborted' when aborted in flight", async () => {
    const port = await startServer();
    const controller = new AbortController();
    const pending = runProbe(spec({ http: `http://127.0.0.1:${port}/slow` }), isolated, {
      docker: noDocker,
      access: LOOPBACK,
      signal: controller.signal,
    });
    await vi.waitFor(() => expect(requests).toEqual(["/slow"]));
    controller.abort();
    expect(await pending).toEqual({ ok: false, output: "aborted" });
  });
});

describe("runProbe: explicit hosts (FLEETHEAL_PROBE_ALLOW)", () => {
  /** An http server on 127.0.0.1 that records each request's path and Host header. */
  async function recordingServer(): Promise<{
    port: number;
    seen: string[];
    sockets: () => number;
  }> {
    const seen: string[] = [];
    let sockets = 0;
    const server = createHttpServer((req, res) => {
      seen.push(`${req.headers.host} ${req.url}`);
      if (req.url === "/away") {
        res.writeHead(302, { location: "http://169.254.169.254/latest/meta-data/" }).end();
      } else res.end("ok");
    });
    server.on("connection", () => sockets++);
    return { port: await listen(server), seen, sockets: () => sockets };
  }

  it("refuses a target the list does not allow without contacting it", async () => {
    const { port, sockets } = await recordingServer();
    for (const target of [`127.0.0.1:${port}`, `localhost:${port}`]) {
      const r = await runProbe(spec({ tcp: target }), isolated, {
        docker: noDocker,
        access: { allow: NOTHING_ALLOWED },
      });
      expect(r.ok).toBe(false);
      expect(r.refused).toContain(`autoheal.probe.tcp="${target}"`);
      expect(r.output).toBe(r.refused);
    }
    const http = await runProbe(spec({ http: `http://127.0.0.1:${port}/` }), isolated, {
      docker: noDocker,
      access: { allow: allowList("10.0.0.0/8") },
    });
    expect(http.refused).toContain("host 127.0.0.1 is not allowed on this agent");
    expect(sockets()).toBe(0);
  });

  it("resolves a name once and connects to the address it checked (no DNS rebinding)", async () => {
    const { port, seen } = await recordingServer();
    // A resolver that answers an allowed address first and the metadata service afterwards.
    const answers = [["127.0.0.1"], ["169.254.169.254"]];
    const resolve = vi.fn(async () => answers.shift() ?? []);
    const access: ProbeAccess = { allow: allowList("127.0.0.0/8"), resolve };
    const r = await runProbe(spec({ http: `http://svc.test:${port}/ok` }), isolated, {
      docker: noDocker,
      access,
    });
    expect(r).toEqual({ ok: true, output: "HTTP 200" });
    expect(resolve).toHaveBeenCalledTimes(1);
    // The URL's own host goes in the Host header.
    expect(seen).toEqual([`svc.test:${port} /ok`]);

    const tcp = await runProbe(spec({ tcp: `svc.test:${port}` }), isolated, {
      docker: noDocker,
      access: { allow: allowList("svc.test"), resolve: async () => ["127.0.0.1"] },
    });
    expect(tcp).toEqual({ ok: true, output: `connected to svc.test:${port} (127.0.0.1)` });
  });

  it("refuses a name that resolves outside the list, naming the label and the address", async () => {
    const { port, sockets } = await recordingServer();
    const r = await runProbe(spec({ tcp: `svc.test:${port}` }), isolated, {
      docker: noDocker,
      access: { allow: allowList("10.0.0.0/8"), resolve: async () => ["127.0.0.1"] },
    });
    expect(r.refused).toBe(
      `autoheal.probe.tcp="svc.test:${port}": host svc.test resolves to 127.0.0.1, which FLEETHEAL_PROBE_ALLOW does not allow on this agent`,
    );
    expect(sockets()).toBe(0);
  });

  it("does not follow a redirect to a host the list does not allow", async () => {
    const { port, seen } = await recordingServer();
    const r = await runProbe(spec({ http: `:${port}/away` }), onHost, {
      docker: noDocker,
      access: { allow: NOTHING_ALLOWED },
    });
    expect(r).toEqual({ ok: true, output: "HTTP 302" });
    expect(seen).toEqual([`127.0.0.1:${port} /away`]);
  });

  it("gives up on a resolver that does not answer within the timeout", async () => {
    const r = await runProbe(spec({ tcp: "svc.test:80", timeout: "200ms" }), isolated, {
      docker: noDocker,
      access: { allow: allowList("svc.test"), resolve: () => new Promise(() => {}) },
    });
    expect(r).toEqual({
      ok: false,
      output: "resolving svc.test timed out after 200ms",
      error: true,
    });
  });
});

describe("runProbe: exec", () => {
  function fakeDocker(result: ExecResult | Error | Promise<ExecResult>) {
    const calls: [string, string[], number][] = [];
    return {
      calls,
      exec: (id: string, cmd: string[], timeoutMs: number) => {
        calls.push([id, cmd, timeoutMs]);
        return result instanceof Error ? Promise.reject(result) : Promise.resolve(result);
      },
    };
  }
  const container = { containerId: "abc", ipAddresses: [] };

  it("runs sh -c in the container with the spec timeout; exit 0 passes", async () => {
    const docker = fakeDocker({ exitCode: 0, output: "  all good\n" });
    const r = await runProbe(spec({ exec: "test -f /tmp/healthy", timeout: "2s" }), container, {
      docker: docker,
      access: LOOPBACK,
    });
    expect(r).toEqual({ ok: true, output: "all good" });
    expect(docker.calls).toEqual([["abc", ["sh", "-c", "test -f /tmp/healthy"], 2_000]]);
  });

  it("fails on a non-zero exit, with the output or the exit code", async () => {
    expect(
      await runProbe(spec({ exec: "false" }), container, {
        docker: fakeDocker({ exitCode: 1, output: "no" }),
        access: LOOPBACK,
      }),
    ).toEqual({ ok: false, output: "no" });
    expect(
      await runProbe(spec({ exec: "false" }), container, {
        docker: fakeDocker({ exitCode: 2, output: "" }),
        access: LOOPBACK,
      }),
    ).toEqual({ ok: false, output: "exit code 2" });
  });

  it("reports exit code -1 as a timeout", async () => {
    const r = await runProbe(spec({ exec: "sleep 99", timeout: "1s" }), container, {
      docker: fakeDocker({ exitCode: -1, output: "partial" }),
      access: LOOPBACK,
    });
    expect(r).toEqual({ ok: false, output: "probe timed out after 1s: partial" });
  });

  it("fails, without throwing, when Docker refuses the exec", async () => {
    const r = await runProbe(spec({ exec: "true" }), container, {
      docker: fakeDocker(new Error("container abc is not running")),
      access: LOOPBACK,
    });
    expect(r).toEqual({
      ok: false,
      output: "exec failed: container abc is not running",
      error: true,
    });
  });

  it("does not throw even when exec throws synchronously", async () => {
    const docker = {
      exec: () => {
        throw new Error("boom");
      },
    };
    expect(
      await runProbe(spec({ exec: "true" }), container, { docker: docker, access: LOOPBACK }),
    ).toMatchObject({ ok: false });
  });

  it("keeps at most 1024 characters of output", async () => {
    const r = await runProbe(spec({ exec: "true" }), container, {
      docker: fakeDocker({ exitCode: 1, output: `${"x".repeat(5_000)}` }),
      access: LOOPBACK,
    });
    expect(r.output).toHaveLength(MAX_PROBE_OUTPUT);
  });

  it("keeps the last lines of the output, control characters escaped", async () => {
    const r = await runProbe(spec({ exec: "true" }), container, {
      docker: fakeDocker({ exitCode: 1, output: `${"x\n".repeat(2_000)}\u001b[31mfai\rled\r\n` }),
      access: LOOPBACK,
    });
    expect(r.output.endsWith("x\n\\u001b[31mfai\\u000dled")).toBe(true);
    expect(r.output.length).toBeLessThanOrEqual(MAX_PROBE_OUTPUT);
  });

  it("stops waiting when aborted (the engine's exec cannot be cancelled)", async () => {
    const controller = new AbortController();
    const docker = fakeDocker(new Promise<ExecResult>(() => {}));
    const pending = runProbe(spec({ exec: "sleep 99" }), container, {
      docker: docker,
      access: LOOPBACK,
      signal: controller.signal,
    });
    controller.abort();
    expect(await pending).toEqual({ ok: false, output: "aborted" });
  });
});
