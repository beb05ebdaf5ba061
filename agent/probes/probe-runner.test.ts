import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { type AddressInfo, createServer, type Server } from "node:net";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ExecResult } from "../docker-engine.js";
import { MAX_PROBE_OUTPUT, NO_ADDRESS_ERROR, runProbe } from "./probe-runner.js";
import { type ProbeSpec, parseProbeLabels } from "./probe-spec.js";

function spec(labels: Record<string, string>): ProbeSpec {
  const full = Object.fromEntries(
    Object.entries(labels).map(([k, v]) => [`autoheal.probe.${k}`, v]),
  );
  const r = parseProbeLabels(full);
  if (!r?.ok) throw new Error(`bad test labels: ${JSON.stringify(r)}`);
  return r.spec;
}

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
    expect(await runProbe(spec({ tcp: `127.0.0.1:${port}` }), isolated, noDocker)).toEqual({
      ok: true,
      output: `connected to 127.0.0.1:${port}`,
    });
  });

  it("probes 127.0.0.1 for a container on the host network when only a port is given", async () => {
    const port = await listen(createServer((s) => s.destroy()));
    expect(await runProbe(spec({ tcp: `:${port}` }), onHost, noDocker)).toMatchObject({
      ok: true,
      output: `connected to 127.0.0.1:${port}`,
    });
    expect(await runProbe(spec({ tcp: String(port) }), onHost, noDocker)).toMatchObject({
      ok: true,
    });
  });

  it("probes the container's first own address when only a port is given", async () => {
    const port = await listen(createServer((s) => s.destroy()));
    const target = { containerId: "c1", ipAddresses: ["127.0.0.1", "127.0.0.2"] };
    expect(await runProbe(spec({ tcp: `:${port}` }), target, noDocker)).toMatchObject({
      ok: true,
      output: `connected to 127.0.0.1:${port}`,
    });
  });

  it("fails when the connection is refused", async () => {
    const port = await freePort();
    const r = await runProbe(spec({ tcp: `127.0.0.1:${port}` }), isolated, noDocker);
    expect(r.ok).toBe(false);
    expect(r.output).toContain("ECONNREFUSED");
  });

  it("fails without connecting anywhere when there is no address to probe", async () => {
    expect(await runProbe(spec({ tcp: ":80" }), isolated, noDocker)).toEqual({
      ok: false,
      output: NO_ADDRESS_ERROR,
    });
    expect(
      await runProbe(
        spec({ http: ":80/x" }),
        { containerId: "c", ipAddresses: [], networkMode: "container:abc" },
        noDocker,
      ),
    ).toEqual({ ok: false, output: NO_ADDRESS_ERROR });
  });

  it("fails at once when aborted", async () => {
    const port = await listen(createServer((s) => s.destroy()));
    const r = await runProbe(
      spec({ tcp: `127.0.0.1:${port}` }),
      isolated,
      noDocker,
      AbortSignal.abort(),
    );
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
    const r = await runProbe(spec({ http: `http://127.0.0.1:${port}${path}` }), isolated, noDocker);
    expect(r).toEqual({ ok, output });
    // Redirects are not followed.
    expect(requests).toEqual([path]);
  });

  it("builds the URL from the port and path when the host is omitted", async () => {
    const port = await startServer();
    expect(await runProbe(spec({ http: `:${port}/ok` }), onHost, noDocker)).toEqual({
      ok: true,
      output: "HTTP 200",
    });
    const target = { containerId: "c", ipAddresses: ["127.0.0.1"], networkMode: "bridge" };
    expect(await runProbe(spec({ http: `:${port}/fail?x=1` }), target, noDocker)).toEqual({
      ok: false,
      output: "HTTP 503",
    });
    expect(requests).toEqual(["/ok", "/fail?x=1"]);
  });

  it("fails after the timeout when the server does not answer", async () => {
    const port = await startServer();
    const url = `http://127.0.0.1:${port}/slow`;
    const started = Date.now();
    const r = await runProbe(spec({ http: url, timeout: "200ms" }), isolated, noDocker);
    expect(r).toEqual({ ok: false, output: `GET ${url} timed out after 200ms` });
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("fails with the reason when the connection is refused", async () => {
    const port = await freePort();
    const r = await runProbe(spec({ http: `http://127.0.0.1:${port}/` }), isolated, noDocker);
    expect(r.ok).toBe(false);
    expect(r.output).toContain("ECONNREFUSED");
  });

  it("fails with 'aborted' when aborted in flight", async () => {
    const port = await startServer();
    const controller = new AbortController();
    const pending = runProbe(
      spec({ http: `http://127.0.0.1:${port}/slow` }),
      isolated,
      noDocker,
      controller.signal,
    );
    await vi.waitFor(() => expect(requests).toEqual(["/slow"]));
    controller.abort();
    expect(await pending).toEqual({ ok: false, output: "aborted" });
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
    const r = await runProbe(
      spec({ exec: "test -f /tmp/healthy", timeout: "2s" }),
      container,
      docker,
    );
    expect(r).toEqual({ ok: true, output: "all good" });
    expect(docker.calls).toEqual([["abc", ["sh", "-c", "test -f /tmp/healthy"], 2_000]]);
  });

  it("fails on a non-zero exit, with the output or the exit code", async () => {
    expect(
      await runProbe(spec({ exec: "false" }), container, fakeDocker({ exitCode: 1, output: "no" })),
    ).toEqual({ ok: false, output: "no" });
    expect(
      await runProbe(spec({ exec: "false" }), container, fakeDocker({ exitCode: 2, output: "" })),
    ).toEqual({ ok: false, output: "exit code 2" });
  });

  it("reports exit code -1 as a timeout", async () => {
    const r = await runProbe(
      spec({ exec: "sleep 99", timeout: "1s" }),
      container,
      fakeDocker({ exitCode: -1, output: "partial" }),
    );
    expect(r).toEqual({ ok: false, output: "probe timed out after 1s: partial" });
  });

  it("fails, without throwing, when Docker refuses the exec", async () => {
    const r = await runProbe(
      spec({ exec: "true" }),
      container,
      fakeDocker(new Error("container abc is not running")),
    );
    expect(r).toEqual({ ok: false, output: "exec failed: container abc is not running" });
  });

  it("does not throw even when exec throws synchronously", async () => {
    const docker = {
      exec: () => {
        throw new Error("boom");
      },
    };
    expect(await runProbe(spec({ exec: "true" }), container, docker)).toMatchObject({ ok: false });
  });

  it("keeps at most 1024 characters of output", async () => {
    const r = await runProbe(
      spec({ exec: "true" }),
      container,
      fakeDocker({ exitCode: 1, output: `${"x".repeat(5_000)}` }),
    );
    expect(r.output).toHaveLength(MAX_PROBE_OUTPUT);
  });

  it("keeps the last lines of the output, control characters escaped", async () => {
    const r = await runProbe(
      spec({ exec: "true" }),
      container,
      fakeDocker({ exitCode: 1, output: `${"x\n".repeat(2_000)}\u001b[31mfai\rled\r\n` }),
    );
    expect(r.output.endsWith("x\n\\u001b[31mfai\\u000dled")).toBe(true);
    expect(r.output.length).toBeLessThanOrEqual(MAX_PROBE_OUTPUT);
  });

  it("stops waiting when aborted (the engine's exec cannot be cancelled)", async () => {
    const controller = new AbortController();
    const docker = fakeDocker(new Promise<ExecResult>(() => {}));
    const pending = runProbe(spec({ exec: "sleep 99" }), container, docker, controller.signal);
    controller.abort();
    expect(await pending).toEqual({ ok: false, output: "aborted" });
  });
});
