import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AuthorizationError, TimeoutError } from "@nats-io/nats-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { loadAgentConfig } from "../agent/config.js";
import { loadGatewayConfig } from "../gateway/config.js";
import { loadHandlerConfig } from "../handlers/config.js";
import { configError } from "../test/support/config-error.js";
import { loadEnv, NATS_ENV } from "./config.js";
import { ConfigError } from "./errors.js";
import { natsSettingsFrom, needsExternalNats } from "./nats-config.js";
import { natsConnectionOptions, permanentNatsFailure } from "./nats-connection.js";

const CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const KEY = "-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n";
const CREDS = [
  "-----BEGIN NATS USER JWT-----",
  "eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.e30.c2ln",
  "------END NATS USER JWT------",
  "",
  "-----BEGIN USER NKEY SEED-----",
  "SUAIBDPBAUTWCWBKIO6XHQNINK5FWJW4OHLXC3HQ2KFE4PEJUA44CNHTC4",
  "------END USER NKEY SEED------",
  "",
].join("\n");
const PASSWORD = "s3cret-Passw0rd!";

let dir: string;
const file = (name: string) => join(dir, name);

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "fleetheal-nats-config-"));
  writeFileSync(file("ca.pem"), CERT);
  writeFileSync(file("cert.pem"), CERT);
  writeFileSync(file("key.pem"), KEY);
  writeFileSync(file("not-pem.txt"), "hello\n");
  writeFileSync(file("password"), `${PASSWORD}\n`);
  writeFileSync(file("empty"), "");
  writeFileSync(file("token"), "tok-from-file\n");
  writeFileSync(file("user.creds"), CREDS);
  writeFileSync(file("unreadable.pem"), CERT);
  chmodSync(file("unreadable.pem"), 0o000);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Loads the NATS variables the way every role does. */
function settings(env: NodeJS.ProcessEnv) {
  return natsSettingsFrom(loadEnv(z.object(NATS_ENV), env));
}

describe("NATS settings from the environment", () => {
  it("defaults to plain NATS with one replica", () => {
    expect(settings({})).toEqual({ jsReplicas: 1 });
    expect(needsExternalNats(settings({}))).toBe(false);
  });

  it("reads the CA at start and turns TLS on", () => {
    const s = settings({ FLEETHEAL_NATS_TLS_CA: file("ca.pem") });
    expect(s.tls).toEqual({ ca: CERT });
    expect(needsExternalNats(s)).toBe(true);
  });

  it("reads a client certificate and key", () => {
    const s = settings({
      FLEETHEAL_NATS_TLS_CA: file("ca.pem"),
      FLEETHEAL_NATS_TLS_CERT: file("cert.pem"),
      FLEETHEAL_NATS_TLS_KEY: file("key.pem"),
    });
    expect(s.tls).toEqual({ ca: CERT, cert: CERT, key: KEY });
    // A client certificate alone (server verified by the system CAs) is TLS too.
    expect(
      settings({
        FLEETHEAL_NATS_TLS_CERT: file("cert.pem"),
        FLEETHEAL_NATS_TLS_KEY: file("key.pem"),
      }).tls,
    ).toEqual({ cert: CERT, key: KEY });
  });

  it.each([
    [
      { FLEETHEAL_NATS_TLS_CERT: "cert.pem" },
      "FLEETHEAL_NATS_TLS_CERT: needs FLEETHEAL_NATS_TLS_KEY",
    ],
    [
      { FLEETHEAL_NATS_TLS_KEY: "key.pem" },
      "FLEETHEAL_NATS_TLS_KEY: needs FLEETHEAL_NATS_TLS_CERT",
    ],
  ])("refuses half a client certificate %j", (vars, expected) => {
    const env = Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, file(v)]));
    expect(configError(() => settings(env)).message).toContain(expected);
  });

  it("names the variable of a missing, unreadable or wrong file", () => {
    const message = configError(() =>
      settings({
        FLEETHEAL_NATS_TLS_CA: file("missing.pem"),
        FLEETHEAL_NATS_TLS_CERT: file("not-pem.txt"),
        FLEETHEAL_NATS_TLS_KEY: file("cert.pem"),
      }),
    ).message;
    const lines = message.split("\n");
    expect(lines[0]).toBe("invalid configuration:");
    expect(lines[1]).toMatch(
      /^ {2}FLEETHEAL_NATS_TLS_CA=".*missing\.pem": cannot read it \(.*ENOENT/,
    );
    expect(lines[2]).toMatch(/^ {2}FLEETHEAL_NATS_TLS_CERT=".*": is not a PEM certificate$/);
    expect(lines[3]).toMatch(/^ {2}FLEETHEAL_NATS_TLS_KEY=".*": is not a PEM private key$/);
    // root reads any file, whatever its mode.
    if (process.getuid?.() !== 0) {
      expect(
        configError(() => settings({ FLEETHEAL_NATS_TLS_CA: file("unreadable.pem") })).message,
      ).toMatch(/FLEETHEAL_NATS_TLS_CA=.*cannot read it \(.*EACCES/);
    }
    expect(
      configError(() =>
        settings({ FLEETHEAL_NATS_USER: "a", FLEETHEAL_NATS_PASSWORD_FILE: file("nope") }),
      ).message,
    ).toMatch(/FLEETHEAL_NATS_PASSWORD_FILE=".*nope": cannot read it/);
    expect(
      configError(() => settings({ FLEETHEAL_NATS_CREDS: file("nope.creds") })).message,
    ).toMatch(/FLEETHEAL_NATS_CREDS=".*nope\.creds": cannot read it/);
  });

  it("takes a user and password, from the variable or a file", () => {
    const direct = settings({ FLEETHEAL_NATS_USER: "agent-a", FLEETHEAL_NATS_PASSWORD: PASSWORD });
    expect(direct.auth).toEqual({ method: "password", user: "agent-a" });
    expect(direct.authenticator?.()).toEqual({ user: "agent-a", pass: PASSWORD });
    const fromFile = settings({
      FLEETHEAL_NATS_USER: "agent-a",
      FLEETHEAL_NATS_PASSWORD_FILE: file("password"),
    });
    // The file's trailing newline is not part of the password.
    expect(fromFile.authenticator?.()).toEqual({ user: "agent-a", pass: PASSWORD });
  });

  it("takes a token, from the variable or a file, and a creds file", () => {
    expect(settings({ FLEETHEAL_NATS_TOKEN: "tok" }).authenticator?.()).toEqual({
      auth_token: "tok",
    });
    const fromFile = settings({ FLEETHEAL_NATS_TOKEN_FILE: file("token") });
    expect(fromFile.auth).toEqual({ method: "token" });
    expect(fromFile.authenticator?.()).toEqual({ auth_token: "tok-from-file" });
    const creds = settings({ FLEETHEAL_NATS_CREDS: file("user.creds") });
    expect(creds.auth).toEqual({ method: "creds" });
    expect(typeof creds.authenticator).toBe("function");
    expect(
      configError(() => settings({ FLEETHEAL_NATS_CREDS: file("password") })).message,
    ).toContain("is not a NATS .creds file");
  });

  it.each([
    [{ FLEETHEAL_NATS_USER: "a" }, "FLEETHEAL_NATS_USER: needs FLEETHEAL_NATS_PASSWORD"],
    [{ FLEETHEAL_NATS_PASSWORD: PASSWORD }, "FLEETHEAL_NATS_PASSWORD: needs FLEETHEAL_NATS_USER"],
    [
      { FLEETHEAL_NATS_USER: "a", FLEETHEAL_NATS_PASSWORD: PASSWORD, FLEETHEAL_NATS_TOKEN: "t" },
      "FLEETHEAL_NATS_USER/PASSWORD, FLEETHEAL_NATS_TOKEN: choose one way to authenticate, not 2",
    ],
    [
      { FLEETHEAL_NATS_TOKEN: "t", FLEETHEAL_NATS_CREDS: "/x.creds" },
      "FLEETHEAL_NATS_TOKEN, FLEETHEAL_NATS_CREDS: choose one way to authenticate",
    ],
    [
      { FLEETHEAL_NATS_USER: "a", FLEETHEAL_NATS_PASSWORD: PASSWORD, FLEETHEAL_NATS_CREDS: "/x" },
      "FLEETHEAL_NATS_USER/PASSWORD, FLEETHEAL_NATS_CREDS: choose one",
    ],
    [
      { FLEETHEAL_NATS_TOKEN: "t", FLEETHEAL_NATS_TOKEN_FILE: "/t" },
      "FLEETHEAL_NATS_TOKEN and FLEETHEAL_NATS_TOKEN_FILE: set only one",
    ],
    [
      {
        FLEETHEAL_NATS_USER: "a",
        FLEETHEAL_NATS_PASSWORD: PASSWORD,
        FLEETHEAL_NATS_PASSWORD_FILE: "/p",
      },
      "FLEETHEAL_NATS_PASSWORD and FLEETHEAL_NATS_PASSWORD_FILE: set only one",
    ],
  ])("refuses ambiguous or partial credentials %j", (env, expected) => {
    const message = configError(() => settings(env)).message;
    expect(message).toContain(expected);
    expect(message).not.toContain(PASSWORD);
  });

  it("refuses an empty secret file", () => {
    expect(
      configError(() => settings({ FLEETHEAL_NATS_TOKEN_FILE: file("empty") })).message,
    ).toMatch(/FLEETHEAL_NATS_TOKEN_FILE=".*empty": the file is empty/);
  });

  it("never prints a password or token, but does print file paths", () => {
    const long = `${PASSWORD}${"x".repeat(5000)}`;
    const message = configError(() =>
      settings({
        FLEETHEAL_NATS_USER: "has space",
        FLEETHEAL_NATS_PASSWORD: long,
        FLEETHEAL_NATS_TOKEN: long,
      }),
    ).message;
    expect(message).toContain(`FLEETHEAL_NATS_PASSWORD=<${long.length} characters, not shown>`);
    expect(message).toContain(`FLEETHEAL_NATS_TOKEN=<${long.length} characters, not shown>`);
    expect(message).toContain('FLEETHEAL_NATS_USER="has space"');
    expect(message).not.toContain(PASSWORD);
    // A _FILE variable holds a path, which helps and is not secret.
    expect(
      configError(() => settings({ FLEETHEAL_NATS_PASSWORD_FILE: "/run/secrets/nats" })).message,
    ).toContain("FLEETHEAL_NATS_PASSWORD: needs FLEETHEAL_NATS_USER");
    // The settings can be logged: the secret lives only in the authenticator function.
    const s = settings({ FLEETHEAL_NATS_USER: "a", FLEETHEAL_NATS_PASSWORD: PASSWORD });
    expect(JSON.stringify(s)).not.toContain(PASSWORD);
    const t = settings({ FLEETHEAL_NATS_TOKEN_FILE: file("token") });
    expect(JSON.stringify(t)).not.toContain("tok-from-file");
  });

  it.each(["_INBOX_host-a", "_INBOX.edge-07", "fleet_inbox.a.b"])(
    "accepts the inbox prefix %j",
    (prefix) => {
      expect(settings({ FLEETHEAL_NATS_INBOX_PREFIX: prefix }).inboxPrefix).toBe(prefix);
    },
  );

  it.each(["_INBOX.*", "_INBOX.>", "a b", "a..b", ".a", "a.", "é"])(
    "refuses the inbox prefix %j",
    (prefix) => {
      expect(
        configError(() => settings({ FLEETHEAL_NATS_INBOX_PREFIX: prefix })).message,
      ).toContain(
        `FLEETHEAL_NATS_INBOX_PREFIX=${JSON.stringify(prefix)}: must be NATS subject tokens`,
      );
    },
  );

  it("takes 1 to 5 JetStream replicas", () => {
    expect(settings({ FLEETHEAL_JS_REPLICAS: "3" }).jsReplicas).toBe(3);
    expect(needsExternalNats(settings({ FLEETHEAL_JS_REPLICAS: "3" }))).toBe(true);
    expect(configError(() => settings({ FLEETHEAL_JS_REPLICAS: "0" })).message).toContain(
      'FLEETHEAL_JS_REPLICAS="0": must be at least 1',
    );
    expect(configError(() => settings({ FLEETHEAL_JS_REPLICAS: "6" })).message).toContain(
      "must be at most 5",
    );
  });

  it("is read by every role", () => {
    const env = {
      FLEETHEAL_NATS_TLS_CA: file("ca.pem"),
      FLEETHEAL_NATS_USER: "u",
      FLEETHEAL_NATS_PASSWORD: PASSWORD,
      FLEETHEAL_NATS_INBOX_PREFIX: "_INBOX_edge-07",
      FLEETHEAL_JS_REPLICAS: "3",
    };
    for (const config of [loadAgentConfig(env), loadHandlerConfig(env), loadGatewayConfig(env)]) {
      expect(config.nats).toMatchObject({
        tls: { ca: CERT },
        auth: { method: "password", user: "u" },
        inboxPrefix: "_INBOX_edge-07",
        jsReplicas: 3,
      });
    }
    expect(() => loadAgentConfig({ FLEETHEAL_NATS_TLS_KEY: file("key.pem") })).toThrow(ConfigError);
  });
});

describe("NATS connection options", () => {
  it("splits servers and passes TLS, the authenticator and the inbox prefix", () => {
    const s = settings({
      FLEETHEAL_NATS_TLS_CA: file("ca.pem"),
      FLEETHEAL_NATS_TOKEN: "tok",
      FLEETHEAL_NATS_INBOX_PREFIX: "_INBOX_a",
    });
    const options = natsConnectionOptions(" nats://a:4222, nats://b:4222 ,", "n", s);
    expect(options).toMatchObject({
      servers: ["nats://a:4222", "nats://b:4222"],
      name: "n",
      tls: { ca: CERT },
      inboxPrefix: "_INBOX_a",
    });
    expect(options.authenticator).toBe(s.authenticator);
    expect(natsConnectionOptions("nats://a:4222", "n")).toEqual({
      servers: ["nats://a:4222"],
      name: "n",
    });
  });

  it("tells permanent refusals from a server that is not up yet", () => {
    expect(permanentNatsFailure(new AuthorizationError("Authorization Violation"))).toMatch(
      /^NATS refused the credentials \(Authorization Violation\); check FLEETHEAL_NATS_USER/,
    );
    const badCa = Object.assign(new Error("unable to verify the first certificate"), {
      code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
    });
    expect(permanentNatsFailure(badCa)).toMatch(
      /^TLS with NATS failed: the server's certificate is not signed by a trusted CA/,
    );
    const refused = Object.assign(
      new Error(
        "806C:error:0A000412:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate:../x.c:1601:SSL alert number 42",
      ),
      { code: "ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE" },
    );
    expect(permanentNatsFailure(refused)).toContain(
      "the server refused the client certificate: none was given, or it is not signed by a CA the server trusts [sslv3 alert bad certificate (ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE)]",
    );
    const reset = Object.assign(
      new Error("Client network socket disconnected before secure TLS connection was established"),
      { code: "ECONNRESET" },
    );
    expect(permanentNatsFailure(reset)).toBeUndefined();
    expect(permanentNatsFailure(new Error("connection refused"))).toBeUndefined();
    expect(permanentNatsFailure(new TimeoutError())).toBeUndefined();
  });
});
