import { readFileSync } from "node:fs";
import {
  type Authenticator,
  credsAuthenticator,
  nkeyAuthenticator,
  type TlsOptions,
  tokenAuthenticator,
  usernamePasswordAuthenticator,
} from "@nats-io/nats-core";
import { fromSeed } from "@nats-io/nkeys";
import type { NatsEnv } from "./config.js";
import { ConfigError, describeError } from "./errors.js";

/**
 * How a role connects to NATS beyond the server URLs: TLS, credentials, the inbox prefix, and
 * how many replicas the JetStream resources it creates get. Built from the environment by
 * {@link natsSettingsFrom}; every file is read there, once, at start.
 */
export interface NatsClientSettings {
  /** TLS material (PEM contents). Present when any FLEETHEAL_NATS_TLS_* variable is set. */
  tls?: Pick<TlsOptions, "ca" | "cert" | "key">;
  /**
   * Which credentials are used, for logs. The secret itself lives only inside `authenticator`,
   * a function, so the settings can be logged or serialised without leaking it.
   */
  auth?: { method: "password" | "token" | "creds" | "nkey"; user?: string };
  authenticator?: Authenticator;
  /** Prefix of reply subjects, e.g. `_INBOX_host-a`, so that per-host permissions can allow it. */
  inboxPrefix?: string;
  /** Replicas of the streams and KV buckets this process creates (existing ones are kept). */
  jsReplicas: number;
}

/** Plain NATS: no TLS, no credentials, one replica. */
export const PLAIN_NATS: NatsClientSettings = { jsReplicas: 1 };

/**
 * Applies the rules that span several NATS variables and reads the files they name. Every
 * problem is reported at once, each with its variable's name; a secret's value never appears.
 */
export function natsSettingsFrom(e: NatsEnv): NatsClientSettings {
  const problems: string[] = [];
  const read = (name: string, file: string): Buffer | undefined => {
    try {
      return readFileSync(file);
    } catch (error) {
      problems.push(`${name}=${JSON.stringify(file)}: cannot read it (${describeError(error)})`);
      return undefined;
    }
  };
  /** A PEM file, checked for the block it must hold (the contents are never shown). */
  const pem = (name: string, file: string, block: RegExp, what: string): string | undefined => {
    const content = read(name, file)?.toString("utf8");
    if (content === undefined) return undefined;
    if (!block.test(content)) {
      problems.push(`${name}=${JSON.stringify(file)}: is not a PEM ${what}`);
      return undefined;
    }
    return content;
  };
  /** A secret from its variable or from the file its `_FILE` variable names, never both. */
  const secret = (
    name: string,
    value: string | undefined,
    file: string | undefined,
  ): string | undefined => {
    if (value !== undefined && file !== undefined) {
      problems.push(`${name} and ${name}_FILE: set only one`);
      return undefined;
    }
    if (file === undefined) return value;
    // The file's trailing newline is not part of the secret.
    const content = read(`${name}_FILE`, file)
      ?.toString("utf8")
      .replace(/\r?\n$/, "");
    if (content === "") problems.push(`${name}_FILE=${JSON.stringify(file)}: the file is empty`);
    return content || undefined;
  };

  // TLS: a CA to verify the server, and optionally a client certificate (both parts or none).
  let tls: NatsClientSettings["tls"];
  const { FLEETHEAL_NATS_TLS_CA: caFile, FLEETHEAL_NATS_TLS_CERT: certFile } = e;
  const keyFile = e.FLEETHEAL_NATS_TLS_KEY;
  if ((certFile === undefined) !== (keyFile === undefined)) {
    problems.push(
      certFile === undefined
        ? "FLEETHEAL_NATS_TLS_KEY: needs FLEETHEAL_NATS_TLS_CERT too (a client certificate is both)"
        : "FLEETHEAL_NATS_TLS_CERT: needs FLEETHEAL_NATS_TLS_KEY too (a client certificate is both)",
    );
  }
  if (caFile !== undefined || certFile !== undefined || keyFile !== undefined) {
    tls = {};
    if (caFile !== undefined) {
      const ca = pem("FLEETHEAL_NATS_TLS_CA", caFile, /-----BEGIN CERTIFICATE-----/, "certificate");
      if (ca !== undefined) tls.ca = ca;
    }
    if (certFile !== undefined && keyFile !== undefined) {
      const cert = pem(
        "FLEETHEAL_NATS_TLS_CERT",
        certFile,
        /-----BEGIN CERTIFICATE-----/,
        "certificate",
      );
      const key = pem(
        "FLEETHEAL_NATS_TLS_KEY",
        keyFile,
        /-----BEGIN [A-Z ]*PRIVATE KEY-----/,
        "private key",
      );
      if (cert !== undefined) tls.cert = cert;
      if (key !== undefined) tls.key = key;
    }
  }

  // Credentials: one method at most.
  const password = secret(
    "FLEETHEAL_NATS_PASSWORD",
    e.FLEETHEAL_NATS_PASSWORD,
    e.FLEETHEAL_NATS_PASSWORD_FILE,
  );
  const token = secret("FLEETHEAL_NATS_TOKEN", e.FLEETHEAL_NATS_TOKEN, e.FLEETHEAL_NATS_TOKEN_FILE);
  const user = e.FLEETHEAL_NATS_USER;
  const passwordSet =
    e.FLEETHEAL_NATS_PASSWORD !== undefined || e.FLEETHEAL_NATS_PASSWORD_FILE !== undefined;
  const tokenSet =
    e.FLEETHEAL_NATS_TOKEN !== undefined || e.FLEETHEAL_NATS_TOKEN_FILE !== undefined;
  if (user !== undefined && !passwordSet) {
    problems.push(
      "FLEETHEAL_NATS_USER: needs FLEETHEAL_NATS_PASSWORD or FLEETHEAL_NATS_PASSWORD_FILE",
    );
  }
  if (user === undefined && passwordSet) {
    problems.push("FLEETHEAL_NATS_PASSWORD: needs FLEETHEAL_NATS_USER");
  }
  const methods = [
    ...(user !== undefined || passwordSet ? ["FLEETHEAL_NATS_USER/PASSWORD"] : []),
    ...(tokenSet ? ["FLEETHEAL_NATS_TOKEN"] : []),
    ...(e.FLEETHEAL_NATS_CREDS !== undefined ? ["FLEETHEAL_NATS_CREDS"] : []),
    ...(e.FLEETHEAL_NATS_NKEY_FILE !== undefined ? ["FLEETHEAL_NATS_NKEY_FILE"] : []),
  ];
  if (methods.length > 1) {
    problems.push(`${methods.join(", ")}: choose one way to authenticate, not ${methods.length}`);
  }
  let auth: NatsClientSettings["auth"];
  let authenticator: Authenticator | undefined;
  if (methods.length === 1) {
    if (user !== undefined && password !== undefined) {
      auth = { method: "password", user };
      authenticator = usernamePasswordAuthenticator(user, password);
    } else if (token !== undefined) {
      auth = { method: "token" };
      authenticator = tokenAuthenticator(token);
    } else if (e.FLEETHEAL_NATS_CREDS !== undefined) {
      const creds = read("FLEETHEAL_NATS_CREDS", e.FLEETHEAL_NATS_CREDS);
      const text = creds?.toString("utf8") ?? "";
      if (creds !== undefined && !/BEGIN NATS USER JWT/.test(text)) {
        problems.push(
          `FLEETHEAL_NATS_CREDS=${JSON.stringify(e.FLEETHEAL_NATS_CREDS)}: is not a NATS .creds file (no user JWT)`,
        );
      } else if (creds !== undefined && !/BEGIN USER NKEY SEED/.test(text)) {
        problems.push(
          `FLEETHEAL_NATS_CREDS=${JSON.stringify(e.FLEETHEAL_NATS_CREDS)}: is not a NATS .creds file (no user nkey seed)`,
        );
      } else if (creds !== undefined) {
        auth = { method: "creds" };
        authenticator = credsAuthenticator(new Uint8Array(creds));
      }
    } else if (e.FLEETHEAL_NATS_NKEY_FILE !== undefined) {
      const file = e.FLEETHEAL_NATS_NKEY_FILE;
      const seed = readUserSeed(read("FLEETHEAL_NATS_NKEY_FILE", file));
      if (typeof seed === "string") {
        problems.push(`FLEETHEAL_NATS_NKEY_FILE=${JSON.stringify(file)}: ${seed}`);
      } else if (seed !== undefined) {
        auth = { method: "nkey", user: seed.publicKey };
        authenticator = nkeyAuthenticator(seed.seed);
      }
    }
  }

  if (problems.length > 0) {
    throw new ConfigError(`invalid configuration:\n${problems.map((p) => `  ${p}`).join("\n")}`);
  }
  return {
    ...(tls === undefined ? {} : { tls }),
    ...(auth === undefined ? {} : { auth }),
    ...(authenticator === undefined ? {} : { authenticator }),
    ...(e.FLEETHEAL_NATS_INBOX_PREFIX === undefined
      ? {}
      : { inboxPrefix: e.FLEETHEAL_NATS_INBOX_PREFIX }),
    jsReplicas: e.FLEETHEAL_JS_REPLICAS,
  };
}

/**
 * The user seed (`SU…`) of an NKEY seed file, with its public key; a string saying what is wrong
 * when the file holds something else (the seed itself never appears in it).
 */
export function readUserSeed(
  content: Buffer | undefined,
): { seed: Uint8Array; publicKey: string } | string | undefined {
  if (content === undefined) return undefined;
  const text = content.toString("utf8").trim();
  if (!text.startsWith("SU")) return "is not a NATS user NKEY seed (it must start with SU)";
  try {
    const seed = new TextEncoder().encode(text);
    return { seed, publicKey: fromSeed(seed).getPublicKey() };
  } catch {
    return "is not a valid NATS user NKEY seed";
  }
}

/** True when any setting needs an external NATS server (the embedded one is plain loopback). */
export function needsExternalNats(settings: NatsClientSettings): boolean {
  return (
    settings.tls !== undefined ||
    settings.authenticator !== undefined ||
    settings.inboxPrefix !== undefined ||
    settings.jsReplicas > 1
  );
}
