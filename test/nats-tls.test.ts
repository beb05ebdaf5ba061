// Every role over TLS to a nats-server that requires client certificates (`verify: true`), with
// certificates made for this run: an agent, a handler and the gateway heal a container on one
// dockerd engine. A client without a certificate, or with a CA that did not sign the server, is
// refused with exit code 2 and a line that says why. Then a server with users and passwords: the
// right password works, a wrong one is refused the same way, and is never printed.

import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HealthReport } from "../gateway/view/health-report.js";
import type { ExitStatus } from "./support/children.js";
import {
  type DockerEventRecorder,
  makeUnhealthy,
  recordDockerEvents,
  runTestContainer,
  waitForHealth,
} from "./support/containers.js";
import { type DockerEngine, startDockerEngine } from "./support/dockerd.js";
import { CLI, type FleetProcess, gatewayUrl, REPO, startRole } from "./support/fleetheal.js";
import { type NatsServerHandle, startNatsServer } from "./support/nats-server.js";
import { type ManagedProcess, startProcess } from "./support/process.js";
import { makeTlsMaterial, type TlsMaterial } from "./support/tls.js";
import { waitFor } from "./support/wait.js";

const HOST = "host-tls";
const PASSWORD = "correct-horse-battery-staple";
const WRONG_PASSWORD = "wrong-password-not-to-be-printed";

const cleanups: (() => Promise<void>)[] = [];
let tmp: string;
let tls: TlsMaterial;
/** An unrelated CA (and its client certificate): it did not sign the server, nor does the server trust it. */
let foreign: TlsMaterial;
let tlsNats: NatsServerHandle;
let engine: DockerEngine;
let recorder: DockerEventRecorder;
let gateway: FleetProcess;

/** The environment that every role gets to reach the TLS server with its client certificate. */
function tlsEnv(material: TlsMaterial = tls): Record<string, string> {
  return {
    FLEETHEAL_NATS_URL: tlsNats.url,
    FLEETHEAL_NATS_TLS_CA: tls.caCert,
    FLEETHEAL_NATS_TLS_CERT: material.clientCert,
    FLEETHEAL_NATS_TLS_KEY: material.clientKey,
  };
}

/** Runs a role that is expected to fail at start, and returns how it exited and what it said. */
async function runFailingRole(
  name: string,
  env: Record<string, string>,
): Promise<{ status: ExitStatus; output: string; proc: ManagedProcess }> {
  const proc = await startProcess({
    name,
    command: process.execPath,
    args: [CLI, "handler"],
    env: { FLEETHEAL_LOG_LEVEL: "debug", ...env },
    cwd: REPO,
  });
  cleanups.push(async () => proc[Symbol.asyncDispose]());
  let status: ExitStatus | undefined;
  void proc.exited.then((s) => {
    status = s;
  });
  await waitFor(() => status, {
    timeoutMs: 45_000,
    message: () => `${name} did not exit; its output:\n${proc.lines.slice(-20).join("\n")}`,
  });
  return { status: status as ExitStatus, output: proc.lines.join("\n"), proc };
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "fleetheal-nats-tls-"));
  cleanups.push(() => rm(tmp, { recursive: true, force: true }));
  [tls, foreign] = await Promise.all([
    makeTlsMaterial(path.join(tmp, "good"), { commonName: "fleetheal-nats" }),
    makeTlsMaterial(path.join(tmp, "foreign"), { commonName: "fleetheal-foreign" }),
  ]);
  const config = path.join(tmp, "nats-tls.conf");
  await writeFile(
    config,
    [
      "tls {",
      `  cert_file: ${JSON.stringify(tls.serverCert)}`,
      `  key_file: ${JSON.stringify(tls.serverKey)}`,
      `  ca_file: ${JSON.stringify(tls.caCert)}`,
      "  verify: true",
      "  timeout: 2",
      "}",
      "",
    ].join("\n"),
  );
  tlsNats = await startNatsServer({ configFile: config });
  cleanups.push(async () => tlsNats[Symbol.asyncDispose]());
  engine = await startDockerEngine("nats-tls");
  cleanups.push(async () => engine[Symbol.asyncDispose]());
  recorder = await recordDockerEvents(engine);
  cleanups.push(async () => recorder.close());

  const roles: FleetProcess[] = [];
  cleanups.push(async () => {
    await Promise.all(roles.map((r) => r[Symbol.asyncDispose]()));
  });
  roles.push(
    await startRole("handler", "tls-handler", {
      ...tlsEnv(),
      FLEETHEAL_NATS_INBOX_PREFIX: "_INBOX_handlers",
    }),
  );
  gateway = await startRole("gateway", "tls-gateway", {
    ...tlsEnv(),
    FLEETHEAL_GATEWAY_PORT: "0",
  });
  roles.push(gateway);
  roles.push(
    await startRole("agent", "tls-agent", {
      ...tlsEnv(),
      FLEETHEAL_NATS_INBOX_PREFIX: `_INBOX_${HOST}`,
      FLEETHEAL_HOST_ID: HOST,
      DOCKER_HOST: engine.dockerHost,
      FLEETHEAL_HEARTBEAT_MS: "500",
    }),
  );
});

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch((e) => console.error(e));
});

describe("NATS with TLS and required client certificates", () => {
  it("connects every role over TLS and heals an unhealthy opted-in container once", async () => {
    // The server's own view: every fleetheal connection is TLS, with the client certificate.
    const connz = (await (await fetch(`${tlsNats.monitorUrl}/connz?subs=0`)).json()) as {
      connections: { name?: string; tls_version?: string }[];
    };
    const ours = connz.connections.filter((c) => c.name?.startsWith("fleetheal-"));
    expect(ours.map((c) => c.name?.replace(/-\d+$/, "")).sort()).toEqual(
      expect.arrayContaining([`fleetheal-agent-${HOST}`, "fleetheal-gateway"]),
    );
    expect(ours.length).toBeGreaterThanOrEqual(3);
    for (const c of ours) expect(c.tls_version, c.name).toMatch(/^1\.[23]$/);

    const c = await runTestContainer(engine, {
      name: "heal-me-over-tls",
      labels: { autoheal: "true", "autoheal.backoff.initial": "0" },
    });
    await waitForHealth(engine, c.id, "healthy", 20_000);
    await makeUnhealthy(engine, c.id);
    const unhealthy = await recorder.waitFor(
      (e) => e.id === c.id && e.action === "health_status: unhealthy",
      20_000,
      "the container never turned unhealthy",
    );
    await recorder.waitFor(
      (e) => e.id === c.id && e.action === "kill" && e.timeNano > unhealthy.timeNano,
      20_000,
      "fleetheal did not restart the container over TLS",
    );
    await waitForHealth(engine, c.id, "healthy", 20_000);
    expect(recorder.count((e) => e.id === c.id && e.action === "restart")).toBe(1);

    // The gateway, also over TLS, sees the host and the healed container.
    await waitFor(
      async () => {
        const res = await fetch(`${gatewayUrl(gateway)}/health`);
        const report = HealthReport.parse(await res.json());
        return JSON.stringify(report).includes(HOST);
      },
      { timeoutMs: 15_000, message: "the gateway does not report the TLS host" },
    );
    expect(recorder.count((e) => e.id === c.id && e.action === "restart")).toBe(1);
  });

  it("refuses a client without a client certificate: exit code 2 and the reason", async () => {
    const { status, output } = await runFailingRole("no-client-cert", {
      FLEETHEAL_NATS_URL: tlsNats.url,
      FLEETHEAL_NATS_TLS_CA: tls.caCert,
    });
    expect(status.code).toBe(2);
    expect(output).toContain("fleetheal: cannot connect to NATS at");
    expect(output).toContain("the server refused the client certificate");
  });

  it("refuses a client certificate from another CA", async () => {
    const { status, output } = await runFailingRole("foreign-client-cert", tlsEnv(foreign));
    expect(status.code).toBe(2);
    expect(output).toContain("the server refused the client certificate");
  });

  it("refuses a server that the configured CA did not sign", async () => {
    const { status, output } = await runFailingRole("wrong-ca", {
      ...tlsEnv(),
      FLEETHEAL_NATS_TLS_CA: foreign.caCert,
    });
    expect(status.code).toBe(2);
    expect(output).toContain(
      "TLS with NATS failed: the server's certificate is not signed by a trusted CA",
    );
  });

  it("refuses to talk to a TLS server in the clear", async () => {
    const { status, output } = await runFailingRole("no-tls", {
      FLEETHEAL_NATS_URL: tlsNats.url,
    });
    expect(status.code).toBe(2);
    expect(output).toContain("TLS with NATS failed");
  });

  it("names an unreadable certificate file before connecting", async () => {
    const { status, output } = await runFailingRole("missing-cert-file", {
      ...tlsEnv(),
      FLEETHEAL_NATS_TLS_CERT: path.join(tmp, "no-such-cert.pem"),
    });
    expect(status.code).toBe(2);
    expect(output).toMatch(/FLEETHEAL_NATS_TLS_CERT=".*no-such-cert\.pem": cannot read it/);
  });
});

describe("NATS with users and passwords", () => {
  let authNats: NatsServerHandle;

  beforeAll(async () => {
    const config = path.join(tmp, "nats-auth.conf");
    await writeFile(
      config,
      [
        "authorization {",
        "  users = [",
        `    { user: "fleet", password: ${JSON.stringify(PASSWORD)} }`,
        "  ]",
        "}",
        "",
      ].join("\n"),
    );
    authNats = await startNatsServer({ configFile: config });
    cleanups.push(async () => authNats[Symbol.asyncDispose]());
  });

  it("connects with the right password, read from a file", async () => {
    const passwordFile = path.join(tmp, "nats-password");
    await writeFile(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
    const handler = await startRole("handler", "auth-handler", {
      FLEETHEAL_NATS_URL: authNats.url,
      FLEETHEAL_NATS_USER: "fleet",
      FLEETHEAL_NATS_PASSWORD_FILE: passwordFile,
    });
    cleanups.push(async () => handler[Symbol.asyncDispose]());
    const connected = await handler.waitForJson((l) => l.msg === "connected to NATS", 5_000);
    expect(connected.auth).toBe("password");
    expect(handler.lines.join("\n")).not.toContain(PASSWORD);
    const status = await handler.stop();
    expect(status.code).toBe(0);
  });

  it("refuses a wrong password with exit code 2 and never prints it", async () => {
    const { status, output } = await runFailingRole("wrong-password", {
      FLEETHEAL_NATS_URL: authNats.url,
      FLEETHEAL_NATS_USER: "fleet",
      FLEETHEAL_NATS_PASSWORD: WRONG_PASSWORD,
    });
    expect(status.code).toBe(2);
    expect(output).toContain("NATS refused the credentials (Authorization Violation)");
    expect(output).not.toContain(WRONG_PASSWORD);
  });

  it("refuses a client without credentials the same way", async () => {
    const { status, output } = await runFailingRole("no-credentials", {
      FLEETHEAL_NATS_URL: authNats.url,
    });
    expect(status.code).toBe(2);
    expect(output).toContain("NATS refused the credentials");
  });
});
